"""Registering a member's local record against the index, and $match.

An exact valid resident ID number links at once; otherwise the probabilistic matcher scores
the blocked candidates: above the upper threshold the record links automatically, between
the thresholds a new person is created with a review task, below it a new person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Conflict, Forbidden, NotFound, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.kit.ids import new_id
from medalliance.patients import repository
from medalliance.patients.enums import LinkOutcome, MatchGrade, ReviewStatus
from medalliance.patients.identity import ResidentIdError, check_consistency, parse_resident_id
from medalliance.patients.matching import (
    Demographics,
    MatchResult,
    birth_date_variants,
    compare,
)
from medalliance.patients.models import LocalRecord, MatchReview, Person
from medalliance.patients.names import compact, surname_key, to_pinyin
from medalliance.patients.schemas import LocalRecordIn
from medalliance.registry import service as registry_service

EARLIEST_BIRTH = date(1900, 1, 1)
_ID_FIELDS = {"sex-mismatch": "sex", "birth-date-mismatch": "birth_date"}


@dataclass(frozen=True)
class Candidate:
    person: Person
    probability: float
    grade: MatchGrade
    result: MatchResult | None  # None for an exact resident ID number


@dataclass(frozen=True)
class Registration:
    person: Person
    record: LocalRecord
    outcome: LinkOutcome
    score: float | None
    review: MatchReview | None
    # An update captured before the one the record holds: nothing of it was applied.
    superseded: bool = False


def validated_id_number(raw: str | None, *, sex: str | None, birth_date: date | None) -> str | None:
    """The normalised 18-character number, or a 422 naming the field that is wrong."""
    if raw is None or not raw.strip():
        return None
    try:
        rid = parse_resident_id(raw)
        check_consistency(rid, sex=sex, birth_date=birth_date)
    except ResidentIdError as exc:
        raise ValidationFailed(exc.message, field=_ID_FIELDS.get(exc.reason, "id_number")) from None
    return rid.number


def demographics_of(person: Person) -> Demographics:
    return Demographics(
        name=person.name,
        pinyin=person.pinyin,
        sex=person.sex,
        birth_date=person.birth_date,
        phone=person.phone,
        address=person.address,
        id_number=person.id_number,
    )


def grade_of(result: MatchResult) -> MatchGrade:
    settings = get_settings()
    if result.links_automatically(settings.mpi_link_threshold):
        return MatchGrade.CERTAIN
    probability = result.probability
    if probability >= settings.mpi_review_threshold:
        return MatchGrade.PROBABLE
    return MatchGrade.POSSIBLE


def find_candidates(db: Session, d: Demographics, *, today: date | None = None) -> list[Candidate]:
    """Candidates best first: the owner of the resident ID number, then scored persons."""
    today = today or utcnow().date()
    found: list[Candidate] = []
    exact_id: str | None = None
    if d.id_number:
        owner = repository.person_by_id_number(db, d.id_number)
        if owner is not None:
            survivor = _survivor(db, owner)
            exact_id = survivor.id
            found.append(Candidate(survivor, 1.0, MatchGrade.CERTAIN, None))
    ids = repository.candidate_ids(
        db,
        phone=d.phone,
        surname=surname_key(d.pinyin),
        pinyin=d.pinyin,
        birth_date=d.birth_date,
        birth_dates=birth_date_variants(d.birth_date, earliest=EARLIEST_BIRTH, latest=today)
        if d.birth_date
        else [],
        limit=get_settings().mpi_candidate_limit,
    )
    scored = [
        (compare(d, demographics_of(p)), p)
        for p in repository.persons_by_ids(db, ids).values()
        if p.id != exact_id
    ]
    scored.sort(key=lambda pair: (-pair[0].weight, pair[1].id))
    found += [Candidate(p, r.probability, grade_of(r), r) for r, p in scored]
    return found


def match(db: Session, d: Demographics, *, count: int, only_certain: bool) -> list[Candidate]:
    candidates = find_candidates(db, d)
    if only_certain:
        candidates = [c for c in candidates if c.grade == MatchGrade.CERTAIN]
    return candidates[:count]


def register(
    db: Session,
    actor: Actor | None,
    data: LocalRecordIn,
    *,
    new_person_id: Callable[[], str] = new_id,
) -> Registration:
    """Link the record to its golden person (creating one when needed); flush, never commit."""
    institution_id = _member_of(db, actor, data.institution_id)
    id_number = validated_id_number(data.id_number, sex=data.sex.value, birth_date=data.birth_date)
    d = _demographics(db, data, id_number)
    existing = repository.local_record(db, institution_id, data.mrn)
    if existing is not None:
        return _known_record(db, existing, d, data.mrn)
    return _link_new_record(db, actor, data, d, institution_id, new_person_id)


def update(
    db: Session,
    actor: Actor | None,
    data: LocalRecordIn,
    *,
    new_person_id: Callable[[], str] = new_id,
) -> Registration:
    """The member changed its record (HL7 A08): its local record and the golden person take
    the new demographics; a record the index does not know yet is registered.

    The medical record number names the person at the member, so a corrected name or birth
    date is applied without the similarity check a re-registration gets. The resident ID
    number stays the index's strong key: one that another person holds, or that differs
    from the person's own, is a conflict for a reviewer, never a silent relink or merge.
    Empty fields keep what the record had (HL7: an absent value is no change). An update
    captured before the one the record holds (``recorded_at``: messages arrive out of
    order when an engine resends) changes nothing: the newest demographics win.
    """
    institution_id = _member_of(db, actor, data.institution_id)
    # Locked: of two updates at once, the later one decides against the other's result.
    existing = repository.local_record(db, institution_id, data.mrn, lock=True)
    if existing is None:
        registered = _register_unless_raced(db, actor, data, new_person_id)
        if registered is not None:
            return registered
        # Another registration of this MRN committed meanwhile: this update applies to it.
        existing = repository.local_record(db, institution_id, data.mrn, lock=True)
        if existing is None:
            raise Conflict(f"medical record number {data.mrn} kept changing", field="mrn")
    person = _survivor(db, _person(db, existing.person_id))
    data = _capped(data)
    if _older_than_record(data, existing):
        _audit_update(db, actor, person, data, institution_id, changed=[], stale=existing)
        return Registration(person, existing, LinkOutcome.KNOWN_RECORD, None, None, True)
    id_number = validated_id_number(data.id_number, sex=data.sex.value, birth_date=data.birth_date)
    if id_number is None and person.id_number is not None:
        # The person's own number must still agree with the new sex and birth date.
        validated_id_number(person.id_number, sex=data.sex.value, birth_date=data.birth_date)
    d = _demographics(db, data, id_number)
    if id_number is not None and id_number != person.id_number:
        _check_new_id_number(db, person, id_number)
    changed = _apply_demographics(db, existing, person, d, data)
    if data.recorded_at is not None:
        # Untimed updates (the API's) leave the time alone: clocks are not mixed.
        existing.recorded_at = data.recorded_at
    _audit_update(db, actor, person, data, institution_id, changed=changed)
    return Registration(person, existing, LinkOutcome.KNOWN_RECORD, None, None)


def _capped(data: LocalRecordIn) -> LocalRecordIn:
    """A capture time no later than now: one in the future (a sender's clock or time zone
    set wrong) would otherwise make every later update of the record look older."""
    now = utcnow()
    if data.recorded_at is None or data.recorded_at <= now:
        return data
    return data.model_copy(update={"recorded_at": now})


def _register_unless_raced(
    db: Session, actor: Actor | None, data: LocalRecordIn, new_person_id: Callable[[], str]
) -> Registration | None:
    """An update's record registered as new, or None when a registration of the same MRN
    committed while this one ran (it then finds the record, or its MRN is taken): the
    update must then be applied to that record, not dropped or refused. In a savepoint, so
    that a person made for the losing registration goes with it."""
    try:
        with db.begin_nested():
            registration = register(db, actor, data, new_person_id=new_person_id)
    except Conflict as exc:
        if exc.field != "mrn":
            raise
        return None
    return None if registration.outcome == LinkOutcome.KNOWN_RECORD else registration


def _older_than_record(data: LocalRecordIn, record: LocalRecord) -> bool:
    return (
        data.recorded_at is not None
        and record.recorded_at is not None
        and data.recorded_at < record.recorded_at
    )


def _audit_update(
    db: Session,
    actor: Actor | None,
    person: Person,
    data: LocalRecordIn,
    institution_id: str,
    *,
    changed: list[str],
    stale: LocalRecord | None = None,
) -> None:
    detail: dict[str, object] = {
        "institution_id": institution_id,
        "mrn": data.mrn,
        "changed": changed,
    }
    if stale is not None and data.recorded_at and stale.recorded_at:
        # Kept out, and said so: a reviewer can see which update lost and why.
        detail["older_than_record"] = {
            "update": data.recorded_at.isoformat(),
            "record": stale.recorded_at.isoformat(),
        }
    audit.record(
        db,
        actor,
        "patient.update",
        resource_type="Patient",
        resource_id=person.id,
        patient_id=person.id,
        detail=detail,
    )


def _demographics(db: Session, data: LocalRecordIn, id_number: str | None) -> Demographics:
    """The record's demographics for matching; registrations of one name are serialised
    (the advisory lock of its pinyin) so that two of one new person make one."""
    d = Demographics(
        name=data.name,
        sex=data.sex.value,
        birth_date=data.birth_date,
        phone=data.phone or None,
        address=data.address,
        id_number=id_number,
    )
    if not d.pinyin:
        raise ValidationFailed("name has no letters or Chinese characters", field="name")
    _serialise_on(db, compact(d.pinyin))
    return d


def _check_new_id_number(db: Session, person: Person, id_number: str) -> None:
    if person.id_number is not None:
        raise Conflict(
            f"the resident ID number differs from the one the index holds for patient "
            f"{person.id}; a reviewer must correct it",
            field="id_number",
        )
    owner = repository.person_by_id_number(db, id_number)
    if owner is not None and _survivor(db, owner).id != person.id:
        raise Conflict(
            "the resident ID number belongs to another person in the index; "
            "a reviewer must decide whether they are the same",
            field="id_number",
        )


def _apply_demographics(
    db: Session, record: LocalRecord, person: Person, d: Demographics, data: LocalRecordIn
) -> list[str]:
    """Set the new values on the local record and the person; the names of changed fields."""
    values: dict[str, object] = {
        "name": d.name,
        "sex": data.sex.value,
        "birth_date": data.birth_date,
        "phone": d.phone,
        "address": data.address,
        "id_number": d.id_number,
        "insurance_number": data.insurance_number or None,
    }
    given = {k: v for k, v in values.items() if v not in (None, "")}
    changed = sorted(k for k, v in given.items() if getattr(person, k) != v)
    for target in (record, person):
        for key, value in given.items():
            setattr(target, key, value)
    person.pinyin = d.pinyin
    if d.id_number and not person.division_code:
        person.division_code = d.id_number[:6]
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        # A concurrent registration took the resident ID number first.
        raise Conflict(
            "the resident ID number belongs to another person in the index", field="id_number"
        ) from None
    return changed


def _link_new_record(
    db: Session,
    actor: Actor | None,
    data: LocalRecordIn,
    d: Demographics,
    institution_id: str,
    new_person_id: Callable[[], str],
) -> Registration:
    settings = get_settings()
    candidates = find_candidates(db, d)
    best = candidates[0] if candidates else None
    review: MatchReview | None = None
    score: float | None
    if best is not None and best.result is None:
        person, outcome, score = best.person, LinkOutcome.EXACT_ID, 1.0
    elif best and best.result and best.result.links_automatically(settings.mpi_link_threshold):
        person, outcome, score = best.person, LinkOutcome.AUTO_LINKED, best.probability
        _complete_identifiers(db, person, d.id_number, data.insurance_number)
    else:
        person, linked = _new_person(db, data, d, new_person_id)
        score = best.probability if best else None
        outcome = LinkOutcome.EXACT_ID if linked else LinkOutcome.NEW_PERSON
        if not linked and best is not None and best.probability >= settings.mpi_review_threshold:
            outcome = LinkOutcome.REVIEW
    record = _add_record(db, data, d, institution_id, person.id, outcome, score)
    if outcome == LinkOutcome.REVIEW and best is not None and best.result is not None:
        review = MatchReview(
            person_id=person.id,
            candidate_id=best.person.id,
            local_record_id=record.id,
            score=best.probability,
            comparison=best.result.as_dict(),
            status=ReviewStatus.OPEN.value,
        )
        db.add(review)
        db.flush()
    audit.record(
        db,
        actor,
        "patient.register",
        resource_type="Patient",
        resource_id=person.id,
        patient_id=person.id,
        detail={
            "institution_id": institution_id,
            "mrn": data.mrn,
            "outcome": outcome.value,
            "score": score,
            "review_id": review.id if review else None,
        },
    )
    return Registration(person, record, outcome, score, review)


def _known_record(db: Session, existing: LocalRecord, d: Demographics, mrn: str) -> Registration:
    """The member re-sent a record it already has: fine if it is the same person."""
    person = _survivor(db, _person(db, existing.person_id))
    result = compare(d, demographics_of(person))
    same_id = not d.id_number or not person.id_number or d.id_number == person.id_number
    if not same_id or result.probability < get_settings().mpi_review_threshold:
        raise Conflict(
            f"medical record number {mrn} is already used for another person at this member",
            field="mrn",
        )
    return Registration(person, existing, LinkOutcome.KNOWN_RECORD, result.probability, None)


def _new_person(
    db: Session,
    data: LocalRecordIn,
    d: Demographics,
    new_person_id: Callable[[], str],
) -> tuple[Person, bool]:
    """A new golden person; (owner, True) when a concurrent request created the same ID."""
    person = Person(
        id=new_person_id(),
        id_number=d.id_number,
        name=d.name,
        pinyin=d.pinyin or to_pinyin(d.name),
        sex=data.sex.value,
        birth_date=data.birth_date,
        phone=d.phone,
        address=data.address,
        division_code=data.division_code or (d.id_number[:6] if d.id_number else ""),
        insurance_number=data.insurance_number or None,
    )
    try:
        with db.begin_nested():
            db.add(person)
            db.flush()
    except IntegrityError:
        # The unique resident ID number is the guarantee when blocking keys differ.
        owner = repository.person_by_id_number(db, d.id_number) if d.id_number else None
        if owner is None:
            raise
        return _survivor(db, owner), True
    return person, False


def _add_record(
    db: Session,
    data: LocalRecordIn,
    d: Demographics,
    institution_id: str,
    person_id: str,
    outcome: LinkOutcome,
    score: float | None,
) -> LocalRecord:
    record = LocalRecord(
        institution_id=institution_id,
        mrn=data.mrn,
        person_id=person_id,
        id_number=d.id_number,
        insurance_number=data.insurance_number or None,
        name=d.name,
        sex=data.sex.value,
        birth_date=data.birth_date,
        phone=d.phone,
        address=data.address,
        outcome=outcome.value,
        score=score,
        recorded_at=_capped(data).recorded_at,
    )
    try:
        with db.begin_nested():
            db.add(record)
            db.flush()
    except IntegrityError:
        raise Conflict(
            f"medical record number {data.mrn} is already used at this member", field="mrn"
        ) from None
    return record


def _complete_identifiers(
    db: Session, person: Person, id_number: str | None, insurance: str | None
) -> None:
    """Survivorship: a linked record fills identifiers the golden person lacks."""
    if id_number and person.id_number is None:
        person.id_number = id_number
    if insurance and person.insurance_number is None:
        person.insurance_number = insurance
    db.flush()


def _member_of(db: Session, actor: Actor | None, requested: str | None) -> str:
    own = actor.institution_id if actor else None
    institution_id = requested or own
    if not institution_id:
        raise ValidationFailed("name the member that keeps this record", field="institution_id")
    if actor is not None and actor.role != Role.ADMIN and institution_id != own:
        raise Forbidden("records can only be registered for your own institution")
    try:
        registry_service.get_institution(db, institution_id)
    except NotFound:
        raise ValidationFailed(
            f"unknown institution {institution_id}", field="institution_id"
        ) from None
    return institution_id


def _serialise_on(db: Session, key: str) -> None:
    """Two members registering the same new person at once must end with one person.

    PostgreSQL: an advisory lock on the name key (homophones share it) for the rest of the
    transaction, so the second registration sees the first person. SQLite already runs one
    writer at a time (BEGIN IMMEDIATE).
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"mpi:{key}"})


def _person(db: Session, person_id: str) -> Person:
    person = repository.person(db, person_id)
    if person is None:
        raise NotFound(f"patient {person_id} not found")
    return person


def _survivor(db: Session, person: Person) -> Person:
    seen = 0
    while person.merged_into_id is not None and seen < repository.MAX_MERGE_DEPTH:
        person = _person(db, person.merged_into_id)
        seen += 1
    return person
