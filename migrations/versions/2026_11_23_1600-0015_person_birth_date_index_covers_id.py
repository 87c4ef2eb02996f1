"""person birth-date index covers id and merged_into_id

The matcher's birth-date blocks (variants within the surname, the same day) read id and
merged_into_id for every person born on those days; with both in the index PostgreSQL
answers from the index alone instead of one table page per person (the p95 of $match).

Revision ID: 0015
Revises: 0016
Create Date: 2026-11-23 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | tuple[str, ...] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE; its index stays as it was
    op.drop_index("ix_person_birth_date_pinyin", table_name="person")
    op.create_index(
        "ix_person_birth_date_pinyin",
        "person",
        ["birth_date", "pinyin"],
        postgresql_include=["id", "merged_into_id"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_person_birth_date_pinyin", table_name="person")
    op.create_index("ix_person_birth_date_pinyin", "person", ["birth_date", "pinyin"])
