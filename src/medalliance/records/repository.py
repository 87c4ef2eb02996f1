"""Every query of the records domain that is not a search (those are in ``search/``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol, cast

import orjson
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from medalliance.access.repository import live_relationship_of
from medalliance.kit.hot import HotStatement
from medalliance.records.dates import NO_DATE
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    FhirResourceVersion,
    ReferenceIndex,
)
from medalliance.records.store import ResourceRow

_resource: Any = FhirResource.__table__
_this_resource = (
    _resource.c.resource_type == bindparam("resource_type"),
    _resource.c.id == bindparam("resource_id"),
)
# Every read, update and delete starts here: prebuilt statements returning plain rows, not
# ORM objects (the ORM's row processing was ~5% of a FHIR request), sent straight to the
# driver (``HotStatement``). Writes go through Core in store.py, so no ORM copy can go stale.
_CURRENT = HotStatement(select(_resource).where(*_this_resource))

# How a write locks the row it changes. Two writers of one resource queue on it; the
# second then sees the first's version (READ COMMITTED re-reads a locked row), so If-Match
# decides who wins. An update or patch takes FOR NO KEY UPDATE, which lets writes that
# refer to the resource (they hold it FOR KEY SHARE, ``store.persist_holding``) go on;
# a delete takes FOR UPDATE, which waits for them and holds them off until it commits.
# A referral attaching a document holds it FOR KEY SHARE ("hold"), as a write referring
# to it does: a delete then waits and finds the referral.
RowLock = Literal["write", "delete", "hold"]
_LOCK_MODES: dict[RowLock, dict[str, bool]] = {
    "write": {"key_share": True},
    "delete": {},
    "hold": {"key_share": True, "read": True},
}
_CURRENT_FOR = {
    lock: HotStatement(
        select(_resource).where(*_this_resource).with_for_update(of=_resource, **mode)
    )
    for lock, mode in _LOCK_MODES.items()
}
# A read, an update or a delete also asks whether the actor's institution cares for the
# resource's patient: asked in the same statement, one round trip instead of two.
_with_related = select(_resource, live_relationship_of(_resource.c.patient_id).label("related"))
_CURRENT_AND_RELATED = HotStatement(_with_related.where(*_this_resource))
_CURRENT_AND_RELATED_FOR = {
    lock: HotStatement(_with_related.where(*_this_resource).with_for_update(of=_resource, **mode))
    for lock, mode in _LOCK_MODES.items()
}


class CurrentRow(ResourceRow, Protocol):
    """The current row of a resource (``fhir_resource``), as ``current`` returns it."""

    @property
    def institution_id(self) -> str | None: ...


class CurrentRowForActor(CurrentRow, Protocol):
    @property
    def related(self) -> bool: ...


def current(
    db: Session, resource_type: str, resource_id: str, *, lock: RowLock | None = None
) -> CurrentRow | None:
    statement = _CURRENT_FOR[lock] if lock else _CURRENT
    params = {"resource_type": resource_type, "resource_id": resource_id}
    return cast(CurrentRow | None, statement.first(db, params))


def current_for_actor(
    db: Session,
    resource_type: str,
    resource_id: str,
    institution_id: str | None,
    now: datetime,
    *,
    lock: RowLock | None = None,
) -> CurrentRowForActor | None:
    """The current row, and whether its patient has a live care relationship with the
    actor's institution (``related``); ``lock``: for an update or patch, a delete, or to
    hold it while the caller's transaction refers to it."""
    statement = _CURRENT_AND_RELATED_FOR[lock] if lock else _CURRENT_AND_RELATED
    params = {
        "resource_type": resource_type,
        "resource_id": resource_id,
        "related_institution": institution_id or "",
        "related_now": now,
    }
    return cast(CurrentRowForActor | None, statement.first(db, params))


def version(db: Session, pid: int, version_id: int) -> FhirResourceVersion | None:
    return db.get(FhirResourceVersion, (pid, version_id))


def by_pids(db: Session, pids: Sequence[int]) -> Sequence[FhirResource]:
    if not pids:
        return []
    return db.scalars(select(FhirResource).where(FhirResource.pid.in_(pids))).all()


@dataclass(frozen=True)
class Versions:
    """The versions a history reads: of one resource (``pid``), of a type or of all; since
    a time; and only those the reader may (a condition, and its bound parameters)."""

    resource_type: str | None
    pid: int | None
    since: datetime | None
    readable: ColumnElement[bool]
    params: Mapping[str, Any]

    def where(self, stmt: Select[Any]) -> Select[Any]:
        v = FhirResourceVersion
        stmt = stmt.where(self.readable)
        if self.pid is not None:
            stmt = stmt.where(v.pid == self.pid)
        if self.resource_type is not None:
            stmt = stmt.where(v.resource_type == self.resource_type)
        if self.since is not None:
            stmt = stmt.where(v.last_updated >= self.since)
        return stmt


def history(
    db: Session,
    versions: Versions,
    *,
    limit: int,
    before: tuple[datetime, int, int] | None = None,
) -> Sequence[FhirResourceVersion]:
    """Versions newest first, ordered by (last_updated, pid, version) descending; ``before``:
    the key of the last version of the previous page (keyset paging, like search)."""
    v = FhirResourceVersion
    stmt = versions.where(select(v))
    if before is not None:
        stamp, last_pid, last_version = before
        stmt = stmt.where(
            or_(
                v.last_updated < stamp,
                and_(
                    v.last_updated == stamp,
                    or_(v.pid < last_pid, and_(v.pid == last_pid, v.version < last_version)),
                ),
            )
        )
    stmt = stmt.order_by(v.last_updated.desc(), v.pid.desc(), v.version.desc())
    return db.scalars(stmt.limit(limit), versions.params).all()


def history_count(db: Session, versions: Versions) -> int:
    counted = versions.where(select(func.count()).select_from(FhirResourceVersion))
    return int(db.scalar(counted, versions.params) or 0)


@dataclass(frozen=True)
class CompartmentScope:
    """What of a patient's compartment $everything asks for (None: no limit)."""

    since: datetime | None = None
    types: frozenset[str] | None = None
    care_from: datetime | None = None
    care_to: datetime | None = None


def _in_compartment(patient_id: str, scope: CompartmentScope) -> list[ColumnElement[bool]]:
    r = FhirResource
    where = [r.patient_id == patient_id, r.deleted.is_(False)]
    if scope.since is not None:
        where.append(r.last_updated >= scope.since)
    if scope.types is not None:
        where.append(r.resource_type.in_(sorted(scope.types)))
    if scope.care_from is not None or scope.care_to is not None:
        where.append(_cared_for_within(scope.care_from, scope.care_to))
    return where


def _cared_for_within(care_from: datetime | None, care_to: datetime | None) -> ColumnElement[bool]:
    """Care dates overlap [care_from, care_to] (R4 Patient-everything): one of the
    resource's clinical ``date`` ranges does, so a stay that began before ``start`` and
    ended after it is in. A resource without a clinical date has nothing to rule it out."""
    d = DateIndex
    of_resource = [d.pid == FhirResource.pid, d.name == "date"]
    overlap = [*of_resource]
    if care_from is not None:
        overlap.append(d.high >= care_from)
    if care_to is not None:
        overlap.append(d.low <= care_to)
    # sort_date is the earliest low of those rows (NO_DATE without any): it spares dated
    # resources the second lookup; the rows still decide, as a Period with only an end
    # has a low of NO_DATE too.
    undated = and_(FhirResource.sort_date == NO_DATE, ~select(d.pid).where(*of_resource).exists())
    return or_(undated, select(d.pid).where(*overlap).exists())


def patient_resources(
    db: Session, patient_id: str, scope: CompartmentScope, *, after_pid: int, limit: int
) -> Sequence[FhirResource]:
    """Live resources of the compartment in creation order, after ``after_pid``."""
    stmt = select(FhirResource).where(
        *_in_compartment(patient_id, scope), FhirResource.pid > after_pid
    )
    return db.scalars(stmt.order_by(FhirResource.pid).limit(limit)).all()


def count_patient_resources(db: Session, patient_id: str, scope: CompartmentScope) -> int:
    stmt = select(func.count()).select_from(FhirResource)
    return int(db.scalar(stmt.where(*_in_compartment(patient_id, scope))) or 0)


def changed_since(
    db: Session,
    resource_type: str,
    after: tuple[datetime, int] | None,
    until: datetime,
    limit: int,
) -> Sequence[FhirResource]:
    """Current rows of a type changed after ``after`` (last_updated, pid), oldest first."""
    stmt = select(FhirResource).where(
        FhirResource.resource_type == resource_type, FhirResource.last_updated <= until
    )
    if after is not None:
        stmt = stmt.where(tuple_(FhirResource.last_updated, FhirResource.pid) > tuple_(*after))
    stmt = stmt.order_by(FhirResource.last_updated, FhirResource.pid).limit(limit)
    return db.scalars(stmt).all()


def by_ids(db: Session, resource_type: str, ids: Sequence[str]) -> Sequence[FhirResource]:
    if not ids:
        return []
    stmt = select(FhirResource).where(
        FhirResource.resource_type == resource_type, FhirResource.id.in_(ids)
    )
    return db.scalars(stmt).all()


def lock_criteria(db: Session, key: str) -> None:
    """Conditional writes of the same criteria, one at a time until the transaction ends:
    two at once would both find no match and both create. PostgreSQL only (SQLite writes
    one transaction at a time)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


# Referrers of this type hold no DELETE: a record about records (a Synthea bundle's one
# Provenance names every resource of the history), not a part of the record that would
# break. Their writes take no hold on their targets either.
HOLDS_NOTHING: Final = "Provenance"

# Every DELETE asks these (prepared: planning cost more than running). The index rows
# carry the referrer's patient; a deleted referrer has none.
_refs: Any = ReferenceIndex.__table__.c
_pointing = (
    _refs.target_id == bindparam("target_id"),
    _refs.target_type == bindparam("target_type"),
    _refs.resource_type != HOLDS_NOTHING,
    _refs.pid != bindparam("other_than"),
)
_of_patient = _refs.patient_id == bindparam("patient_id")
_count_by_type = select(_refs.resource_type, func.count(_refs.pid.distinct()).label("n")).group_by(
    _refs.resource_type
)
_REFERRER_COUNTS = HotStatement(_count_by_type.where(*_pointing, _of_patient))
_ANY_REFERRER_COUNTS = HotStatement(_count_by_type.where(*_pointing))
_REFERRER_CONTENTS = HotStatement(
    select(_resource.c.pid, _resource.c.content)
    .where(
        _resource.c.pid.in_(
            select(_refs.pid).where(*_pointing, _of_patient, _refs.pid > bindparam("after"))
        )
    )
    .order_by(_resource.c.pid)
    .limit(bindparam("most"))
)


def _referrer_params(
    resource_type: str, resource_id: str, patient_id: str | None, other_than: int | None
) -> dict[str, Any]:
    return {
        "target_id": resource_id,
        "target_type": resource_type,
        "patient_id": patient_id,
        "other_than": -1 if other_than is None else other_than,  # pids are positive
    }


def referrer_counts(
    db: Session,
    resource_type: str,
    resource_id: str,
    *,
    patient_id: str | None,
    other_than: int | None,
) -> list[tuple[str, int]]:
    """(type, number) of the live resources whose indexed references point at a resource
    (references to its versions too), ``other_than`` its own row: of its patient's
    record, or of any record for a resource without a patient (a Medication)."""
    params = _referrer_params(resource_type, resource_id, patient_id, other_than)
    statement = _ANY_REFERRER_COUNTS if patient_id is None else _REFERRER_COUNTS
    return [(str(kind), int(n)) for kind, n in statement.rows(db, params)]


def referrer_contents(
    db: Session,
    resource_type: str,
    resource_id: str,
    *,
    patient_id: str,
    other_than: int | None,
    after: int,
    most: int,
) -> list[tuple[int, Any]]:
    """(pid, parsed content) of the next ``most`` such referrers of the patient's record
    after pid ``after``, in pid order."""
    params = {
        **_referrer_params(resource_type, resource_id, patient_id, other_than),
        "after": after,
        "most": most,
    }
    rows = _REFERRER_CONTENTS.rows(db, params)
    return [(int(row.pid), orjson.loads(row.content)) for row in rows]
