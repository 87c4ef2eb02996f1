"""Stored resources follow MPI merges: every row keyed by the merged person (current
version, history, index rows) is re-keyed to the survivor, so searches, ``$everything``,
the timeline and the access rule for the survivor see the whole record; unmerge gives the
claimed resources back. Resource content is untouched: its ``Patient/<merged id>``
references keep resolving through the MPI."""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from medalliance.patients import merge_steps
from medalliance.patients.models import PersonMerge
from medalliance.records.models import FhirResource, FhirResourceVersion
from medalliance.records.store import INDEX_MODELS

TARGET = "fhir_resource"
KEYED_BY_PID = (FhirResource, FhirResourceVersion, *INDEX_MODELS)


def move(db: Session, merge: PersonMerge) -> None:
    owned = select(FhirResource.pid).where(FhirResource.patient_id == merge.merged_id)
    merge_steps.claim(db, merge, TARGET, owned)
    _assign(db, merge_steps.claimed(merge.id, TARGET), merge.survivor_id)


def restore(db: Session, merge: PersonMerge) -> None:
    _assign(db, merge_steps.claimed(merge.id, TARGET), merge.merged_id)


def _assign(db: Session, pids: Select[int], patient_id: str) -> None:
    for model in KEYED_BY_PID:
        db.execute(
            update(model).where(model.pid.in_(pids)).values(patient_id=patient_id),
            execution_options={"synchronize_session": False},
        )


merge_steps.register(merge_steps.MergeStep("records", move, restore))
