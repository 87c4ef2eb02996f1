"""Writes and reads of the shared record with input at the edges: numbers JSON cannot
hold, nesting past Python's stack, dates at the ends of the calendar, versions past the
database's integers. Each is a 4xx OperationOutcome naming the problem (and changes
nothing), or, when it is valid FHIR, an ordinary success."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from records.factories import encounter, observation, related_system

P = "p00000004"
FHIR = "application/fhir+json"


@pytest.fixture
def his(client: TestClient, db: Session) -> dict[str, str]:
    return related_system(client, db, P)


@pytest.fixture
def created(client: TestClient, his: dict[str, str]) -> dict[str, Any]:
    response = client.post("/fhir/Observation", json=observation(P, value=5), headers=his)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def diagnostics(response: Any) -> str:
    assert response.json()["resourceType"] == "OperationOutcome", response.text
    return str(response.json()["issue"][0]["diagnostics"])


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_a_number_json_cannot_hold_is_a_400_and_nothing_changes(
    client: TestClient, his: dict[str, str], created: dict[str, Any], number: str
) -> None:
    url = f"/fhir/Observation/{created['id']}"
    body = dict(created, valueQuantity={"value": 1, "unit": "/min"})
    raw = json.dumps(body).replace('"value": 1,', f'"value": {number},')
    assert number in raw
    response = client.put(url, content=raw, headers=his)
    assert response.status_code == 400, response.text
    assert "JSON" in diagnostics(response)
    assert client.get(url, headers=his).json()["meta"]["versionId"] == "1"


def test_a_patch_to_an_infinite_value_is_refused(
    client: TestClient, his: dict[str, str], created: dict[str, Any]
) -> None:
    url = f"/fhir/Observation/{created['id']}"
    response = client.patch(
        url,
        content=b'[{"op": "replace", "path": "/valueQuantity/value", "value": 1e400}]',
        headers={**his, "Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400, response.text
    assert client.get(url, headers=his).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("change", "element"),
    [
        ({"status": "bogus"}, "Observation.status"),
        ({"status": "Final"}, "Observation.status"),  # codes are case-sensitive
    ],
)
def test_a_code_outside_its_required_value_set_is_a_400_naming_the_element(
    client: TestClient,
    his: dict[str, str],
    created: dict[str, Any],
    change: dict[str, Any],
    element: str,
) -> None:
    url = f"/fhir/Observation/{created['id']}"
    response = client.put(url, json={**created, **change}, headers=his)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == [element]
    assert "observation-status" in issue["diagnostics"]
    assert client.get(url, headers=his).json()["meta"]["versionId"] == "1"


def test_a_required_code_is_checked_in_repeating_elements(
    client: TestClient, his: dict[str, str], created: dict[str, Any]
) -> None:
    period = {"start": "2026-11-01"}
    history = [{"status": "planned", "period": period}, {"status": "done", "period": period}]
    visit = {**encounter(P), "statusHistory": history}
    response = client.post("/fhir/Encounter", json=visit, headers=his)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Encounter.statusHistory.status"]


def test_json_nested_past_the_stack_is_a_400(client: TestClient, his: dict[str, str]) -> None:
    response = client.post("/fhir/Observation", content=b"[" * 100_000, headers=his)
    assert response.status_code == 400
    assert "JSON" in diagnostics(response)


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "9999-12-31", "9999", "0001-01-01T00:00:00+14:00"]
)
def test_a_date_at_the_end_of_the_calendar_is_stored_and_found(
    client: TestClient, his: dict[str, str], when: str
) -> None:
    resource = observation(P, when=when)
    response = client.post("/fhir/Observation", json=resource, headers=his)
    assert response.status_code == 201, response.text
    oid = response.json()["id"]
    year = when[:4]
    found = client.get(f"/fhir/Observation?_id={oid}&date={year}", headers=his)
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [oid]


@pytest.mark.parametrize(
    "query",
    [
        "date=lt0001-01-01T00:00:00%2B14:00",
        "date=gt9999-12-31T23:59:59-14:00",
        "_lastUpdated=gt9999-12-31T23:59:59-14:00",
        "date=ap0001",  # the approximate margin reaches before year 1
        "date=ap9999-06-01",
    ],
)
def test_a_search_at_the_end_of_the_calendar_answers(
    client: TestClient, his: dict[str, str], query: str
) -> None:
    response = client.get(f"/fhir/Observation?{query}", headers=his)
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "Bundle"


@pytest.mark.parametrize("version", [2**31, 2**63, 10**20])
def test_a_version_past_the_integers_is_not_found(
    client: TestClient, his: dict[str, str], created: dict[str, Any], version: int
) -> None:
    response = client.get(f"/fhir/Observation/{created['id']}/_history/{version}", headers=his)
    assert response.status_code == 404
    assert str(version) in diagnostics(response)


@pytest.mark.parametrize(
    "url",
    [
        "/fhir/Observation/_history",
        "/fhir/Observation/{id}/_history",
        "/fhir/Observation",
        "/fhir/Patient/{patient}/$everything",
    ],
)
def test_a_history_count_in_non_ascii_digits_is_a_400(
    client: TestClient, his: dict[str, str], created: dict[str, Any], url: str
) -> None:
    patient = created["subject"]["reference"].split("/")[-1]
    response = client.get(url.format(id=created["id"], patient=patient) + "?_count=²", headers=his)
    assert response.status_code == 400
    assert "_count" in diagnostics(response)


def _cursor(value: Any, pid: Any) -> str:
    raw = json.dumps([value, pid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        f"/fhir/Patient/{P}/$everything?_cursor=²",
        f"/fhir/Patient/{P}/$everything?_cursor=99999999999999999999999",
        f"/fhir/Patient/{P}/$everything?_cursor=abc",
        f"/fhir/Observation?_cursor={_cursor(1, 10**23)}",
        f"/fhir/Observation?_cursor={_cursor(1, -1)}",
        f"/fhir/Observation?_sort=_id&_cursor={_cursor(5, 1)}",
        f"/fhir/Observation?_sort=-date&_cursor={_cursor(None, 1)}",
        f"/fhir/Observation?_sort=_lastUpdated&_cursor={_cursor('2020-01-01', 1)}",  # no zone
        f"/fhir/Observation?_sort=date&_cursor={_cursor('9999-12-31T23:59:59-14:00', 1)}",
        "/fhir/Encounter/_history?_cursor=2026-11-27T12:18:55%2B00:00|99999999999999999999|1",
        "/fhir/Encounter/_history?_cursor=2026-11-27T12:18:55%2B00:00|-1|1",
        "/fhir/Encounter/_history?_cursor=2026-11-27T12:18:55%2B00:00|1|99999999999",
        "/fhir/Encounter/_history?_cursor=2026-11-27T12:18:55|1|1",
        "/fhir/Encounter/_history?_cursor=9999-12-31T23:59:59-14:00|1|1",
    ],
)
def test_a_cursor_this_server_did_not_issue_is_a_400(
    client: TestClient, his: dict[str, str], created: dict[str, Any], query: str
) -> None:
    response = client.get(query, headers=his)
    assert response.status_code == 400, response.text
    assert "_cursor" in diagnostics(response)


def test_a_valid_resource_nested_past_the_stack_is_a_400(
    client: TestClient, his: dict[str, str]
) -> None:
    nested: dict[str, Any] = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(150):
        nested = {"url": "urn:x", "extension": [nested]}
    resource = {**observation(P), "extension": [nested]}
    response = client.post("/fhir/Observation", json=resource, headers=his)
    assert response.status_code == 400, response.text
    assert "nested" in diagnostics(response)


@pytest.mark.parametrize("body", ["[]", '"abc"', "null", "1"])
@pytest.mark.parametrize("matching", [False, True])
def test_a_conditional_update_whose_body_is_not_an_object_is_a_400(
    client: TestClient, his: dict[str, str], created: dict[str, Any], body: str, matching: bool
) -> None:
    criteria = f"_id={created['id']}" if matching else "identifier=urn:x|NONE"
    response = client.put(f"/fhir/Observation?{criteria}", content=body, headers=his)
    assert response.status_code == 400, response.text
    assert "JSON object" in diagnostics(response)
