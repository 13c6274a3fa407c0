"""The wallet's services driven by random sequences of operations, checked against a reference model.

Top-ups, payments (web, SMS-held, proximity, Expo tickets), confirmations, cancellations, lapsed holds,
partial and full refunds, withdrawals (hold, then capture or void), marketing funding and red packets;
replayed idempotency keys and overdrafts. After every step: the audit passes, every stored balance and
hold equals the model's, all balances sum to zero, no restricted account is below zero, and each key made
exactly one transfer. Hypothesis runs in a worker thread and hands each step to the test's event loop.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import EXPO_TZ, FixedClock
from expo.db import Database
from expo.errors import ExpoError
from expo.provinces import load_shipped_segments
from expo.segments import replace_segments
from tests.property.ledger_model import LedgerModel, ModelMerchant, ModelPayment, ModelWithdrawal, expected_fee
from tests.property.ledger_ops import finish_withdrawal
from tests.property.ledger_requests import MERCHANTS, TERMS, USERS, Request, Requests, reset_wallet
from wallet.audit import LedgerReport, audit_ledger
from wallet.models import WalletAccount, WalletTransfer
from wallet.payments import cancel_payment, confirm_payment, lapsed_holds, lock_payment
from wallet.rules import MAX_WALLET_PAYMENT_FEN, PaymentChannel, TransferState

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]

START = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)

users = st.sampled_from(sorted(USERS))
payees = st.sampled_from([*MERCHANTS, None])  # None: an Expo ticket, paid to the bureau's receivable
terminals = st.sampled_from([merchant for merchant in MERCHANTS if merchant.proximity])
amounts = st.one_of(st.sampled_from([1, 2, 3, 7, 33, 99, 100, 101, 333, 999, 1001, 4999]), st.integers(1, 60_000))
top_ups = st.one_of(st.sampled_from([1, 3, 999]), st.integers(1, 100_000))


@dataclass(frozen=True)
class Seen:
    """A transfer as stored after an operation."""

    transfer_id: int
    state: str
    red_fen: int
    fee_fen: int


@dataclass(frozen=True)
class Sent:
    """A request that made a transfer, to send again under its key."""

    kind: str
    amount: int
    transfer_id: int
    request: Request


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.db = db
        self.loop = loop
        self.clock = FixedClock(START)
        self.requests = Requests(self.clock)
        self.model = LedgerModel()
        self.sent: dict[str, Sent] = {}
        self.keys_made = 0
        self._run(reset_wallet(db, self.clock))

    # --- plumbing -------------------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def write(self, work: Work[T]) -> T:
        async def transaction() -> T:
            async with self.db.write() as session:
                return await work(session)

        return self._run(transaction())

    def refused(self, work: Work[Any]) -> str:
        """Run work that must be refused; the refusal's code."""
        try:
            self.write(work)
        except ExpoError as exc:
            return exc.code
        raise AssertionError("the operation was not refused")

    def new_key(self) -> str:
        self.keys_made += 1
        return f"key-{self.keys_made}"

    def refused_request(self, request: Request, amount: int, *, key: str | None = None) -> str:
        """Send a request that must be refused (under a fresh key unless one is given); the refusal's code."""
        sent_key = key or self.new_key()
        return self.refused(lambda session: request(session, sent_key, amount))

    def apply(self, request: Request, amount: int, *, kind: str) -> Seen:
        """Send a request under a fresh key; it must make one transfer."""
        key = self.new_key()

        async def work(session: AsyncSession) -> Seen:
            transfer = await session.get(WalletTransfer, await request(session, key, amount), populate_existing=True)
            assert transfer is not None
            return Seen(transfer.id, transfer.state, transfer.red_packet_fen, transfer.fee_fen)

        seen = self.write(work)
        self.sent[key] = Sent(kind, amount, seen.transfer_id, request)
        self.model.transfers += 1
        return seen

    # --- money in and out -----------------------------------------------------------------------------

    @initialize(amounts=st.lists(st.integers(50_000, 200_000), min_size=len(USERS), max_size=len(USERS)))
    def everyone_starts_with_some_money(self, amounts: list[int]) -> None:
        # So that the steps go to paying and refunding rather than to topping up first.
        for msisdn, amount in zip(sorted(USERS), amounts, strict=True):
            self.top_up(msisdn, amount, "31")

    @rule(msisdn=users, amount=top_ups, hall=st.sampled_from(["31", "11"]))
    def top_up(self, msisdn: str, amount: int, hall: str) -> None:
        seen = self.apply(self.requests.top_up(msisdn, hall), amount, kind="top_up")
        assert seen.state == TransferState.POSTED
        self.model.move({f"user:{msisdn}": amount, f"hall_cash:{hall}": -amount})

    @rule(amount=top_ups)
    def fund_marketing(self, amount: int) -> None:
        self.apply(self.requests.fund_marketing(), amount, kind="marketing_funding")
        self.model.move({"marketing": amount, "operator_funds": -amount})

    @rule(msisdn=users, amount=amounts)
    def grant_red_packet(self, msisdn: str, amount: int) -> None:
        if amount > self.model.available("marketing"):
            assert (
                self.refused_request(self.requests.grant_red_packet(msisdn), amount) == "marketing_balance_insufficient"
            )
            return
        self.apply(self.requests.grant_red_packet(msisdn), amount, kind="red_packet")
        self.model.move({"marketing": -amount, f"red_packet:{msisdn}": amount})

    @rule(msisdn=users, amount=amounts)
    def withdraw(self, msisdn: str, amount: int) -> None:
        if amount > self.model.available(f"user:{msisdn}"):  # red packets are never withdrawn
            assert self.refused_request(self.requests.withdraw(msisdn), amount) == "insufficient_funds"
            return
        seen = self.apply(self.requests.withdraw(msisdn), amount, kind="withdrawal")
        assert seen.state == TransferState.PENDING
        self.model.held[f"user:{msisdn}"] += amount
        self.model.withdrawals[seen.transfer_id] = ModelWithdrawal(seen.transfer_id, msisdn, amount, "pending")

    @precondition(lambda self: self.model.pending_withdrawals())
    @rule(data=st.data(), paid=st.booleans())
    def finish_withdrawal(self, data: st.DataObject, paid: bool) -> None:
        withdrawal = self.model.withdrawals[data.draw(st.sampled_from(self.model.pending_withdrawals()))]
        self.write(
            lambda session: finish_withdrawal(
                session, transfer_id=withdrawal.transfer_id, paid=paid, now=self.clock.now()
            )
        )
        self.model.held[f"user:{withdrawal.msisdn}"] -= withdrawal.amount
        if paid:
            self.model.move({f"user:{withdrawal.msisdn}": -withdrawal.amount, "bank_settlement": withdrawal.amount})
        withdrawal.state = "posted" if paid else "voided"

    # --- payments -------------------------------------------------------------------------------------

    @rule(msisdn=users, payee=payees, amount=amounts, by_sms=st.booleans())
    def pay(self, msisdn: str, payee: ModelMerchant | None, amount: int, by_sms: bool) -> None:
        if payee is not None and payee.proximity:
            channel = PaymentChannel.PROXIMITY
        else:
            channel = PaymentChannel.SMS if by_sms else PaymentChannel.WEB
        request = self.requests.pay(msisdn, payee, channel)
        if amount > self.model.spendable(msisdn):
            assert self.refused_request(request, amount) == "insufficient_funds"
            return
        red = min(self.model.available(f"red_packet:{msisdn}"), amount)
        fee = expected_fee(amount, payee.rate_bp) if payee else 0
        held = channel == PaymentChannel.SMS
        seen = self.apply(request, amount, kind="payment" if payee else "ticket_payment")
        payment = ModelPayment(
            transfer_id=seen.transfer_id,
            msisdn=msisdn,
            user_province=USERS[msisdn],
            merchant=payee,
            amount=amount,
            red=red,
            fee=fee,
            state="pending" if held else "posted",
            expires_at=self.clock.now() + TERMS.hold_window if held else None,
        )
        assert (seen.state, seen.red_fen, seen.fee_fen) == (payment.state, red, fee)
        if held:
            self.model.hold_payment(payment, sign=1)
        else:
            self.model.move(self.model.payment_moves(payment))
        self.model.payments[payment.transfer_id] = payment

    @rule(msisdn=users, payee=terminals, amount=amounts)
    def pay_at_a_terminal(self, msisdn: str, payee: ModelMerchant, amount: int) -> None:
        # A second way into `pay`: proximity payments, whose split fees make refunds round the hardest.
        self.pay(msisdn, payee, amount, by_sms=False)

    @rule(msisdn=users, payee=payees, extra=st.integers(1, 500))
    def overdraw(self, msisdn: str, payee: ModelMerchant | None, extra: int) -> None:
        amount = self.model.spendable(msisdn) + extra
        if amount > MAX_WALLET_PAYMENT_FEN:
            return
        channel = PaymentChannel.PROXIMITY if payee and payee.proximity else PaymentChannel.WEB
        assert self.refused_request(self.requests.pay(msisdn, payee, channel), amount) == "insufficient_funds"

    @precondition(lambda self: self.model.pending_payments())
    @rule(data=st.data(), confirmed=st.booleans())
    def settle_held_payment(self, data: st.DataObject, confirmed: bool) -> None:
        payment = self.model.payments[data.draw(st.sampled_from(self.model.pending_payments()))]
        now = self.clock.now()
        finish = confirm_payment if confirmed else cancel_payment

        async def work(session: AsyncSession) -> None:
            await finish(session, transfer=await lock_payment(session, transfer_id=payment.transfer_id), now=now)

        if confirmed and payment.expires_at is not None and payment.expires_at <= now:
            assert self.refused(work) == "payment_not_pending"
            return
        self.write(work)
        self.model.hold_payment(payment, sign=-1)
        if confirmed:
            self.model.move(self.model.payment_moves(payment))
        payment.state = "posted" if confirmed else "voided"

    @rule(minutes=st.sampled_from([0, 1, 5, 10]))
    def time_passes_and_lapsed_holds_are_swept(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        now = self.clock.now()

        async def work(session: AsyncSession) -> list[int]:
            lapsed = await lapsed_holds(session, now=now)
            for transfer_id in lapsed:
                await cancel_payment(session, transfer=await lock_payment(session, transfer_id=transfer_id), now=now)
            return lapsed

        lapsed = self.write(work)
        expected = [i for i in self.model.pending_payments() if (self.model.payments[i].expires_at or now) <= now]
        assert sorted(lapsed) == expected
        for transfer_id in lapsed:
            self.model.hold_payment(self.model.payments[transfer_id], sign=-1)
            self.model.payments[transfer_id].state = "voided"

    @precondition(lambda self: self.model.refundable_payments())
    @rule(data=st.data(), percent=st.integers(1, 100))
    def refund(self, data: st.DataObject, percent: int) -> None:
        payment = self.model.payments[data.draw(st.sampled_from(self.model.refundable_payments()))]
        left = payment.amount - payment.refunded
        amount = max(left * percent // 100, 1)  # 100%: the rest of the payment
        moves, red_back, fee_back = self.model.refund_moves(payment, amount)
        payee_debit = -moves[payment.payee]
        assert 0 <= payee_debit <= amount, "a refund never credits the payee nor takes more than it returns"
        seen = self.apply(self.requests.refund(payment.transfer_id), amount, kind="refund")
        assert (seen.state, seen.red_fen, seen.fee_fen) == (TransferState.POSTED, red_back, fee_back)
        self.model.move(moves)
        payment.refunded += amount

    @precondition(lambda self: self.model.payments)
    @rule(data=st.data(), extra=st.integers(1, 500))
    def refund_too_much(self, data: st.DataObject, extra: int) -> None:
        payment = self.model.payments[data.draw(st.sampled_from(sorted(self.model.payments)))]
        amount = payment.amount - payment.refunded + extra
        code = self.refused_request(self.requests.refund(payment.transfer_id), amount)
        assert code == ("refund_exceeds_payment" if payment.state == "posted" else "payment_not_posted")

    # --- idempotency ----------------------------------------------------------------------------------

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), same=st.booleans(), as_top_up=st.booleans())
    def send_a_key_again(self, data: st.DataObject, same: bool, as_top_up: bool) -> None:
        """The same request again finds its transfer; another request under the key is refused."""
        key = data.draw(st.sampled_from(sorted(self.sent)))
        sent = self.sent[key]
        if same:
            assert self.write(lambda session: sent.request(session, key, sent.amount)) == sent.transfer_id
            return
        if as_top_up and sent.kind != "top_up":
            code = self.refused_request(self.requests.top_up(sorted(USERS)[0], "31"), sent.amount, key=key)
        else:
            code = self.refused_request(sent.request, sent.amount + 1, key=key)
        assert code == "idempotency_key_reused"

    # --- what must always hold ------------------------------------------------------------------------

    async def _stored(self) -> tuple[LedgerReport, dict[str, tuple[int, int]], list[str], int]:
        async with self.db.read() as session:
            report = await audit_ledger(session)
            rows = (
                await session.execute(
                    select(WalletAccount.code, WalletAccount.balance, WalletAccount.held, WalletAccount.restricted)
                )
            ).all()
            transfers = int(await session.scalar(select(func.count()).select_from(WalletTransfer)) or 0)
        stored = {row.code: (row.balance, row.held) for row in rows}
        negative = [row.code for row in rows if row.restricted and row.balance - row.held < 0]
        return report, stored, negative, transfers

    @invariant()
    def ledger_matches_the_model(self) -> None:
        report, stored, negative, transfers = self._run(self._stored())
        assert report.ok, report.problems
        assert sum(balance for balance, _ in stored.values()) == 0
        assert not negative, negative
        assert {code: value for code, value in stored.items() if value != (0, 0)} == self.model.stored_view()
        assert transfers == self.model.transfers  # each key applied once; refusals left nothing behind


async def _load_segments(db: Database) -> None:
    async with db.write() as session:
        await replace_segments(session, ranges=load_shipped_segments())


async def test_random_operations_keep_the_ledger_equal_to_the_model(db: Database) -> None:
    await _load_segments(db)
    loop = asyncio.get_running_loop()
    # About 25 s on SQLite (each step ends with a full audit); PostgreSQL repeats it on fewer examples.
    examples, steps = (40, 25) if db.sqlite else (20, 25)

    class OnThisDatabase(LedgerMachine):
        def __init__(self) -> None:
            super().__init__(db, loop)

    await asyncio.to_thread(
        run_state_machine_as_test,
        OnThisDatabase,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
