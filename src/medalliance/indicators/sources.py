"""Narrow adapters that read the source domains through THEIR services and turn what they
return into fact inputs; the worker runs ``refresh`` with a watermark per source so each
tick only reads rows changed since the last one.

The feeds are ``records.service.changed_since`` (encounters) and
``referrals.service.changed_since``; both read only rows a few seconds old, so that a
transaction committing late is not skipped by the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from medalliance.config import get_settings
from medalliance.errors import DomainError
from medalliance.indicators import facts, repository
from medalliance.indicators.enums import EncounterClass, age_band, age_on
from medalliance.indicators.facts import EncounterInput, ReferralInput
from medalliance.indicators.models import SourceWatermark
from medalliance.patients import service as patients
from medalliance.records import service as records
from medalliance.referrals import service as referrals
from medalliance.registry import service as registry

log = structlog.get_logger(__name__)

# FHIR Encounter.class codes (v3 ActCode) to our classes.
CLASS_CODES = {
    "AMB": EncounterClass.AMBULATORY,
    "IMP": EncounterClass.INPATIENT,
    "ACUTE": EncounterClass.INPATIENT,
    "NONAC": EncounterClass.INPATIENT,
    "EMER": EncounterClass.EMERGENCY,
}
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cn")


@dataclass
class Context:
    """Lookups shared by one refresh: institutions and persons, each read once."""

    db: Session
    county: str
    institutions: dict[str, Any]
    persons: dict[str, Any]

    @classmethod
    def of(cls, db: Session) -> Context:
        from medalliance.registry.repository import InstitutionFilter

        found, _ = registry.find_institutions(db, InstitutionFilter(), limit=10000, offset=0)
        return cls(db, get_settings().indicators_county_code, {i.id: i for i in found}, {})

    def person(self, person_id: str) -> Any | None:
        if person_id not in self.persons:
            try:
                self.persons[person_id] = patients.get_person(self.db, person_id)
            except DomainError:
                self.persons[person_id] = None
        return self.persons[person_id]


def _reference_id(reference: Any, resource_type: str) -> str | None:
    text = reference.get("reference", "") if isinstance(reference, dict) else ""
    prefix = f"{resource_type}/"
    return text[len(prefix) :] if text.startswith(prefix) else None


def _icd10(concepts: Any) -> str:
    for concept in concepts or []:
        for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
            if coding.get("system") in ICD10_SYSTEMS and coding.get("code"):
                return str(coding["code"])
    return ""


def encounter_input(ctx: Context, stored: Any, diagnosis: str = "") -> EncounterInput | None:
    """A FHIR Encounter (as the records service returns it) to a fact, or None when it
    lacks what the indicators need (class, start, institution, patient)."""
    content: dict[str, Any] = stored.content
    encounter_class = CLASS_CODES.get(str((content.get("class") or {}).get("code", "")).upper())
    start = (content.get("period") or {}).get("start")
    institution = ctx.institutions.get(
        _reference_id(content.get("serviceProvider"), "Organization") or stored.institution_id or ""
    )
    person = ctx.person(stored.patient_id or "")
    if encounter_class is None or not start or institution is None or person is None:
        return None
    day = date.fromisoformat(str(start)[:10])
    township = person.division_code
    return EncounterInput(
        source_id=f"Encounter/{stored.id}",
        patient_id=person.id,
        institution_id=institution.id,
        institution_level=institution.level,
        township_code=township,
        encounter_class=encounter_class.value,
        day=day,
        in_county=institution.division_code.startswith(ctx.county),
        resident=township.startswith(ctx.county),
        age_band=age_band(age_on(person.birth_date, day)),
        sex=person.sex,
        icd10=diagnosis or _icd10(content.get("reasonCode")),
    )


def _mark(db: Session, source: str, position: str, now: datetime) -> None:
    row = repository.watermark(db, source)
    if row is None:
        db.add(SourceWatermark(source=source, position=position, updated_at=now))
    else:
        row.position, row.updated_at = position, now
    db.flush()


def _rank(diagnosis: dict[str, Any]) -> int:
    rank = diagnosis.get("rank")
    return rank if isinstance(rank, int) else 999


def _diagnosis_ids(content: dict[str, Any]) -> list[str]:
    """Encounter.diagnosis Condition ids, the principal diagnosis (rank 1) first."""
    entries = [d for d in content.get("diagnosis") or [] if isinstance(d, dict)]
    entries.sort(key=_rank)
    found = (_reference_id(d.get("condition"), "Condition") for d in entries)
    return [i for i in found if i]


def encounter_inputs(ctx: Context, stored: list[Any]) -> list[EncounterInput]:
    """Facts for encounters, the diagnosis taken from the Conditions the encounter names
    (principal first), else from its reasonCode."""
    wanted = {s.id: _diagnosis_ids(s.content) for s in stored}
    conditions = {
        c.id: c
        for c in records.read_many(
            ctx.db, "Condition", sorted({i for v in wanted.values() for i in v})
        )
        if not c.deleted
    }
    inputs = []
    for s in stored:
        codes = (
            _icd10([conditions[i].content.get("code")]) for i in wanted[s.id] if i in conditions
        )
        fact = encounter_input(ctx, s, next((c for c in codes if c), ""))
        if fact is not None:
            inputs.append(fact)
    return inputs


def refresh_encounters(db: Session, ctx: Context, limit: int, now: datetime) -> int:
    mark = repository.watermark(db, "encounter")
    changed = records.changed_since(db, "Encounter", mark.position if mark else None, limit)
    facts.remove_encounters(db, [f"Encounter/{s.id}" for s in changed if s.deleted])
    facts.ingest_encounters(db, encounter_inputs(ctx, [s for s in changed if not s.deleted]))
    if changed:
        last = changed[-1]
        _mark(db, "encounter", f"{last.last_updated.isoformat()}|{last.pid}", now)
    return len(changed)  # rows read, so a batch of unusable rows does not stop a drain


def referral_input(ctx: Context, change: Any) -> ReferralInput | None:
    referral = change.referral
    if referral.requested_at is None:
        return None  # a draft is not yet a referral anyone must act on
    person = ctx.person(referral.patient_id)
    accepted = [h.at for h in change.history if h.to_status == "accepted"]
    scheduled = [h.at for h in change.history if h.to_status == "scheduled"]
    return ReferralInput(
        referral_id=referral.id,
        patient_id=referral.patient_id,
        township_code=person.division_code if person else "",
        direction=referral.direction,
        urgency=referral.urgency,
        status=referral.status,
        from_institution_id=referral.from_institution_id,
        to_institution_id=referral.to_institution_id,
        requested_at=referral.requested_at,
        green_channel=referral.green_channel,
        accepted_at=min(accepted) if accepted else None,
        scheduled_at=min(scheduled) if scheduled else None,
        appointment_at=change.appointment_start,
        completed_at=referral.completed_at,
        deadline_at=referral.deadline_at,
        outcome_returned=bool(referral.outcome_reference or referral.outcome_document),
        follow_up_at=change.follow_up_done_at,
        reserved_slot_used=change.reserved_slot,
    )


def refresh_referrals(db: Session, ctx: Context, limit: int, now: datetime) -> int:
    mark = repository.watermark(db, "referral")
    changed = referrals.changed_since(db, mark.position if mark else None, limit)
    inputs = [f for f in (referral_input(ctx, c) for c in changed) if f]
    facts.ingest_referrals(db, inputs)
    if changed:
        _mark(db, "referral", changed[-1].position, now)
    return len(changed)  # rows read, so a batch of unusable rows does not stop a drain


def refresh(db: Session) -> int:
    """One worker tick: new and changed encounters and referrals since the watermarks."""
    now = datetime.now(UTC)
    limit = get_settings().indicators_batch_size
    ctx = Context.of(db)
    return refresh_encounters(db, ctx, limit, now) + refresh_referrals(db, ctx, limit, now)


def rebuild(db: Session) -> dict[str, int]:
    """From scratch: facts re-read from the sources (when their feeds exist), then every
    aggregate recomputed. Settlement facts stay: they come from imported files."""
    drained = 0
    repository.clear_source_facts(db)
    while True:
        done = refresh(db)
        drained += done
        if done == 0:
            break
    return {"facts": drained, "aggregates": facts.rebuild_aggregates(db)}
