"""T+1 merchant payouts: on each working day the platform pays every merchant, through the banks, what it earned
and has not been paid (its payments net of fees, less its refunds), and the statement lines they make.

A payout day P covers the merchant postings of payments and refunds created from the previous run's cutoff to P's
own cutoff, P 00:00 Asia/Shanghai: so a trade of any day, working or not, is paid on the first working day after it.
What a merchant is owed from before a run's first day is not read from the last run's rows but from its account:
its balance less the postings made since the last run's cutoff (payouts aside). So a posting dated before a cutoff
that committed after that day was run (its transaction took its time before the cutoff) is paid, or netted if it
is a refund, by the next run. A merchant whose net is not above zero (refunds outweigh its sales) is paid nothing
and the net is carried to the next day; a payout never takes a merchant account below zero (money refunded since
the cutoff stays with it), and what it cannot pay is carried too (`reconciliation.payout_rules`). A day once run is
never run again, and runs continue from the day after the last one run, so none is skipped.

Set-based: the merchant accounts and `bank_settlement` are locked in id order first (the ledger's lock order for
accounts that are not the user side), so a refund or a payment at the same time waits, or goes first and is seen;
then one query gives every merchant's owed amount and one GROUP BY its figures for every day being run. Python
walks merchants x days over those aggregates only, and each day's transfers, postings, file rows and balance
updates are written as batches.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Insert,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import EXPO_TZ, expo_local
from expo.errors import Conflict
from reconciliation.calendar import is_working_day
from reconciliation.models import MerchantPayout, PayoutRun
from reconciliation.payout_rules import Activity, DayPayout, pay_merchant
from reconciliation.rules import PLATFORM
from reconciliation.statement_rules import MERCHANTS, Line, Section
from wallet import ledger
from wallet.models import Merchant, Posting, WalletAccount, WalletTransfer
from wallet.rules import AccountKind, TransferKind, TransferState

PAYOUT_CHANNEL = "bank"
_EARNING_KINDS = (TransferKind.PAYMENT.value, TransferKind.REFUND.value)
_PAYOUTS_LOCK = 7_000_001  # PostgreSQL advisory lock: one payout run at a time


@dataclass(frozen=True)
class _Party:
    """A merchant as the payout needs it."""

    merchant_id: int
    code: str
    account_id: int


@dataclass
class _Owed:
    """What the walk starts from for a merchant: what it was owed before the run's first day and its days' figures."""

    party: _Party
    owed_fen: int = 0
    days: dict[int, Activity] = field(default_factory=dict)


@dataclass(frozen=True)
class _Payout:
    """One merchant's row of a payout day."""

    party: _Party
    row: DayPayout


def payout_cutoff(day: date) -> datetime:
    """domain (T+1): a payout day pays what was earned before its own 00:00, Asia/Shanghai."""
    return datetime.combine(day, time(0), tzinfo=EXPO_TZ)


def payout_reference(day: date, merchant_code: str) -> str:
    """A payout's bank reference and ledger key: one per merchant and payout day."""
    return f"payout:{day.isoformat()}:{merchant_code}"


def working_days(first: date, last: date) -> list[date]:
    """The working days from `first` through `last`."""
    span = (last - first).days + 1
    return [day for day in (first + timedelta(days=n) for n in range(max(span, 0))) if is_working_day(day)]


async def run_payouts(
    session: AsyncSession,
    *,
    from_day: date,
    through: date,
    now: datetime,
    on_day: Callable[[date], None] | None = None,
) -> list[PayoutRun]:
    """Run every working day not yet run through `through`, each once and in order: from the working day after
    the last day run (`from_day` only chooses where the very first run starts). None can run before it has begun
    (its cutoff passed). Returns the days run now, in order."""
    today = expo_local(now).date()
    if through > today:
        raise Conflict(
            "payout_day_not_reached",
            f"payout day {through} has not begun: payouts run through {today} at the latest",
            through=through.isoformat(),
            today=today.isoformat(),
        )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_PAYOUTS_LOCK)))  # a second run waits, then sees ours
    last = await session.scalar(select(PayoutRun).order_by(PayoutRun.payout_day.desc()).limit(1))
    # Never from `from_day` once a day has run: a later `from_day` would skip the days between.
    first = last.payout_day + timedelta(days=1) if last is not None else from_day
    days = working_days(first, through)
    if not days:
        return []
    covered_from = last.cutoff if last is not None else None
    bank = await ledger.operator_account(session, AccountKind.BANK_SETTLEMENT, now=now)
    available = await _lock_accounts(session, bank_account_id=bank.id)
    merchants = await _owed(session, since=covered_from)
    await _gather_activity(session, merchants, covered_from=covered_from, cutoffs=[payout_cutoff(d) for d in days])
    by_day = _walk(merchants, available=available, days=len(days))
    runs: list[PayoutRun] = []
    for day, payouts in zip(days, by_day, strict=True):
        run = PayoutRun(
            payout_day=day,
            covered_from=covered_from,
            cutoff=payout_cutoff(day),
            merchants=sum(1 for payout in payouts if payout.row.amount_fen > 0),
            amount_fen=sum(payout.row.amount_fen for payout in payouts),
            run_at=now,
        )
        session.add(run)
        await session.flush()
        await _write_day(session, day=day, payouts=payouts, bank_account_id=bank.id, now=now)
        runs.append(run)
        covered_from = run.cutoff
        if on_day is not None:
            on_day(day)
    session.expire(bank)  # its balance moved under it
    return runs


async def _lock_accounts(session: AsyncSession, *, bank_account_id: int) -> dict[int, int]:
    """Lock every merchant account and the bank's in id order; what each merchant account can pay, by account.

    All of them, not only those with something to pay: a posting committing while the run reads could otherwise
    land on an account it has not locked. Held, balances and postings cannot move under the reads that follow."""
    rows = await session.execute(
        select(WalletAccount.id, WalletAccount.balance - WalletAccount.held)
        .where(or_(WalletAccount.id.in_(select(Merchant.account_id)), WalletAccount.id == bank_account_id))
        .order_by(WalletAccount.id)
        .with_for_update(of=WalletAccount)
    )
    return {account_id: int(available) for account_id, available in rows if account_id != bank_account_id}


async def _owed(session: AsyncSession, *, since: datetime | None) -> dict[int, _Owed]:
    """One query: what each merchant is owed from before `since` (the last run's cutoff) and not paid, by merchant.

    Its (locked) balance less its postings made since, payouts aside: whatever was posted before the cutoff and not
    paid out, records that committed after their day was run included. Nothing before the first run."""
    if since is None:
        return {}
    recent = (
        select(Posting.account_id.label("account_id"), func.sum(Posting.amount_fen).label("fen"))
        .join(Merchant, Merchant.account_id == Posting.account_id)
        .join(WalletTransfer, WalletTransfer.id == Posting.transfer_id)
        .where(Posting.created_at >= since, WalletTransfer.kind != TransferKind.MERCHANT_PAYOUT.value)
        .group_by(Posting.account_id)
        .subquery("recent")
    )
    owed = WalletAccount.balance - func.coalesce(recent.c.fen, 0)
    rows = await session.execute(
        select(Merchant.id, Merchant.code, Merchant.account_id, owed)
        .join(WalletAccount, WalletAccount.id == Merchant.account_id)
        .outerjoin(recent, recent.c.account_id == Merchant.account_id)
        .where(owed != 0)
    )
    return {
        merchant_id: _Owed(_Party(merchant_id, code, account_id), owed_fen=int(fen))
        for merchant_id, code, account_id, fen in rows
    }


async def _gather_activity(
    session: AsyncSession, merchants: dict[int, _Owed], *, covered_from: datetime | None, cutoffs: Sequence[datetime]
) -> None:
    """One query: every merchant's payments and refunds per payout day, by when their postings were made."""
    bucket = (
        case(*((Posting.created_at < cut, index) for index, cut in enumerate(cutoffs[:-1])), else_=len(cutoffs) - 1)
        if len(cutoffs) > 1
        else literal(0)
    )
    span = [Posting.created_at < cutoffs[-1]]
    if covered_from is not None:
        span.append(Posting.created_at >= covered_from)
    is_payment = WalletTransfer.kind == TransferKind.PAYMENT.value
    postings = (
        select(
            Merchant.id.label("merchant_id"),
            Merchant.code.label("code"),
            Merchant.account_id.label("account_id"),
            bucket.label("bucket"),
            case((is_payment, 1), else_=0).label("payment"),
            case((is_payment, WalletTransfer.amount_fen), else_=0).label("gross"),
            case((is_payment, WalletTransfer.fee_fen), else_=0).label("fee"),
            case((is_payment, 0), else_=1).label("refund"),
            case((is_payment, 0), else_=WalletTransfer.amount_fen - WalletTransfer.fee_fen).label("refunded"),
            Posting.amount_fen.label("posted"),
        )
        .select_from(Posting)
        .join(Merchant, Merchant.account_id == Posting.account_id)
        .join(WalletTransfer, WalletTransfer.id == Posting.transfer_id)
        .where(WalletTransfer.kind.in_(_EARNING_KINDS), *span)
        .subquery("postings")
    )
    keys = (postings.c.merchant_id, postings.c.code, postings.c.account_id, postings.c.bucket)
    sums = (postings.c.payment, postings.c.gross, postings.c.fee, postings.c.refund, postings.c.refunded)
    query = select(*keys, *(func.sum(column) for column in sums), func.sum(postings.c.posted)).group_by(*keys)
    for merchant_id, code, account_id, bucket_no, *figures in await session.execute(query):
        merchant = merchants.setdefault(merchant_id, _Owed(_Party(merchant_id, code, account_id)))
        merchant.days[int(bucket_no)] = Activity(*(int(figure) for figure in figures))


def _walk(merchants: dict[int, _Owed], *, available: dict[int, int], days: int) -> list[list[_Payout]]:
    """Each day's rows, by merchant id: every merchant's days walked by the payout rule."""
    by_day: list[list[_Payout]] = [[] for _ in range(days)]
    for merchant_id in sorted(merchants):
        merchant = merchants[merchant_id]
        rows = pay_merchant(
            owed_fen=merchant.owed_fen,
            days=[merchant.days.get(index) for index in range(days)],
            available_fen=available.get(merchant.party.account_id, 0),  # 0: an account made after the lock
        )
        for row in rows:
            by_day[row.day].append(_Payout(merchant.party, row))
    return by_day


async def _write_day(
    session: AsyncSession, *, day: date, payouts: Sequence[_Payout], bank_account_id: int, now: datetime
) -> None:
    """A day's payouts as batches: the transfers, their two postings each, the file rows and the balances."""
    connection = await session.connection()
    paid = [payout for payout in payouts if payout.row.amount_fen > 0]
    transfer_ids: dict[int, int] = {}
    if paid:
        rows = [_transfer_row(day, payout, now) for payout in paid]
        created = await connection.execute(
            insert(WalletTransfer).returning(WalletTransfer.id, sort_by_parameter_order=True), rows
        )
        transfer_ids = {
            payout.party.merchant_id: transfer_id for payout, (transfer_id,) in zip(paid, created, strict=True)
        }
        await connection.execute(
            _postings_of(min(transfer_ids.values()), max(transfer_ids.values()), bank_account_id, now)
        )
        moves = [{"account": payout.party.account_id, "delta": -payout.row.amount_fen} for payout in paid]
        moves.append({"account": bank_account_id, "delta": sum(payout.row.amount_fen for payout in paid)})
        # Restricted merchant accounts keep their own CHECK (balance - held >= 0) as the last guard.
        await connection.execute(
            update(WalletAccount)
            .where(WalletAccount.id == _bind("account"))
            .values(balance=WalletAccount.balance + _bind("delta")),
            moves,
        )
    if payouts:
        await connection.execute(
            insert(MerchantPayout),
            [
                {
                    "payout_day": day,
                    "merchant_id": payout.party.merchant_id,
                    "payments": payout.row.activity.payments,
                    "gross_fen": payout.row.activity.gross_fen,
                    "fee_fen": payout.row.activity.fee_fen,
                    "refunds": payout.row.activity.refunds,
                    "refunded_fen": payout.row.activity.refunded_fen,
                    "carried_in_fen": payout.row.carried_in_fen,
                    "amount_fen": payout.row.amount_fen,
                    "transfer_id": transfer_ids.get(payout.party.merchant_id),
                }
                for payout in payouts
            ],
        )


def _postings_of(first_id: int, last_id: int, bank_account_id: int, now: datetime) -> Insert:
    """The two legs of each payout transfer just made (ids `first_id`..`last_id`; runs never overlap), from SQL."""
    made = (WalletTransfer.kind == TransferKind.MERCHANT_PAYOUT.value, WalletTransfer.id.between(first_id, last_id))
    at = literal(now, Posting.created_at.type)
    merchant_legs = (
        select(WalletTransfer.id, Merchant.account_id, -WalletTransfer.amount_fen, at)
        .join(Merchant, Merchant.id == WalletTransfer.merchant_id)
        .where(*made)
    )
    bank_legs = select(WalletTransfer.id, literal(bank_account_id), WalletTransfer.amount_fen, at).where(*made)
    columns = ["transfer_id", "account_id", "amount_fen", "created_at"]
    return insert(Posting).from_select(columns, union_all(merchant_legs, bank_legs))


def _bind(name: str) -> BindParameter[int]:
    return bindparam(name, type_=BigInteger)


def _transfer_row(day: date, payout: _Payout, now: datetime) -> dict[str, object]:
    reference = payout_reference(day, payout.party.code)
    return {
        "idempotency_key": reference,
        "kind": TransferKind.MERCHANT_PAYOUT.value,
        "state": TransferState.POSTED.value,
        "amount_fen": payout.row.amount_fen,
        "merchant_id": payout.party.merchant_id,
        "channel": PAYOUT_CHANNEL,
        "fee_fen": 0,
        "red_packet_fen": 0,
        "voucher_fen": 0,
        "refunded_fen": 0,
        "reference": reference,
        "description": f"T+1 payout of {day.isoformat()}",
        "created_at": now,
        "finished_at": now,
    }


async def payout_lines(session: AsyncSession, *, first_day: date, last_day: date) -> list[Line]:
    """domain (T+1): each payout day of the span that paid anything is a line, platform to merchants; the
    per-merchant figures are in that day's payout file."""
    rows = await session.execute(
        select(
            PayoutRun.payout_day, PayoutRun.cutoff, PayoutRun.covered_from, PayoutRun.merchants, PayoutRun.amount_fen
        )
        .where(PayoutRun.payout_day >= first_day, PayoutRun.payout_day <= last_day, PayoutRun.amount_fen != 0)
        .order_by(PayoutRun.payout_day)
    )
    lines = []
    for day, cutoff, covered_from, merchants, amount in rows:
        since = "the beginning" if covered_from is None else f"{expo_local(covered_from):%Y-%m-%d %H:%M}"
        basis = (
            f"payout file of {day.isoformat()}: merchant payments and refunds posted {since} .. "
            f"{expo_local(cutoff):%Y-%m-%d %H:%M} (Asia/Shanghai), net of fees, with carried amounts "
            "(records dated before and posted late included)"
        )
        lines.append(
            Line(Section.MERCHANT_PAYOUTS, f"payout_{day.isoformat()}", PLATFORM, MERCHANTS, merchants, amount, basis)
        )
    return lines
