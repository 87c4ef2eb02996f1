"""audit: the sealer notes the runs of event ids it passed without an event (audit_seal_gap)

Before, each sealing run (every second) anti-joined the whole log against its seals:
78 ms at 91,000 events, and growing with the log. Now a run reads the events after the
last sealed one, and the noted gaps: a transaction that commits after the sealer passed
its ids is sealed then.

Events already unsealed below the last sealed one are noted as gaps here, so none is
left behind by the change. Stop the worker (and `serve`) while upgrading: a transaction
still open across the upgrade, with an id below the last sealed one, would be missed.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-27 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_seal_gap",
        sa.Column("first_id", _ID, autoincrement=False, nullable=False),
        sa.Column("last_id", _ID, nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("first_id", name=op.f("pk_audit_seal_gap")),
    )
    op.create_index(op.f("ix_audit_seal_gap_noted_at"), "audit_seal_gap", ["noted_at"])
    op.execute(
        """INSERT INTO audit_seal_gap (first_id, last_id, noted_at)
           SELECT e.id, e.id, CURRENT_TIMESTAMP FROM audit_event e
           WHERE e.id < (SELECT max(s.event_id) FROM audit_seal s)
             AND NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_id = e.id)"""
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_seal_gap_noted_at"), table_name="audit_seal_gap")
    op.drop_table("audit_seal_gap")
