"""Exchanging QR vouchers at a hall over HTTP: exactly once, for a physical ticket whose code gates verify offline;
every code that is not a live, issued voucher is refused with its own code and changes nothing."""

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import assert_problem
from tests.integration.test_voucher_support import (
    day,
    exchange,
    published_claim,
    sell,
    sell_voucher,
    ticket_state,
    unexchanged,
    voucher,
    voucher_code,
)
from ticketing.signed_codes import CodeKind, grouped, sign_claim, verify_code
from ticketing.signing_keys import Keyring, SigningKey, load_keyring

XUJIAHUI = "Shanghai Xujiahui hall"


async def test_exchange_for_a_physical_ticket_once(service: Service, clerk: dict[str, str]) -> None:
    order = await sell_voucher(service, number(1))
    ticket_id = order["tickets"][0]["id"]
    code = await voucher_code(service, order["id"])
    typed = grouped(code).lower()  # as a clerk types it from the MMS: groups, dashes, any case

    done = await exchange(service, clerk, typed, key="exchange-1")
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["ticket_id"], body["order_id"], body["into"]) == (ticket_id, order["id"], "physical")
    assert (body["msisdn"], body["ticket_type"]) == (number(1), "standard")
    assert datetime.fromisoformat(body["exchanged_at"]) == service.clock.now()
    printed = body["physical"]
    claim = await published_claim(service, printed["code"])
    assert (claim.kind, claim.ticket_id, claim.kid) == (CodeKind.PHYSICAL, ticket_id, printed["kid"])
    assert (claim.first_day, claim.last_day) == (day(printed["first_day"]), day(printed["last_day"]))
    assert printed["code_grouped"] == grouped(printed["code"])
    state = await ticket_state(service.db, ticket_id)
    assert (state.carrier, state.exchanged_into, state.physical_tickets) == ("physical", "physical", 1)

    replay = await exchange(service, clerk, typed, key="exchange-1")
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == body

    beijing = await service.login("bj_hall", "BJ-C001")
    again = assert_problem(await exchange(service, beijing, code), 409, "already_exchanged")
    assert (again["into"], again["province"], again["hall"]) == ("physical", "31", XUJIAHUI)
    assert datetime.fromisoformat(again["exchanged_at"]) == service.clock.now()
    assert await ticket_state(service.db, ticket_id) == state

    fetched = (await voucher(service, order["id"])).json()
    assert fetched["exchanged"]["into"] == "physical"
    assert (fetched["exchanged"]["province"], fetched["exchanged"]["hall"]) == ("31", XUJIAHUI)
    resend = await service.client.post(f"/v1/orders/{order['id']}/voucher/send", headers=service.device("web"))
    assert_problem(resend, 409, "already_exchanged")


async def test_a_physical_ticket_is_reprinted_in_its_province(service: Service, clerk: dict[str, str]) -> None:
    order = await sell_voucher(service, number(1))
    ticket_id = order["tickets"][0]["id"]
    done = (await exchange(service, clerk, await voucher_code(service, order["id"]))).json()

    reprint = await service.client.get(f"/v1/tickets/{ticket_id}/physical", headers=clerk)
    assert reprint.status_code == 200, reprint.text
    assert (reprint.json()["code"], reprint.json()["hall"]) == (done["physical"]["code"], XUJIAHUI)
    assert (await service.client.get(f"/v1/tickets/{ticket_id}/physical", headers=service.device("admin"))).is_success
    beijing = await service.login("bj_hall", "BJ-C001")
    other = await service.client.get(f"/v1/tickets/{ticket_id}/physical", headers=beijing)
    assert_problem(other, 404, "physical_ticket_not_found")
    never = await service.client.get("/v1/tickets/999999/physical", headers=clerk)
    assert_problem(never, 404, "physical_ticket_not_found")
    web = await service.client.get(f"/v1/tickets/{ticket_id}/physical", headers=service.device("web"))
    assert_problem(web, 403, "role_not_allowed")


async def test_only_hall_clerks_exchange(service: Service, agent: dict[str, str]) -> None:
    order = await sell_voucher(service, number(1))
    code = await voucher_code(service, order["id"])
    assert_problem(await exchange(service, agent, code), 403, "role_not_allowed")
    assert_problem(await exchange(service, service.device("web"), code), 403, "role_not_allowed")
    assert unexchanged(await ticket_state(service.db, order["tickets"][0]["id"]))


@dataclasses.dataclass
class Sold:
    """A sold voucher and what a test needs to make codes of its own."""

    service: Service
    clerk: dict[str, str]
    keyring: Keyring
    code: str
    ticket_id: int
    order_id: int

    def signed(self, *, kid: int, key: Ed25519PrivateKey, kind: CodeKind = CodeKind.VOUCHER, **changes: object) -> str:
        """This voucher's claim, changed as asked, signed with any key under any key id."""
        claim = verify_code(self.code, self.keyring.public_keys())
        return sign_claim(dataclasses.replace(claim, kind=kind, kid=kid, **changes), key)


# Each case: what the clerk shows, and the ticket the code names -> (code, ticket_id, into, csn).
Case = Callable[[Sold], Awaitable[tuple[str, int, str, str | None]]]


async def _truncated(v: Sold) -> tuple[str, int, str, str | None]:
    return v.code[:-4], v.ticket_id, "physical", None


async def _one_character_changed(v: Sold) -> tuple[str, int, str, str | None]:
    changed = v.code[:60] + ("A" if v.code[60] != "A" else "B") + v.code[61:]
    return changed, v.ticket_id, "physical", None


async def _signed_by_an_unknown_key(v: Sold) -> tuple[str, int, str, str | None]:
    other = Keyring((SigningKey(7, Ed25519PrivateKey.generate(), v.service.clock.now()),))
    return v.signed(kid=7, key=other.current.private), v.ticket_id, "physical", None


async def _signed_by_another_key_under_ours(v: Sold) -> tuple[str, int, str, str | None]:
    return v.signed(kid=1, key=Ed25519PrivateKey.generate()), v.ticket_id, "physical", None


async def _expired(v: Sold) -> tuple[str, int, str, str | None]:
    last_day = verify_code(v.code, v.keyring.public_keys()).last_day
    v.service.clock.set(datetime.combine(last_day + timedelta(days=1), time(9, 0), tzinfo=EXPO_TZ))
    v.clerk.update(await v.service.login("sh_hall", "SH-C001"))  # the clerk's session of months ago has ended
    return v.code, v.ticket_id, "physical", None


async def _revoked(v: Sold) -> tuple[str, int, str, str | None]:
    voided = await v.service.post(f"/v1/orders/{v.order_id}/void", {}, v.service.device("web"))
    assert voided.status_code == 200, voided.text
    return v.code, v.ticket_id, "physical", None


async def _a_physical_tickets_code(v: Sold) -> tuple[str, int, str, str | None]:
    other = await sell_voucher(v.service, number(2))
    done = await exchange(v.service, v.clerk, await voucher_code(v.service, other["id"]))
    assert done.status_code == 201, done.text
    return done.json()["physical"]["code"], other["tickets"][0]["id"], "physical", None


async def _a_ticket_without_voucher(v: Sold) -> tuple[str, int, str, str | None]:
    card = await sell(v.service, hall_sale(number(3)), v.clerk)
    ticket_id = card["tickets"][0]["id"]
    return v.signed(kid=1, key=v.keyring.current.private, ticket_id=ticket_id), ticket_id, "physical", None


async def _no_such_ticket(v: Sold) -> tuple[str, int, str, str | None]:
    return v.signed(kid=1, key=v.keyring.current.private, ticket_id=999_999), v.ticket_id, "physical", None


async def _another_genuine_code_for_the_ticket(v: Sold) -> tuple[str, int, str, str | None]:
    first = day("2010-06-02")
    code = v.signed(kid=1, key=v.keyring.current.private, first_day=first)
    return code, v.ticket_id, "physical", None


async def _onto_a_card_without_its_csn(v: Sold) -> tuple[str, int, str, str | None]:
    return v.code, v.ticket_id, "expo_card", None


async def _onto_a_card_that_is_no_csn(v: Sold) -> tuple[str, int, str, str | None]:
    return v.code, v.ticket_id, "expo_card", "FF31000000000001"


CASES: dict[str, tuple[Case, int, str]] = {
    "truncated": (_truncated, 400, "code_malformed"),
    "one-character-changed": (_one_character_changed, 400, "code_forged"),
    "unknown-key": (_signed_by_an_unknown_key, 400, "unknown_signing_key"),
    "forged-under-our-key-id": (_signed_by_another_key_under_ours, 400, "code_forged"),
    "expired": (_expired, 409, "voucher_expired"),
    "revoked": (_revoked, 409, "voucher_revoked"),
    "physical-code": (_a_physical_tickets_code, 400, "not_a_voucher"),
    "ticket-without-voucher": (_a_ticket_without_voucher, 404, "voucher_unknown"),
    "no-such-ticket": (_no_such_ticket, 404, "voucher_unknown"),
    "not-the-issued-code": (_another_genuine_code_for_the_ticket, 404, "voucher_unknown"),
    "card-without-csn": (_onto_a_card_without_its_csn, 400, "csn_required"),
    "invalid-csn": (_onto_a_card_that_is_no_csn, 422, "invalid_csn"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_codes_are_refused_and_change_nothing(
    service: Service, clerk: dict[str, str], signing_key_file: Path, case: str
) -> None:
    order = await sell_voucher(service, number(1))
    sold = Sold(
        service=service,
        clerk=clerk,
        keyring=load_keyring(signing_key_file),
        code=await voucher_code(service, order["id"]),
        ticket_id=order["tickets"][0]["id"],
        order_id=order["id"],
    )
    make, status, code = CASES[case]
    shown, ticket_id, into, csn = await make(sold)
    before = await ticket_state(service.db, ticket_id)

    assert_problem(await exchange(service, clerk, shown, into=into, csn=csn), status, code)

    assert await ticket_state(service.db, ticket_id) == before
    assert unexchanged(await ticket_state(service.db, sold.ticket_id))


async def test_garbage_and_oversized_codes(service: Service, clerk: dict[str, str]) -> None:
    assert_problem(await exchange(service, clerk, "hello"), 400, "code_malformed")
    assert_problem(await exchange(service, clerk, "A" * 127), 400, "code_malformed")
    assert_problem(await exchange(service, clerk, "A" * 401), 400, "invalid_request")
    assert_problem(await exchange(service, clerk, "x", into="paper"), 400, "invalid_request")
