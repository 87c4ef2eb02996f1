"""Persistence of prepared writes: current row, history row, index rows — in bulk.

A transaction bundle of thousands of resources becomes a handful of multi-row INSERTs
(one per table) rather than thousands of round trips; a single create takes the same
path with a list of one. No access or audit logic here: the service decides (and the
audit domain words the events a write carries), this writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from typing import Any, Protocol

import orjson
from sqlalchemy import delete, insert, text, update
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.kit import fhirjson
from medalliance.kit.hot import execute_native, flush_pending, session_connection
from medalliance.records.dates import NO_DATE, instant
from medalliance.records.indexing import IndexRows, Reference
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
# Every index table: what re-keys rows by patient (records.merges) must cover them all.
INDEX_MODELS: tuple[Any, ...] = tuple(table for _, table in _INDEX_TABLES)


# A version's write: "create" (POST, the server's id), "put" (a create by PUT at the
# client's id), "update" (PUT or PATCH) or "delete". History tells POST from PUT by it.
CREATES = frozenset({"create", "put"})


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
    by_put: bool = False  # a create by PUT at the client's id (history: PUT, not POST)

    @cached_property
    def content(self) -> dict[str, Any]:
        parsed: dict[str, Any] = fhirjson.loads(self.raw)
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
    method: str  # create | put | update | delete (see CREATES)
    version: int = 1
    pid: int | None = None  # set for existing resources
    raw: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)  # its ``indexing.references``


def dump(resource: dict[str, Any]) -> bytes:
    # orjson: a third of json.dumps' time on every stored resource; decimals as written.
    return fhirjson.dumps(resource)


def stamp(resource: dict[str, Any], version: int, now: datetime) -> None:
    """Server-owned meta: versionId and lastUpdated (the rest of meta is the client's)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(now)
    resource["meta"] = meta


# A stored resource that writes refer to, to hold: (type, id, the referring write's patient,
# whether a write names it itself rather than only a version of it: then its deletion stops
# the writes, which must not be stored, see ``_pg_write_sql``).
Holding = tuple[str, str, str | None, bool]


@dataclass(frozen=True)
class Target:
    """A deleted resource that writes refer to, as ``persist_holding`` found it."""

    resource_type: str
    id: str
    patient_id: str | None


def persist_holding(
    db: Session,
    writes: list[Prepared],
    now: datetime,
    *,
    events: Sequence[dict[str, Any]] = (),
    holding: Sequence[Holding] = (),
) -> tuple[list[StoredResource], list[Target]]:
    """Stores the writes, holding until the transaction ends the resources among
    ``holding`` that are of the referring write's patient's record or of none (``_HELD``,
    in the same statement on PostgreSQL); and those of them that are deleted, for the
    caller to refuse the writes (its error rolls them back). On PostgreSQL, a deleted one
    the writes name themselves also stops the statement from writing anything: a create
    runs without a transaction (``kit.http.autocommit``), where nothing would roll back.
    ``events``: audit rows (``audit.event_row``) written with the writes, in the same
    statement on PostgreSQL: a write and its audit row commit together or not at all."""
    if not writes:
        return [], []
    for w in writes:
        w.raw = dump(w.resource) if w.method != "delete" or not w.raw else w.raw
    raw = session_connection(db).raw
    if raw is not None:  # PostgreSQL
        flush_pending(db)
        deleted = _persist_postgresql(raw, writes, now, events, holding)
        if any(w.pid is None for w in writes):
            return [], deleted  # stopped: nothing was written
        return [_stored(w, now) for w in writes], deleted
    deleted = _deleted_sqlite(db, holding) if holding else []
    new = [w for w in writes if w.pid is None]  # decided before inserts assign pids
    existing = [w for w in writes if w.pid is not None]
    _insert_new(db, new, now)
    _update_existing(db, existing, now)
    _insert_versions(db, writes, now)
    _insert_index(db, writes)
    audit.record_all_now(db, events)
    return [_stored(w, now) for w in writes], deleted


# The targets writes refer to, of the referring write's patient's record or of none (where
# their DELETE looks for referrers, ``repository.referrer_counts``), held FOR KEY SHARE
# until the writes commit: a DELETE (FOR UPDATE) waits for them, then finds them among the
# referrers; writes that come second wait for the DELETE, then see the row deleted (READ
# COMMITTED re-reads a row it waited for). Updates of the target (FOR NO KEY UPDATE) and
# other writes referring to it do not wait. MATERIALIZED: every row is locked, not only
# the deleted ones the statement returns.
_HELD = """held AS MATERIALIZED (
    SELECT r.resource_type, r.id, r.patient_id, r.deleted, (t->>3)::bool AS named
    FROM jsonb_array_elements(%(holding)s::jsonb) AS t
    JOIN fhir_resource r ON r.resource_type = t->>0 AND r.id = t->>1
    WHERE r.patient_id IS NULL OR r.patient_id = t->>2
    FOR KEY SHARE OF r
)"""
# The writes are stored unless one names a held resource that is deleted.
_NOTHING_STOPS = "NOT EXISTS (SELECT 1 FROM held WHERE deleted AND named)"
# SQLite runs one writing transaction at a time: a plain read is as good as a lock.
_FIND_DELETED = text("""
SELECT r.resource_type, r.id, r.patient_id
FROM json_each(:holding) AS t
JOIN fhir_resource r
  ON r.resource_type = json_extract(t.value, '$[0]') AND r.id = json_extract(t.value, '$[1]')
WHERE r.deleted AND (r.patient_id IS NULL OR r.patient_id = json_extract(t.value, '$[2]'))
""")


def _deleted_sqlite(db: Session, holding: Sequence[Holding]) -> list[Target]:
    found = db.execute(_FIND_DELETED, {"holding": _json_rows(list(h) for h in holding)})
    return [Target(kind, id_, patient) for kind, id_, patient in found]


# --- PostgreSQL: every row of every write in one statement --------------------------------
# A write used to be ~12 round trips (insert, history, five index deletes and five COPYs);
# under concurrent load the waits dominated. Data-modifying CTEs do it in one: the writes
# and their index rows go as arrays, ``unnest`` turns them back into rows. The index
# DELETEs and INSERTs run on one snapshot, so a DELETE never sees the rows inserted beside
# it. The text is constant, so psycopg prepares it once per connection. Rows travel as one
# JSON array per table: ``json.dumps`` is C, where psycopg's array dumper is Python (it
# cost four times as much for a 100-resource bundle).

_INDEX_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "token": (("name", "text"), ("system", "text"), ("code", "text")),
    "string": (("name", "text"), ("value", "text"), ("cased", "text")),
    "date": (("name", "text"), ("low", "timestamptz"), ("high", "timestamptz")),
    "reference": (("name", "text"), ("target_type", "text"), ("target_id", "text")),
    "quantity": (("name", "text"), ("value", "float8"), ("system", "text"), ("code", "text")),
}
_WRITE_COLUMNS = (
    ("ord", "int4"),
    ("pid", "int8"),
    ("resource_type", "text"),
    ("id", "text"),
    ("version", "int4"),
    ("patient_id", "text"),
    ("institution_id", "text"),
    ("sort_date", "timestamptz"),
    ("deleted", "bool"),
    ("method", "text"),
    ("content", "text"),
)


def _rows(param: str, columns: tuple[tuple[str, str], ...], alias: str) -> str:
    """A JSON array of row arrays as a relation with typed, named columns."""
    fields = ", ".join(f"(e->>{i})::{kind} AS {name}" for i, (name, kind) in enumerate(columns))
    return f"(SELECT {fields} FROM jsonb_array_elements(%({param})s::jsonb) AS e) AS {alias}"


@cache
def _pg_write_sql(*, replaces: bool, audited: bool, holds: bool) -> str:
    """``replaces``: some writes change existing resources, whose old index rows go. Writes
    that only create get a statement without those DELETEs: when the planner's statistics
    are missing it scans the index tables whole even for an empty list of pids.
    ``audited``: the statement also inserts the writes' audit events. ``holds``: it also
    holds the resources the writes refer to (``_HELD``), and returns the deleted ones."""
    index_ctes = []
    for kind, table in _INDEX_TABLES:
        columns = _INDEX_COLUMNS[kind]
        names = ", ".join(n for n, _ in columns)
        prefixed = ", ".join(f"x.{n}" for n, _ in columns)
        if replaces:
            index_ctes.append(
                f"del_{kind} AS (DELETE FROM {table.__tablename__} "
                # = ANY(ARRAY(...)): an index scan on pid; "IN (SELECT ...)" became a hash
                # semi-join over the whole (churned, bloated) table.
                f"WHERE pid = ANY(ARRAY(SELECT pid FROM w WHERE pid IS NOT NULL)))"
            )
        index_ctes.append(
            f"ins_{kind} AS (INSERT INTO {table.__tablename__} "
            f"(pid, resource_type, patient_id, {names}) "
            f"SELECT a.pid, a.resource_type, a.patient_id, {prefixed} "
            f"FROM {_rows(kind, (('ord', 'int4'), *columns), 'x')} "
            f"JOIN allw a ON a.ord = x.ord)"
        )
    if audited:
        allowed = f" WHERE {_NOTHING_STOPS}" if holds else ""
        index_ctes.append(f"aud AS ({audit.insert_events_sql('events')}{allowed})")
    # Rows with an ord: the pids of new resources; without: deleted targets.
    deleted_targets = (
        "\nUNION ALL SELECT NULL, NULL, resource_type, id, patient_id FROM held WHERE deleted"
    )
    held, allowed = (f"{_HELD},\n", f" WHERE {_NOTHING_STOPS}") if holds else ("", "")
    return f"""
WITH {held}w AS (SELECT * FROM {_rows("writes", _WRITE_COLUMNS, "w")}{allowed}),
ins AS (
    INSERT INTO fhir_resource (resource_type, id, version, last_updated, patient_id,
                               institution_id, sort_date, deleted, content)
    SELECT resource_type, id, version, %(now)s, patient_id, institution_id, sort_date,
           deleted, content
    FROM w WHERE pid IS NULL ORDER BY ord
    RETURNING pid, resource_type, id
),
upd AS (
    UPDATE fhir_resource r SET version = w.version, last_updated = %(now)s,
        patient_id = w.patient_id, sort_date = w.sort_date, deleted = w.deleted,
        content = w.content
    FROM w WHERE w.pid IS NOT NULL AND r.pid = w.pid
    RETURNING r.pid
),
allw AS (
    SELECT w.ord, coalesce(w.pid, ins.pid) AS pid, w.resource_type, w.id, w.version,
           w.patient_id, w.deleted, w.method, w.content
    FROM w LEFT JOIN ins ON ins.resource_type = w.resource_type AND ins.id = w.id
),
ver AS (
    INSERT INTO fhir_resource_version (pid, version, resource_type, id, last_updated,
                                       patient_id, method, deleted, content)
    SELECT pid, version, resource_type, id, %(now)s, patient_id, method, deleted, content
    FROM allw
),
{("," + chr(10)).join(index_ctes)}
SELECT ord, pid, NULL::text, NULL::text, NULL::text FROM allw
WHERE ord IN (SELECT w.ord FROM w WHERE w.pid IS NULL){deleted_targets if holds else ""}
"""


def _pg_params(
    writes: list[Prepared],
    now: datetime,
    events: Sequence[dict[str, Any]],
    holding: Sequence[Holding],
) -> dict[str, Any]:
    params: dict[str, Any] = {"now": now}
    if events:
        params["events"] = audit.events_json(events)
    if holding:
        params["holding"] = _json_rows(list(h) for h in holding)
    params["writes"] = _json_rows(
        [
            i,
            w.pid,
            w.resource["resourceType"],
            w.resource["id"],
            w.version,
            w.patient_id,
            w.institution_id,
            w.index.sort_date if w.method != "delete" else NO_DATE,
            w.method == "delete",
            w.method,
            w.raw.decode(),
        ]
        for i, w in enumerate(writes)
    )
    for kind, _ in _INDEX_TABLES:
        names = [name for name, _ in _INDEX_COLUMNS[kind]]
        params[kind] = _json_rows(
            [i, *(row[name] for name in names)]
            for i, w in enumerate(writes)
            if w.method != "delete"
            for row in getattr(w.index, kind)
        )
    return params


def _json_rows(rows: Iterable[list[Any]]) -> str:
    # orjson writes datetimes as RFC 3339, which PostgreSQL reads as timestamptz.
    return orjson.dumps(list(rows)).decode()


def _persist_postgresql(
    raw: Any,
    writes: list[Prepared],
    now: datetime,
    events: Sequence[dict[str, Any]],
    holding: Sequence[Holding],
) -> list[Target]:
    """Writes the rows; the deleted targets among ``holding``."""
    replaces = any(w.pid is not None for w in writes)
    sql = _pg_write_sql(replaces=replaces, audited=bool(events), holds=bool(holding))
    params = _pg_params(writes, now, events, holding)
    deleted = []
    for ord_, pid, *target in execute_native(raw, sql, params, fetch=True):
        if ord_ is None:
            deleted.append(Target(*target))
        else:
            writes[ord_].pid = pid
    return deleted


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
        created=w.method in CREATES,
    )


class ResourceRow(Protocol):
    """What ``from_row`` reads: an ORM row or a Core row of either table."""

    @property
    def resource_type(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def last_updated(self) -> datetime: ...
    @property
    def patient_id(self) -> str | None: ...
    @property
    def deleted(self) -> bool: ...
    @property
    def content(self) -> str: ...
    @property
    def pid(self) -> int: ...


def from_row(row: ResourceRow, institution_id: str | None = None) -> StoredResource:
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
