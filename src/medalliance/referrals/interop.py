"""FHIR interactions on referrals: read and search ServiceRequest/Task, and a member
system's Task update (PUT or JSON Patch with If-Match) run through the same workflow."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import jsonpatch
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, Forbidden, PreconditionFailed, ValidationFailed
from medalliance.kit.fhir import (
    DateRange,
    SearchPage,
    narrowed,
    overlap,
    parse_search,
    require_json_patch,
    search_values,
)
from medalliance.referrals import repository, resources, service
from medalliance.referrals.models import Referral
from medalliance.referrals.repository import ReferralSearch
from medalliance.referrals.schemas import Outcome, TransitionRequest

_PREFIX = re.compile(r"^(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2}(T[0-9:.+\-Z]+)?)$")
_IF_MATCH = re.compile(r'^(W/)?"(\d+)"$')


# What each search reads, by name and type: all of them map onto the one referral row.
# The CapabilityStatement lists them, so what it advertises is what a search reads.
SEARCH_PARAMS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "ServiceRequest": (
        ("patient", "reference"), ("subject", "reference"), ("status", "token"),
        ("requester", "reference"), ("performer", "reference"), ("_lastUpdated", "date"),
    ),
    "Task": (
        ("patient", "reference"), ("subject", "reference"), ("for", "reference"),
        ("status", "token"), ("owner", "reference"), ("requester", "reference"),
        ("_lastUpdated", "date"),
    ),
}  # fmt: skip
_INCLUDES: Final = {"Task": ("Task:focus",), "ServiceRequest": ()}


def read(
    db: Session, actor: Actor, resource_type: str, referral_id: str, *, now: datetime
) -> dict[str, Any]:
    detail = service.get(db, actor, referral_id, now=now)
    return _render(resource_type, detail.referral)


def search(
    db: Session,
    actor: Actor,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    now: datetime,
) -> SearchPage:
    """Scoped to the actor's institution (either side); each page read is audited, and so is
    every search naming a patient."""
    if actor.institution_id is None:
        raise Forbidden("referrals belong to an institution")
    read = [name for name, _ in SEARCH_PARAMS[resource_type]]
    parsed = parse_search(
        params, resource_type, read, strict=strict, includes=_INCLUDES[resource_type]
    )
    page, criteria = parsed.page, _criteria(resource_type, parsed.applied)
    rows = repository.search(
        db, actor.institution_id, criteria, offset=page.offset, limit=page.count + 1
    )
    page_rows = list(rows[: page.count])
    _audit_search(db, actor, resource_type, criteria.patient_ids, page_rows)
    included = []
    if ("_include", "Task:focus") in parsed.applied:
        included = [resources.service_request(r) for r in page_rows]
    total = repository.search_count(db, actor.institution_id, criteria) if parsed.counted else None
    return SearchPage(
        [_render(resource_type, r) for r in page_rows],
        parsed,
        has_more=len(rows) > page.count,
        total=total,
        included=included,
    )


def _audit_search(
    db: Session,
    actor: Actor,
    resource_type: str,
    named: frozenset[str] | None,
    shown: Sequence[Referral],
) -> None:
    """One row for the patients the page shows and those the search named, whatever it
    found: a count of a named patient's referrals reads their record too."""
    patients = {r.patient_id for r in shown} | (named or set())
    if patients:
        audit.record(
            db, actor, "search", resource_type=resource_type, detail={"patients": sorted(patients)}
        )


def _render(resource_type: str, referral: Referral) -> dict[str, Any]:
    if resource_type == "Task":
        return resources.task(referral)
    return resources.service_request(referral)


def _criteria(resource_type: str, params: Sequence[tuple[str, str]]) -> ReferralSearch:
    """Comma-separated values OR-ed, a repeated parameter (or two naming the same thing, as
    ``patient`` and ``subject``) AND-ed: each occurrence narrows the search."""
    found = ReferralSearch()
    for name, value in params:
        values = search_values(value)
        if name == "status":
            statuses = narrowed(found.statuses, _statuses(resource_type, values))
            found = replace(found, statuses=statuses)
        elif name in ("owner", "performer"):
            owners = narrowed(found.owners, _ids_of(values, "Organization"))
            found = replace(found, owners=owners)
        elif name == "requester":
            requesters = narrowed(found.requesters, _ids_of(values, "Organization"))
            found = replace(found, requesters=requesters)
        elif name in ("patient", "subject", "for"):
            patient_ids = narrowed(found.patient_ids, _ids_of(values, "Patient"))
            found = replace(found, patient_ids=patient_ids)
        elif name == "_lastUpdated":
            low, high = overlap((found.updated_from, found.updated_to), _date_range(value))
            found = replace(found, updated_from=low, updated_to=high)
    return found


def _statuses(resource_type: str, wanted: Sequence[str]) -> list[str]:
    table = resources.TASK_STATUS if resource_type == "Task" else resources.SERVICE_REQUEST_STATUS
    unknown = [v for v in wanted if v not in table.values()]
    if unknown:
        raise DomainError(f"unknown {resource_type} status {unknown[0]}", field="status")
    return [ours for ours, theirs in table.items() if theirs in wanted]


def _ids_of(values: Sequence[str], resource_type: str) -> list[str]:
    return [v.removeprefix(f"{resource_type}/") for v in values]


def _date_range(value: str) -> DateRange:
    """The [from, to) a ``_lastUpdated`` value asks (None: open on that side)."""
    match = _PREFIX.match(value)
    if not match:
        raise DomainError(
            "_lastUpdated takes [eq|ge|gt|le|lt]YYYY-MM-DD[Thh:mm:ss]", field="_lastUpdated"
        )
    prefix, raw = match.group(1) or "eq", match.group(2)
    try:
        if match.group(3):
            start = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
            end = start + timedelta(seconds=1)
        else:
            day = date.fromisoformat(raw)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
        start, end = start.astimezone(UTC), end.astimezone(UTC)  # as the column binds them
    except (ValueError, OverflowError) as exc:  # OverflowError: a bound past year 9999 in UTC
        raise DomainError(f"bad _lastUpdated {value}", field="_lastUpdated") from exc
    low = {"eq": start, "ge": start, "gt": end}.get(prefix)
    high = {"eq": end, "le": end, "lt": start}.get(prefix)
    return low, high


# What a Task update may change: its status, and with a change of status the reason, slot
# and outcome that transition reads. Every other element is the referral's own, changed
# through the referral (its API and pages), never here.
_STATUS_CHANGE = frozenset({"statusReason", "input", "output"})


def update_task(
    db: Session,
    actor: Actor,
    referral_id: str,
    body: Any,
    *,
    if_match: str | None,
    patch_type: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Set Task.status (PUT a Task or JSON-Patch it); the workflow decides if it may.
    ``patch_type``: a PATCH's Content-Type (None: a PUT), which must be JSON Patch.

    If-Match must name the current version (412 otherwise, even when nothing would
    change). An element the body changes that this interface cannot is a 422 naming it,
    not dropped: a PUT's elements are compared as sent (one left out is kept), a PATCH's
    result whole (a removal is a change). ``meta`` is the server's."""
    # Visibility first: an outsider must get 404, not learn from a 412 that the Task exists.
    current = service.get(db, actor, referral_id, now=now).referral
    if patch_type is not None:
        require_json_patch(patch_type)
    version = _version(if_match)
    if version != current.version:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {current.version}",
            field="If-Match",
        )
    shown = resources.task(current)
    task = _apply_patch(copy.deepcopy(shown), body) if patch_type is not None else body
    if not isinstance(task, dict) or task.get("resourceType") != "Task":
        raise DomainError("body must be a Task", field="resourceType")
    if task.get("id") not in (None, referral_id):
        raise DomainError("Task.id does not match the URL", field="id")
    status = task.get("status")
    moving = status != shown["status"]
    _refuse_other_changes(task, shown, moving=moving, whole=patch_type is not None)
    if not moving:
        return shown  # nothing to do: the status is already that
    event = resources.EVENT_FOR_TASK_STATUS.get(str(status))
    if event is None:
        raise DomainError(f"Task.status {status!r} cannot be requested", field="status")
    try:
        request = TransitionRequest(
            reason=str((task.get("statusReason") or {}).get("text", "")),
            slot_id=_slot_of(task),
            outcome=_outcome_of(task),
        )
    except (AttributeError, TypeError, ValueError):  # elements not shaped as R4's Task
        raise DomainError(
            "Task.statusReason must be a CodeableConcept, input and output lists of "
            "parameters with a value",
            field="Task",
        ) from None
    try:
        updated = service.transition(
            db, actor, referral_id, event, request, now=now, expected_version=version
        )
    except service.VersionMismatch as exc:
        raise PreconditionFailed(exc.message) from exc
    return resources.task(updated)


def _refuse_other_changes(
    task: dict[str, Any], shown: dict[str, Any], *, moving: bool, whole: bool
) -> None:
    """``whole``: elements missing from ``task`` count as removed (a patched Task)."""
    changeable = {"resourceType", "id", "meta", "status", *(_STATUS_CHANGE if moving else ())}
    names = set(task) | set(shown) if whole else set(task)
    changed = sorted(n for n in names - changeable if task.get(n) != shown.get(n))
    if changed:
        also = "" if moving else "; statusReason, input and output go with a change of status"
        raise ValidationFailed(
            f"Task.{changed[0]} cannot be changed here: a Task update changes Task.status "
            f"(the referral's other details change through the referral){also}",
            field=f"Task.{changed[0]}",
        )


def _version(if_match: str | None) -> int:
    if not if_match:
        raise PreconditionFailed("If-Match with the Task's version is required")
    match = _IF_MATCH.match(if_match.strip())
    if not match:
        raise DomainError('If-Match must look like W/"3"', field="If-Match")
    return int(match.group(2))


def _slot_of(task: dict[str, Any]) -> int | None:
    for item in task.get("input") or []:
        reference = str((item.get("valueReference") or {}).get("reference", ""))
        if reference.startswith("Slot/") and reference[5:].isdigit():
            return int(reference[5:])
    return None


def _outcome_of(task: dict[str, Any]) -> Outcome | None:
    for item in task.get("output") or []:
        reference = (item.get("valueReference") or {}).get("reference")
        if reference:
            return Outcome(reference=str(reference))
        if item.get("valueString"):
            return Outcome(text=str(item["valueString"]))
    return None


def _apply_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 add/replace/remove on the Task (enough for status, reason, input, output).
    A location that must exist and does not (the target of a replace or remove, the
    parent of an add: RFC 6902 4.1-4.3) is an error, never created or ignored."""
    if not isinstance(operations, list):
        raise DomainError("PATCH body must be a JSON Patch array", field="body")
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
            raise DomainError("only add, replace and remove are supported", field=f"[{index}].op")
        if not str(op.get("path", "")).startswith("/"):
            raise DomainError("path must point inside the Task", field=f"[{index}].path")
        try:
            jsonpatch.JsonPatch([op]).apply(document, in_place=True)
        except (
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
            LookupError,
            TypeError,
            ValueError,
        ):
            raise DomainError(
                f"JSON Patch operation {index + 1} cannot be applied", field=f"[{index}].path"
            ) from None
    return document
