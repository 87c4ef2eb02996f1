"""Writing, sealing and verifying the audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, cast

import orjson
from sqlalchemy import Row, Table, bindparam, insert, text
from sqlalchemy.orm import Session

from medalliance.audit import repository
from medalliance.audit.enums import AccessBasis, Outcome
from medalliance.audit.models import AuditEvent, AuditSeal
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.hot import HotStatement, execute_native, flush_pending, session_connection

GENESIS_HASH = "0" * 64
REFUSED: Final = "access.denied"
_SEALER_LOCK_KEY = 0x4D45_4441  # "MEDA": one sealer at a time on PostgreSQL


def record(
    db: Session,
    actor: Actor | None,
    action: str,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    resource_type: str | None = None,
    resource_id: str | None = None,
    patient_id: str | None = None,
    basis: AccessBasis | None = None,
    detail: dict[str, Any] | None = None,
    username: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (no shared lock is taken). Not flushed
    here: the rows of one request go to the database together, in one batched INSERT."""
    event = AuditEvent(
        **event_row(
            actor,
            action,
            outcome=outcome,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=patient_id,
            basis=basis,
            detail=detail,
            username=username,
            ip=ip,
        )
    )
    db.add(event)
    return event


def record_refusal(
    db: Session,
    actor: Actor | None,
    reason: str,
    *,
    method: str,
    path: str,
    entry: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    patient_id: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """A refused request (403), with the same detail keys wherever it was refused (the
    error handler, a batch's entry, a page that answers 403 itself), so that the log and its
    AuditEvent view read alike: what was asked (``method``; ``path`` without the query,
    which may name a patient; ``entry`` a bundle entry's place, else None) and why not."""
    detail = {"method": method, "path": path, "entry": entry, "reason": reason}
    return record(
        db,
        actor,
        REFUSED,
        outcome=Outcome.DENIED,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        detail=detail,
        ip=ip,
    )


_AUDIT_TABLE = cast(Table, AuditEvent.__table__)
_EVENT_COLUMNS = (
    "occurred_at", "user_id", "username", "role", "institution_id", "client_id", "action",
    "resource_type", "resource_id", "patient_id", "basis", "ip", "outcome", "detail",
)  # fmt: skip
# Every FHIR read and write inserts one: built once, sent straight to the driver.
_INSERT_EVENT = HotStatement(
    insert(_AUDIT_TABLE).values({name: bindparam(name) for name in _EVENT_COLUMNS}).inline()
)


def record_now(
    db: Session,
    actor: Actor | None,
    action: str,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    resource_type: str | None = None,
    resource_id: str | None = None,
    patient_id: str | None = None,
    basis: AccessBasis | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """The same event as ``record``, inserted now (a hot statement), in the caller's
    transaction (it commits or rolls back with it). For a request that audits exactly
    one event (a FHIR read): the ORM unit of work that ``record`` leaves to the commit
    cost more than the row itself (~12% of a FHIR request). Requests that audit several
    events keep ``record``: their rows go in one batched INSERT."""
    row = event_row(
        actor,
        action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        basis=basis,
        detail=detail,
    )
    _INSERT_EVENT.run(db, row)


# Several events in one statement: the rows travel as one JSON array (``orjson``, C) and
# ``jsonb_to_recordset`` types them; timestamps and JSON by name, the rest text.
_TYPED = {"occurred_at": "timestamptz", "detail": "json"}
_RECORDSET_TYPES = ", ".join(f"{name} {_TYPED.get(name, 'text')}" for name in _EVENT_COLUMNS)


def insert_events_sql(param: str, *, basis: str = "basis") -> str:
    """PostgreSQL ``INSERT`` of the events (``event_row``s) in the ``%(param)s`` parameter,
    given as ``events_json``: for a statement of the caller's own (a FHIR write's).
    ``basis``: SQL for each event's basis over the events ``e`` (by default their own)."""
    names = ", ".join(_EVENT_COLUMNS)
    values = ", ".join(basis if name == "basis" else name for name in _EVENT_COLUMNS)
    return (
        f"INSERT INTO audit_event ({names}) SELECT {values} "
        f"FROM jsonb_to_recordset(%({param})s::jsonb) AS e({_RECORDSET_TYPES})"
    )


def events_json(rows: Sequence[dict[str, Any]]) -> str:
    """The parameter of ``insert_events_sql`` (orjson writes datetimes as RFC 3339)."""
    return orjson.dumps(list(rows)).decode()


_INSERT_EVENTS_SQL = insert_events_sql("rows")


def record_all_now(db: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Events worded by ``event_row`` (one per patient a search page showed), inserted now
    in one statement, in the caller's transaction: as ORM rows they cost ~30 µs each at the
    flush, a page of twenty patients more than its query."""
    if not rows:
        return
    raw = session_connection(db).raw
    if raw is None:  # SQLite: one executemany
        db.execute(insert(_AUDIT_TABLE), list(rows))
        return
    flush_pending(db)
    execute_native(raw, _INSERT_EVENTS_SQL, {"rows": events_json(rows)}, fetch=False)


def event_row(
    actor: Actor | None,
    action: str,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    resource_type: str | None = None,
    resource_id: str | None = None,
    patient_id: str | None = None,
    basis: AccessBasis | None = None,
    detail: dict[str, Any] | None = None,
    username: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """The columns of one audit event, for a caller that inserts it with its own rows
    (a FHIR write's event goes in the write's statement: both commit or neither)."""
    return {
        "occurred_at": utcnow(),
        "user_id": actor.user_id if actor else None,
        "username": username or (actor.username if actor else "anonymous"),
        "role": actor.role.value if actor else None,
        "institution_id": actor.institution_id if actor else None,
        "client_id": actor.client_id if actor else None,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "patient_id": patient_id,
        "basis": basis.value if basis else None,
        "ip": ip or (actor.ip if actor else None),
        "outcome": outcome.value,
        "detail": detail or {},
    }


def event_digest(event: AuditEvent | Row[Any]) -> str:
    payload = {
        "id": event.id,
        "occurred_at": event.occurred_at.isoformat(),
        "user_id": event.user_id,
        "username": event.username,
        "role": event.role,
        "institution_id": event.institution_id,
        "client_id": event.client_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "patient_id": event.patient_id,
        "basis": event.basis,
        "ip": event.ip,
        "outcome": event.outcome,
        "detail": event.detail,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain_hash(prev_hash: str, digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{digest}".encode()).hexdigest()


# A transaction holds its event ids for seconds; a gap this old was rolled back.
GAP_LIFETIME = timedelta(days=1)


def seal_pending(db: Session, limit: int = 5000) -> int:
    """Chain the events not sealed yet after the last seal; returns how many were sealed.

    Reads the events after the last sealed one, and those that have since committed under
    ids the sealer passed (``audit_seal_gap``): never the whole log. Events commit out of
    id order (two requests at once), so a passed id may still come."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEALER_LOCK_KEY})
    now = utcnow()
    late = repository.events_in_gaps(db, limit)
    if len(late) < limit:  # every late event read: old gaps may go (a worker down a day)
        repository.expire_gaps(db, now - GAP_LIFETIME)
    last = repository.last_sealed_event_id(db)
    fresh = repository.events_after(db, last, limit - len(late))
    repository.note_gaps(db, passed_runs(last, [e.id for e in fresh]), now)
    head = repository.last_seal(db)
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    seals = []
    for event in [*late, *fresh]:
        seq += 1
        current = chain_hash(prev, event_digest(event))
        seals.append({"seq": seq, "event_id": event.id, "prev_hash": prev, "hash": current})
        prev = current
    repository.add_seals(db, seals)
    return len(seals)


def passed_runs(last: int, found: Sequence[int]) -> list[tuple[int, int]]:
    """The runs (first, last) of ids after ``last`` and before the newest of ``found`` (in
    id order) that have no event."""
    runs = []
    previous = last
    for event_id in found:
        if event_id > previous + 1:
            runs.append((previous + 1, event_id - 1))
        previous = event_id
    return runs


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    unsealed: int
    broken_seq: int | None = None
    broken_event_id: int | None = None
    reason: str | None = None


def verify(db: Session) -> VerifyReport:
    """Walk the chain from the genesis; report the first broken link, or events the sealer
    passed and no longer awaits (``count_lost``): they would never be chained."""
    prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for seal, event in repository.iter_chain(db):
        problem = _link_problem(seal, event, prev, expected_seq)
        if problem:
            return VerifyReport(
                ok=False,
                checked=checked,
                unsealed=repository.count_unsealed(db),
                broken_seq=seal.seq,
                broken_event_id=seal.event_id,
                reason=problem,
            )
        prev, expected_seq, checked = seal.hash, seal.seq + 1, checked + 1
    unsealed = repository.count_unsealed(db)
    lost = repository.count_lost(db)
    if lost:
        reason = f"{lost} events below the last sealed one will never be sealed"
        return VerifyReport(ok=False, checked=checked, unsealed=unsealed, reason=reason)
    return VerifyReport(ok=True, checked=checked, unsealed=unsealed)


def _link_problem(seal: AuditSeal, event: AuditEvent | None, prev: str, seq: int) -> str | None:
    if seal.seq != seq:
        return f"seal {seq} is missing (next is {seal.seq})"
    if seal.prev_hash != prev:
        return "previous-hash link does not match"
    if event is None:
        return f"audit event {seal.event_id} was deleted"
    if chain_hash(prev, event_digest(event)) != seal.hash:
        return f"audit event {event.id} was altered"
    return None


def recent(db: Session, limit: int = 100) -> list[AuditEvent]:
    return list(repository.recent_events(db, limit))
