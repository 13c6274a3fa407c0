"""A generated June and July of mixed ticket sales, shared by the settlement tests.

Sold through the real API: two provinces' halls (cash and bank card), 12580 (credit card, cash on delivery, a
charge the bank never confirms), the web (online banking and wallet), to buyers of several provinces; some voided
the same day, some refunded in the same month or the next; and a sale on each side of midnight at the month's end.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from expo.clock import EXPO_TZ
from expo.provinces import load_shipped_segments
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import PEAK_DAY, agent_sale, cod_sale, web_sale
from tests.integration.wallet.conftest import PASSWORD, Wallet


def _first_segments() -> dict[str, str]:
    first: dict[str, str] = {}
    for segment in load_shipped_segments():
        first.setdefault(segment.province_code, segment.first)
    return first


SEGMENTS = _first_segments()


def buyer(province: str, n: int) -> str:
    """A phone number of a province, distinct per n (one unused mobile ticket per number)."""
    return number(n, SEGMENTS[province])


@dataclass
class Sellers:
    """The demo's sellers, logged in again whenever the clock has moved past their sessions."""

    service: Service
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def at(self, when: datetime) -> None:
        self.service.clock.set(when)
        self.headers = {
            "sh": await self.service.login("sh_hall", "SH-C001"),
            "bj": await self.service.login("bj_hall", "BJ-C001"),
            "agent": await self.service.login("sh_12580", "SH-A001"),
            "web": self.service.device("web"),
            "courier": self.service.device("courier"),
        }

    async def sell(self, seller: str, body: dict[str, Any], status: int = 201) -> int:
        reply = await self.service.post("/v1/orders", body, self.headers[seller])
        assert reply.status_code == status, reply.text
        return int(reply.json()["id"])

    async def act(self, seller: str, order_id: int, action: str, body: dict[str, Any] | None = None) -> None:
        reply = await self.service.post(f"/v1/orders/{order_id}/{action}", body or {}, self.headers[seller])
        assert reply.status_code == 200, reply.text


def bank_card(approval: str) -> dict[str, Any]:
    return {"payment": {"method": "bank_card", "approval_code": approval}}


def web_wallet(msisdn: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"msisdn": msisdn, "ticket_type": "standard", "carrier": "expo_card"}
    body["payment"] = {"method": "wallet", "password": PASSWORD}
    return {**body, **changes}


async def sell_two_months(service: Service, clerk: dict[str, str]) -> dict[str, int]:
    """June and July of mixed sales, voids and refunds; returns a few orders by name."""
    s = Sellers(service)
    wallet = Wallet(service=service, clerk=clerk)
    named: dict[str, int] = {}
    await s.at(datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ))
    for n, province in enumerate(("44", "31"), start=90):
        await wallet.open(buyer(province, n), top_up_fen=200_000)

    # 1 June: every channel and payment, buyers of every province; two voided the same day.
    await s.sell("sh", hall_sale(buyer("31", 1)))
    await s.sell("sh", hall_sale(buyer("44", 1), ticket_type="pass_3", **bank_card("A00001")))
    voided_evening = await s.sell("sh", hall_sale(buyer("11", 1), ticket_type="evening"))
    await s.sell("bj", hall_sale(buyer("11", 2)))
    await s.sell("bj", hall_sale(buyer("51", 1), ticket_type="pass_7", **bank_card("B00001")))
    named["bj_refunded_in_july"] = await s.sell("bj", hall_sale(buyer("65", 1), ticket_type="pass_3"))
    await s.sell("agent", agent_sale(buyer("65", 2)))
    voided_peak = await s.sell("agent", agent_sale(buyer("31", 2), ticket_type="peak", visit_day=PEAK_DAY.isoformat()))
    await s.sell("agent", agent_sale(buyer("51", 2), account="4000000000000004"), status=202)  # never confirmed
    cod_june = await s.sell("agent", cod_sale(buyer("44", 2), quantity=3), status=202)
    concession = {"ticket_type": "standard_concession", "concession": {"category": "student", "id_last4": "123X"}}
    named["web_refunded_in_june"] = await s.sell("web", web_sale(buyer("51", 3), **concession))
    await s.sell("web", web_sale(buyer("65", 3), ticket_type="peak", visit_day=PEAK_DAY.isoformat()))
    named["wallet_refunded_in_july"] = await s.sell("web", web_wallet(buyer("44", 90)))
    await s.sell("web", web_wallet(buyer("31", 91), ticket_type="pass_7"))
    await s.act("sh", voided_evening, "void")
    await s.act("agent", voided_peak, "void")

    # 2 June: the cash-on-delivery order is delivered and paid; 15 June: a refund within the month.
    await s.at(datetime(2010, 6, 2, 15, 0, tzinfo=EXPO_TZ))
    await s.act("courier", cod_june, "delivery", {"collected_fen": 48_000, "receipt": "R-JUNE"})
    await s.at(datetime(2010, 6, 15, 11, 0, tzinfo=EXPO_TZ))
    await s.act("web", named["web_refunded_in_june"], "refund")
    await s.sell("sh", hall_sale(buyer("15", 1), ticket_type="pass_7"))
    cod_july = await s.sell("agent", cod_sale(buyer("15", 2), quantity=2), status=202)

    # 30 June 23:30 in Shanghai is June; 1 July 00:30 is July there, though still 30 June in UTC.
    await s.at(datetime(2010, 6, 30, 23, 30, tzinfo=EXPO_TZ))
    named["last_of_june"] = await s.sell("sh", hall_sale(buyer("11", 3), ticket_type="pass_3"))
    await s.sell("web", web_sale(buyer("31", 3), ticket_type="evening"))
    await s.at(datetime(2010, 7, 1, 0, 30, tzinfo=EXPO_TZ))
    named["first_of_july"] = await s.sell("sh", hall_sale(buyer("44", 3), ticket_type="pass_3"))
    await s.act("courier", cod_july, "delivery", {"collected_fen": 32_000, "receipt": "R-JULY"})

    # July: June sales refunded, July sales voided and kept.
    await s.at(datetime(2010, 7, 10, 9, 0, tzinfo=EXPO_TZ))
    await s.act("bj", named["bj_refunded_in_july"], "refund")
    await s.act("web", named["wallet_refunded_in_july"], "refund")
    await s.sell("bj", hall_sale(buyer("51", 4), ticket_type="peak", visit_day=PEAK_DAY.isoformat()))
    voided_july = await s.sell("agent", agent_sale(buyer("65", 4), ticket_type="pass_7"))
    await s.act("agent", voided_july, "void")
    await s.sell("web", web_sale(buyer("44", 4)))
    await s.sell("bj", hall_sale(buyer("11", 4)))
    return named
