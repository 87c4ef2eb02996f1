"""records: references no search parameter reads (in contained resources, extensions,
elements without a parameter) get reference index rows of their own (name
``:unsearched``), so that they hold a DELETE of what they name as the others do

Live resources stored before get theirs here: each one that has a reference is read once
(minutes on a store of millions), its rows compared with the reference rows it has.

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-27 11:00:00.000000
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from medalliance.records.indexing import unsearched_references

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
UNSEARCHED = ":unsearched"  # indexing.UNSEARCHED when this revision was written

references = sa.table(
    "fhir_idx_reference",
    sa.column("pid", sa.BigInteger),
    sa.column("resource_type", sa.String),
    sa.column("name", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("target_type", sa.String),
    sa.column("target_id", sa.String),
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
    bind.execute(references.delete().where(references.c.name == UNSEARCHED))  # a rerun
    after = 0
    while True:
        batch = bind.execute(
            sa.select(resources.c.pid, resources.c.resource_type, resources.c.patient_id)
            .add_columns(resources.c.content)
            .where(
                resources.c.pid > after,
                resources.c.deleted.is_(False),
                resources.c.content.contains('"reference"'),
            )
            .order_by(resources.c.pid)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        _add_rows(bind, batch)
        after = batch[-1][0]


def _add_rows(bind: sa.Connection, batch: Sequence[sa.Row[Any]]) -> None:
    indexed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    stored = sa.select(references.c.pid, references.c.target_type, references.c.target_id)
    for pid, target_type, target_id in bind.execute(
        stored.where(references.c.pid.in_([row[0] for row in batch]))
    ):
        indexed[pid].append({"target_type": target_type, "target_id": target_id})
    rows = [
        # The columns named: what unsearched_references returns may grow after this.
        {
            "pid": pid,
            "resource_type": kind,
            "patient_id": patient,
            "name": UNSEARCHED,
            "target_type": row["target_type"],
            "target_id": row["target_id"],
        }
        for pid, kind, patient, content in batch
        for row in unsearched_references(orjson.loads(content), indexed[pid])
    ]
    if rows:
        bind.execute(references.insert(), rows)


def downgrade() -> None:
    op.get_bind().execute(references.delete().where(references.c.name == UNSEARCHED))
