"""Persistence of prepared writes: current row, history row, index rows — in bulk.

A transaction bundle of thousands of resources becomes a handful of multi-row INSERTs
(one per table) rather than thousands of round trips; a single create takes the same
path with a list of one. No access or audit logic here: the service decides, this writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from medalliance.records.dates import NO_DATE, instant
from medalliance.records.indexing import IndexRows
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    FhirResourceVersion,
    QuantityIndex,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
)

_INDEX_TABLES: tuple[tuple[str, Any], ...] = (
    ("token", TokenIndex),
    ("string", StringIndex),
    ("date", DateIndex),
    ("reference", ReferenceIndex),
    ("quantity", QuantityIndex),
)


@dataclass
class StoredResource:
    """One version of a resource as stored; ``raw`` is sent to clients unparsed."""

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    patient_id: str | None
    institution_id: str | None
    raw: bytes
    deleted: bool = False
    pid: int = 0
    created: bool = False  # a create (201) rather than an update or a conditional match

    @cached_property
    def content(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass
class Prepared:
    """A validated, resolved, authorised write waiting to be persisted."""

    resource: dict[str, Any]
    patient_id: str | None
    institution_id: str | None
    index: IndexRows
    method: str  # create | update | delete
    version: int = 1
    pid: int | None = None  # set for existing resources
    raw: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


def dump(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()


def stamp(resource: dict[str, Any], version: int, now: datetime) -> None:
    """Server-owned meta: versionId and lastUpdated (the rest of meta is the client's)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(now)
    resource["meta"] = meta


def persist(db: Session, writes: list[Prepared], now: datetime) -> list[StoredResource]:
    if not writes:
        return []
    for w in writes:
        w.raw = dump(w.resource) if w.method != "delete" or not w.raw else w.raw
    new = [w for w in writes if w.pid is None]  # decided before inserts assign pids
    existing = [w for w in writes if w.pid is not None]
    _insert_new(db, new, now)
    _update_existing(db, existing, now)
    _insert_versions(db, writes, now)
    _insert_index(db, writes)
    return [_stored(w, now) for w in writes]


def _insert_new(db: Session, writes: list[Prepared], now: datetime) -> None:
    if not writes:
        return
    rows = [
        {
            "resource_type": w.resource["resourceType"],
            "id": w.resource["id"],
            "version": w.version,
            "last_updated": now,
            "patient_id": w.patient_id,
            "institution_id": w.institution_id,
            "sort_date": w.index.sort_date,
            "deleted": w.method == "delete",
            "content": w.raw.decode(),
        }
        for w in writes
    ]
    result = db.execute(
        insert(FhirResource).returning(FhirResource.pid, sort_by_parameter_order=True), rows
    )
    for w, pid in zip(writes, result.scalars().all(), strict=True):
        w.pid = pid


def _update_existing(db: Session, writes: list[Prepared], now: datetime) -> None:
    if not writes:
        return
    pids = [w.pid for w in writes]
    for _, table in _INDEX_TABLES:
        db.execute(delete(table).where(table.pid.in_(pids)))
    for w in writes:
        db.execute(
            update(FhirResource)
            .where(FhirResource.pid == w.pid)
            .values(
                version=w.version,
                last_updated=now,
                patient_id=w.patient_id,
                sort_date=w.index.sort_date if w.method != "delete" else NO_DATE,
                deleted=w.method == "delete",
                content=w.raw.decode(),
            )
            .execution_options(synchronize_session=False)
        )


def _insert_versions(db: Session, writes: list[Prepared], now: datetime) -> None:
    rows = [
        {
            "pid": w.pid,
            "version": w.version,
            "resource_type": w.resource["resourceType"],
            "id": w.resource["id"],
            "last_updated": now,
            "patient_id": w.patient_id,
            "method": w.method,
            "deleted": w.method == "delete",
            "content": w.raw.decode(),
        }
        for w in writes
    ]
    _insert_rows(db, FhirResourceVersion, rows)


def _insert_index(db: Session, writes: list[Prepared]) -> None:
    for kind, table in _INDEX_TABLES:
        rows = [
            {
                **row,
                "pid": w.pid,
                "resource_type": w.resource["resourceType"],
                "patient_id": w.patient_id,
            }
            for w in writes
            if w.method != "delete"
            for row in getattr(w.index, kind)
        ]
        _insert_rows(db, table, rows)


def _insert_rows(db: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Derived rows in bulk: COPY on PostgreSQL (compiling multi-row INSERTs cost more than
    the database work), executemany on SQLite. Same transaction either way."""
    if not rows:
        return
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        db.execute(insert(table), rows)
        return
    columns = list(rows[0])
    raw: Any = connection.connection.dbapi_connection
    sql = f"COPY {table.__tablename__} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _stored(w: Prepared, now: datetime) -> StoredResource:
    assert w.pid is not None
    return StoredResource(
        resource_type=w.resource["resourceType"],
        id=w.resource["id"],
        version=w.version,
        last_updated=now,
        patient_id=w.patient_id,
        institution_id=w.institution_id,
        raw=w.raw,
        deleted=w.method == "delete",
        pid=w.pid,
        created=w.method == "create",
    )


def from_row(
    row: FhirResource | FhirResourceVersion, institution_id: str | None = None
) -> StoredResource:
    return StoredResource(
        resource_type=row.resource_type,
        id=row.id,
        version=row.version,
        last_updated=row.last_updated,
        patient_id=row.patient_id,
        institution_id=getattr(row, "institution_id", institution_id),
        raw=row.content.encode(),
        deleted=row.deleted,
        pid=row.pid,
    )
