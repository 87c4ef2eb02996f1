"""Reads and single-statement creates run without BEGIN/COMMIT on PostgreSQL; everything
else keeps its transaction. A real engine (not the tests' rolled-back connection), since
that is where statements can commit on their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL, demo_side_database
from helpers import system_client
from medalliance.access.models import CareRelationship
from medalliance.audit.models import AuditEvent
from medalliance.db import unit_of_work
from medalliance.kit.http import autocommit
from medalliance.records.models import FhirResource
from records.factories import encounter, observation

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL"),
]
P = "p00000011"


@pytest.fixture(scope="module")
def factory() -> Iterator[sessionmaker[Session]]:
    engine = demo_side_database("autocommit")
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture(scope="module")
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with system_client(factory) as made:
        yield made


def _audit_actions(factory: sessionmaker[Session], resource_id: str) -> list[str]:
    with unit_of_work(factory) as db:
        stmt = (
            select(AuditEvent.action)
            .where(AuditEvent.resource_id == resource_id)
            .order_by(AuditEvent.id)
        )
        return list(db.scalars(stmt))


def test_a_session_on_postgresql_switches_before_its_first_statement_only(
    factory: sessionmaker[Session],
) -> None:
    with factory() as db:
        assert autocommit(db)
        assert db.connection().connection.dbapi_connection.autocommit  # type: ignore[union-attr]
    with factory() as db:  # the pooled connection went back in its usual mode
        db.execute(select(1))
        assert not db.connection().connection.dbapi_connection.autocommit  # type: ignore[union-attr]
        assert not autocommit(db)  # too late: a transaction is open


def test_reads_and_creates_are_stored_and_audited(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    assert client.post("/fhir/Encounter", json=encounter(P)).status_code == 201
    created = client.post("/fhir/Observation", json=observation(P))
    assert created.status_code == 201
    resource_id = created.json()["id"]
    read = client.get(f"/fhir/Observation/{resource_id}")
    assert read.status_code == 200
    assert read.json()["valueQuantity"]["value"] == 72
    assert client.get(f"/fhir/Observation/{resource_id}/_history/1").status_code == 200
    assert _audit_actions(factory, resource_id) == ["fhir.create", "read", "read"]


def test_a_search_finds_and_audits_its_page(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    patient = "p00000013"
    assert client.post("/fhir/Encounter", json=encounter(patient)).status_code == 201
    created = client.post("/fhir/Observation", json=observation(patient)).json()
    found = client.get("/fhir/Observation", params={"patient": patient})
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [created["id"]]
    with unit_of_work(factory) as db:
        reads = db.scalars(
            select(AuditEvent.basis).where(
                AuditEvent.patient_id == patient,
                AuditEvent.action == "read",
                AuditEvent.resource_type == "Observation",
            )
        ).all()
    assert reads == ["care_relationship"]


def test_a_refused_create_leaves_nothing_but_its_refusal(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    stranger = "p00001999"  # no encounter, referral or consent with the county hospital

    def counts() -> tuple[int | None, int | None, int | None]:
        with unit_of_work(factory) as db:
            denied = select(func.count()).where(AuditEvent.action == "access.denied")
            theirs = select(func.count()).where(AuditEvent.patient_id == stranger)
            stored = select(func.count()).select_from(FhirResource)
            return db.scalar(stored), db.scalar(theirs), db.scalar(denied)

    stored, theirs, denied = counts()
    assert client.post("/fhir/Observation", json=observation(stranger)).status_code == 403
    assert counts() == (stored, theirs, (denied or 0) + 1)


def test_a_create_naming_a_deleted_visit_is_refused_and_stores_nothing(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    """The refusal comes from what the write statement found while writing, and a create
    has no transaction to roll back: the statement itself must then write nothing (it used
    to store the result, audited as created, and answer 409)."""
    patient = "p00000014"
    visit = client.post("/fhir/Encounter", json=encounter(patient)).json()["id"]
    assert client.delete(f"/fhir/Encounter/{visit}").status_code == 204

    def stored() -> tuple[int | None, int | None]:
        with unit_of_work(factory) as db:
            theirs = select(func.count()).where(
                FhirResource.patient_id == patient, FhirResource.resource_type == "Observation"
            )
            created = select(func.count()).where(
                AuditEvent.patient_id == patient, AuditEvent.action == "fhir.create"
            )
            return db.scalar(theirs), db.scalar(created)

    before = stored()
    result = {**observation(patient), "encounter": {"reference": f"Encounter/{visit}"}}
    refused = client.post("/fhir/Observation", json=result)
    assert refused.status_code == 409
    assert "which was deleted" in refused.json()["issue"][0]["diagnostics"]
    assert stored() == before
    # A version of the deleted visit is still a good reference: that create is stored.
    versioned = {**result, "encounter": {"reference": f"Encounter/{visit}/_history/1"}}
    assert client.post("/fhir/Observation", json=versioned).status_code == 201


def test_a_failing_transaction_bundle_still_writes_nothing(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    with unit_of_work(factory) as db:
        before = db.scalar(select(func.count()).select_from(FhirResource))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation(P), "request": {"method": "POST", "url": "Observation"}},
            {
                "resource": {**observation(P), "subject": {"reference": "Patient/nobody"}},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert client.post("/fhir", json=bundle).status_code in (400, 404, 422)
    with unit_of_work(factory) as db:
        assert db.scalar(select(func.count()).select_from(FhirResource)) == before


def test_an_encounter_create_records_the_visit_with_it(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    # Two writes (the encounter, the care relationship its visit opens): it keeps its
    # transaction, and both are there.
    patient = "p00000012"
    created = client.post("/fhir/Encounter", json=encounter(patient))
    assert created.status_code == 201
    with unit_of_work(factory) as db:
        visits = db.scalars(
            select(CareRelationship.source_id).where(
                CareRelationship.patient_id == patient,
                CareRelationship.institution_id == "county-hospital",
                CareRelationship.kind == "encounter",
            )
        ).all()
    assert created.json()["id"] in visits
    assert _audit_actions(factory, created.json()["id"]) == ["fhir.create"]


def test_not_inside_another_transaction(db: Session) -> None:
    # ``db``: the tests' session, on a connection with an outer transaction (both backends).
    assert not autocommit(db)
    db.add(AuditEvent(username="autocommit-test", action="test", outcome="success", detail={}))
    db.flush()
    db.rollback()  # the session still has its transaction to roll back
    assert db.scalar(select(func.count()).where(AuditEvent.username == "autocommit-test")) == 0
