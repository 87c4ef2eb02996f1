"""records: the token and reference lookup indexes carry pid after the searched columns
(a page of a cross-patient search reads index rows in pid order), the token lookup also
the patient (a count of a code reads index rows only);
PostgreSQL keeps the token system and the reference target type in the statistics too

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
        ["target_id", "resource_type", "name", "pid", "target_type"],
    ),
}


# The planner took a target's type as independent of its id: Organization/township-01
# came out as 6,000 rows of its 100,000 and, with the cheaper index scan above, a page
# of them went from a merge join (3 ms) to hashing and sorting all of them (1.1 s).
# name: (table, columns before, columns after)
STATISTICS = {
    "st_fhir_idx_token": (
        "fhir_idx_token",
        "resource_type, name, code",
        "resource_type, name, system, code",
    ),
    "st_fhir_idx_reference": (
        "fhir_idx_reference",
        "resource_type, name, target_id",
        "resource_type, name, target_type, target_id",
    ),
}


def upgrade() -> None:
    for name, (table, _, after) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)
    _statistics(after=True)


def downgrade() -> None:
    for name, (table, before, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
    _statistics(after=False)


def _statistics(*, after: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, before_columns, after_columns) in STATISTICS.items():
        columns = after_columns if after else before_columns
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
        op.execute(f"CREATE STATISTICS {name} (mcv, dependencies) ON {columns} FROM {table}")
        # New statistics objects are empty until analysed, and plans go wrong meanwhile.
        op.execute(f"ANALYZE {table}")
