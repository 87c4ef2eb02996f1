"""The master patient index service: what other domains and the edges call.

Other domains use ``resolve_person_id``, ``get_person`` and ``patient_resource``. Reads of
demographics by staff are identification (audited per patient); residents read only their
own record. Registration, matching and merging live in ``registration`` and ``merges``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.access.enums import ConsentScope, ConsentStatus
from medalliance.access.models import BreakGlassGrant, Consent
from medalliance.audit import fhir as audit_fhir
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import NotFound
from medalliance.kit.fhir import Page
from medalliance.kit.ids import new_id
from medalliance.patients import merges, registration, repository
from medalliance.patients.enums import (
    INSURANCE_CARD_SYSTEM,
    MRN_SYSTEM_PREFIX,
    RESIDENT_ID_SYSTEM,
    ReviewDecision,
    ReviewStatus,
)
from medalliance.patients.identity import ResidentIdError, parse_resident_id
from medalliance.patients.matching import Demographics
from medalliance.patients.models import LocalRecord, MatchReview, Person, PersonMerge
from medalliance.patients.registration import Candidate, Registration
from medalliance.patients.repository import Equals, NameIs, PersonFilter
from medalliance.patients.resources import patient_resource
from medalliance.patients.schemas import LocalRecordIn
from medalliance.registry import service as registry_service

__all__ = ["PersonFilter", "patient_resource"]

# Staff looking a person up to identify them is its own basis; audit.enums does not name it
# yet, so fall back to administration until it does (the purpose is in the event detail).
IDENTIFICATION: AccessBasis = getattr(AccessBasis, "IDENTIFICATION", AccessBasis.ADMINISTRATION)
IDENTIFYING_ROLES = frozenset(
    {
        Role.ADMIN,
        Role.COORDINATOR,
        Role.DOCTOR,
        Role.SPECIALIST,
        Role.READER,
        Role.FAMILY_DOCTOR,
        Role.SYSTEM,
    }
)


def resolve_person_id(db: Session, person_id: str) -> str:
    """The surviving golden id, following merges; NotFound for an unknown id. Same walk
    as ``get_person``, on (id, merged_into_id) pairs rather than loaded persons."""
    link = repository.person_link(db, person_id)
    if link is None:
        raise NotFound(f"patient {person_id} not found")
    for _ in range(repository.MAX_MERGE_DEPTH):
        if link[1] is None:
            return link[0]
        survivor = repository.person_link(db, link[1])
        if survivor is None:
            break
        link = survivor
    return link[0]


def resolve_person_and_relationship(
    db: Session, person_id: str, institution_id: str, now: datetime
) -> tuple[str, bool | None]:
    """``resolve_person_id``, and whether the surviving person has a live care
    relationship with the institution (None when a merge was followed: not asked)."""
    link = repository.person_link_and_relationship(db, person_id, institution_id, now)
    if link is None:
        raise NotFound(f"patient {person_id} not found")
    found, merged_into, related = link
    if merged_into is None:
        return found, related
    return resolve_person_id(db, merged_into), None


def get_person(db: Session, person_id: str) -> Person:
    """The surviving golden person of ``person_id`` (itself unless it was merged)."""
    person = repository.person(db, person_id)
    if person is None:
        raise NotFound(f"patient {person_id} not found")
    for _ in range(repository.MAX_MERGE_DEPTH):
        if person.merged_into_id is None:
            return person
        survivor = repository.person(db, person.merged_into_id)
        if survivor is None:
            break
        person = survivor
    return person


# --- reads --------------------------------------------------------------------------------


def read_patient(db: Session, actor: Actor, person_id: str) -> Person:
    """The person as stored (a merged one too: it answers with link replaced-by); audited."""
    person = repository.person(db, person_id)
    if person is None or not _may_read(db, actor, person):
        raise NotFound(f"patient {person_id} not found")
    _audit_reads(db, actor, [person.id], "Patient")
    return person


def search_patients(
    db: Session, actor: Actor, criteria: PersonFilter, page: Page
) -> tuple[Sequence[Person], int]:
    if actor.role == Role.RESIDENT:
        own = [get_person(db, actor.person_id).id] if actor.person_id else []
        criteria.ids = own if criteria.ids is None else [i for i in criteria.ids if i in own]
    persons, total = repository.search_persons(db, criteria, offset=page.offset, limit=page.count)
    _audit_reads(db, actor, [p.id for p in persons], "Patient")
    return persons, total


def identifier_person_ids(db: Session, system: str | None, value: str) -> list[str]:
    """Surviving persons carrying an identifier (``system|value`` search)."""
    if system == RESIDENT_ID_SYSTEM:
        try:
            value = parse_resident_id(value).number
        except ResidentIdError:
            return []
        owner = repository.person_by_id_number(db, value)
        ids = [owner.id] if owner else []
    elif system and system.startswith(MRN_SYSTEM_PREFIX):
        ids = repository.person_ids_by_identifier(db, value, system[len(MRN_SYSTEM_PREFIX) :])
    elif system in (None, "", INSURANCE_CARD_SYSTEM):
        ids = repository.person_ids_by_identifier(db, value, None)
    else:
        return []
    return sorted({resolve_person_id(db, i) for i in ids})


def match_patients(
    db: Session, actor: Actor, d: Demographics, *, count: int, only_certain: bool
) -> list[Candidate]:
    """$match: candidates with score and grade; each returned person is an audited read."""
    if d.id_number:
        d = Demographics(
            name=d.name,
            sex=d.sex,
            birth_date=d.birth_date,
            phone=d.phone,
            address=d.address,
            id_number=registration.validated_id_number(
                d.id_number, sex=d.sex, birth_date=d.birth_date
            ),
        )
    candidates = registration.match(db, d, count=count, only_certain=only_certain)
    _audit_reads(db, actor, [c.person.id for c in candidates], "Patient", action="patient.match")
    return candidates


def _may_read(db: Session, actor: Actor, person: Person) -> bool:
    if actor.role == Role.RESIDENT:
        return actor.person_id is not None and resolve_person_id(
            db, actor.person_id
        ) == resolve_person_id(db, person.id)
    return actor.role in IDENTIFYING_ROLES


def _audit_reads(
    db: Session, actor: Actor, person_ids: Sequence[str], resource_type: str, action: str = "read"
) -> None:
    basis = AccessBasis.OWN_RECORD if actor.role == Role.RESIDENT else IDENTIFICATION
    for person_id in person_ids:
        audit.record(
            db,
            actor,
            action,
            resource_type=resource_type,
            resource_id=person_id,
            patient_id=person_id,
            basis=basis,
            detail={"purpose": "identification"} if basis != AccessBasis.OWN_RECORD else {},
        )


# --- writes -------------------------------------------------------------------------------


def register_local_record(
    db: Session,
    actor: Actor | None,
    data: LocalRecordIn,
    *,
    new_person_id: Callable[[], str] = new_id,
) -> Registration:
    return registration.register(db, actor, data, new_person_id=new_person_id)


def update_local_record(
    db: Session,
    actor: Actor | None,
    data: LocalRecordIn,
    *,
    new_person_id: Callable[[], str] = new_id,
) -> Registration:
    return registration.update(db, actor, data, new_person_id=new_person_id)


def merge_persons(
    db: Session, actor: Actor, *, survivor_id: str, merged_id: str, reason: str
) -> PersonMerge:
    return merges.merge(db, actor, survivor_id=survivor_id, merged_id=merged_id, reason=reason)


def unmerge_person(db: Session, actor: Actor, *, merged_id: str, reason: str) -> PersonMerge:
    return merges.unmerge(db, actor, merged_id=merged_id, reason=reason)


def decide_review(
    db: Session, actor: Actor, *, review_id: int, decision: ReviewDecision, reason: str
) -> MatchReview:
    return merges.decide_review(db, actor, review_id=review_id, decision=decision, reason=reason)


def record_consent(
    db: Session,
    actor: Actor,
    person_id: str,
    *,
    status: ConsentStatus,
    source_document: str,
    note: str,
) -> Consent:
    """Consent to share across the consortium, recorded on the surviving person."""
    patient_id = resolve_person_id(db, person_id)
    return access.record_consent(
        db,
        actor,
        patient_id=patient_id,
        status=status,
        scope=ConsentScope.CONSORTIUM,
        source_document=source_document,
        note=note,
    )


def break_glass(
    db: Session, actor: Actor, person_id: str, *, reason: str, now: datetime
) -> BreakGlassGrant:
    patient_id = resolve_person_id(db, person_id)
    return access.break_glass(db, actor, patient_id=patient_id, reason=reason, now=now)


# --- pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownAt:
    institution_id: str
    institution_name: str
    record: LocalRecord


@dataclass(frozen=True)
class PatientCard:
    person: Person
    resource: dict[str, Any]
    known_at: list[KnownAt]
    consent: access.ConsentState
    consent_history: list[Consent]
    grants: list[BreakGlassGrant]
    merges: Sequence[PersonMerge]
    reviews: Sequence[MatchReview]


def absorbed_ids(db: Session, person_id: str) -> list[str]:
    """Every person merged (directly or through a chain) into ``person_id``."""
    return repository.absorbed_ids(db, person_id)


def patient_card(db: Session, actor: Actor, person_id: str) -> PatientCard:
    person = read_patient(db, actor, person_id)
    ids = [person.id, *repository.absorbed_ids(db, person.id)]
    records = repository.local_records_of(db, ids)
    names = registry_service.institutions_by_ids(db, sorted({r.institution_id for r in records}))
    known = [
        KnownAt(
            r.institution_id, names[r.institution_id].name if r.institution_id in names else "", r
        )
        for r in records
    ]
    return PatientCard(
        person=person,
        resource=patient_resource(db, person),
        known_at=known,
        consent=access.consent_state(db, person.id),
        consent_history=access.consent_history(db, person.id),
        grants=access.emergency_grants(db, person.id),
        merges=repository.merges_of(db, ids),
        reviews=repository.open_reviews_of(db, [person.id]),
    )


@dataclass(frozen=True)
class ReviewQueue:
    reviews: Sequence[MatchReview]
    persons: dict[str, Person]
    total: int


def review_queue(db: Session, actor: Actor, status: ReviewStatus, page: Page) -> ReviewQueue:
    rows, total = repository.reviews(db, status, offset=page.offset, limit=page.count)
    ids = {r.person_id for r in rows} | {r.candidate_id for r in rows}
    persons = repository.persons_by_ids(db, ids)
    _audit_reads(db, actor, sorted(ids), "Patient")
    return ReviewQueue(rows, persons, total)


COMPARED_FIELDS = ("name", "pinyin", "sex", "birth_date", "id_number", "phone", "address")


@dataclass(frozen=True)
class ReviewDetail:
    review: MatchReview
    left: Person
    right: Person
    differing: frozenset[str]
    left_records: Sequence[LocalRecord]
    right_records: Sequence[LocalRecord]


def review_detail(db: Session, actor: Actor, review_id: int) -> ReviewDetail:
    review = repository.review(db, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    left, right = _person_row(db, review.person_id), _person_row(db, review.candidate_id)
    differing = frozenset(f for f in COMPARED_FIELDS if getattr(left, f) != getattr(right, f))
    _audit_reads(db, actor, [left.id, right.id], "Patient")
    return ReviewDetail(
        review,
        left,
        right,
        differing,
        repository.local_records_of(db, [left.id]),
        repository.local_records_of(db, [right.id]),
    )


def _person_row(db: Session, person_id: str) -> Person:
    person = repository.person(db, person_id)
    if person is None:
        raise NotFound(f"patient {person_id} not found")
    return person


def quick_search(db: Session, actor: Actor, q: str, page: Page) -> tuple[Sequence[Person], int]:
    """The search box: a resident ID number, a phone, Chinese characters or pinyin."""
    q = q.strip()
    if not q:
        return [], 0
    criteria = PersonFilter()
    compact_q = "".join(q.split())
    if compact_q.isdigit() and len(compact_q) == 11:
        criteria.all_of.append((Equals("phone", compact_q),))
    elif len(compact_q) in (15, 18) and compact_q[:-1].isdigit():
        criteria.ids = identifier_person_ids(db, RESIDENT_ID_SYSTEM, compact_q)
    elif compact_q.isascii() and any(ch.isdigit() for ch in compact_q):
        criteria.ids = identifier_person_ids(db, None, compact_q)
    else:  # characters, or pinyin with or without its spaces
        criteria.all_of.append((NameIs(q, part="text"),))
    return search_patients(db, actor, criteria, page)


# --- a resident's own consent and access log ------------------------------------------------


@dataclass(frozen=True)
class RecordAccess:
    """One line of a resident's access log."""

    at: datetime
    who: str
    role: str
    action: str  # audit action code, e.g. patient.read
    basis: str  # why it was allowed, e.g. care_relationship or break_glass


@dataclass(frozen=True)
class OwnConsent:
    person: Person
    consent: access.ConsentState
    history: list[Consent]
    accesses: list[RecordAccess]  # newest first


ACCESS_LOG_SIZE = 100


def own_consent(db: Session, actor: Actor, *, now: datetime) -> OwnConsent:
    """A resident's consent and who accessed their record; reading the log is audited."""
    person_id = _own_person_id(actor)
    person = get_person(db, person_id)
    accesses = audit_fhir.search_events(
        db, actor, [("patient", person_id)], count=ACCESS_LOG_SIZE, cursor=None, now=now
    ).events
    return OwnConsent(
        person=person,
        consent=access.consent_state(db, person.id),
        history=access.consent_history(db, person.id),
        accesses=[_record_access(event) for event in accesses],
    )


def _record_access(event: dict[str, Any]) -> RecordAccess:
    agent = event["agent"][0]
    return RecordAccess(
        at=datetime.fromisoformat(event["recorded"]),
        who=agent["who"].get("display", ""),
        role=agent.get("role", [{}])[0].get("text", ""),
        action=event["subtype"][0]["code"],
        basis=event.get("purposeOfEvent", [{}])[0].get("text", ""),
    )


def record_own_consent(db: Session, actor: Actor, *, status: ConsentStatus) -> Consent:
    return record_consent(
        db,
        actor,
        _own_person_id(actor),
        status=status,
        source_document="",
        note="recorded by the resident",
    )


def _own_person_id(actor: Actor) -> str:
    if actor.role != Role.RESIDENT or actor.person_id is None:
        raise NotFound("this account is not linked to a resident's record")
    return actor.person_id
