"""records: dates written without a time zone (a day, a month, a year) are the
consortium's local ones, not UTC: the date index and sort dates of such values are derived
again

Before, ``2026-11-05`` was indexed as the UTC day, so a search for that day missed a
result taken at 07:30 in Beijing. Only resources with a date row that may come from such a
value (one starting at a UTC midnight or ending just before one) are derived again, with
the application's own indexing: what it derives is what a write would now store.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 04:30:00.000000
"""

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time

import sqlalchemy as sa
from alembic import op

from medalliance.db import UTCDateTime
from medalliance.records.indexing import build_index

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500
_MIDNIGHT = time(0, 0)
_LAST_TICK = time(23, 59, 59, 999999)
_FIRST = datetime(1, 1, 1, tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)

dates = sa.table(
    "fhir_idx_date",
    sa.column("pid", sa.BigInteger),
    sa.column("resource_type", sa.String),
    sa.column("name", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("low", UTCDateTime()),
    sa.column("high", UTCDateTime()),
)
resources = sa.table(
    "fhir_resource",
    sa.column("pid", sa.BigInteger),
    sa.column("patient_id", sa.String),
    sa.column("deleted", sa.Boolean),
    sa.column("content", sa.Text),
    sa.column("sort_date", UTCDateTime()),
)


def upgrade() -> None:
    bind = op.get_bind()
    pids = sorted(_candidates(bind))
    for start in range(0, len(pids), _BATCH):
        _derive_again(bind, pids[start : start + _BATCH])


def downgrade() -> None:
    """Nothing: the earlier code reads these rows as it reads any other range."""


def _candidates(bind: sa.Connection) -> set[int]:
    """Resources with a row that a zone-less value could have made."""
    found: set[int] = set()
    rows = bind.execute(
        sa.select(dates.c.pid, dates.c.low, dates.c.high).execution_options(yield_per=10_000)
    )
    for pid, low, high in rows:
        at_midnight = low != _FIRST and low.timetz().replace(tzinfo=None) == _MIDNIGHT
        before_midnight = high != _LAST and high.timetz().replace(tzinfo=None) == _LAST_TICK
        if at_midnight or before_midnight:
            found.add(pid)
    return found


def _derive_again(bind: sa.Connection, pids: list[int]) -> None:
    live = bind.execute(
        sa.select(resources.c.pid, resources.c.patient_id, resources.c.content).where(
            resources.c.pid.in_(pids), resources.c.deleted.is_(False)
        )
    ).all()
    bind.execute(dates.delete().where(dates.c.pid.in_(pids)))
    rows: list[dict[str, object]] = []
    for pid, patient_id, content in live:
        resource = json.loads(content)
        index = build_index(resource)
        rows += _date_rows(pid, resource["resourceType"], patient_id, index.date)
        bind.execute(
            resources.update().where(resources.c.pid == pid).values(sort_date=index.sort_date)
        )
    if rows:
        bind.execute(dates.insert(), rows)


def _date_rows(
    pid: int, resource_type: str, patient_id: str | None, derived: list[dict[str, object]]
) -> Iterator[dict[str, object]]:
    for row in derived:
        yield {"pid": pid, "resource_type": resource_type, "patient_id": patient_id, **row}
