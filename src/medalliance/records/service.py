"""The shared record's service: every FHIR interaction, access-checked and audited.

Other domains call these functions (the HL7 v2 listener, the timeline page). Reads of
patient data need a basis (care relationship, consent, break-the-glass, own record) and
leave an audit row; writes need one too, except that a member's own system recording an
Encounter at its institution creates the care relationship it then writes under.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import jsonpatch
from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, DomainError, NotFound, PreconditionFailed
from medalliance.kit.clock import utcnow
from medalliance.kit.http import MAX_INTEGER
from medalliance.records import links, owned, repository, writes
from medalliance.records import merges as _merges  # noqa: F401  (registers its merge step)
from medalliance.records.dates import cursor_instant
from medalliance.records.everything import patient_everything
from medalliance.records.indexing import reference_values
from medalliance.records.models import FhirResource, FhirResourceVersion
from medalliance.records.search import chains, engine
from medalliance.records.search.criteria import Query, parse
from medalliance.records.search.engine import MAX_PID, SearchResult
from medalliance.records.store import CREATES, StoredResource, from_row
from medalliance.records.validation import InvalidResource, require_type
from medalliance.referrals import repository as referral_records

__all__ = [
    "Gone",
    "SearchResult",
    "StoredResource",
    "create",
    "delete",
    "history",
    "patch",
    "patient_everything",
    "read",
    "search",
    "transaction",
    "update",
    "vread",
]


class Gone(DomainError):
    status = 410
    code = "deleted"


# --- reads --------------------------------------------------------------------------------


def read(
    db: Session,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    *,
    now: datetime,
    hold: bool = False,
) -> StoredResource:
    """``hold``: until the transaction ends, a DELETE of the resource waits for it (the
    caller is about to refer to it from elsewhere: a referral's attachment)."""
    lock: repository.RowLock | None = "hold" if hold else None
    row = _current_readable(db, actor, resource_type, resource_id, now, lock=lock)
    if row.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted")
    return from_row(row)


def vread(
    db: Session, actor: Actor, resource_type: str, resource_id: str, version: int, *, now: datetime
) -> StoredResource:
    row = _current_readable(db, actor, resource_type, resource_id, now)
    found = repository.version(db, row.pid, version)
    if found is None:
        raise NotFound(f"{resource_type}/{resource_id} has no version {version}")
    if found.patient_id is not None and found.patient_id != row.patient_id:
        # Filed under another patient then (and moved since): that patient's record is read.
        _check_read(db, actor, found.patient_id, resource_type, resource_id, now, related=None)
    if found.deleted:
        raise Gone(f"version {version} of {resource_type}/{resource_id} is a deletion")
    return from_row(found, row.institution_id)


@dataclass(frozen=True)
class History:
    """A page of versions, the cursor of the next page (None: this is the last), and the
    number of all versions when it is known (the first page holds them all, or
    ``_count=0`` asked for it alone)."""

    items: list[StoredResource]
    next_cursor: str | None
    total: int | None


def history(
    db: Session,
    actor: Actor,
    resource_type: str | None,
    resource_id: str | None,
    *,
    now: datetime,
    since: datetime | None = None,
    count: int = 50,
    cursor: str | None = None,
) -> History:
    """Instance, type or system history, newest first (deletions included, flagged; a
    create has ``created``)."""
    pid = None
    if resource_type is not None:
        require_type(resource_type)
    current_patient = None
    if resource_type is not None and resource_id is not None:
        row = _current_readable(db, actor, resource_type, resource_id, now)
        pid, current_patient = row.pid, row.patient_id
    readable = _readable(actor, FhirResourceVersion.patient_id, now)
    versions = repository.Versions(resource_type, pid, since, readable.condition, readable.params)
    if count == 0:  # as _summary=count: the number, no versions (R4 search 3.1.1.5.6)
        return History([], None, repository.history_count(db, versions))
    rows = repository.history(db, versions, limit=count + 1, before=_history_key(cursor))
    page = rows[:count]
    found = [_history_entry(r) for r in page]
    # An instance's current patient was audited as it was read; versions filed under
    # another patient then (and moved since) are a read of that patient's record too.
    listed = found if pid is None else [f for f in found if f.patient_id != current_patient]
    if listed:
        _audit_results(db, actor, resource_type or "history", listed, now, {})
    last = page[-1] if page else None
    if last is not None and len(rows) > count:
        following = f"{last.last_updated.isoformat()}|{last.pid}|{last.version}"
        return History(found, following, None)
    return History(found, None, len(found) if cursor is None else None)


def _history_entry(row: FhirResourceVersion) -> StoredResource:
    return replace(from_row(row), created=row.method in CREATES, by_put=row.method == "put")


def _history_key(cursor: str | None) -> tuple[datetime, int, int] | None:
    """``<last updated>|<pid>|<version>``; anything else, or numbers no row can have (the
    database would refuse them as out of range), was not issued here."""
    if not cursor:
        return None
    stamp, _, rest = cursor.partition("|")
    pid, _, version = rest.partition("|")
    refused = DomainError("_cursor is not a cursor this server gave", field="_cursor")
    try:
        key = cursor_instant(stamp), int(pid), int(version)
    except ValueError:
        raise refused from None
    if not (0 <= key[1] <= MAX_PID and 0 <= key[2] <= MAX_INTEGER):
        raise refused
    return key


def search(
    db: Session,
    actor: Actor,
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    now: datetime,
    strict: bool = False,
) -> SearchResult:
    """Lenient by default: unknown parameters come back as warnings in the result."""
    require_type(resource_type)
    writes.refuse_foreign_type(resource_type)
    query = chains.resolve_owned(db, parse(resource_type, params, strict=strict))
    result, bases = _run_as(db, actor, query, now)
    _audit_results(db, actor, resource_type, [*result.matches, *result.included], now, bases)
    # Included Patients and registry entries are read (and audited) as their routes do.
    result.included += owned.included(db, actor, result.unresolved, now=now)
    return result


def _run_as(
    db: Session, actor: Actor, query: Query, now: datetime
) -> tuple[SearchResult, dict[str, AccessBasis]]:
    """The query over what the actor may read, and the basis to each patient it names
    (checked first: see ``_named_patients``)."""
    person_of, bases = _named_patients(db, actor, query, now)
    result = engine.run(
        db,
        query,
        _readable(actor, FhirResource.patient_id, now),
        person_of,
        granted=bases,
    )
    return result, bases


def _named_patients(
    db: Session, actor: Actor, query: Query, now: datetime
) -> tuple[Callable[[str], str | None], dict[str, AccessBasis]]:
    """The resolver of patient references to MPI persons, and the access basis to each
    patient the query names: naming a patient one may not read is a refusal (audited),
    not an empty page, nor a probe of what the record holds."""
    persons: dict[str, str | None] = {}  # patient reference -> MPI person, resolved once
    related: dict[str, bool | None] = {}  # person -> live relationship with the institution

    def person_of(value: str) -> str | None:
        if value not in persons:
            # The relationship comes in the same statement as the person (one round trip).
            if actor.institution_id:
                person, related_to = links.person_and_relationship(
                    db, value, actor.institution_id, now
                )
                if person is not None:
                    related[person] = related_to
            else:
                person = links.person_id(db, value)
            persons[value] = person
        return persons[value]

    bases: dict[str, AccessBasis] = {}
    for criterion in query.criteria:
        if criterion.name == "patient" and criterion.param is not None:
            for value in criterion.values:
                person = person_of(value.split("/")[-1])
                if person is not None:
                    bases[person] = access.require_clinical_access(
                        db, actor, person, now, related=related.get(person)
                    )
    return person_of, bases


# --- writes -------------------------------------------------------------------------------


def create(
    db: Session,
    actor: Actor,
    resource: dict[str, Any],
    *,
    now: datetime,
    if_none_exist: str | None = None,
    expected_type: str | None = None,
) -> StoredResource:
    """Create; with ``If-None-Exist`` an existing single match is returned instead."""
    ctx = writes.WriteContext(actor, now)
    if if_none_exist:
        resource_type = expected_type or str(resource.get("resourceType"))
        existing = conditional_match(db, actor, resource_type, if_none_exist, now=now)
        if existing is not None:
            return read(db, actor, resource_type, existing.id, now=now)
    prepared = writes.prepare(db, ctx, resource, method="create", expected_type=expected_type)
    return writes.commit_writes(db, ctx, [prepared])[0]


def update(
    db: Session,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    resource: dict[str, Any],
    *,
    now: datetime,
    if_match: str | None = None,
) -> StoredResource:
    """Update (or create with the client's id); ``If-Match: W/"n"`` guards lost updates."""
    require_type(resource_type)
    writes.refuse_foreign_type(resource_type)
    if not isinstance(resource, dict) or resource.get("id") != resource_id:
        raise DomainError(
            f"the resource id must be {resource_id} (as in the URL)", field=f"{resource_type}.id"
        )
    ctx = writes.WriteContext(actor, now)
    row = repository.current_for_actor(
        db, resource_type, resource_id, actor.institution_id, now, lock="write"
    )
    current = from_row(row) if row is not None else None
    if row is not None and current is not None:
        _check_write_allowed(db, ctx, current, related=row.related)
        if current.patient_id is not None:
            ctx.knows(current.patient_id, related=row.related)
    _check_if_match(if_match, current)
    # Bringing a deleted resource back creates it again (201), as a new version of its id.
    method = "update" if current is not None and not current.deleted else writes.creating("PUT")
    prepared = writes.prepare(
        db,
        ctx,
        resource,
        method=method,
        expected_type=resource_type,
        current=current,
        resource_id=resource_id,
    )
    return writes.commit_writes(db, ctx, [prepared])[0]


def conditional_update(
    db: Session,
    actor: Actor,
    resource_type: str,
    condition: str,
    resource: dict[str, Any],
    *,
    now: datetime,
    if_match: str | None = None,
) -> StoredResource:
    """PUT Type?criteria: no match creates, one match updates, several are a 412. With
    If-Match, no match is a 412: the version it names is not there."""
    require_type(resource_type)
    if not isinstance(resource, dict):  # its id is read before validation runs
        raise InvalidResource("the body must be a JSON object (a FHIR resource)")
    match = _settled_match(db, actor, resource_type, condition, now)
    if match is None:
        _check_if_match(if_match, None)
        if resource.get("id"):
            refuse_unmatched_id(db, resource_type, str(resource["id"]), condition)
            return update(
                db, actor, resource_type, str(resource["id"]), resource, now=now, if_match=if_match
            )
        return create(db, actor, resource, now=now, expected_type=resource_type)
    require_match_id(resource_type, resource, match.id)
    return update(
        db, actor, resource_type, match.id, {**resource, "id": match.id}, now=now, if_match=if_match
    )


def refuse_unmatched_id(db: Session, resource_type: str, resource_id: str, condition: str) -> None:
    """No match, and the body names an id: a create with it (R4), unless a live resource
    has that id, which the criteria did not match: updating it would overwrite an
    unrelated record (R5 answers 409)."""
    row = repository.current(db, resource_type, resource_id)
    if row is not None and not row.deleted:
        raise Conflict(
            f"{resource_type}/{resource_id} exists but does not match {condition}",
            field=f"{resource_type}.id",
        )


def require_match_id(resource_type: str, resource: dict[str, Any], match_id: str) -> None:
    """A conditional update's body may name no id or the match's (R4: another is 409)."""
    if resource.get("id") not in (None, match_id):
        raise Conflict(
            f"the resource id {resource['id']} is not that of the resource the criteria "
            f"matched ({match_id})",
            field=f"{resource_type}.id",
        )


def patch(
    db: Session,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    operations: Any,
    *,
    now: datetime,
    if_match: str | None = None,
) -> StoredResource:
    """JSON Patch (RFC 6902) on the current version; the result is validated like a PUT.

    The actor's right to write the patient's record is checked before the patch is tried:
    a failing ``test`` operation would otherwise tell an outsider what the record holds."""
    require_type(resource_type)
    writes.refuse_foreign_type(resource_type)
    row = repository.current_for_actor(
        db, resource_type, resource_id, actor.institution_id, now, lock="write"
    )
    if row is None:
        raise NotFound(f"{resource_type}/{resource_id} not found")
    current = from_row(row)
    _check_write_allowed(db, writes.WriteContext(actor, now), current, related=row.related)
    if row.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted")
    patched = _patched(current.content, operations)
    return update(db, actor, resource_type, resource_id, patched, now=now, if_match=if_match)


def _patched(content: dict[str, Any], operations: Any) -> Any:
    """The patched document; a patch that cannot apply is named by its operation, never
    by the values it met (the error goes back to the client, and into logs)."""
    try:
        jsonpatch.JsonPatch(operations)  # the whole patch is well formed before any applies
    except jsonpatch.InvalidJsonPatch as exc:
        raise DomainError(
            f"the body is not a JSON Patch (RFC 6902): {exc}", field="patch"
        ) from None
    except (TypeError, ValueError, AttributeError):
        raise DomainError("the body is not a JSON Patch (RFC 6902)", field="patch") from None
    for number, operation in enumerate(operations, start=1):
        try:
            content = jsonpatch.JsonPatch([operation]).apply(content)
        except jsonpatch.JsonPatchTestFailed:
            reason = "found another value"
        except (
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
            LookupError,  # a path that is not in the resource
            TypeError,  # a path into a string
            ValueError,
        ):
            reason = "cannot be applied"
        else:
            continue
        raise DomainError(_failed(number, operation, reason), field="patch")
    return content


def _failed(number: int, operation: dict[str, Any], reason: str) -> str:
    where = operation.get("path") or "/"
    return f"JSON Patch operation {number} ({operation.get('op')} {where}) {reason}"


def delete(
    db: Session,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    *,
    now: datetime,
    if_match: str | None = None,
    check_references: bool = True,
) -> StoredResource | None:
    """Soft delete: a new version marks it deleted; reads then answer 410. With
    ``If-Match``, only the version named (412 otherwise), as an update. A resource that
    live resources still refer to is not deleted (409, ``refuse_if_referenced``); a
    transaction checks that once all its entries are written (``check_references``)."""
    require_type(resource_type)
    writes.refuse_foreign_type(resource_type)
    row = repository.current_for_actor(
        db, resource_type, resource_id, actor.institution_id, now, lock="delete"
    )
    if row is None:
        _check_if_match(if_match, None)
        return None  # idempotent (R4: deleting nothing is a success)
    ctx = writes.WriteContext(actor, now)
    current = from_row(row)
    # Checked before the "already deleted" answer: it must not tell outsiders either.
    _check_write_allowed(db, ctx, current, related=row.related)
    _check_if_match(if_match, current)
    if row.deleted:
        return None
    if check_references:
        refuse_if_referenced(db, current)
    prepared = writes.tombstone(current, ctx)
    return writes.commit_writes(db, ctx, [prepared])[0]


def refuse_if_referenced(db: Session, gone: StoredResource, *, deleting: bool = True) -> None:
    """R4 http.html#delete: a server may refuse to delete what others refer to (409).
    Deleting a visit its results point at would leave them pointing at nothing: the
    timeline could no longer group them, nor a client follow the reference. A document a
    referral carries (attached, or the discharge summary it closed on) stays too.

    Only referrers in the same patient's record count: the deleter may write that record,
    so may read them, and a reference another system planted from another record (writes
    do not check their targets) cannot make this one undeletable. A reference to a
    version (``Type/id/_history/n``) stays good: the version is kept. ``deleting``: the
    resource is not yet tombstoned (a transaction checks after), so its own row is not a
    referrer.

    Race-free on PostgreSQL: the delete holds the row FOR UPDATE, and a write referring
    to it holds it FOR KEY SHARE (``store.persist_holding``), as does a referral attaching
    it (``read(hold=True)``), so one waits for the other:
    this check then sees the referrer committed, or the write sees the deletion and is
    refused. References in contained resources, extensions and elements no search
    parameter reads are indexed too (``indexing.UNSEARCHED``): they hold it as well."""
    reference = gone.reference
    own = gone.pid if deleting else None
    counts = repository.referrer_counts(
        db, gone.resource_type, gone.id, patient_id=gone.patient_id, other_than=own
    )
    if counts and (gone.patient_id is None or _plainly_referred(db, gone, own)):
        # Types are told within the patient's record only: elsewhere, records the
        # deleter may not read.
        listed = (
            ", ".join(f"{n} {kind}" for kind, n in counts)
            if gone.patient_id is not None
            else f"{sum(n for _, n in counts)} resources"
        )
        raise Conflict(
            f"{reference} is still referred to by {listed}: delete those, or change their "
            "references, first"
        )
    if referral_records.count_naming(db, gone.patient_id, reference):
        raise Conflict(
            f"{reference} is carried by a referral (attached, or as its outcome) and stays "
            "in the record: correct it with a new version instead"
        )


# Referrers read at a time when looking for one that refers to more than a version.
_REFERRER_PAGE = 100


def _plainly_referred(db: Session, gone: StoredResource, own: int | None) -> bool:
    """Whether a referrer of the patient's record names the resource itself, not one of
    its versions: read a page at a time, stopping at the first (usually the first row)."""
    assert gone.patient_id is not None
    after = 0
    while True:
        page = repository.referrer_contents(
            db,
            gone.resource_type,
            gone.id,
            patient_id=gone.patient_id,
            other_than=own,
            after=after,
            most=_REFERRER_PAGE,
        )
        if any(gone.reference in reference_values(content) for _, content in page):
            return True
        if len(page) < _REFERRER_PAGE:
            return False
        after = page[-1][0]


def conditional_delete(
    db: Session,
    actor: Actor,
    resource_type: str,
    condition: str,
    *,
    now: datetime,
    if_match: str | None = None,
    check_references: bool = True,
) -> StoredResource | None:
    """DELETE Type?criteria: deletes the one match (R4 "single"); several matches are a
    412 and delete nothing, no match deletes nothing (as deleting a deleted resource)."""
    require_type(resource_type)
    writes.refuse_foreign_type(resource_type)
    match = _settled_match(db, actor, resource_type, condition, now)
    if match is None:
        _check_if_match(if_match, None)
        return None
    return delete(
        db,
        actor,
        resource_type,
        match.id,
        now=now,
        if_match=if_match,
        check_references=check_references,
    )


def _settled_match(
    db: Session, actor: Actor, resource_type: str, condition: str, now: datetime
) -> repository.CurrentRow | None:
    """The one match of a conditional write's criteria, locked, then asked again: an
    update committed since the match (seen once the lock is ours) may have made it stop
    matching, and then it must not be written. None: nothing matches (any longer)."""
    for _ in range(3):
        match = conditional_match(db, actor, resource_type, condition, now=now, field="url")
        if match is None:
            return None
        repository.current_for_actor(
            db, resource_type, match.id, actor.institution_id, now, lock="write"
        )
        again = conditional_match(db, actor, resource_type, condition, now=now, field="url")
        if again is None or again.id == match.id:
            return again
    raise Conflict(f"{resource_type}?{condition} kept changing while it was being written")


def transaction(
    db: Session, actor: Actor, bundle: dict[str, Any], *, now: datetime, base: str | None = None
) -> dict[str, Any]:
    """A transaction (all or nothing) or batch (each entry on its own) Bundle; ``base``:
    the FHIR base URL its GET entries answer with."""
    from medalliance.records import bundles

    return bundles.process(db, actor, bundle, now=now, base=base)


# --- helpers ------------------------------------------------------------------------------


def _current_readable(
    db: Session,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    now: datetime,
    *,
    lock: repository.RowLock | None = None,
) -> repository.CurrentRow:
    """The current row of a resource the actor may read (the read is audited)."""
    require_type(resource_type)
    if resource_type in links.HOMES:
        writes.refuse_foreign_type(resource_type)
    row = repository.current_for_actor(
        db, resource_type, resource_id, actor.institution_id, now, lock=lock
    )
    if row is None:
        raise NotFound(f"{resource_type}/{resource_id} not found")
    _check_read(db, actor, row.patient_id, resource_type, resource_id, now, related=row.related)
    return row


def _check_read(
    db: Session,
    actor: Actor,
    patient_id: str | None,
    resource_type: str,
    resource_id: str,
    now: datetime,
    *,
    related: bool | None,
) -> None:
    if patient_id is None:
        return  # not patient data (e.g. a Medication): any signed-in actor may read it
    basis = access.require_clinical_access(db, actor, patient_id, now, related=related)
    access.audit_read(
        db,
        actor,
        patient_id=patient_id,
        basis=basis,
        resource_type=resource_type,
        resource_id=resource_id,
        immediately=True,  # a read or vread audits this one row
    )


def _check_write_allowed(
    db: Session, ctx: writes.WriteContext, current: StoredResource, *, related: bool | None
) -> None:
    """Changing an existing resource needs a basis for the patient it belongs to now
    (``related``: whether that patient has a live care relationship with the actor's
    institution, when the caller already asked), and to be its author's institution.
    The basis comes first: who wrote what is not told to those who may not read it."""
    if current.patient_id is not None and current.patient_id not in ctx.bases:
        ctx.bases[current.patient_id] = access.require_clinical_access(
            db, ctx.actor, current.patient_id, ctx.now, action="write to", related=related
        )
    writes.require_author(db, ctx.actor, current)


_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def _check_if_match(if_match: str | None, current: StoredResource | None) -> None:
    """``W/"n"`` (or ``"n"``) must name the current version; ``*`` any live one."""
    if if_match is None:
        return
    value = if_match.strip()
    match = _ETAG.match(value)
    if match is None and value != "*":
        raise DomainError(
            f'If-Match {if_match} is not an ETag this server gives (W/"<version>")',
            field="If-Match",
        )
    if match is None:
        matches = current is not None and not current.deleted
    else:
        matches = current is not None and str(current.version) == match.group(1)
    if not matches:
        have = f"version {current.version}" if current else "no resource"
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current {have}", field="If-Match"
        )


def conditional_match(
    db: Session,
    actor: Actor,
    resource_type: str,
    condition: str,
    *,
    now: datetime,
    field: str = "If-None-Exist",
    lock: bool = True,
) -> repository.CurrentRow | None:
    """The single resource matching search criteria among those the actor may read;
    several matches are a 412 as R4 requires. A named patient the actor may not read is
    a 403 (audited), and unreadable resources do not match: the answer must not tell
    what another record holds. ``lock``: for a write, which then holds the criteria until
    its transaction ends."""
    from urllib.parse import parse_qsl, urlencode

    params = parse_qsl(condition.lstrip("?"), keep_blank_values=True)
    query = chains.resolve_owned(db, parse(resource_type, params, strict=True))
    if not query.criteria or query.summary_count:
        # _pretty or _count alone would match every resource of the type.
        raise DomainError(f"{resource_type}?{condition} has no search criteria", field=field)
    if lock:
        repository.lock_criteria(db, f"{resource_type}?{urlencode(sorted(params))}")
    query.count = 2
    result, _ = _run_as(db, actor, query, now)
    if len(result.matches) > 1:
        raise PreconditionFailed(
            f"{resource_type}?{condition} matches more than one resource", field=field
        )
    if not result.matches:
        return None
    return repository.current(db, resource_type, result.matches[0].id)


def _readable(actor: Actor, column: Any, now: datetime) -> engine.Readable:
    """Rows of no patient (a Practitioner's own data) and those of patients the actor
    may read."""
    rule = access.readable_rule(actor, column, now)
    return engine.Readable(_or_of_no_patient(rule.condition, column), rule.params)


@cache
def _or_of_no_patient(condition: ColumnElement[bool], column: Any) -> ColumnElement[bool]:
    return or_(column.is_(None), condition)


def _audit_results(
    db: Session,
    actor: Actor,
    resource_type: str,
    found: list[StoredResource],
    now: datetime,
    known: dict[str, AccessBasis],
) -> None:
    """One audit row per patient whose data a search returned, with its basis (the one
    already established for a patient the search named, else looked up for the page).
    A patient the search named is audited whatever it found: naming them read their
    record, if only to learn that it holds nothing of the kind."""
    patients = list(dict.fromkeys([*known, *(r.patient_id for r in found if r.patient_id)]))
    access.audit_reads(db, actor, patients, known, resource_type=resource_type, now=now)


# --- feeds for derived data (indicators) -------------------------------------------------

# A row committed late may carry an earlier last_updated than one already read; reading only
# rows older than this lag lets such transactions finish before the watermark passes them.
FEED_LAG = timedelta(seconds=5)


def changed_since(
    db: Session, resource_type: str, after: str | None, limit: int, *, now: datetime | None = None
) -> list[StoredResource]:
    """Current versions of a type changed after the opaque position ``after``
    ("<last_updated iso>|<pid>"), oldest first, deleted ones included.

    A system read for aggregates that never show rows to a person: audited once per call,
    not once per patient."""
    until = (now or utcnow()) - FEED_LAG
    rows = repository.changed_since(db, resource_type, _position(after), until, limit)
    if rows:
        audit.record(
            db,
            None,
            "records.feed",
            username="system:indicators",
            resource_type=resource_type,
            detail={"rows": len(rows), "after": after},
        )
    return [from_row(r) for r in rows]


def read_many(db: Session, resource_type: str, ids: Sequence[str]) -> list[StoredResource]:
    """Resources by id for the same derived-data feeds (e.g. an Encounter's Conditions)."""
    return [from_row(r) for r in repository.by_ids(db, resource_type, ids)]


def _position(after: str | None) -> tuple[datetime, int] | None:
    if not after:
        return None
    stamp, _, pid = after.rpartition("|")
    try:
        return datetime.fromisoformat(stamp), int(pid)
    except ValueError as exc:
        raise DomainError(f"feed position {after!r} is not '<iso time>|<pid>'") from exc
