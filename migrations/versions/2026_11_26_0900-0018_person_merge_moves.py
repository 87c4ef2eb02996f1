"""patients: rows a merge moved to the survivor, so unmerge can move them back

Revision ID: 0018
Revises: 0013
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_merge_move",
        sa.Column("merge_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("row_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["merge_id"], ["person_merge.id"]),
        sa.PrimaryKeyConstraint("merge_id", "target", "row_id"),
    )
    op.create_index(
        "ix_person_merge_move_target_row", "person_merge_move", ["target", "row_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_person_merge_move_target_row", table_name="person_merge_move")
    op.drop_table("person_merge_move")
