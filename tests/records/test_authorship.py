"""Only the institution that wrote a resource of the shared record may change or delete
it; another member with a basis to the record adds resources of its own."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpers import bearer, system_bearer
from medalliance.access import service as access
from medalliance.access.enums import RelationshipKind
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.auth.tokens import issue_token
from medalliance.errors import Forbidden
from medalliance.records import service
from medalliance.records.models import FhirResource, FhirResourceVersion
from records.factories import (
    COUNTY,
    COUNTY_HIS,
    TOWNSHIP,
    admitted,
    encounter,
    ensure_person,
    observation,
)

P = "p00000007"
FHIR = "application/fhir+json"
NOW = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)
REFUSED = "was written by 安平县人民医院 (county-hospital); only that institution may change"


def discharge_summary(patient_id: str) -> dict[str, Any]:
    text = base64.b64encode("出院小结：病情稳定，两周内基层随访。".encode()).decode()
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": "2026-11-12T10:00:00+08:00",
        "content": [{"attachment": {"contentType": "text/plain", "data": text}}],
    }


@pytest.fixture
def county(client: TestClient, db: Session) -> dict[str, str]:
    """The county hospital's HIS, which records the patient's stay (its care relationship)."""
    headers = {**system_bearer(client), "Content-Type": FHIR}
    ensure_person(db, P)
    assert client.post("/fhir/Encounter", json=encounter(P), headers=headers).status_code == 201
    return headers


@pytest.fixture
def township(client: TestClient, db: Session) -> dict[str, str]:
    """A township doctor who may read and write the patient's record: the county referred
    the patient down to the township (a care relationship)."""
    access.record_relationship(
        db,
        patient_id=ensure_person(db, P),
        institution_id=TOWNSHIP,
        kind=RelationshipKind.REFERRAL,
        source_type="ServiceRequest",
        source_id="down-referral-1",
    )
    db.flush()
    return {**bearer(client, "doctor"), "Content-Type": FHIR}


@pytest.fixture
def summary(client: TestClient, county: dict[str, str]) -> dict[str, Any]:
    """The county's discharge summary, updated once by the county (two versions)."""
    made = client.post("/fhir/DocumentReference", json=discharge_summary(P), headers=county)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    url = f"/fhir/DocumentReference/{body['id']}"
    amended = client.put(url, json={**body, "description": "已修订"}, headers=county)
    assert amended.status_code == 200, amended.text
    updated: dict[str, Any] = amended.json()
    return updated


def unchanged(client: TestClient, county: dict[str, str], document: dict[str, Any]) -> None:
    """The resource reads back as it was, and its history holds its two versions only."""
    url = f"/fhir/DocumentReference/{document['id']}"
    current = client.get(url, headers=county)
    assert current.status_code == 200, current.text
    assert current.json() == document
    history = client.get(f"{url}/_history", headers=county).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def refused(response: Any, document: dict[str, Any]) -> None:
    assert response.status_code == 403, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert f"DocumentReference/{document['id']} {REFUSED}" in issue["diagnostics"]


def denials(db: Session, username: str) -> list[dict[str, Any]]:
    """The details of the user's refusals, as audited."""
    rows = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access.denied",
            AuditEvent.username == username,
            AuditEvent.outcome == "denied",
        )
    ).all()
    return [r.detail for r in rows]


def refusal_audited(db: Session, username: str) -> bool:
    return any(REFUSED in str(d.get("reason")) for d in denials(db, username))


class TestAnotherInstitution:
    def test_put_is_refused_audited_and_changes_nothing(
        self,
        client: TestClient,
        db: Session,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        url = f"/fhir/DocumentReference/{summary['id']}"
        response = client.put(url, json={**summary, "status": "entered-in-error"}, headers=township)
        refused(response, summary)
        unchanged(client, county, summary)
        assert refusal_audited(db, "doctor")

    def test_json_patch_is_refused_and_changes_nothing(
        self,
        client: TestClient,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        patch = [{"op": "replace", "path": "/status", "value": "superseded"}]
        response = client.patch(
            f"/fhir/DocumentReference/{summary['id']}",
            json=patch,
            headers={**township, "Content-Type": "application/json-patch+json"},
        )
        refused(response, summary)
        unchanged(client, county, summary)

    def test_delete_is_refused_and_changes_nothing(
        self,
        client: TestClient,
        db: Session,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        response = client.delete(f"/fhir/DocumentReference/{summary['id']}", headers=township)
        refused(response, summary)
        unchanged(client, county, summary)
        assert refusal_audited(db, "doctor")

    def test_conditional_delete_is_refused_and_changes_nothing(
        self,
        client: TestClient,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        response = client.delete(
            f"/fhir/DocumentReference?_id={summary['id']}&patient={P}", headers=township
        )
        refused(response, summary)
        unchanged(client, county, summary)

    def test_conditional_put_is_refused_and_changes_nothing(
        self,
        client: TestClient,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        response = client.put(
            f"/fhir/DocumentReference?_id={summary['id']}",
            json={**summary, "status": "superseded"},
            headers=township,
        )
        refused(response, summary)
        unchanged(client, county, summary)

    def test_a_deleted_resource_is_not_brought_back_by_another_institution(
        self,
        client: TestClient,
        db: Session,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        url = f"/fhir/DocumentReference/{summary['id']}"
        assert client.delete(url, headers=county).status_code == 204
        response = client.put(url, json=summary, headers=township)
        refused(response, summary)
        assert client.get(url, headers=county).status_code == 410
        row = db.scalars(select(FhirResource).where(FhirResource.id == summary["id"])).one()
        assert (row.version, row.deleted) == (3, True)

    def test_a_transaction_with_one_refused_entry_writes_nothing(
        self,
        client: TestClient,
        db: Session,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        before = observations_of(db, P)
        own = observation(P)
        bundle = transaction_of(
            "transaction",
            {"resource": own, "request": {"method": "POST", "url": "Observation"}},
            {
                "resource": {**summary, "status": "superseded"},
                "request": {"method": "PUT", "url": f"DocumentReference/{summary['id']}"},
            },
        )
        response = client.post("/fhir", json=bundle, headers=township)
        refused(response, summary)
        unchanged(client, county, summary)
        assert observations_of(db, P) == before

    def test_a_transaction_delete_entry_is_refused(
        self,
        client: TestClient,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        bundle = transaction_of(
            "transaction",
            {"request": {"method": "DELETE", "url": f"DocumentReference/{summary['id']}"}},
        )
        refused(client.post("/fhir", json=bundle, headers=township), summary)
        unchanged(client, county, summary)

    def test_in_a_batch_only_the_refused_entry_fails_and_its_refusal_is_audited(
        self,
        client: TestClient,
        db: Session,
        county: dict[str, str],
        township: dict[str, str],
        summary: dict[str, Any],
    ) -> None:
        before = observations_of(db, P)
        patch = [{"op": "replace", "path": "/status", "value": "superseded"}]
        bundle = transaction_of(
            "batch",
            {"resource": observation(P), "request": {"method": "POST", "url": "Observation"}},
            {
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/json-patch+json",
                    "data": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
                "request": {"method": "PATCH", "url": f"DocumentReference/{summary['id']}"},
            },
        )
        response = client.post("/fhir", json=bundle, headers=township)
        assert response.status_code == 200, response.text
        created, patched = (e["response"] for e in response.json()["entry"])
        assert created["status"].startswith("201")
        assert patched["status"] == "403"
        issue = patched["outcome"]["issue"][0]
        assert issue["code"] == "forbidden"
        assert REFUSED in issue["diagnostics"]
        unchanged(client, county, summary)
        assert len(observations_of(db, P)) == len(before) + 1
        [audited] = denials(db, "doctor")
        assert audited["entry"] == "Bundle.entry[1]"
        assert (audited["method"], audited["path"]) == (
            "PATCH",
            f"/fhir/DocumentReference/{summary['id']}",
        )
        assert REFUSED in audited["reason"]

    def test_a_resource_without_a_patient_is_its_authors_too(
        self, client: TestClient, county: dict[str, str], township: dict[str, str]
    ) -> None:
        medication = {
            "resourceType": "Medication",
            "code": {"coding": [{"system": "urn:test:drug", "code": "aspirin-100mg"}]},
        }
        made = client.post("/fhir/Medication", json=medication, headers=county).json()
        url = f"/fhir/Medication/{made['id']}"
        response = client.put(url, json={**made, "status": "inactive"}, headers=township)
        assert response.status_code == 403, response.text
        assert f"Medication/{made['id']} {REFUSED}" in response.json()["issue"][0]["diagnostics"]
        assert client.delete(url, headers=township).status_code == 403
        assert client.get(url, headers=county).json() == made

    def test_a_token_without_an_institution_is_refused_a_create(self, client: TestClient) -> None:
        """No login issues one (memberships and member systems all have an institution);
        a token signed without one is refused with the reason, not stored unchangeable."""
        nowhere = Actor(None, "nowhere-his", Role.SYSTEM, None, client_id="nowhere-his")
        token, _ = issue_token(nowhere, datetime.now(UTC))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR}
        medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
        response = client.post("/fhir/Medication", json=medication, headers=headers)
        assert response.status_code == 403, response.text
        [issue] = response.json()["issue"]
        assert issue["code"] == "forbidden"
        assert "acts for no institution" in issue["diagnostics"]

    def test_without_a_basis_the_refusal_does_not_name_the_author(
        self, client: TestClient, county: dict[str, str], summary: dict[str, Any]
    ) -> None:
        """Who wrote what in a record is not told to whoever may not read it."""
        outsider = {**bearer(client, "doctor"), "Content-Type": FHIR}  # no basis to P
        url = f"/fhir/DocumentReference/{summary['id']}"
        response = client.delete(url, headers=outsider)
        assert response.status_code == 403
        assert "county-hospital" not in response.text
        unchanged(client, county, summary)


class TestAuthorInstitution:
    def test_another_user_and_the_system_of_the_author_institution_may_change_it(
        self, client: TestClient, db: Session, county: dict[str, str]
    ) -> None:
        specialist = {**bearer(client, "specialist"), "Content-Type": FHIR}  # county-hospital
        made = client.post("/fhir/DocumentReference", json=discharge_summary(P), headers=specialist)
        assert made.status_code == 201, made.text
        document = made.json()
        url = f"/fhir/DocumentReference/{document['id']}"
        reader = {**bearer(client, "reader"), "Content-Type": FHIR}  # another county user
        amended = client.put(url, json={**document, "description": "已修订"}, headers=reader)
        assert amended.status_code == 200, amended.text
        patched = client.patch(
            url,
            json=[{"op": "replace", "path": "/status", "value": "superseded"}],
            headers={**county, "Content-Type": "application/json-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        assert client.delete(url, headers=county).status_code == 204
        revived = client.put(url, json=document, headers=specialist)
        assert revived.status_code == 201, revived.text
        row = db.scalars(select(FhirResource).where(FhirResource.id == document["id"])).one()
        assert (row.version, row.institution_id) == (5, COUNTY)

    def test_its_conditional_delete_and_transaction_entries_still_write(
        self, client: TestClient, db: Session, county: dict[str, str], summary: dict[str, Any]
    ) -> None:
        bundle = transaction_of(
            "transaction",
            {
                "resource": {**summary, "status": "superseded"},
                "request": {"method": "PUT", "url": f"DocumentReference/{summary['id']}"},
            },
        )
        assert client.post("/fhir", json=bundle, headers=county).status_code == 200
        gone = client.delete(f"/fhir/DocumentReference?_id={summary['id']}", headers=county)
        assert gone.status_code == 204, gone.text
        versions = db.scalars(
            select(FhirResourceVersion.method)
            .join(FhirResource, FhirResource.pid == FhirResourceVersion.pid)
            .where(FhirResource.id == summary["id"])
            .order_by(FhirResourceVersion.version)
        ).all()
        assert versions == ["create", "update", "update", "delete"]


class TestStore:
    def test_the_author_is_the_creating_actors_institution(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, discharge_summary(P), now=NOW)
        row = db.scalars(select(FhirResource).where(FhirResource.id == stored.id)).one()
        assert row.institution_id == COUNTY

    def test_an_actor_without_an_institution_changes_nothing(self, db: Session) -> None:
        medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
        stored = service.create(db, COUNTY_HIS, medication, now=NOW)
        nowhere = Actor(None, "nowhere-his", Role.SYSTEM, None, client_id="nowhere-his")
        with pytest.raises(Forbidden, match=re.escape(REFUSED)):
            service.delete(db, nowhere, "Medication", stored.id, now=NOW)

    def test_an_actor_without_an_institution_creates_nothing(self, db: Session) -> None:
        """What it wrote without a patient no one could ever change (only its author's
        institution may): the create is refused instead."""
        nowhere = Actor(None, "nowhere-his", Role.SYSTEM, None, client_id="nowhere-his")
        medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
        stored = select(func.count()).select_from(FhirResource)
        before = db.scalar(stored)
        with pytest.raises(Forbidden, match="nowhere-his acts for no institution"):
            service.create(db, nowhere, medication, now=NOW)
        assert db.scalar(stored) == before

    def test_a_resource_written_without_an_institution_is_changed_by_no_one(
        self, db: Session
    ) -> None:
        """One written before such creates were refused."""
        nowhere = Actor(None, "nowhere-his", Role.SYSTEM, None, client_id="nowhere-his")
        medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
        stored = service.create(db, COUNTY_HIS, medication, now=NOW)
        db.execute(
            update(FhirResource).where(FhirResource.id == stored.id).values(institution_id=None)
        )
        for actor in (nowhere, COUNTY_HIS):
            with pytest.raises(Forbidden, match="written without an institution"):
                service.update(db, actor, "Medication", stored.id, stored.content, now=NOW)


def transaction_of(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def observations_of(db: Session, patient_id: str) -> list[str]:
    return list(
        db.scalars(
            select(FhirResource.id).where(
                FhirResource.resource_type == "Observation", FhirResource.patient_id == patient_id
            )
        ).all()
    )
