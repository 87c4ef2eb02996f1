"""Every query of the access domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from medalliance.access.enums import ConsentScope, RelationshipKind
from medalliance.access.models import BreakGlassGrant, CareRelationship, Consent
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.kit.hot import HotStatement, execute_native, flush_pending, session_connection

_relationship = CareRelationship.__table__.c


def _live_relationship(patient: Any, institution: Any, now: Any) -> ColumnElement[bool]:
    """What a care relationship is, said once: the patient's, with the institution, not
    expired at ``now``. Each argument is a value, a column or a bound parameter."""
    return and_(
        _relationship.patient_id == patient,
        _relationship.institution_id == institution,
        or_(_relationship.expires_at.is_(None), _relationship.expires_at > now),
    )


# Asked on every clinical read and write: built once, sent straight to the driver.
_HAS_RELATIONSHIP = HotStatement(
    select(_relationship.id)
    .where(
        _live_relationship(bindparam("patient_id"), bindparam("institution_id"), bindparam("now"))
    )
    .limit(1)
)


_HAS_STANDING_VISIT = HotStatement(
    select(_relationship.id)
    .where(
        _relationship.patient_id == bindparam("patient_id"),
        _relationship.institution_id == bindparam("institution_id"),
        _relationship.kind == RelationshipKind.ENCOUNTER.value,
        _relationship.expires_at.is_(None),
    )
    .limit(1)
)


def has_standing_visit(db: Session, patient_id: str, institution_id: str) -> bool:
    """An open-ended visit relationship: what any later visit would record again."""
    params = {"patient_id": patient_id, "institution_id": institution_id}
    return _HAS_STANDING_VISIT.first(db, params) is not None


def has_relationship(db: Session, patient_id: str, institution_id: str, now: datetime) -> bool:
    params = {"patient_id": patient_id, "institution_id": institution_id, "now": now}
    return _HAS_RELATIONSHIP.first(db, params) is not None


def related_patients(
    db: Session, patient_ids: Sequence[str], institution_id: str, now: datetime
) -> set[str]:
    """Which of ``patient_ids`` have a live care relationship with the institution."""
    stmt = select(_relationship.patient_id).where(
        _relationship.patient_id.in_(patient_ids),
        _relationship.institution_id == institution_id,
        or_(_relationship.expires_at.is_(None), _relationship.expires_at > now),
    )
    return set(db.scalars(stmt.distinct()))


def relationship(
    db: Session, patient_id: str, institution_id: str, kind: str, source_id: str
) -> CareRelationship | None:
    stmt = select(CareRelationship).where(
        CareRelationship.patient_id == patient_id,
        CareRelationship.institution_id == institution_id,
        CareRelationship.kind == kind,
        CareRelationship.source_id == source_id,
    )
    return db.scalars(stmt).first()


def latest_consents(db: Session, patient_id: str) -> Sequence[Consent]:
    """Newest first; the first row per (scope, institution) is the one in force."""
    stmt = select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.id.desc())
    return db.scalars(stmt).all()


def active_grant(
    db: Session, user_id: str, patient_id: str, now: datetime
) -> BreakGlassGrant | None:
    stmt = (
        select(BreakGlassGrant)
        .where(
            BreakGlassGrant.user_id == user_id,
            BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.expires_at > now,
        )
        .order_by(BreakGlassGrant.id.desc())
    )
    return db.scalars(stmt.limit(1)).first()


def grants_for_patient(db: Session, patient_id: str) -> Sequence[BreakGlassGrant]:
    stmt = (
        select(BreakGlassGrant)
        .where(BreakGlassGrant.patient_id == patient_id)
        .order_by(BreakGlassGrant.id.desc())
    )
    return db.scalars(stmt).all()


def live_relationship_of(patient_column: ColumnElement[str]) -> ColumnElement[bool]:
    """``relationship_clause`` with the institution and the time left as parameters
    (``related_institution``, ``related_now``): for statements built once, at import."""
    return exists().where(
        _live_relationship(
            patient_column, bindparam("related_institution"), bindparam("related_now")
        )
    )


def relationship_clause(
    patient_column: ColumnElement[str], institution_id: Any, now: Any
) -> ColumnElement[bool]:
    """SQL condition: the row's patient has a live care relationship with the institution
    (``institution_id`` and ``now``: values or bound parameters)."""
    return exists().where(_live_relationship(patient_column, institution_id, now))


def consent_clause(patient_column: ColumnElement[str], institution_id: Any) -> ColumnElement[bool]:
    """SQL condition: the newest consent row of the patient that covers the institution
    is a 'given' one (a later withdrawal of the same scope overrides it)."""
    newest = (
        select(Consent.status)
        .where(
            Consent.patient_id == patient_column,
            or_(
                Consent.scope == ConsentScope.CONSORTIUM.value,
                and_(
                    Consent.scope == ConsentScope.INSTITUTION.value,
                    Consent.institution_id == institution_id,
                ),
            ),
        )
        .order_by(Consent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return newest == "given"


# The basis of a listed patient's read where the caller did not know it: a live care
# relationship with the reader's institution, else the consent that let the list show it.
# A LIMIT, not EXISTS: PostgreSQL would hash every relationship for EXISTS (it takes the
# events for a hundred rows), 2 ms instead of one index probe per event.
_LISTED_BASIS = (
    "COALESCE(e.basis, CASE WHEN (SELECT true FROM care_relationship c"
    " WHERE c.patient_id = e.patient_id AND c.institution_id = e.institution_id"
    " AND (c.expires_at IS NULL OR c.expires_at > %(now)s) LIMIT 1)"
    f" THEN '{AccessBasis.CARE_RELATIONSHIP.value}' ELSE '{AccessBasis.CONSENT.value}' END)"
)
_INSERT_LISTED_READS = audit.insert_events_sql("rows", basis=_LISTED_BASIS)


def insert_listed_reads(db: Session, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Audit rows (``audit.event_row``s, basis None where unknown) inserted with each
    unknown basis decided in the INSERT (PostgreSQL): one round trip where looking the
    bases up first took two."""
    flush_pending(db)
    params = {"rows": audit.events_json(rows), "now": now}
    execute_native(session_connection(db).raw, _INSERT_LISTED_READS, params, fetch=False)
