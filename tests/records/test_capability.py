"""The CapabilityStatement says what the server serves, and nothing it does not."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import system_bearer


@pytest.fixture
def statement(client: TestClient) -> dict[str, Any]:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def by_type(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_an_instance_statement_names_its_implementation(statement: dict[str, Any]) -> None:
    assert statement["kind"] == "instance"
    implementation = statement["implementation"]  # cpb-15
    assert implementation["description"]
    assert implementation["url"] == "http://testserver/fhir"


@pytest.mark.parametrize(
    "resource_type",
    [
        "Patient",
        "Organization",
        "Location",
        "HealthcareService",
        "Practitioner",
        "PractitionerRole",
        "ServiceRequest",
        "Slot",
        "Appointment",
    ],
)
def test_patient_and_registry_types_list_the_reads_and_searches_served(
    client: TestClient, statement: dict[str, Any], resource_type: str
) -> None:
    resource = by_type(statement)[resource_type]
    assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
    headers = system_bearer(client)
    for param in resource["searchParam"]:
        assert param["type"] in ("token", "string", "date", "reference")
    response = client.get(f"/fhir/{resource_type}?_count=1", headers=headers)
    assert response.status_code == 200, response.text


def test_includes_advertised_reach_what_answers_them(statement: dict[str, Any]) -> None:
    types = by_type(statement)
    # Observation.patient and Encounter.service-provider point at the MPI and the
    # registry, which answer an _include; Encounter.appointment only at scheduling's
    # Appointments, which do not.
    assert "Observation:patient" in types["Observation"]["searchInclude"]
    assert "Encounter:service-provider" in types["Encounter"]["searchInclude"]
    assert "Encounter:appointment" not in types["Encounter"]["searchInclude"]
    assert "Observation:encounter" in types["Observation"]["searchInclude"]
    # A revinclude names the type pointing here, not this type's own references.
    assert "Observation:encounter" in types["Encounter"]["searchRevInclude"]
    assert "Encounter:subject" not in types["Encounter"]["searchRevInclude"]


def test_a_task_is_read_searched_and_moved_on_but_not_stored(statement: dict[str, Any]) -> None:
    task = by_type(statement)["Task"]
    assert {i["code"] for i in task["interaction"]} == {"read", "search-type", "update", "patch"}
    assert "versioning" not in task  # a view of the referral, not a stored resource
    assert "422" in task["documentation"]  # what it refuses to change


def test_conditional_reads_are_said_where_a_version_answers_them(
    statement: dict[str, Any],
) -> None:
    types = by_type(statement)
    for served in ("Observation", "ServiceRequest", "Task"):
        assert types[served]["conditionalRead"] == "full-support"
    for unversioned in ("Patient", "Organization", "Slot"):
        assert types[unversioned]["conditionalRead"] == "not-supported"


@pytest.mark.parametrize("resource_type", ["ServiceRequest", "Task", "Slot", "Appointment"])
def test_workflow_types_are_not_written_to_the_shared_record(
    client: TestClient, resource_type: str
) -> None:
    """Read and searched as views of their workflows: a stored copy would never show."""
    headers = {**system_bearer(client), "Content-Type": "application/fhir+json"}
    body = {"resourceType": resource_type, "status": "active"}
    response = client.post(f"/fhir/{resource_type}", json=body, headers=headers)
    assert response.status_code == 405, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body, "request": {"method": "POST", "url": resource_type}}],
    }
    refused = client.post("/fhir", json=bundle, headers=headers)
    assert refused.status_code in (400, 405, 422), refused.text


@pytest.mark.parametrize("resource_type", ["Parameters", "OperationOutcome", "CapabilityStatement"])
def test_types_no_record_holds_are_not_stored_nor_advertised(
    client: TestClient, statement: dict[str, Any], resource_type: str
) -> None:
    assert resource_type not in by_type(statement)
    headers = {**system_bearer(client), "Content-Type": "application/fhir+json"}
    body: dict[str, Any] = {"resourceType": resource_type}
    if resource_type == "OperationOutcome":
        body["issue"] = [{"severity": "information", "code": "informational"}]
    created = client.post(f"/fhir/{resource_type}", json=body, headers=headers)
    assert created.status_code == 405, created.text
    assert created.json()["issue"][0]["code"] == "not-supported"
    updated = client.put(f"/fhir/{resource_type}/x", json={**body, "id": "x"}, headers=headers)
    assert updated.status_code == 405, updated.text
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body, "request": {"method": "POST", "url": resource_type}}],
    }
    refused = client.post("/fhir", json=bundle, headers=headers)
    assert refused.status_code == 422, refused.text  # POST /fhir is allowed: not a 405
    assert refused.json()["issue"][0]["code"] == "not-supported"
    assert client.get(f"/fhir/{resource_type}", headers=headers).status_code == 405


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("collection", 201),
        ("document", 201),
        ("transaction", 422),  # processed by POST /fhir, never stored by mistake
        ("batch", 422),
        ("searchset", 422),
        ("transaction-response", 422),
    ],
)
def test_a_bundle_is_stored_when_it_is_a_collection_of_its_own(
    client: TestClient, statement: dict[str, Any], kind: str, status: int
) -> None:
    headers = {**system_bearer(client), "Content-Type": "application/fhir+json"}
    body = {"resourceType": "Bundle", "type": kind, "timestamp": "2026-11-27T08:00:00Z"}
    response = client.post("/fhir/Bundle", json=body, headers=headers)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["issue"][0]["expression"] == ["Bundle.type"]
    assert "transaction" in by_type(statement)["Bundle"]["documentation"]


def test_the_statement_lists_the_stored_types_and_every_operation_served(
    statement: dict[str, Any],
) -> None:
    from medalliance.records.capability import OWNED
    from medalliance.records.links import HOMES
    from medalliance.records.searchparams import all_resource_types
    from medalliance.records.writes import NOT_STORED

    stored = set(all_resource_types()) - HOMES.keys() - NOT_STORED.keys()
    assert set(by_type(statement)) == stored | OWNED.keys() | {"AuditEvent"}
    operations = {o["name"] for o in statement["rest"][0]["operation"]}
    assert operations == {"everything", "match"}
