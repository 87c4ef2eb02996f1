"""Care relationships, consent and emergency grants follow MPI merges: they are facts
about the person, whichever record number they were first written under. After a merge
the newest consent of either record is the person's choice, as it is for one record."""

from __future__ import annotations

from sqlalchemy import Exists, Select, and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from medalliance.access.models import BreakGlassGrant, CareRelationship, Consent
from medalliance.patients import merge_steps
from medalliance.patients.models import PersonMerge

PersonKeyed = type[CareRelationship] | type[Consent] | type[BreakGlassGrant]
KEYED_BY_ID: dict[str, PersonKeyed] = {
    "care_relationship": CareRelationship,
    "consent": Consent,
    "break_glass_grant": BreakGlassGrant,
}


def move(db: Session, merge: PersonMerge) -> None:
    for target, model in KEYED_BY_ID.items():
        owned = select(model.id).where(model.patient_id == merge.merged_id)
        if model is CareRelationship:
            owned = owned.where(~_survivor_has_same(merge.survivor_id))
        merge_steps.claim(db, merge, target, owned)
        _assign(db, model, merge_steps.claimed(merge.id, target), merge.survivor_id)


def restore(db: Session, merge: PersonMerge) -> None:
    for target, model in KEYED_BY_ID.items():
        _assign(db, model, merge_steps.claimed(merge.id, target), merge.merged_id)


def _survivor_has_same(survivor_id: str) -> Exists:
    """A relationship the survivor already holds (same source) stays put: unique per person."""
    theirs = aliased(CareRelationship)
    return exists().where(
        and_(
            theirs.patient_id == survivor_id,
            theirs.institution_id == CareRelationship.institution_id,
            theirs.kind == CareRelationship.kind,
            theirs.source_id == CareRelationship.source_id,
        )
    )


def _assign(
    db: Session,
    model: PersonKeyed,
    ids: Select[int],
    patient_id: str,
) -> None:
    db.execute(
        update(model).where(model.id.in_(ids)).values(patient_id=patient_id),
        execution_options={"synchronize_session": False},
    )


merge_steps.register(merge_steps.MergeStep("access", move, restore))
