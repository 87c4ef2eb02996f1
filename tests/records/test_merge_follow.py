"""An MPI merge carries the merged person's record to the survivor (searches, $everything,
the timeline and the access rule see it), and unmerge gives back exactly what it carried."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.access.models import CareRelationship
from medalliance.auth.principal import Actor
from medalliance.patients import service as patients
from medalliance.records import service
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    FhirResourceVersion,
    ReferenceIndex,
    TokenIndex,
)
from medalliance.records.timeline import patient_timeline
from records.factories import (
    ADMIN,
    COUNTY_HIS,
    TOWNSHIP_DOCTOR,
    TOWNSHIP_HIS,
    admitted,
    ensure_person,
    observation,
)

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SURVIVOR, MERGED, THIRD = "p00000301", "p00000302", "p00000303"


def _observations(db: Session, patient: str, actor: Actor = COUNTY_HIS) -> list[str]:
    result = service.search(db, actor, "Observation", [("patient", patient)], now=NOW)
    return sorted(m.id for m in result.matches)


def _keys(db: Session) -> dict[str, Any]:
    """Whose each stored row is: the state a merge changes and an unmerge must restore."""
    db.expire_all()
    people = (SURVIVOR, MERGED, THIRD)
    return {
        model.__tablename__: sorted(
            (row.pid, row.patient_id)
            for row in db.scalars(select(model).where(model.patient_id.in_(people)))
        )
        for model in (FhirResource, FhirResourceVersion, TokenIndex, DateIndex, ReferenceIndex)
    } | {
        "care_relationship": sorted(
            (r.id, r.patient_id)
            for r in db.scalars(
                select(CareRelationship).where(CareRelationship.patient_id.in_(people))
            )
        )
    }


def _merge(db: Session, survivor: str, merged: str) -> None:
    patients.merge_persons(
        db, ADMIN, survivor_id=survivor, merged_id=merged, reason="same resident ID card"
    )


def _unmerge(db: Session, merged: str) -> None:
    patients.unmerge_person(db, ADMIN, merged_id=merged, reason="twins, not one person")


def _two_records(db: Session) -> tuple[str, str]:
    """The county hospital knows the survivor, the township health centre the merged one."""
    for person in (SURVIVOR, MERGED, THIRD):
        ensure_person(db, person)
    county_enc = admitted(db, SURVIVOR, NOW)
    township_enc = admitted(db, MERGED, NOW, actor=TOWNSHIP_HIS)
    county = service.create(db, COUNTY_HIS, observation(SURVIVOR, county_enc), now=NOW).id
    township = service.create(db, TOWNSHIP_HIS, observation(MERGED, township_enc), now=NOW).id
    return county, township


def test_a_search_for_the_survivor_finds_what_was_written_under_the_merged_id(
    db: Session,
) -> None:
    county, township = _two_records(db)
    assert _observations(db, SURVIVOR) == [county]
    _merge(db, SURVIVOR, MERGED)
    assert _observations(db, SURVIVOR) == sorted([county, township])
    # The old id is a reference to the same person now, and finds the same record.
    assert _observations(db, MERGED) == sorted([county, township])


def test_everything_and_the_timeline_show_both_records_after_a_merge(db: Session) -> None:
    county, township = _two_records(db)
    _merge(db, SURVIVOR, MERGED)
    everything = service.patient_everything(db, COUNTY_HIS, SURVIVOR, now=NOW)
    assert {county, township} <= {m.id for m in everything.matches}
    timeline = patient_timeline(db, TOWNSHIP_DOCTOR, SURVIVOR, kind=None, now=NOW)
    shown = {item.reference for group in timeline.groups for item in group.items}
    assert {f"Observation/{county}", f"Observation/{township}"} <= shown


def test_a_care_relationship_with_the_merged_record_opens_the_survivors(db: Session) -> None:
    county, _ = _two_records(db)
    # The township treated the person under the merged record number only.
    assert (
        service.search(db, TOWNSHIP_DOCTOR, "Observation", [("_id", county)], now=NOW).matches == []
    )
    _merge(db, SURVIVOR, MERGED)
    read = service.read(db, TOWNSHIP_DOCTOR, "Observation", county, now=NOW)
    assert read.id == county


def test_unmerge_gives_back_exactly_the_rows_the_merge_carried(db: Session) -> None:
    county, township = _two_records(db)
    before = _keys(db)
    _merge(db, SURVIVOR, MERGED)
    assert _keys(db) != before
    # Written while merged, under the survivor: stays with the survivor after unmerge.
    later = service.create(db, COUNTY_HIS, observation(SURVIVOR), now=NOW).id
    _unmerge(db, MERGED)
    after = _keys(db)
    assert {k: [r for r in v if r[0] != _pid(db, later)] for k, v in after.items()} == before
    assert _observations(db, MERGED, TOWNSHIP_HIS) == [township]
    assert _observations(db, SURVIVOR) == sorted([county, later])


def test_unmerging_the_first_of_two_chained_merges_returns_its_rows_only(db: Session) -> None:
    county, township = _two_records(db)
    third_enc = admitted(db, THIRD, NOW)
    third = service.create(db, COUNTY_HIS, observation(THIRD, third_enc), now=NOW).id
    _merge(db, SURVIVOR, MERGED)  # the merged record into the survivor...
    _merge(db, THIRD, SURVIVOR)  # ...and the survivor, carrying it, into a third record
    assert _observations(db, THIRD) == sorted([county, township, third])
    _unmerge(db, MERGED)
    assert _observations(db, MERGED, TOWNSHIP_HIS) == [township]
    _unmerge(db, SURVIVOR)
    assert _observations(db, SURVIVOR) == [county]
    assert _observations(db, THIRD) == [third]


def test_unmerging_the_later_of_two_chained_merges_keeps_the_earlier_one(db: Session) -> None:
    county, township = _two_records(db)
    _merge(db, SURVIVOR, MERGED)
    _merge(db, THIRD, SURVIVOR)
    _unmerge(db, SURVIVOR)
    assert _observations(db, SURVIVOR) == sorted([county, township])
    _unmerge(db, MERGED)
    assert _observations(db, MERGED, TOWNSHIP_HIS) == [township]


def _pid(db: Session, observation_id: str) -> int:
    row = db.scalars(
        select(FhirResource.pid).where(
            FhirResource.resource_type == "Observation", FhirResource.id == observation_id
        )
    ).one()
    return int(row)


def test_a_chain_through_a_subject_reference_finds_what_was_written_under_the_merged_id(
    db: Session,
) -> None:
    county, township = _two_records(db)
    _merge(db, SURVIVOR, MERGED)
    for chain in (f"subject:Patient._id={SURVIVOR}", f"subject:Patient._id={MERGED}"):
        key, _, value = chain.partition("=")
        result = service.search(db, COUNTY_HIS, "Observation", [(key, value)], now=NOW)
        assert sorted(m.id for m in result.matches) == sorted([county, township]), chain
