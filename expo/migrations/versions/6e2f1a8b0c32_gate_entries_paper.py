"""gate entries of physical (paper) tickets

Revision ID: 6e2f1a8b0c32
Revises: 5d1e0f7a9b21
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e2f1a8b0c32"
down_revision: str | None = "5d1e0f7a9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every line stored so far is a card's.
    with op.batch_alter_table("gate_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paper", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(
            "ix_gate_entries_paper_ticket",
            ["ticket_id"],
            unique=False,
            postgresql_where=sa.text("paper"),
            sqlite_where=sa.text("paper"),
        )


def downgrade() -> None:
    with op.batch_alter_table("gate_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_gate_entries_paper_ticket", postgresql_where=sa.text("paper"), sqlite_where=sa.text("paper")
        )
        batch_op.drop_column("paper")
