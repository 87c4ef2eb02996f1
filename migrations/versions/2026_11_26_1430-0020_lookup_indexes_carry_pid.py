"""records: the token and reference lookup indexes carry pid and patient after the
searched columns (a page of a cross-patient search, and a count, read index rows only)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 14:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, columns before, columns after)
INDEXES = {
    "ix_fhir_idx_token_lookup": (
        "fhir_idx_token",
        ["resource_type", "name", "code", "system"],
        ["resource_type", "name", "code", "system", "pid", "patient_id"],
    ),
    "ix_fhir_idx_reference_lookup": (
        "fhir_idx_reference",
        ["target_id", "resource_type", "name"],
        ["target_id", "resource_type", "name", "pid", "target_type", "patient_id"],
    ),
}


def upgrade() -> None:
    for name, (table, _, after) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)


def downgrade() -> None:
    for name, (table, before, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
