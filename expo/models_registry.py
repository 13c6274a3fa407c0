"""Every model module, imported so that the metadata Alembic compares against is complete."""

import expo.access.models
import expo.idempotency
import expo.segments
import gates.models
import reconciliation.models
import ticketing.card_models
import ticketing.models
import ticketing.revocations
import ticketing.terminal_batches
import ticketing.voucher_models
import wallet.models
from expo.db import Base

metadata = Base.metadata

__all__ = ["expo", "gates", "metadata", "reconciliation", "ticketing", "wallet"]
