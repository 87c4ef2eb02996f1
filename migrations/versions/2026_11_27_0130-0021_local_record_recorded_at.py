"""patients: when the member captured a local record's demographics (an HL7 A08's EVN-2),
so that an update older than the record's last one does not overwrite it

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medalliance.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("local_record") as batch:
        batch.add_column(
            sa.Column("recorded_at", medalliance.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("local_record") as batch:
        batch.drop_column("recorded_at")
