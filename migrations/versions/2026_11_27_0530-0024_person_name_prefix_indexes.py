"""patients: indexes for searching persons by the start of their name or pinyin

A Patient search by name over a million persons read the whole table (2-5 s): the
database's collation (C.UTF-8) is not plain C, so PostgreSQL ranges a btree for LIKE 'x%'
only with pattern ops. The compact pinyin ("wangchenxin") gets an expression index on
PostgreSQL; SQLite's LIKE is case-insensitive and uses none of these, but keeps the
column indexes so that both schemas match the models.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("name", "pinyin"):
        op.create_index(
            f"ix_person_{column}_prefix",
            "person",
            [column],
            postgresql_ops={column: "varchar_pattern_ops"},
        )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_person_pinyin_compact",
            "person",
            [sa.text("replace(pinyin, ' ', '') varchar_pattern_ops")],
        )
        # The expression's statistics come with ANALYZE only: until then the planner
        # guesses 0.5 % of the table matches and walks the whole pinyin index instead.
        op.execute("ANALYZE person")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_person_pinyin_compact", table_name="person")
    for column in ("pinyin", "name"):
        op.drop_index(f"ix_person_{column}_prefix", table_name="person")
