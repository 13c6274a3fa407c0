"""What a gate device uploads: one journal line per decision, the same schema on the device and the server.

Pure (msgspec only). The server de-duplicates on (gate id, seq) and, for what a card recorded, on
(CSN, CTR, event); see docs/gates.md. A physical ticket's line (`paper`) names its ticket but no card.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from msgspec import Meta, Struct

MAX_BATCH = 1000  # entries per upload

Seq = Annotated[int, Meta(ge=1, le=2**53)]
GateId = Annotated[int, Meta(ge=1, le=0xFFFFFFFF)]
Csn = Annotated[str, Meta(pattern="^[0-9a-f]{16}$")]
Ctr = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
TicketId = Annotated[int, Meta(ge=1, le=0xFFFFFFFF)]
Slot = Annotated[int, Meta(ge=1, le=4)]
Code = Annotated[str, Meta(pattern="^[a-z_]{1,40}$")]
Text = Annotated[str, Meta(min_length=1, max_length=200)]


class Event(StrEnum):
    """A journal line's kind. `annulled` undoes the entry `annuls_seq` of the same gate (the turnstile did not turn)."""

    ADMITTED = "admitted"
    REFUSED = "refused"
    FORCED = "forced"  # a supervisor's admission on a handheld, with a reason
    SOUVENIR = "souvenir"  # a souvenir ticket handed out for an entered ticket
    ANNULLED = "annulled"


class GateEntry(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One decision as the device journaled it; `at` is the device's clock (aware)."""

    seq: Seq
    event: Event
    at: datetime
    code: Code  # "ok" for admitted and souvenir, else the refusal (or, for forced, the overridden refusal)
    csn: Csn | None = None  # None when no Expo card answered
    ctr: Ctr | None = None  # the card's counter of the session that recorded it
    ticket_id: TicketId | None = None
    slot: Slot | None = None
    check_id: bool = False
    card_marked: bool = False  # the card recorded this event (MARK ENTRY answered 9000)
    paper: bool = False  # a physical (paper) ticket's code, scanned: no card, so no csn, ctr or slot
    reason: Text | None = None  # forced and annulled
    supervisor: Text | None = None  # forced
    annuls_seq: Seq | None = None  # annulled


class GateBatch(Struct, forbid_unknown_fields=True):
    """`POST /v1/gate-entries`: a gate's journal lines, in any order, each at most once per batch."""

    gate_id: GateId
    entries: Annotated[list[GateEntry], Meta(min_length=1, max_length=MAX_BATCH)]
