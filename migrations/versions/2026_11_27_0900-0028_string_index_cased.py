"""records: a string index row keeps the value as written when lower-casing changed it
(``cased``), so that ``:exact`` matches case as R4 says (``family:exact=Son`` is not "son")

Existing rows are derived again with the application's own indexing for the live
resources that have string rows, and replaced only where some value has a case: it reads
each such resource once (minutes on a store of millions).

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-27 09:00:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from medalliance.records.indexing import build_index

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

strings = sa.table(
    "fhir_idx_string",
    sa.column("pid", sa.BigInteger),
    sa.column("resource_type", sa.String),
    sa.column("name", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("value", sa.String),
    sa.column("cased", sa.String),
)
resources = sa.table(
    "fhir_resource",
    sa.column("pid", sa.BigInteger),
    sa.column("resource_type", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("deleted", sa.Boolean),
    sa.column("content", sa.Text),
)
# Rows of string parameters; a token's text rows (``code:text``) need no case.
_OF_STRINGS = strings.c.name.not_like("%:text")


def upgrade() -> None:
    op.add_column("fhir_idx_string", sa.Column("cased", sa.String(length=255), nullable=True))
    bind = op.get_bind()
    has_strings = sa.exists().where(strings.c.pid == resources.c.pid, _OF_STRINGS)
    after = 0
    while True:
        batch = bind.execute(
            sa.select(resources.c.pid, resources.c.resource_type, resources.c.patient_id)
            .add_columns(resources.c.content)
            .where(resources.c.pid > after, resources.c.deleted.is_(False), has_strings)
            .order_by(resources.c.pid)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        _replace_cased(bind, batch)
        after = batch[-1][0]


def _replace_cased(bind: sa.Connection, batch: Sequence[sa.Row[Any]]) -> None:
    rows = {
        pid: [
            # The columns named: what build_index returns may grow after this revision.
            {
                "pid": pid,
                "resource_type": kind,
                "patient_id": patient,
                "name": row["name"],
                "value": row["value"],
                "cased": row["cased"],
            }
            for row in build_index(json.loads(content)).string
            if not str(row["name"]).endswith(":text")
        ]
        for pid, kind, patient, content in batch
    }
    changed = [pid for pid, found in rows.items() if any(r["cased"] for r in found)]
    if not changed:
        return
    bind.execute(strings.delete().where(strings.c.pid.in_(changed), _OF_STRINGS))
    bind.execute(strings.insert(), [r for pid in changed for r in rows[pid]])


def downgrade() -> None:
    # Rows that differed only by case become duplicates: harmless, matched alike.
    with op.batch_alter_table("fhir_idx_string") as batch:
        batch.drop_column("cased")
