"""indicator encounter cells: facts point at their grouping cell

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-23 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | tuple[str, ...] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CELL = (
    "institution_id",
    "institution_level",
    "township_code",
    "encounter_class",
    "month",
    "in_county",
    "resident",
)


def upgrade() -> None:
    op.create_table(
        "indicator_encounter_cell",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("institution_level", sa.String(length=16), nullable=False),
        sa.Column("township_code", sa.String(length=12), nullable=False),
        sa.Column("encounter_class", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("in_county", sa.Boolean(), nullable=False),
        sa.Column("resident", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_encounter_cell")),
        sa.UniqueConstraint(*CELL, name="uq_indicator_encounter_cell_key"),
    )
    op.add_column("indicator_encounter_fact", sa.Column("cell_id", sa.Integer(), nullable=True))
    columns = ", ".join(CELL)
    op.execute(
        f"INSERT INTO indicator_encounter_cell ({columns})"
        f" SELECT DISTINCT {columns} FROM indicator_encounter_fact"
    )
    same = " AND ".join(f"c.{c} = indicator_encounter_fact.{c}" for c in CELL)
    op.execute(
        "UPDATE indicator_encounter_fact SET cell_id ="
        f" (SELECT c.id FROM indicator_encounter_cell c WHERE {same})"
    )
    with op.batch_alter_table("indicator_encounter_fact") as batch:
        batch.alter_column("cell_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_indicator_encounter_fact_cell_id_indicator_encounter_cell"),
            "indicator_encounter_cell",
            ["cell_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_indicator_encounter_fact_cell_id"), ["cell_id"])


def downgrade() -> None:
    with op.batch_alter_table("indicator_encounter_fact") as batch:
        batch.drop_index(op.f("ix_indicator_encounter_fact_cell_id"))
        batch.drop_constraint(
            op.f("fk_indicator_encounter_fact_cell_id_indicator_encounter_cell"),
            type_="foreignkey",
        )
        batch.drop_column("cell_id")
    op.drop_table("indicator_encounter_cell")
