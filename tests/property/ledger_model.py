"""A plain-Python reference model of the wallet ledger: what every account should hold after each operation.

It knows nothing of the database and computes fees, fee shares and refunds its own way (exact fractions),
so the state machine checks the services against an independent statement of the rules:
- a payment spends red packets first, then the balance; the payee gets the amount less the fee, rounded
  half up to the fen; a remote fee goes to the user's province, a proximity fee 70% (rounded half up) to
  the user's province and the rest to the merchant's;
- a refund returns, cumulatively, floor(part * refunded / amount) of the red packets and of the fee, and the
  fee returned is split between the provinces by the same rule, so a full refund returns every part exactly
  and the payee never pays back more than it received.
"""

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

HALF = Fraction(1, 2)


def round_half_up(value: Fraction) -> int:
    return math.floor(value + HALF)


def expected_fee(amount_fen: int, rate_bp: int) -> int:
    return round_half_up(Fraction(amount_fen * rate_bp, 10_000))


def expected_shares(fee_fen: int, *, proximity: bool, user_province: str, merchant_province: str) -> Counter[str]:
    shares: Counter[str] = Counter()
    user_part = round_half_up(Fraction(7 * fee_fen, 10)) if proximity else fee_fen
    shares[user_province] += user_part
    shares[merchant_province] += fee_fen - user_part
    return +shares  # drops the zero parts


@dataclass(frozen=True)
class ModelMerchant:
    code: str
    rate_bp: int
    proximity: bool
    province: str

    @property
    def account(self) -> str:
        return f"merchant:{self.code}"


@dataclass
class ModelPayment:
    transfer_id: int
    msisdn: str
    user_province: str
    merchant: ModelMerchant | None
    amount: int
    red: int
    fee: int
    state: str  # pending | posted | voided
    expires_at: datetime | None
    refunded: int = 0

    @property
    def payee(self) -> str:
        return self.merchant.account if self.merchant else "bureau_receivable"

    def shares(self, fee_fen: int) -> Counter[str]:
        if self.merchant is None:
            return Counter()
        return expected_shares(
            fee_fen,
            proximity=self.merchant.proximity,
            user_province=self.user_province,
            merchant_province=self.merchant.province,
        )

    def refunded_parts(self, refunded: int) -> tuple[int, Counter[str]]:
        """Red packets and fee shares returned once `refunded` fen of the payment have been refunded in all."""
        red = self.red * refunded // self.amount
        return red, self.shares(self.fee * refunded // self.amount)


@dataclass
class ModelWithdrawal:
    transfer_id: int
    msisdn: str
    amount: int
    state: str


@dataclass
class LedgerModel:
    """Balances and holds by account code, and the payments and withdrawals still of interest."""

    balances: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    payments: dict[int, ModelPayment] = field(default_factory=dict)
    withdrawals: dict[int, ModelWithdrawal] = field(default_factory=dict)
    transfers: int = 0

    def move(self, moves: dict[str, int]) -> None:
        assert sum(moves.values()) == 0, moves
        for code, amount in moves.items():
            self.balances[code] += amount

    def available(self, code: str) -> int:
        return self.balances[code] - self.held[code]

    def spendable(self, msisdn: str) -> int:
        return self.available(f"user:{msisdn}") + self.available(f"red_packet:{msisdn}")

    def payment_moves(self, payment: ModelPayment) -> dict[str, int]:
        moves: Counter[str] = Counter()
        moves[f"red_packet:{payment.msisdn}"] -= payment.red
        moves[f"user:{payment.msisdn}"] -= payment.amount - payment.red
        moves[payment.payee] += payment.amount - payment.fee
        for province, share in payment.shares(payment.fee).items():
            moves[f"fee_income:{province}"] += share
        return dict(moves)

    def hold_payment(self, payment: ModelPayment, *, sign: int) -> None:
        self.held[f"red_packet:{payment.msisdn}"] += sign * payment.red
        self.held[f"user:{payment.msisdn}"] += sign * (payment.amount - payment.red)

    def refund_moves(self, payment: ModelPayment, amount: int) -> tuple[dict[str, int], int, int]:
        """The moves of refunding `amount` more of a payment, with the red packets and the fee it returns."""
        red_before, fee_before = payment.refunded_parts(payment.refunded)
        red_after, fee_after = payment.refunded_parts(payment.refunded + amount)
        red_back = red_after - red_before
        fee_back = sum(fee_after.values()) - sum(fee_before.values())
        moves: Counter[str] = Counter()
        moves[f"red_packet:{payment.msisdn}"] += red_back
        moves[f"user:{payment.msisdn}"] += amount - red_back
        for province in fee_after:
            moves[f"fee_income:{province}"] -= fee_after[province] - fee_before[province]
        moves[payment.payee] -= amount - fee_back
        return dict(moves), red_back, fee_back

    def pending_payments(self) -> list[int]:
        return sorted(i for i, p in self.payments.items() if p.state == "pending")

    def refundable_payments(self) -> list[int]:
        return sorted(i for i, p in self.payments.items() if p.state == "posted" and p.refunded < p.amount)

    def pending_withdrawals(self) -> list[int]:
        return sorted(i for i, w in self.withdrawals.items() if w.state == "pending")

    def stored_view(self) -> dict[str, tuple[int, int]]:
        """Every account the model thinks is not empty, as (balance, held)."""
        codes = set(self.balances) | set(self.held)
        view = {code: (self.balances[code], self.held[code]) for code in codes}
        return {code: value for code, value in view.items() if value != (0, 0)}
