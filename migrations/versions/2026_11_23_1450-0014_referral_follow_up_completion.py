"""referral follow-up completion: when, by whom, what was found

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-23 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medalliance.db

revision: str = "0014"
down_revision: str | tuple[str, ...] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral_follow_up") as batch:
        batch.add_column(
            sa.Column("done_at", medalliance.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("done_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("result", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("referral_follow_up") as batch:
        batch.drop_column("result")
        batch.drop_column("done_by")
        batch.drop_column("done_at")
