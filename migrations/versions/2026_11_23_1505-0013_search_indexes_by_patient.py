"""records: index rows by patient, for searches within one patient's record

Revision ID: 0013
Revises: 0015
Create Date: 2026-11-23 15:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_fhir_idx_token_patient",
        "fhir_idx_token",
        ["patient_id", "resource_type", "name", "code", "system"],
        unique=False,
    )
    op.create_index(
        "ix_fhir_idx_date_patient",
        "fhir_idx_date",
        ["patient_id", "resource_type", "name", "low", "high"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_fhir_idx_date_patient", table_name="fhir_idx_date")
    op.drop_index("ix_fhir_idx_token_patient", table_name="fhir_idx_token")
