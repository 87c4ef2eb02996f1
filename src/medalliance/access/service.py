"""Access decisions for patient data, and the facts they rest on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, func, or_
from sqlalchemy.orm import Session

from medalliance.access import merges as _merges  # noqa: F401  (registers its merge step)
from medalliance.access import repository
from medalliance.access.enums import ConsentDefault, ConsentScope, ConsentStatus, RelationshipKind
from medalliance.access.models import BreakGlassGrant, CareRelationship, Consent
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Forbidden, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.kit.hot import session_connection

# Roles that treat patients and so may hold a care relationship or break the glass.
CLINICAL_ROLES = frozenset(
    {Role.DOCTOR, Role.SPECIALIST, Role.READER, Role.FAMILY_DOCTOR, Role.COORDINATOR, Role.SYSTEM}
)
BREAK_GLASS_ROLES = frozenset({Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR})
MIN_REASON_LENGTH = 10


def clinical_basis(
    db: Session, actor: Actor, patient_id: str, now: datetime, *, related: bool | None = None
) -> AccessBasis | None:
    """Why ``actor`` may read this patient's clinical data, or None. ``related``: whether
    the patient has a live care relationship with the actor's institution, when the caller
    already asked (``repository.live_relationship_of`` in its own query)."""
    if actor.role == Role.RESIDENT:
        return AccessBasis.OWN_RECORD if actor.person_id == patient_id else None
    if actor.role not in CLINICAL_ROLES or actor.institution_id is None:
        return None
    if related is None:
        related = repository.has_relationship(db, patient_id, actor.institution_id, now)
    if related:
        return AccessBasis.CARE_RELATIONSHIP
    if consent_covers(db, patient_id, actor.institution_id):
        return AccessBasis.CONSENT
    if actor.user_id and repository.active_grant(db, actor.user_id, patient_id, now):
        return AccessBasis.BREAK_THE_GLASS
    return None


def listed_bases(
    db: Session, actor: Actor, patient_ids: Sequence[str], now: datetime
) -> dict[str, AccessBasis]:
    """The basis of each patient whose rows a list query returned under
    ``readable_patients``: one query for the page, not one per patient. A returned patient
    without a live care relationship can only have been returned on consent."""
    if actor.role == Role.RESIDENT:
        return dict.fromkeys(patient_ids, AccessBasis.OWN_RECORD)
    related = (
        repository.related_patients(db, patient_ids, actor.institution_id, now)
        if actor.institution_id and patient_ids
        else set()
    )
    return {
        p: AccessBasis.CARE_RELATIONSHIP if p in related else AccessBasis.CONSENT
        for p in patient_ids
    }


def require_clinical_access(
    db: Session,
    actor: Actor,
    patient_id: str,
    now: datetime,
    *,
    action: str = "read",
    related: bool | None = None,
) -> AccessBasis:
    """The basis for access; refuses (403, audited by the error handler) without one."""
    basis = clinical_basis(db, actor, patient_id, now, related=related)
    if basis is None:
        raise Forbidden(
            f"no care relationship, consent or emergency access to {action} this patient's record"
        )
    return basis


def readable_patients(
    actor: Actor, patient_column: ColumnElement[str], now: datetime
) -> ColumnElement[bool]:
    """SQL condition for list queries: rows of patients the actor may read (no count leaks)."""
    return _readable_condition(
        _reader_kind(actor),
        get_settings().consent_default,
        patient_column,
        person=actor.person_id,
        institution=actor.institution_id,
        now=now,
    )


@dataclass(frozen=True)
class ReadableRule:
    """``readable_patients`` built once per kind of reader and column, with the reader's
    values bound when a statement with it runs (``params``): building the condition for
    each query took a fifth of a search over all patients."""

    condition: ColumnElement[bool]
    params: dict[str, Any]


def readable_rule(actor: Actor, patient_column: ColumnElement[str], now: datetime) -> ReadableRule:
    condition = _parametrised_condition(
        _reader_kind(actor), get_settings().consent_default, patient_column
    )
    params = {
        "reader_person": actor.person_id,
        "related_institution": actor.institution_id,
        "related_now": now,
    }
    return ReadableRule(condition, params)


@cache
def _parametrised_condition(
    kind: str, consent_default: ConsentDefault, patient_column: ColumnElement[str]
) -> ColumnElement[bool]:
    # The names of repository.live_relationship_of's parameters, for the same values.
    return _readable_condition(
        kind,
        consent_default,
        patient_column,
        person=bindparam("reader_person"),
        institution=bindparam("related_institution"),
        now=bindparam("related_now"),
    )


def _reader_kind(actor: Actor) -> str:
    if actor.role == Role.RESIDENT:
        return "own" if actor.person_id else "none"
    if actor.role not in CLINICAL_ROLES or actor.institution_id is None:
        return "none"
    return "clinical"


def _readable_condition(
    kind: str,
    consent_default: ConsentDefault,
    patient_column: ColumnElement[str],
    *,
    person: Any,
    institution: Any,
    now: Any,
) -> ColumnElement[bool]:
    """Who may read which patient, said once; each of ``person``, ``institution`` and
    ``now`` is a value or a bound parameter. Residents read their own record, clinical
    roles what a care relationship or consent opens."""
    if kind == "own":
        own: ColumnElement[bool] = patient_column == person
        return own
    if kind == "none":
        return false()
    conditions = [repository.relationship_clause(patient_column, institution, now)]
    consent = repository.consent_clause(patient_column, institution)
    if consent_default == ConsentDefault.OPT_OUT:
        conditions.append(func.coalesce(consent, True))
    else:
        conditions.append(consent)
    return or_(*conditions)


def consent_covers(db: Session, patient_id: str, institution_id: str) -> bool:
    for row in repository.latest_consents(db, patient_id):
        covers = row.scope == ConsentScope.CONSORTIUM or row.institution_id == institution_id
        if covers:
            return row.status == ConsentStatus.GIVEN
    return get_settings().consent_default == ConsentDefault.OPT_OUT


def record_relationship(
    db: Session,
    *,
    patient_id: str,
    institution_id: str,
    kind: RelationshipKind,
    source_type: str,
    source_id: str,
    expires_at: datetime | None = None,
) -> CareRelationship:
    """Idempotent: the same fact recorded twice is one relationship."""
    existing = repository.relationship(db, patient_id, institution_id, kind.value, source_id)
    if existing is not None:
        return existing
    row = CareRelationship(
        patient_id=patient_id,
        institution_id=institution_id,
        kind=kind.value,
        source_type=source_type,
        source_id=source_id,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row


def record_visit(db: Session, *, patient_id: str, institution_id: str, encounter_id: str) -> bool:
    """A visit recorded by the institution's own system opens the record to it for good.

    One standing row per (patient, institution), sourced from the first visit: later
    visits add nothing (a row per visit made the table as large as the encounters, and
    every cross-patient search's access check walks it). True when a row was recorded."""
    if repository.has_standing_visit(db, patient_id, institution_id):
        return False
    record_relationship(
        db,
        patient_id=patient_id,
        institution_id=institution_id,
        kind=RelationshipKind.ENCOUNTER,
        source_type="Encounter",
        source_id=encounter_id,
    )
    return True


def end_relationship(
    db: Session,
    *,
    patient_id: str,
    institution_id: str,
    kind: RelationshipKind,
    source_id: str,
    now: datetime,
) -> None:
    """The fact that gave access is over (a referral rejected or cancelled): access on
    that basis ends now. Other relationships, consent and break-the-glass are untouched."""
    row = repository.relationship(db, patient_id, institution_id, kind.value, source_id)
    if row is not None and (row.expires_at is None or row.expires_at > now):
        row.expires_at = now
        db.flush()


def record_consent(
    db: Session,
    actor: Actor,
    *,
    patient_id: str,
    status: ConsentStatus,
    scope: ConsentScope,
    institution_id: str | None = None,
    source_document: str = "",
    note: str = "",
) -> Consent:
    if scope == ConsentScope.INSTITUTION and not institution_id:
        raise ValidationFailed(
            "an institution consent names the institution", field="institution_id"
        )
    if not _may_record_consent(db, actor, patient_id, utcnow()):
        # Otherwise any member could open a record to itself by "recording" a consent.
        raise Forbidden("consent is recorded by the patient or by an institution treating them")
    row = Consent(
        patient_id=patient_id,
        status=status.value,
        scope=scope.value,
        institution_id=institution_id if scope == ConsentScope.INSTITUTION else None,
        recorded_by=actor.user_id or actor.client_id or actor.username,
        source_document=source_document,
        note=note,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor,
        f"consent.{status.value}",
        resource_type="Consent",
        resource_id=str(row.id),
        patient_id=patient_id,
        detail={"scope": scope.value, "institution_id": institution_id},
    )
    return row


def _may_record_consent(db: Session, actor: Actor, patient_id: str, now: datetime) -> bool:
    if actor.role == Role.RESIDENT:
        return actor.person_id == patient_id
    if actor.institution_id is None or actor.role not in CLINICAL_ROLES | {Role.ADMIN}:
        return False
    return repository.has_relationship(db, patient_id, actor.institution_id, now)


def consent_history(db: Session, patient_id: str) -> list[Consent]:
    return list(repository.latest_consents(db, patient_id))


@dataclass(frozen=True)
class ConsentState:
    shared_consortium_wide: bool
    last_change: Consent | None


def consent_state(db: Session, patient_id: str) -> ConsentState:
    rows = repository.latest_consents(db, patient_id)
    consortium = next((r for r in rows if r.scope == ConsentScope.CONSORTIUM), None)
    if consortium is None:
        shared = get_settings().consent_default == ConsentDefault.OPT_OUT
    else:
        shared = consortium.status == ConsentStatus.GIVEN
    return ConsentState(shared, rows[0] if rows else None)


def break_glass(
    db: Session, actor: Actor, *, patient_id: str, reason: str, now: datetime
) -> BreakGlassGrant:
    """Emergency access for a limited time; always audited, always visible to the patient."""
    if actor.role not in BREAK_GLASS_ROLES or actor.user_id is None:
        raise Forbidden("only treating clinicians may use emergency access")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValidationFailed(
            f"state the emergency in at least {MIN_REASON_LENGTH} characters", field="reason"
        )
    minutes = get_settings().break_glass_minutes
    grant = BreakGlassGrant(
        patient_id=patient_id,
        user_id=actor.user_id,
        institution_id=actor.institution_id,
        reason=reason.strip(),
        granted_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    db.add(grant)
    db.flush()
    audit.record(
        db,
        actor,
        "access.break_glass",
        resource_type="Patient",
        resource_id=patient_id,
        patient_id=patient_id,
        basis=AccessBasis.BREAK_THE_GLASS,
        detail={"reason": grant.reason, "expires_at": grant.expires_at.isoformat()},
    )
    return grant


def emergency_grants(db: Session, patient_id: str) -> list[BreakGlassGrant]:
    return list(repository.grants_for_patient(db, patient_id))


def audit_read(
    db: Session,
    actor: Actor,
    *,
    patient_id: str,
    basis: AccessBasis,
    resource_type: str,
    resource_id: str | None = None,
    immediately: bool = False,
) -> None:
    """Every read of patient data leaves who, which patient, on which basis, from where.
    ``immediately``: insert the row at once (a request reading one resource; see
    ``audit.record_now``) rather than with the request's other audit rows."""
    write = audit.record_now if immediately else audit.record
    write(
        db,
        actor,
        "read",
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        basis=basis,
    )


def audit_reads(
    db: Session,
    actor: Actor,
    patient_ids: Sequence[str],
    known: Mapping[str, AccessBasis],
    *,
    resource_type: str,
    now: datetime,
) -> None:
    """``audit_read`` of each patient a list showed under ``readable_patients``, inserted at
    once in one statement, each with its basis: ``known``'s (established before the list),
    else the one ``listed_bases`` gives, decided in the INSERT itself on PostgreSQL."""
    unknown = [p for p in patient_ids if p not in known]
    bases: dict[str, AccessBasis | None] = {**dict.fromkeys(unknown), **known}
    decide_in_sql = session_connection(db).raw is not None and actor.role != Role.RESIDENT
    if unknown and not decide_in_sql:
        bases |= listed_bases(db, actor, unknown, now)
    rows = [
        audit.event_row(actor, "read", resource_type=resource_type, patient_id=p, basis=bases[p])
        for p in patient_ids
    ]
    if unknown and decide_in_sql:
        repository.insert_listed_reads(db, rows, now)
    else:
        audit.record_all_now(db, rows)
