"""records: the institution that created each resource (fhir_resource.author_institution_id);
only it may change or delete the resource

The history table keeps no institution. The first version's writer is in
``fhir_resource.institution_id``: the store has set it only when it inserts a resource's
row (its first version) and never on a later version, a delete or a re-create, since
its first revision (df44ff5). The backfill copies it. Every row is rewritten once.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-27 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fhir_resource") as batch:
        batch.add_column(sa.Column("author_institution_id", sa.String(length=64), nullable=True))
    op.execute("UPDATE fhir_resource SET author_institution_id = institution_id")


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource") as batch:
        batch.drop_column("author_institution_id")
