"""records: index rows lose their surrogate key and their foreign key (write cost)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "fhir_idx_token",
    "fhir_idx_string",
    "fhir_idx_date",
    "fhir_idx_reference",
    "fhir_idx_quantity",
)


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_pid_fhir_resource", type_="foreignkey")
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("row")


def downgrade() -> None:
    bigint = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    for table in TABLES:
        # A key for existing rows: numbered in table order, then drawn from a sequence.
        op.add_column(table, sa.Column("row", bigint, nullable=True))
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"CREATE SEQUENCE {table}_row_seq OWNED BY {table}.row")
            op.execute(f"UPDATE {table} SET row = nextval('{table}_row_seq')")
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN row SET DEFAULT nextval('{table}_row_seq')"
            )
        else:
            op.execute(f"UPDATE {table} SET row = rowid")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("row", existing_type=bigint, nullable=False)
            batch.create_primary_key(f"pk_{table}", ["row"])
            batch.create_foreign_key(
                f"fk_{table}_pid_fhir_resource", "fhir_resource", ["pid"], ["pid"]
            )
