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

    def __init__(self, http: httpx.Client, tokens: dict[str, str], clerk: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens
        self.clerk = clerk

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

    def audit(self) -> bool:
        report = self.http.get("/v1/wallet/admin/ledger", headers=self.device("admin")).json()
        verdict = "OK" if report["ok"] else "NOT OK: " + "; ".join(report["problems"])
        print(
            f"\nLedger audit: {report['transfers']} transfers, {report['postings']} postings, balances sum to "
            f"{report['total_balance_fen']} fen -> {verdict}"
        )
        return bool(report["ok"])
