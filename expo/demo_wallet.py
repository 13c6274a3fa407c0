"""The wallet part of the demo: wallets opened and topped up, merchants paid remotely and at a POS, refunds,
bills paid by replying to a text, red packets, tickets paid from the wallet, and the ledger audited."""

import re
import uuid
from typing import Any

import httpx

from expo.money import format_fen

PASSWORD = "135790"  # noqa: S105 - the made-up demo users' payment password, typed on their phones


class WalletDemo:
    """Drives the wallet over HTTP as clerks, the web front, merchants and their terminals do."""

    def __init__(
        self, http: httpx.Client, tokens: dict[str, str], clerk: dict[str, str], agent: dict[str, str]
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.clerk = clerk
        self.agent = agent

    def device(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def call(self, what: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """POST with a fresh Idempotency-Key, print the outcome, return the reply's JSON."""
        reply = self.http.post(path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        data: dict[str, Any] = reply.json() if reply.content else {}
        if reply.status_code >= 400:
            outcome = f"refused {reply.status_code} {data.get('code')}"
        elif "state" in data:
            outcome = f"{data['kind']} {data['id']} {data['state']} {format_fen(data['amount_fen'])} yuan"
            if data.get("fee_fen"):
                outcome += f" (fee {format_fen(data['fee_fen'])})"
        else:
            outcome = f"{reply.status_code}"
        print(f"  {what:<58} -> {outcome}")
        return data

    def balance(self, msisdn: str) -> str:
        account = self.http.get(f"/v1/wallet/accounts/{msisdn}", headers=self.device("admin")).json()
        return f"{format_fen(account['balance_fen'])} yuan (+{format_fen(account['red_packet_fen'])} in red packets)"

    def last_code(self, msisdn: str) -> str:
        texts = self.http.get("/v1/wallet/admin/sms", params={"msisdn": msisdn}, headers=self.device("admin")).json()
        for text in texts:
            found = re.search(r"code is (\d{6})", text["text"])
            if found:
                return found.group(1)
        raise SystemExit(f"no code was texted to {msisdn}")

    def merchant(self, code: str, name: str, category: str, province: str) -> dict[str, str]:
        admin = self.device("admin")
        body = {"code": code, "name": name, "category": category, "province_code": province}
        made = self.http.post("/v1/wallet/admin/merchants", json=body, headers=admin).json()
        print(f"  {'merchant ' + name + ' (' + category + ')':<58} -> fee {made['fee_rate_bp'] / 100:g}%")
        key = self.http.post(f"/v1/wallet/admin/merchants/{code}/keys", headers=admin).json()
        return {"Authorization": f"Bearer {key['token']}"}

    def run(self, *, shanghai: str, beijing: str) -> None:
        print("\nWallet: accounts and top-ups (hall, Shanghai):")
        for msisdn in (shanghai, beijing):
            self.http.post(
                "/v1/wallet/accounts",
                json={"msisdn": msisdn, "password": PASSWORD, "id_last4": "123X"},
                headers=self.clerk,
            ).raise_for_status()
            self.call(
                f"cash top-up of 500 yuan for {msisdn}",
                "/v1/wallet/top-ups/cash",
                {"msisdn": msisdn, "amount_fen": 50_000},
                self.clerk,
            )

        print("\nWallet: remote payments (web password, SMS code) and a refund:")
        books = self.merchant("DANGDANG", "Online bookshop", "other_remote", "11")
        games = self.merchant("GAMECARD", "Game card shop", "virtual_goods", "44")
        web = self.device("web")
        paid = self.call(
            "books on the web, 88.80 yuan, with the password",
            "/v1/wallet/payments",
            {"merchant": "DANGDANG", "msisdn": beijing, "amount_fen": 8_880, "channel": "web", "password": PASSWORD},
            web,
        )
        self.call(
            "same, wrong password",
            "/v1/wallet/payments",
            {"merchant": "DANGDANG", "msisdn": beijing, "amount_fen": 8_880, "channel": "web", "password": "246802"},
            web,
        )
        held = self.call(
            "game card by SMS, 30 yuan: held until the code",
            "/v1/wallet/payments",
            {"merchant": "GAMECARD", "msisdn": shanghai, "amount_fen": 3_000, "channel": "sms"},
            games,
        )
        reply = self.http.post(
            f"/v1/wallet/payments/{held['id']}/confirmation", json={"code": self.last_code(shanghai)}, headers=games
        )
        print(f"  {'the user gives the texted code':<58} -> {reply.json()['state']}")
        self.call(
            "the bookshop refunds 20 yuan of the books",
            f"/v1/wallet/payments/{paid['id']}/refunds",
            {"amount_fen": 2_000, "reason": "one book out of stock"},
            books,
        )
        self.call(
            "a payment of 10,000 yuan (needs a bank card)",
            "/v1/wallet/payments",
            {
                "merchant": "DANGDANG",
                "msisdn": beijing,
                "amount_fen": 1_000_000,
                "channel": "web",
                "password": PASSWORD,
            },
            web,
        )
        print(f"  balances: {shanghai} {self.balance(shanghai)}; {beijing} {self.balance(beijing)}")
        self.money_in_and_out(shanghai)
        self.expo_park(shanghai, beijing)
        self.bills_and_red_packets(shanghai)
        self.tickets(beijing)

    def money_in_and_out(self, msisdn: str) -> None:
        print("\nWallet: bank top-ups, a recharge card, a withdrawal:")
        web = self.device("web")
        top_up = {"msisdn": msisdn, "amount_fen": 20_000, "channel": "online_banking"}
        self.call(
            "online banking top-up, 200 yuan", "/v1/wallet/top-ups/bank", {**top_up, "account": "6225880000000001"}, web
        )
        self.call("the bank declines a card", "/v1/wallet/top-ups/bank", {**top_up, "account": "6225880000000002"}, web)
        batch = {"count": 2, "face_value_fen": 5_000, "batch": "DEMO-2010-09"}
        cards = self.http.post("/v1/wallet/admin/recharge-cards", json=batch, headers=self.device("admin")).json()
        card = cards["cards"][0]
        redeem = {"msisdn": msisdn, "serial": card["serial"], "pin": card["pin"]}
        self.call("recharge card of 50 yuan (serial + scratched PIN)", "/v1/wallet/top-ups/recharge-card", redeem, web)
        self.call("the same card again", "/v1/wallet/top-ups/recharge-card", redeem, web)
        withdrawal = {"msisdn": msisdn, "amount_fen": 10_000, "account": "6222020000000001", "password": PASSWORD}
        self.call("withdraw 100 yuan to a bank card (1-3 working days)", "/v1/wallet/withdrawals", withdrawal, web)

    def expo_park(self, shanghai: str, beijing: str) -> None:
        print("\nWallet: proximity payments at a restaurant POS in the Expo park:")
        self.merchant("EXPO-NOODLE", "Expo noodle house", "restaurants", "31")
        made = self.http.post(
            "/v1/wallet/admin/merchants/EXPO-NOODLE/terminals",
            json={"terminal_no": "T0001"},
            headers=self.device("admin"),
        ).json()
        pos = {"Authorization": f"Bearer {made['token']}"}
        self.pos_call(
            "tap: noodles, 38 yuan (no PIN under 200)",
            "/v1/wallet/pos/payments",
            {"serial": 1, "msisdn": beijing, "amount_fen": 3_800},
            pos,
        )
        self.pos_call(
            "tap: banquet, 260 yuan, without the PIN",
            "/v1/wallet/pos/payments",
            {"serial": 2, "msisdn": shanghai, "amount_fen": 26_000},
            pos,
        )
        self.pos_call(
            "tap: banquet, 260 yuan, PIN typed",
            "/v1/wallet/pos/payments",
            {"serial": 3, "msisdn": shanghai, "amount_fen": 26_000, "password": PASSWORD},
            pos,
        )
        self.pos_call("void serial 1 (adjust to 0)", "/v1/wallet/pos/voids", {"serial": 4, "original_serial": 1}, pos)
        totals = self.http.get("/v1/wallet/pos/totals", headers=pos).json()
        print(f"  {'totals since the last settlement':<58} -> net {format_fen(totals['net_fen'])} yuan")
        slip = self.http.get("/v1/wallet/pos/slips/last", headers=pos).json()
        print("  reprint of the last slip:\n    " + slip["text"].replace("\n", "\n    "))
        entries = [
            {"serial": 1, "entry_type": "sale", "amount_fen": 3_800},
            {"serial": 3, "entry_type": "sale", "amount_fen": 26_000},
            {"serial": 4, "entry_type": "void", "amount_fen": 3_800},
        ]
        settled = self.http.post(
            "/v1/wallet/pos/batches", json={"batch_no": totals["batch_no"], "entries": entries}, headers=pos
        ).json()
        print(f"  {'day close: the terminal uploads its journal':<58} -> matched {settled['matched']}")

    def pos_call(self, what: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        reply = self.http.post(path, json=body, headers=headers)
        data = reply.json()
        outcome = (
            f"refused {reply.status_code} {data['code']}"
            if reply.status_code >= 400
            else (f"serial {body['serial']} {data['entry_type']} {format_fen(data['amount_fen'])} yuan")
        )
        print(f"  {what:<58} -> {outcome}")

    def bills_and_red_packets(self, msisdn: str) -> None:
        print("\nWallet: a utility bill paid by replying Y to its text; an operator red packet:")
        power = self.merchant("SH-POWER", "Shanghai Electric Power", "utilities", "31")
        bill = {
            "bill_no": "201009-0001",
            "msisdn": msisdn,
            "customer_ref": "HH-0088123",
            "amount_fen": 12_345,
            "due_day": "2010-10-08",
        }
        self.http.post("/v1/wallet/bills", json=bill, headers=power).raise_for_status()
        text = self.http.get("/v1/wallet/admin/sms", params={"msisdn": msisdn}, headers=self.device("admin")).json()
        print(f'  {"the bill is texted":<58} -> "{text[0]["text"]}"')
        gateway = self.device("sms_gateway")
        for reply_text in ("Y", "Y50"):
            answer = self.http.post(
                "/v1/wallet/sms/inbound",
                json={"msisdn": msisdn, "text": reply_text, "message_id": uuid.uuid4().hex},
                headers=gateway,
            ).json()
            print(f'  {"the user replies " + repr(reply_text):<58} -> {answer["action"]}: "{answer["reply"]}"')
        admin = self.device("admin")
        self.call(
            "fund the marketing budget, 10,000 yuan",
            "/v1/wallet/admin/marketing/funding",
            {"amount_fen": 1_000_000},
            admin,
        )
        self.call(
            "red packet of 8.88 yuan",
            "/v1/wallet/admin/red-packets",
            {"msisdn": msisdn, "amount_fen": 888, "campaign": "National Day"},
            admin,
        )
        print(f"  balance: {self.balance(msisdn)}")

    def tickets(self, msisdn: str) -> None:
        print("\nWallet: Expo tickets paid from the wallet (web with the password, 12580 with a texted code):")
        sale = {"msisdn": msisdn, "ticket_type": "standard", "carrier": "qr_voucher"}
        web = self.device("web")
        order = self.call_order(
            "web: standard ticket, wallet", {**sale, "payment": {"method": "wallet", "password": PASSWORD}}, web
        )
        self.call_order("web: void it", None, web, path=f"/v1/orders/{order['id']}/void")
        agent = self.agent
        held = self.call_order(
            "12580: evening ticket, wallet (code texted)",
            {**sale, "ticket_type": "evening", "payment": {"method": "wallet"}},
            agent,
        )
        confirmed = self.http.post(
            f"/v1/orders/{held['id']}/wallet-confirmation", json={"code": self.last_code(msisdn)}, headers=agent
        ).json()
        print(f"  {'the caller reads the code out to the agent':<58} -> order {confirmed['id']} {confirmed['status']}")
        print(f"  balance: {self.balance(msisdn)}")

    def call_order(
        self, what: str, body: dict[str, Any] | None, headers: dict[str, str], *, path: str = "/v1/orders"
    ) -> dict[str, Any]:
        reply = self.http.post(path, json=body or {}, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        data: dict[str, Any] = reply.json()
        outcome = (
            f"refused {reply.status_code} {data['code']}"
            if reply.status_code >= 400
            else (f"order {data['id']} {data['status']} {format_fen(data['amount_fen'])} yuan")
        )
        print(f"  {what:<58} -> {outcome}")
        return data

    def audit(self) -> bool:
        report = self.http.get("/v1/wallet/admin/ledger", headers=self.device("admin")).json()
        verdict = "OK" if report["ok"] else "NOT OK: " + "; ".join(report["problems"])
        print(
            f"\nLedger audit: {report['transfers']} transfers, {report['postings']} postings, balances sum to "
            f"{report['total_balance_fen']} fen -> {verdict}"
        )
        return bool(report["ok"])
