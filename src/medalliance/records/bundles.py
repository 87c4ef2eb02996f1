"""Transaction and batch Bundles.

A transaction is all or nothing: ids are assigned up front, ``urn:uuid:`` full URLs and
conditional references (``Practitioner?identifier=system|value``) are resolved before
anything is written, and any failure raises — the request's transaction then rolls back,
so nothing is half-written. Entries of MPI/registry types (Patient, Organization, …) are
resolved to the existing person or institution, never written. A batch runs each entry
in its own savepoint and reports each outcome.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.db import rolled_back_by_contention
from medalliance.errors import Conflict, DomainError, ValidationFailed
from medalliance.kit import fhirjson
from medalliance.kit.fhir import operation_outcome
from medalliance.kit.ids import new_id
from medalliance.records import bundle_reads, links, repository, service, writes
from medalliance.records.dates import instant
from medalliance.records.indexing import references
from medalliance.records.store import Prepared, StoredResource, from_row
from medalliance.records.validation import InvalidResource

log = structlog.get_logger(__name__)

METHODS = ("DELETE", "POST", "PUT", "PATCH", "GET")  # R4 processing order
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})  # a PATCH's: Binary (JSON Patch)
_CONDITIONS = ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")
_LITERAL = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
# A RESTful fullUrl: [root]Type/id, optionally versioned (R4 bundle.html#references).
_RESTFUL = re.compile(
    r"^(https?://.+/)[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


@dataclass
class Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None
    if_match: str | None
    if_none_match: str | None = None  # a GET's conditional read, as its headers would be
    if_modified_since: str | None = None
    target: str | None = None  # "Type/id" this entry resolves to
    deleted: StoredResource | None = None  # what a DELETE entry tombstoned
    skip: bool = False  # resolved to an existing resource: nothing to write
    response: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None  # a GET's result: the response entry's resource

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


def process(
    db: Session, actor: Actor, bundle: Any, *, now: datetime, base: str | None = None
) -> dict[str, Any]:
    """``base``: the server's FHIR base URL (``http://host/fhir``), which the answers of
    GET entries link to, as the same GETs would."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("POST /fhir takes a Bundle", field="Bundle")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise InvalidResource("Bundle.type must be transaction or batch", field="Bundle.type")
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise InvalidResource("Bundle.entry must be a list of entries", field="Bundle.entry")
    if kind == "batch":
        return _batch(db, actor, raw_entries, now, base)
    entries = [_entry(i, raw) for i, raw in enumerate(raw_entries)]
    return _transaction(db, actor, entries, now, base)


def _entry(index: int, raw: Any) -> Entry:
    """An entry's request, its shape checked before anything uses it: a value of the wrong
    JSON type is the client's error (400 naming it), never a server error."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise InvalidResource(f"{where} must be an object", field=where)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidResource(f"{where}.request is required", field=f"{where}.request")
    method = _string(request, "method", f"{where}.request").upper()
    if method not in METHODS:
        raise InvalidResource(
            f"{where}.request.method must be one of {', '.join(METHODS)}",
            field=f"{where}.request.method",
        )
    url = _string(request, "url", f"{where}.request").lstrip("/")
    if not url:
        raise InvalidResource(f"{where}.request.url is required", field=f"{where}.request.url")
    conditions = {name: _string(request, name, f"{where}.request") for name in _CONDITIONS}
    resource = raw.get("resource")
    if (resource is not None or method in _WITH_BODY) and not isinstance(resource, dict):
        raise InvalidResource(
            f"{where}.resource must be a resource (a JSON object)"
            + (f": {method} requires one" if method in _WITH_BODY else ""),
            field=f"{where}.resource",
        )
    return Entry(
        index=index,
        method=method,
        url=url,
        full_url=_string(raw, "fullUrl", where) or None,
        resource=resource,
        if_none_exist=conditions["ifNoneExist"] or None,
        if_match=conditions["ifMatch"] or None,
        if_none_match=conditions["ifNoneMatch"] or None,
        if_modified_since=conditions["ifModifiedSince"] or None,
    )


def _string(node: dict[str, Any], name: str, where: str) -> str:
    """A string element of an entry (absent: empty)."""
    value = node.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidResource(f"{where}.{name} must be a string", field=f"{where}.{name}")
    return value


# --- transaction --------------------------------------------------------------------------


def _transaction(
    db: Session, actor: Actor, entries: list[Entry], now: datetime, base: str | None
) -> dict[str, Any]:
    ctx = writes.WriteContext(actor, now)
    ids: dict[str, str] = {}
    for entry in entries:
        _at(entry, lambda e=entry: _assign(db, actor, now, e, ids))
    _refuse_overlaps(entries)
    deleted = {t for e in entries if e.method == "DELETE" for t in _identities(e)}
    resolver = _References(db, actor, now, ids, deleted)
    for entry in entries:
        if entry.resource is not None and not entry.skip:
            _at(entry, lambda e=entry: resolver.rewrite(e))
    deletes = [e for e in entries if e.method == "DELETE"]
    for entry in deletes:
        _at(entry, lambda e=entry: _delete(db, actor, e, now, check_references=False))
    prepared: list[tuple[Entry, Prepared]] = []
    for entry in (e for e in entries if e.method in ("POST", "PUT") and not e.skip):
        _at(entry, lambda e=entry: prepared.append((e, _prepare(db, ctx, e))))
    try:
        stored = writes.commit_writes(db, ctx, [p for _, p in prepared], audit_each=False)
    except writes.DeletedTarget as exc:
        refused = prepared[exc.position][0]  # the entries are written together: name it
        raise Conflict(f"{refused.where}: {exc.message}", field=refused.where) from None
    for (entry, _), item in zip(prepared, stored, strict=True):
        entry.response = _write_response(item)
    for entry in (e for e in entries if e.method == "PATCH"):
        _at(entry, lambda e=entry: _patch(db, actor, e, now))
    # Once everything is written: what the transaction deletes, it may also update or
    # delete the referrers of, and a PATCH may have added a reference to it.
    for entry in deletes:
        if entry.deleted is not None:  # what it tombstoned: deleting nothing breaks nothing
            check = partial(service.refuse_if_referenced, db, entry.deleted, deleting=False)
            _at(entry, check)
    for entry in (e for e in entries if e.method == "GET"):
        _at(entry, lambda e=entry: _get(db, actor, e, base))
    return _response_bundle("transaction-response", entries)


class UnsupportedEntry(ValidationFailed):
    """A transaction entry asking for what the server does not do (the 405 of the same
    request alone: a write of a type it does not store). The POST /fhir that carries it is
    allowed, and a 405 would say it is not (RFC 9110 15.5.6). A batch entry answers its
    own 405: it has its own method."""

    issue = "not-supported"


def _at(entry: Entry, step: Any) -> None:
    """Run one step for an entry; a failure names the entry and fails the whole bundle."""
    try:
        step()
    except DomainError as exc:
        field = exc.field if exc.field and exc.field.startswith("Bundle") else entry.where
        error = UnsupportedEntry if exc.status == 405 else type(exc)
        raise error(f"{entry.where}: {exc.message}", field=field) from None


def _assign(db: Session, actor: Actor, now: datetime, entry: Entry, ids: dict[str, str]) -> None:
    """Decide the id of every entry before any reference is rewritten."""
    resource = entry.resource
    if entry.method in ("POST", "PUT") and resource is not None:
        resource_type = _typed_as_url(entry, resource)
        if resource_type in links.HOMES:
            entry.target, entry.skip = _owned_target(db, entry, resource_type), True
            entry.response = {"status": "200 OK", "location": entry.target}
        elif entry.method == "POST":
            entry.target = _post_target(db, actor, now, entry, resource_type)
        else:
            entry.target = _put_target(db, actor, now, entry, resource_type)
        if entry.full_url:
            ids[entry.full_url] = entry.target
        if entry.target and not entry.full_url and resource.get("id"):
            ids[f"{resource_type}/{resource['id']}"] = entry.target
    elif entry.method == "DELETE" and (condition := _condition_of(entry.url)) is not None:
        # Its match now, so that another entry touching the same resource is an overlap;
        # the delete itself still goes by the criteria (locked, then asked again).
        resource_type = _url_type(entry.url)
        match = service.conditional_match(db, actor, resource_type, condition, now=now, field="url")
        entry.target = f"{resource_type}/{match.id}" if match is not None else None


def _refuse_overlaps(entries: list[Entry]) -> None:
    """R4 http.html#trules: a transaction fails when two of its deletes, creates, updates
    and patches touch one resource (identities resolved from conditions included: two
    conditional writes of the same criteria that match nothing would create two resources
    matching it), and fullUrl is unique in a bundle (bdl-7)."""
    full_urls: dict[str, Entry] = {}
    identities: dict[str, Entry] = {}
    for entry in entries:
        if entry.full_url:
            first = full_urls.setdefault(entry.full_url, entry)
            if first is not entry:
                raise InvalidResource(
                    f"{entry.where}: fullUrl {entry.full_url} is also the fullUrl of "
                    f"{first.where} (fullUrl must be unique in a bundle)",
                    field=f"{entry.where}.fullUrl",
                )
        for identity in _identities(entry):
            first = identities.setdefault(identity, entry)
            if first is not entry:
                raise InvalidResource(
                    f"{entry.where}: {entry.method} {identity} overlaps {first.where} "
                    f"({first.method}); a transaction touches each resource once",
                    field=f"{entry.where}.request",
                )


def _identities(entry: Entry) -> list[str]:
    """The resources a write entry touches: its target, and the criteria it resolved."""
    if entry.method == "GET":
        return []
    if entry.method in ("DELETE", "PATCH"):
        literal = entry.url if _LITERAL.match(entry.url) else None
        return [t for t in (entry.target or literal,) if t]
    if entry.target is None or entry.target.partition("/")[0] in links.HOMES:
        return []  # MPI/registry entries name existing persons or institutions: no write
    resource_type = entry.target.partition("/")[0]
    found = [entry.target]
    condition = entry.if_none_exist if entry.method == "POST" else _condition_of(entry.url)
    if condition:
        criteria = sorted(parse_qsl(condition.lstrip("?"), keep_blank_values=True))
        found.append(f"{resource_type}?{urlencode(criteria)}")
    return found


def _url_type(url: str) -> str:
    return url.partition("?")[0].partition("/")[0]


def _typed_as_url(entry: Entry, resource: dict[str, Any]) -> str:
    """The resource's type, which must be the one its request.url names (as on /fhir/Type)."""
    resource_type = str(resource.get("resourceType", ""))
    if resource_type != _url_type(entry.url):
        raise InvalidResource(
            f"a {resource_type or 'resource without resourceType'} cannot be sent to "
            f"{entry.method} {entry.url}",
            field=f"{entry.where}.resource.resourceType",
        )
    return resource_type


def _owned_target(db: Session, entry: Entry, resource_type: str) -> str:
    """An MPI/registry resource in a bundle names an existing person or institution."""
    assert entry.resource is not None
    if resource_type not in links.RESOLVABLE:
        raise ValidationFailed(
            f"{resource_type} lives in {links.HOMES[resource_type]}; reference it instead",
            field=f"{entry.where}.resource",
        )
    condition = entry.if_none_exist or _condition_of(entry.url)
    if condition:
        found = links.conditional_owned(db, resource_type, condition, where=entry.where)
        return f"{resource_type}/{found}"
    candidates: set[str] = set()
    for identifier in entry.resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            system = identifier.get("system")
            candidates |= set(
                links.identifier_matches(db, resource_type, system, str(identifier["value"]))
            )
    literal = _LITERAL.match(entry.url)
    if not candidates and literal:
        owned = links.resolve_owned(db, resource_type, literal.group(2))
        candidates = {owned} if owned else set()
    if len(candidates) != 1:
        raise ValidationFailed(
            f"{resource_type} in the bundle matches {len(candidates)} entries of "
            f"{links.HOMES[resource_type]} by identifier (exactly one is required)",
            field=f"{entry.where}.resource.identifier",
        )
    return f"{resource_type}/{candidates.pop()}"


def _condition_of(url: str) -> str | None:
    match = _CONDITIONAL.match(url)
    return match.group(2) if match else None


def _post_target(db: Session, actor: Actor, now: datetime, entry: Entry, resource_type: str) -> str:
    if entry.if_none_exist:
        match = service.conditional_match(db, actor, resource_type, entry.if_none_exist, now=now)
        if match is not None:
            entry.skip = True
            entry.response = {
                "status": "200 OK",
                "location": f"{resource_type}/{match.id}/_history/{match.version}",
            }
            return f"{resource_type}/{match.id}"
    return f"{resource_type}/{new_id()}"


def _put_target(db: Session, actor: Actor, now: datetime, entry: Entry, resource_type: str) -> str:
    literal = _LITERAL.match(entry.url)
    if literal and literal.group(1) == resource_type:
        given = (entry.resource or {}).get("id")
        if given is not None and given != literal.group(2):
            raise InvalidResource(
                f"the resource id {given} is not {literal.group(2)} of the request url {entry.url}",
                field=f"{entry.where}.resource.id",
            )
        return entry.url
    condition = _condition_of(entry.url)
    if condition is None:
        raise InvalidResource(
            f"PUT url {entry.url} must be {resource_type}/id or {resource_type}?criteria"
        )
    match = service.conditional_match(db, actor, resource_type, condition, now=now, field="url")
    given = (entry.resource or {}).get("id")
    if match is not None:
        service.require_match_id(resource_type, entry.resource or {}, match.id)
        return f"{resource_type}/{match.id}"
    if isinstance(given, str) and given:  # no match: a create with the body's id
        service.refuse_unmatched_id(db, resource_type, given, condition)
        return f"{resource_type}/{given}"
    return f"{resource_type}/{new_id()}"


class _References:
    """Rewrites ``urn:uuid:`` and conditional references to ``Type/id``; a reference to a
    resource the transaction deletes (``deleted``) fails it: it would point at nothing."""

    def __init__(
        self,
        db: Session,
        actor: Actor,
        now: datetime,
        ids: dict[str, str],
        deleted: Collection[str] = (),
    ) -> None:
        self.db, self.actor, self.now, self.ids = db, actor, now, ids
        self.deleted = deleted
        self.conditional: dict[str, str] = {}

    def rewrite(self, entry: Entry) -> None:
        assert entry.resource is not None
        entry.resource = self._walk(entry.resource, f"{entry.where}.resource", entry.full_url)

    def _walk(self, node: Any, path: str, full_url: str | None) -> Any:
        if isinstance(node, dict) and node.get("resourceType") == "Bundle":
            # A Bundle stored as a resource (a document): its references resolve among its
            # own entries, however the transaction's fullUrls read; it is stored as sent.
            return node
        if isinstance(node, dict):
            return {
                k: self._live(self._resolve(v, f"{path}.{k}", full_url), v, f"{path}.{k}")
                if k == "reference" and isinstance(v, str)
                else self._walk(v, f"{path}.{k}", full_url)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [self._walk(v, f"{path}[{i}]", full_url) for i, v in enumerate(node)]
        return node

    def _live(self, resolved: str, ref: str, where: str) -> str:
        # A versioned reference (Type/id/_history/n) names a version that stays readable.
        if resolved in self.deleted:
            said = "" if resolved == ref else f" ({ref})"
            raise ValidationFailed(
                f"{where}: {resolved}{said} is deleted by this transaction", field=where
            )
        return resolved

    def _resolve(self, ref: str, where: str, full_url: str | None) -> str:
        absolute = _absolute(ref, full_url)
        if absolute is not None and absolute in self.ids:
            return self.ids[absolute]
        if ref in self.ids:
            return self.ids[ref]
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            raise ValidationFailed(
                f"{where}: {ref} is not the fullUrl of any entry of the bundle", field=where
            )
        match = _CONDITIONAL.match(ref)
        if match is None:
            return ref
        if ref not in self.conditional:
            self.conditional[ref] = self._conditional(match.group(1), match.group(2), where)
        return self.conditional[ref]

    def _conditional(self, resource_type: str, condition: str, where: str) -> str:
        if resource_type in links.RESOLVABLE:
            owned = links.conditional_owned(self.db, resource_type, condition, where=where)
            return f"{resource_type}/{owned}"
        found = service.conditional_match(
            self.db, self.actor, resource_type, condition, now=self.now, field=where, lock=False
        )
        if found is None:
            raise ValidationFailed(
                f"{where}: {resource_type}?{condition} matches nothing", field=where
            )
        return f"{resource_type}/{found.id}"


def _absolute(reference: str, full_url: str | None) -> str | None:
    """A relative ``Type/id`` in an entry whose fullUrl is RESTful, as the absolute URL it
    means there: that fullUrl's root and the reference (R4 bundle.html "Resolving
    references in Bundles"); None for any other reference or fullUrl."""
    root = _RESTFUL.match(full_url or "")
    if root is None or _LITERAL.match(reference) is None:
        return None
    return root.group(1) + reference


def _prepare(db: Session, ctx: writes.WriteContext, entry: Entry) -> Prepared:
    assert entry.target is not None
    resource_type, _, resource_id = entry.target.partition("/")
    current = None
    if entry.method == "PUT":
        row = repository.current(db, resource_type, resource_id, lock="write")
        current = from_row(row) if row is not None else None
        if current is not None:
            service._check_write_allowed(db, ctx, current, related=None)
        service._check_if_match(entry.if_match, current)
    resource = {**(entry.resource or {}), "id": resource_id}
    # A PUT of a deleted resource creates it again (201), as a new version of its id.
    revived = current is not None and current.deleted
    method = "update" if current is not None and not revived else writes.creating(entry.method)
    return writes.prepare(
        db,
        ctx,
        resource,
        method=method,
        expected_type=resource_type,
        current=current,
        resource_id=resource_id,
    )


def _delete(
    db: Session, actor: Actor, entry: Entry, now: datetime, *, check_references: bool = True
) -> None:
    literal = _LITERAL.match(entry.url)
    condition = _condition_of(entry.url)
    if literal is not None:
        entry.deleted = service.delete(
            db,
            actor,
            literal.group(1),
            literal.group(2),
            now=now,
            if_match=entry.if_match,
            check_references=check_references,
        )
    elif condition is not None:
        gone = service.conditional_delete(
            db,
            actor,
            _url_type(entry.url),
            condition,
            now=now,
            if_match=entry.if_match,
            check_references=check_references,
        )
        entry.deleted = gone
        deleted = gone.reference if gone is not None else None
        if deleted != entry.target:
            # The transaction was checked (overlaps, references) against the first match.
            raise Conflict(
                f"DELETE {entry.url} matched {entry.target or 'nothing'} when the "
                f"transaction was checked and {deleted or 'nothing'} when it ran"
            )
    else:
        raise InvalidResource(f"DELETE url {entry.url} must be Type/id or Type?criteria")
    entry.response = {"status": "204 No Content"}


def _patch(db: Session, actor: Actor, entry: Entry, now: datetime) -> None:
    literal = _LITERAL.match(entry.url)
    if literal is None or entry.resource is None or entry.resource.get("resourceType") != "Binary":
        raise InvalidResource(
            "PATCH entries need url Type/id and a Binary holding a JSON Patch (FHIRPath "
            "Patch, a Parameters, is not supported)",
            field=f"{entry.where}.resource",
        )
    data = str(entry.resource.get("data", ""))
    try:
        operations = fhirjson.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are too
        raise InvalidResource(
            "Binary.data must be a base64-encoded JSON Patch", field=f"{entry.where}.resource.data"
        ) from None
    item = service.patch(
        db, actor, literal.group(1), literal.group(2), operations, now=now, if_match=entry.if_match
    )
    entry.response = _write_response(item)


def _get(db: Session, actor: Actor, entry: Entry, base: str | None) -> None:
    """As the same GET under /fhir answers it, whatever route serves the type."""
    answer = bundle_reads.answer(
        db,
        actor,
        entry.url,
        base=base,
        if_none_match=entry.if_none_match,
        if_modified_since=entry.if_modified_since,
    )
    entry.answer, entry.response = answer.resource, answer.response


def _write_response(item: StoredResource) -> dict[str, Any]:
    return {
        "status": "201 Created" if item.created else "200 OK",
        "location": f"{item.resource_type}/{item.id}/_history/{item.version}",
        "etag": item.etag,
        "lastModified": instant(item.last_updated),
    }


def _response_bundle(kind: str, entries: list[Entry]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [_answered(e) for e in entries]}


def _answered(entry: Entry) -> dict[str, Any]:
    """A response entry: what a GET returned is the entry's ``resource`` (R4 has no
    ``response.resource``); ``response`` holds status, location, etag, lastModified."""
    answered: dict[str, Any] = {} if entry.answer is None else {"resource": entry.answer}
    return {**answered, "response": entry.response or {"status": "200 OK"}}


# --- batch --------------------------------------------------------------------------------


def _batch(
    db: Session, actor: Actor, raw_entries: list[Any], now: datetime, base: str | None
) -> dict[str, Any]:
    """Each entry on its own (R4 3.1.0.11.2): a malformed one, as one that fails, gets its
    error in its response and the others still run. An unexpected error is a 500 of its
    entry alone (logged): its savepoint is rolled back, so it leaves nothing behind."""
    responses: list[dict[str, Any]] = []
    full_urls = _full_urls(raw_entries)
    for index, raw in enumerate(raw_entries):
        where = f"Bundle.entry[{index}]"
        savepoint = db.begin_nested()
        try:
            entry = _entry(index, raw)
            _refuse_dependencies(entry, full_urls)
            _batch_entry(db, actor, entry, now, base)
            savepoint.commit()
            responses.append(_answered(entry))
        except DomainError as exc:
            savepoint.rollback()
            if exc.status == 403:
                _audit_refused_entry(db, actor, where, raw, exc)
            responses.append(_failed(exc.status, f"{where}: {exc.message}", exc.field, exc.issue))
        except Exception as exc:
            savepoint.rollback()
            responses.append(_unexpected(where, exc))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": responses}


def _unexpected(where: str, exc: Exception) -> dict[str, Any]:
    """An entry PostgreSQL chose to break a deadlock (or a serialization failure) is a 409
    saying to send it again, as the same request alone would be: its savepoint's rollback
    left nothing of it. Any other error is the server's (500, the detail in the log)."""
    sqlstate = rolled_back_by_contention(exc)
    if sqlstate is not None:
        log.warning("batch_entry_rolled_back", entry=where, sqlstate=sqlstate)
        return _failed(
            409,
            f"{where}: another request was changing the same resources at the same time; "
            "nothing of this entry was stored: send it again",
            code="conflict",
        )
    log.exception("batch_entry_failed", entry=where)
    return _failed(500, f"{where}: the server failed to process this entry")


def _failed(
    status: int, message: str, expression: str | None = None, code: str | None = None
) -> dict[str, Any]:
    outcome = operation_outcome(status, message, expression=expression, code=code)
    return {"response": {"status": f"{status}", "outcome": outcome}}


def _full_urls(raw_entries: list[Any]) -> dict[str, int]:
    """The index of the entry of each fullUrl."""
    found: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        if isinstance(full_url, str):
            found.setdefault(full_url, index)
    return found


def _refuse_dependencies(entry: Entry, full_urls: dict[str, int]) -> None:
    """R4 3.1.0.11.1: a batch's entries SHALL NOT depend on each other, and nothing
    resolves a reference to another entry: stored as sent, it would point at nothing (or
    at whatever the server holds at that address). Such an entry fails alone."""
    if entry.resource is None or entry.method not in ("POST", "PUT"):
        return
    for where, reference, bundled in references(entry.resource, f"{entry.where}.resource"):
        if bundled:
            continue  # a Bundle held as a resource: its references are its own entries'
        absolute = _absolute(reference, entry.full_url)
        named = reference if absolute is None else f"{reference} ({absolute})"
        other = full_urls.get(reference, full_urls.get(absolute or ""))
        if other is not None and other != entry.index:
            raise ValidationFailed(
                f"{where}: {named} is the fullUrl of Bundle.entry[{other}]; the entries of a "
                "batch are independent of each other (a transaction resolves such references)",
                field=where,
            )
        if reference.startswith(writes.BUNDLE_LOCAL):
            raise ValidationFailed(
                f"{where}: {reference} is the fullUrl of no entry and names no stored resource",
                field=where,
            )


def _audit_refused_entry(db: Session, actor: Actor, where: str, raw: Any, exc: DomainError) -> None:
    """A refused entry, recorded as the error handler records a refused request (the
    batch itself succeeds, so no handler sees it); after its savepoint's rollback. Its
    path is the one the entry's request would have had on its own."""
    request = raw.get("request") if isinstance(raw, dict) else None
    request = request if isinstance(request, dict) else {}
    url = str(request.get("url", "")).lstrip("/").partition("?")[0]
    method = str(request.get("method", "")).upper()
    audit.record_refusal(db, actor, exc.message, method=method, path=f"/fhir/{url}", entry=where)


def _batch_entry(db: Session, actor: Actor, entry: Entry, now: datetime, base: str | None) -> None:
    if entry.method == "POST":
        assert entry.resource is not None
        item = service.create(
            db,
            actor,
            entry.resource,
            now=now,
            if_none_exist=entry.if_none_exist,
            expected_type=_url_type(entry.url),
        )
        entry.response = _write_response(item)
    elif entry.method == "PUT":
        assert entry.resource is not None
        literal = _LITERAL.match(entry.url)
        if literal:
            item = service.update(
                db,
                actor,
                literal.group(1),
                literal.group(2),
                entry.resource,
                now=now,
                if_match=entry.if_match,
            )
        else:
            resource_type, _, condition = entry.url.partition("?")
            item = service.conditional_update(
                db,
                actor,
                resource_type,
                condition,
                entry.resource,
                now=now,
                if_match=entry.if_match,
            )
        entry.response = _write_response(item)
    elif entry.method == "DELETE":
        _delete(db, actor, entry, now)
    elif entry.method == "PATCH":
        _patch(db, actor, entry, now)
    else:
        _get(db, actor, entry, base)
