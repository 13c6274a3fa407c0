"""What a gate decides of a physical (paper) ticket's code. Pure.

A code is genuine only under a platform key the gate synced (`ticketing.signed_codes.verify_code`:
`code_malformed`, `unknown_signing_key`, `code_forged`), and a voucher is no ticket (`voucher_not_ticket`:
it is exchanged in a hall first). Then the checks of a card's ticket: the revocation list, the claim's valid
days, and `ticketing.rules.decide_entry` (peak days, the evening hour, single-day tickets once, passes once a
day up to their count); concession tickets admit with `check_id`.

Paper cannot record its use, so this gate's own journal is the only witness: the ticket's entries are this
gate's paper lines of it that no line annuls. Two gates cut off from each other can therefore both admit one
paper ticket; the server reports that (`physical_ticket_reused`, `gates.ingest_rules`).
"""

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from expo.clock import expo_local
from gates.rules import OK, standing_entries, validity_refusal
from gates.wire import GateEntry
from simcard.record import day_number
from ticketing.rules import CATALOGUE, TicketUse, decide_entry
from ticketing.signed_codes import CodeKind, CodeRefused, TicketClaim, verify_code


@dataclass(frozen=True)
class PaperDecision:
    """The gate's answer to a code: admit or refuse with `code`; `claim` when the code is genuine."""

    admit: bool
    code: str
    claim: TicketClaim | None = None
    check_id: bool = False

    @property
    def ticket_id(self) -> int | None:
        """The ticket the code names, only when it is genuine."""
        return None if self.claim is None else self.claim.ticket_id


def paper_use(claim: TicketClaim, lines: Iterable[GateEntry]) -> TicketUse:
    """What `decide_entry` needs of a paper ticket: its claim, and its entries from this gate's lines of it."""
    entries = standing_entries(lines)
    days = [expo_local(line.at).date() for line in entries]
    return TicketUse(
        ticket_type=claim.ticket_type,
        visit_day=claim.first_day if CATALOGUE[claim.ticket_type].dated else None,
        upgrade_day=claim.upgrade_day,
        entries_used=len(entries),
        last_entry_day=max(days) if days else None,
    )


def judge_paper_ticket(
    claim: TicketClaim, *, revoked: Container[int], lines: Iterable[GateEntry], at: datetime
) -> PaperDecision:
    """A genuine code at the gate: a physical ticket (not a voucher), not revoked, within its valid days, then
    `decide_entry` over this gate's paper lines of the ticket (`lines`)."""
    concession = CATALOGUE[claim.ticket_type].concession
    if claim.kind is not CodeKind.PHYSICAL:
        return PaperDecision(admit=False, code="voucher_not_ticket", claim=claim)
    code = validity_refusal(
        ticket_id=claim.ticket_id,
        first_day=day_number(claim.first_day),
        last_day=day_number(claim.last_day),
        day=expo_local(at).date(),
        revoked=revoked,
    )
    if code is None:
        code = decide_entry(use=paper_use(claim, lines), at=at).code
    return PaperDecision(admit=code == OK, code=code, claim=claim, check_id=concession)


def decide_paper_entry(
    *,
    text: str,
    public_keys: Mapping[int, Ed25519PublicKey],
    revoked: Container[int],
    lines_of: Callable[[int], Iterable[GateEntry]],
    at: datetime,
) -> PaperDecision:
    """A code as scanned or typed: verified offline under the synced keys, then judged (`judge_paper_ticket`)
    with `lines_of(ticket_id)`, this gate's paper lines of the ticket it names."""
    try:
        claim = verify_code(text, public_keys)
    except CodeRefused as refused:
        return PaperDecision(admit=False, code=refused.code)
    return judge_paper_ticket(claim, revoked=revoked, lines=lines_of(claim.ticket_id), at=at)
