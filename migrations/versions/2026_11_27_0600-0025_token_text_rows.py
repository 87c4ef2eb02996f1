"""records: what a code says in words (Coding.display, CodeableConcept.text) is indexed for
the token modifier ``:text`` (``Observation?code:text=血红蛋白``), for the resources
stored before writes began to index it

Derived with the application's own indexing, as a write now does, in batches of live
resources. It reads every resource once: minutes on a store of millions.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-27 06:00:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from medalliance.records.indexing import build_index

revision: str = "0025"
down_revision: str | None = "0024"
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
)
resources = sa.table(
    "fhir_resource",
    sa.column("pid", sa.BigInteger),
    sa.column("resource_type", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("deleted", sa.Boolean),
    sa.column("content", sa.Text),
)


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(strings.delete().where(strings.c.name.like("%:text")))
    after = 0
    while True:
        batch = bind.execute(
            sa.select(resources.c.pid, resources.c.resource_type, resources.c.patient_id)
            .add_columns(resources.c.content)
            .where(resources.c.pid > after, resources.c.deleted.is_(False))
            .order_by(resources.c.pid)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        # Only the columns this revision knows: later ones add columns the rows carry.
        rows = [
            {
                "pid": pid,
                "resource_type": kind,
                "patient_id": patient,
                "name": row["name"],
                "value": row["value"],
            }
            for pid, kind, patient, content in batch
            for row in build_index(json.loads(content)).string
            if str(row["name"]).endswith(":text")
        ]
        if rows:
            bind.execute(strings.insert(), rows)
        after = batch[-1][0]


def downgrade() -> None:
    op.get_bind().execute(strings.delete().where(strings.c.name.like("%:text")))
