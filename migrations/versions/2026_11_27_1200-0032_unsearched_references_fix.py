"""records: the ``:unsearched`` reference rows 0031 made for references that name nothing
stored go: those in Bundles held as resources (documents, collections: their references
resolve among their own entries, and held a DELETE of an unrelated resource of the same
id), and those whose type part is no R4 resource type (an extension's free text)

0031 itself no longer makes them; this is for stores that ran it before.

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-27 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from medalliance.records.searchparams import resource_type_set

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSEARCHED = ":unsearched"

references = sa.table(
    "fhir_idx_reference",
    sa.column("resource_type", sa.String),
    sa.column("name", sa.String),
    sa.column("target_type", sa.String),
)


def upgrade() -> None:
    naming_nothing = sa.or_(
        references.c.resource_type == "Bundle",
        references.c.target_type.not_in(sorted(resource_type_set())),
    )
    op.get_bind().execute(
        references.delete().where(references.c.name == UNSEARCHED, naming_nothing)
    )


def downgrade() -> None:
    pass  # the rows named nothing: 0031's downgrade removes every :unsearched row
