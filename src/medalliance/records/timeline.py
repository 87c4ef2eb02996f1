"""The patient timeline: one chronological view of everything the consortium holds for a
person, whoever wrote it, grouped by encounter, with the member institution on every item.

Access is decided here once (care relationship, consent, break-the-glass, own record); the
records are read through ``records.service.patient_everything``, which audits the read with
its basis. A refusal is audited here and raised as ``TimelineRefused``, which tells the page
whether the actor may break the glass.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Forbidden
from medalliance.patients import service as patients
from medalliance.patients.models import Person
from medalliance.records import service as records
from medalliance.records.store import StoredResource
from medalliance.registry import service as registry

MAX_ITEMS: Final = 2000
CRITICAL_FLAGS: Final = frozenset({"HH", "LL", "AA"})
# Interpretation codes as Chinese lab reports print them; normal (N) prints nothing.
FLAG_MARKS: Final = {"H": "↑", "HU": "↑", "HH": "↑↑", "L": "↓", "LU": "↓", "LL": "↓↓", "N": ""}
IMAGING_SECTIONS: Final = frozenset(
    {"RAD", "CT", "NMR", "US", "RX", "VUS", "NMS", "CUS", "OUS", "XRC", "imaging"}
)


class Kind(StrEnum):
    VISITS = "visits"
    DIAGNOSES = "diagnoses"
    LABS = "labs"
    IMAGING = "imaging"
    MEDICATION = "medication"
    DOCUMENTS = "documents"
    OTHER = "other"


_KIND_BY_TYPE: Final = {
    "Encounter": Kind.VISITS,
    "EpisodeOfCare": Kind.VISITS,
    "Condition": Kind.DIAGNOSES,
    "AllergyIntolerance": Kind.DIAGNOSES,
    "ImagingStudy": Kind.IMAGING,
    "Specimen": Kind.LABS,
    "MedicationRequest": Kind.MEDICATION,
    "MedicationStatement": Kind.MEDICATION,
    "MedicationDispense": Kind.MEDICATION,
    "MedicationAdministration": Kind.MEDICATION,
    "Immunization": Kind.MEDICATION,
    "DocumentReference": Kind.DOCUMENTS,
    "Composition": Kind.DOCUMENTS,
}
# Where each type keeps its clinical date, in order of preference.
_DATE_PATHS: Final = (
    ("period", "start"),
    ("effectiveDateTime",),
    ("effectivePeriod", "start"),
    ("issued",),
    ("onsetDateTime",),
    ("recordedDate",),
    ("authoredOn",),
    ("started",),
    ("performedDateTime",),
    ("performedPeriod", "start"),
    ("occurrenceDateTime",),
    ("date",),
    ("created",),
    ("meta", "lastUpdated"),
)
_ENCOUNTER_CLASS: Final = {"IMP": "Inpatient", "AMB": "Outpatient", "EMER": "Emergency"}


class TimelineRefused(Forbidden):
    """No basis to read this person's record; the page offers emergency access if allowed."""

    def __init__(self, message: str, *, person_id: str, may_break_glass: bool) -> None:
        super().__init__(message)
        self.person_id = person_id
        self.may_break_glass = may_break_glass


@dataclass(frozen=True)
class Item:
    kind: Kind
    reference: str
    when: datetime | None
    title: str
    detail: str
    status: str
    institution_id: str
    institution_name: str
    critical: bool = False
    encounter: str | None = None


@dataclass
class Group:
    """One encounter with what was recorded in it, or a single item outside any encounter."""

    head: Item
    items: list[Item] = field(default_factory=list)

    @property
    def is_encounter(self) -> bool:
        return self.head.kind == Kind.VISITS


@dataclass(frozen=True)
class MemberCount:
    institution_id: str
    name: str
    items: int


@dataclass(frozen=True)
class Timeline:
    person: Person
    basis: AccessBasis
    kind: Kind | None
    groups: list[Group]
    counts: dict[Kind, int]
    members: list[MemberCount]
    truncated: bool


def patient_timeline(
    db: Session, actor: Actor, person_id: str, *, kind: Kind | None, now: datetime
) -> Timeline:
    person = patients.get_person(db, person_id)  # follows merges; 404 for an unknown id
    basis = access.clinical_basis(db, actor, person.id, now)
    if basis is None:
        raise _refuse(db, actor, person.id)
    # $everything heads its first page with the Patient (one of its entries): the page's
    # title shows the person.
    found = records.patient_everything(db, actor, person.id, now=now, count=MAX_ITEMS + 1)
    shown = [r for r in found.matches if r.resource_type != "Patient"]
    names = _institution_names(db, shown)
    items = [_item(r, names) for r in shown]
    return Timeline(
        person=person,
        basis=basis,
        kind=kind,
        groups=_groups(items, kind),
        counts={k: sum(1 for i in items if i.kind == k) for k in Kind},
        members=_members(items),
        truncated=found.next_cursor is not None,
    )


def _refuse(db: Session, actor: Actor, person_id: str) -> TimelineRefused:
    """The refusal is audited here: the page answers 403 without raising, so it commits."""
    message = "no care relationship, consent or emergency access to read this patient's record"
    audit.record_refusal(
        db,
        actor,
        message,
        method="GET",
        path=f"/patients/{person_id}/timeline",
        resource_type="Patient",
        resource_id=person_id,
        patient_id=person_id,
    )
    may = actor.role in access.BREAK_GLASS_ROLES and actor.user_id is not None
    return TimelineRefused(message, person_id=person_id, may_break_glass=may)


def _institution_names(db: Session, found: Iterable[StoredResource]) -> dict[str, str]:
    ids = sorted({r.institution_id for r in found if r.institution_id})
    return {i: inst.name for i, inst in registry.institutions_by_ids(db, ids).items()}


# --- items ------------------------------------------------------------------------------


def kind_of(resource: dict[str, Any]) -> Kind:
    resource_type = resource.get("resourceType", "")
    if resource_type in ("Observation", "DiagnosticReport"):
        codes = {
            c.get("code")
            for category in resource.get("category", [])
            for c in category.get("coding", [])
        }
        return Kind.IMAGING if codes & IMAGING_SECTIONS else Kind.LABS
    return _KIND_BY_TYPE.get(resource_type, Kind.OTHER)


def clinical_time(resource: dict[str, Any]) -> datetime | None:
    for path in _DATE_PATHS:
        value: Any = resource
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return _parse_time(value)
    return None


def _parse_time(value: str) -> datetime | None:
    """FHIR dates may be partial (2026, 2026-11); local midnight of their first day."""
    text = value if "T" in value else (value + "-01-01"[len(value) - 4 :])[:10]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return moment


def _item(stored: StoredResource, names: dict[str, str]) -> Item:
    resource = stored.content
    institution = stored.institution_id or ""
    title, detail, critical = _describe(resource)
    return Item(
        kind=kind_of(resource),
        reference=stored.reference,
        when=clinical_time(resource),
        title=title,
        detail=detail,
        status=str(resource.get("status") or _concept(resource.get("clinicalStatus"))),
        institution_id=institution,
        institution_name=names.get(institution, institution),
        critical=critical,
        encounter=_encounter_of(resource),
    )


def _encounter_of(resource: dict[str, Any]) -> str | None:
    ref = (resource.get("encounter") or {}).get("reference")
    context = resource.get("context")
    if ref is None and isinstance(context, dict):
        encounters = context.get("encounter") or []
        ref = encounters[0].get("reference") if encounters else None
    return str(ref) if ref else None


def _concept(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _describe(resource: dict[str, Any]) -> tuple[str, str, bool]:
    """(title, detail, critical) in the words the clinician reads."""
    resource_type = resource.get("resourceType", "")
    if resource_type == "Encounter":
        code = (resource.get("class") or {}).get("code", "")
        reasons = ", ".join(_concept(c) for c in resource.get("reasonCode", []))
        people = ", ".join(
            p.get("individual", {}).get("display", "") for p in resource.get("participant", [])
        )
        return (
            _ENCOUNTER_CLASS.get(code, "Visit"),
            " · ".join(x for x in (reasons, people) if x),
            False,
        )
    if resource_type == "Observation":
        return _observation(resource)
    if resource_type == "DiagnosticReport":
        detail = resource.get("conclusion") or ""
        return _concept(resource.get("code")), str(detail), False
    if resource_type == "Condition":
        codes = [c.get("code", "") for c in (resource.get("code") or {}).get("coding", [])]
        return _concept(resource.get("code")), " ".join(c for c in codes if c), False
    if resource_type.startswith("Medication"):
        medication = _concept(resource.get("medicationCodeableConcept"))
        dosage = [d.get("text", "") for d in resource.get("dosageInstruction", [])]
        return medication or resource_type, "; ".join(d for d in dosage if d), False
    if resource_type == "DocumentReference":
        title = _concept(resource.get("type")) or str(resource.get("description") or "")
        detail = _inline_text(resource) or str(resource.get("description") or "")
        return title or resource_type, detail, False
    title = _concept(resource.get("code")) or str(
        resource.get("description") or resource.get("title") or ""
    )
    return title or resource_type, "", False


def _observation(resource: dict[str, Any]) -> tuple[str, str, bool]:
    flags = [
        c.get("code", "") for i in resource.get("interpretation", []) for c in i.get("coding", [])
    ]
    value = ""
    if "valueQuantity" in resource:
        q = resource["valueQuantity"]
        value = f"{q.get('comparator', '')}{_number(q.get('value'))} {q.get('unit', '')}".strip()
    elif "valueString" in resource:
        value = str(resource["valueString"])
    elif "valueCodeableConcept" in resource:
        value = _concept(resource["valueCodeableConcept"])
    marks = " ".join(m for m in (FLAG_MARKS.get(f, f) for f in flags) if m)
    ranges = [_range(r) for r in resource.get("referenceRange", [])]
    shown_range = f"({ranges[0]})" if ranges and ranges[0] else ""
    detail = " ".join(x for x in (value, marks, shown_range) if x)
    return _concept(resource.get("code")), detail, bool(set(flags) & CRITICAL_FLAGS)


def _range(reference_range: dict[str, Any]) -> str:
    """As a lab report prints it: its text, else low-high."""
    if reference_range.get("text"):
        return str(reference_range["text"])
    low, high = (reference_range.get(end, {}).get("value") for end in ("low", "high"))
    if low is None and high is None:
        return ""
    if high is None:
        return f"≥{_number(low)}"
    return f"≤{_number(high)}" if low is None else f"{_number(low)}-{_number(high)}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- grouping ---------------------------------------------------------------------------


def _sort_key(item: Item) -> datetime:
    return item.when or datetime.min.replace(tzinfo=ZoneInfo("UTC"))


def _groups(items: list[Item], kind: Kind | None) -> list[Group]:
    """Encounters with their items, and loose items, newest first; filtered by kind."""
    encounters = {
        i.reference: Group(i)
        for i in items
        if i.kind == Kind.VISITS and i.reference.startswith("Encounter/")
    }
    loose: list[Group] = []
    for item in items:
        if item.reference in encounters:
            continue
        if kind is not None and item.kind != kind:
            continue
        if item.encounter in encounters:
            encounters[item.encounter].items.append(item)
        else:
            loose.append(Group(item))
    shown = [g for g in encounters.values() if kind in (None, Kind.VISITS) or g.items]
    groups = shown + loose
    for group in groups:
        group.items.sort(key=_sort_key, reverse=True)
    groups.sort(key=lambda g: _sort_key(g.head), reverse=True)
    return groups


def _members(items: list[Item]) -> list[MemberCount]:
    counts: dict[str, MemberCount] = {}
    for item in items:
        known = counts.get(item.institution_id)
        total = known.items + 1 if known else 1
        counts[item.institution_id] = MemberCount(item.institution_id, item.institution_name, total)
    return sorted(counts.values(), key=lambda m: -m.items)


_MAX_INLINE_TEXT = 2000


def _inline_text(document: dict[str, Any]) -> str:
    """The text of a plain-text attachment carried inline (a discharge summary, a consult
    note), so the reader sees what was written, not only that a document exists."""
    for content in document.get("content") or []:
        attachment = (content.get("attachment") or {}) if isinstance(content, dict) else {}
        if not str(attachment.get("contentType", "")).startswith("text/plain"):
            continue
        try:
            text = base64.b64decode(str(attachment.get("data", ""))).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if text.strip():
            return text.strip()[:_MAX_INLINE_TEXT]
    return ""
