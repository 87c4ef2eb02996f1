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

from medalliance.records.searchparams import resource_type_set

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
# The rule as ``records.indexing`` had it when this revision was written, frozen so that
# the revision writes the rows it always wrote, whatever that module becomes.
UNSEARCHED = ":unsearched"
MAX_TEXT = 255
R4_TYPES = resource_type_set()  # R4's list, which does not change

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
        {
            "pid": pid,
            "resource_type": kind,
            "patient_id": patient,
            "name": UNSEARCHED,
            "target_type": row["target_type"],
            "target_id": row["target_id"],
        }
        for pid, kind, patient, content in batch
        for row in _unsearched_references(orjson.loads(content), indexed[pid])
    ]
    if rows:
        bind.execute(references.insert(), rows)


def _unsearched_references(
    resource: dict[str, Any], indexed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows for the relative references of a resource that ``indexed`` lacks, one per
    target."""
    seen = {(r["target_type"], r["target_id"]) for r in indexed}
    rows = []
    for value in sorted(_reference_values(resource)):
        target = _reference_target(value)
        if target is None or target[0] is None or target in seen:
            continue  # local (#id), absolute, canonical or conditional: no stored target
        seen.add(target)
        rows.append({"target_type": target[0], "target_id": target[1]})
    return rows


def _reference_values(node: Any) -> set[str]:
    """Not those in a Bundle held as a resource: they resolve among its entries (0032)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and node.get("resourceType") != "Bundle":
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _reference_target(raw: str) -> tuple[str | None, str] | None:
    """A type that is no R4 resource type (an extension's free text) names nothing stored,
    and may not fit the type column: the upgrade failed on one (0032)."""
    if not raw or raw.startswith("#"):
        return None
    parts = raw.split("/")
    if len(parts) == 2 and "?" not in raw and ":" not in raw and parts[0] in R4_TYPES:
        return parts[0], parts[1][:MAX_TEXT]
    if len(parts) >= 4 and parts[-2] == "_history" and parts[-4] in R4_TYPES:
        return parts[-4], parts[-3][:MAX_TEXT]
    return None, raw[:MAX_TEXT]


def downgrade() -> None:
    op.get_bind().execute(references.delete().where(references.c.name == UNSEARCHED))
