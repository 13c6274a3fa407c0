"""The settlement part of the demo: the finance office closes the demo's month with `expo settle month` (its
progress bar shows), then the bureau, the platform and two companies each pull their own statement over HTTP,
as JSON and as the PDF they file, and one company is refused another's.
"""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from expo.money import format_fen


class SettlementDemo:
    """Closes a month through the command line and reads its statements through the API."""

    def __init__(self, http: httpx.Client, *, tokens: dict[str, str], env: dict[str, str], folder: Path) -> None:
        self.http = http
        self.tokens = tokens
        self.env = env
        self.folder = folder / "statements"
        self.folder.mkdir(parents=True, exist_ok=True)

    def run(self, *, month: str, close_at: str, payout_day: str) -> None:
        """Close `month` as of `close_at`, then pull each party's statement, the discrepancy report and the
        payout file of `payout_day`."""
        print(f"\nSettlement of {month} (expo settle month {month}):")
        command = [sys.executable, "-m", "expo.cli", "settle", "month", month, "--at", close_at]
        done = subprocess.run(command, env={**os.environ, **self.env}, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise SystemExit(f"expo settle month failed: {done.stderr.strip()}")
        shown = done.stdout.strip().splitlines()
        print(f"  (a progress bar of {len(shown) - 2} steps: each T+1 payout day, then the figures)")
        for line in shown[-2:]:
            print(f"  {line}")
        for device, who in (
            ("bureau", "the Expo bureau"),
            ("finance_31", "Shanghai's finance office"),
            ("finance_44", "Guangdong's finance office"),
            ("finance_platform", "the wallet platform"),
        ):
            self._statement(month, device, who)
        self._discrepancies(month)
        self._payout_file(payout_day)
        refused = self.http.get(f"/v1/statements/{month}", params={"party": "31"}, headers=self._auth("finance_44"))
        what = "Guangdong asks for Shanghai's statement"
        print(f"  {what:<58} -> REFUSED {refused.json()['code']}")

    def _statement(self, month: str, device: str, who: str) -> None:
        headers = self._auth(device)
        reply = self.http.get(f"/v1/statements/{month}", headers=headers)
        reply.raise_for_status()
        body = reply.json()
        pdf = self.http.get(f"/v1/statements/{month}", params={"format": "pdf"}, headers=headers)
        pdf.raise_for_status()
        path = self.folder / f"statement-{month}-{body['party']}.pdf"
        path.write_bytes(pdf.content)
        net = body["net_fen"]
        side = "is owed" if net >= 0 else "owes"
        summary = f"{len(body['lines'])} lines, {side} {format_fen(abs(net))} yuan net"
        print(f"  {who + ' pulls its statement':<58} -> {summary}")
        for balance in body["balances"]:
            print(f"      with {balance['counterparty']:<18} net {format_fen(balance['net_fen']):>14} yuan")
        print(f"      filed as {path}")

    def _discrepancies(self, month: str) -> None:
        headers = self._auth("finance_platform")
        reply = self.http.get(f"/v1/reconciliation/months/{month}/discrepancies", headers=headers)
        reply.raise_for_status()
        found = reply.json()
        codes: dict[str, int] = {}
        for row in found:
            codes[row["code"]] = codes.get(row["code"], 0) + 1
        listed = ", ".join(f"{count} {code}" for code, count in sorted(codes.items())) or "none"
        print(f"  {'the platform reads the discrepancy report':<58} -> {listed}")
        for row in found[:2]:
            print(f"      {row['subject']}: {row['cause']}")

    def _payout_file(self, day: str) -> None:
        reply = self.http.get(f"/v1/payouts/{day}", headers=self._auth("finance_platform"))
        reply.raise_for_status()
        path = self.folder / f"payouts-{day}.csv"
        path.write_bytes(reply.content)
        rows = max(len(reply.text.strip().splitlines()) - 1, 0)
        print(f"  {'the T+1 payout file of ' + day:<58} -> {rows} merchants, saved as {path}")

    def _auth(self, device: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[device]}"}
