"""What a member system sees when it sends a resource the boundary refuses: an
OperationOutcome naming the element, nothing stored; and a resource type R4 does not
have in the URL is a 404 (R4 http.html: not a supported resource type)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from records.factories import observation, related_system

P = "p00000004"


@pytest.fixture
def his(client: TestClient, db: Session) -> dict[str, str]:
    return related_system(client, db, P)


def _issue(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", response.text
    issue: dict[str, Any] = body["issue"][0]
    return issue


def _stored(client: TestClient, his: dict[str, str]) -> int:
    found = client.get(f"/fhir/Observation?patient={P}&_summary=count", headers=his)
    total: int = found.json()["total"]
    return total


class TestRefusedBodies:
    @pytest.mark.parametrize(
        ("change", "element", "status"),
        [
            ({"valueQuantity": {"value": "5"}}, "Observation.valueQuantity.value", 400),
            ({"valueBoolean": "false"}, "Observation.valueBoolean", 400),
            (
                {"text": {"status": "generated", "div": "<script>alert(1)</script>"}},
                "Observation.text.div",
                400,
            ),
            ({"subject": {"reference": "#nothing"}}, "Observation.subject.reference", 400),
            (
                {"effectivePeriod": {"start": "2026-10-02", "end": "2026-10-01"}},
                "Observation.effectivePeriod",
                400,
            ),
            ({"contained": [{"resourceType": "Foo"}]}, "Observation.contained", 400),
            ({"contained": [{}]}, "Observation.contained", 400),
            (
                {
                    "contained": [{"resourceType": "Patient", "id": "newborn"}],
                    "subject": {"reference": "#newborn"},
                },
                "Observation.subject",
                422,
            ),
        ],
    )
    def test_an_invalid_resource_is_refused_naming_the_element_and_not_stored(
        self,
        client: TestClient,
        his: dict[str, str],
        change: dict[str, Any],
        element: str,
        status: int,
    ) -> None:
        before = _stored(client, his)
        resource = {**observation(P), **change}
        if "effectivePeriod" in change:
            del resource["effectiveDateTime"]
        response = client.post("/fhir/Observation", json=resource, headers=his)
        assert response.status_code == status, response.text
        assert _issue(response)["expression"] == [element]
        assert _stored(client, his) == before

    def test_an_invalid_entry_fails_its_transaction_with_its_element(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bad = {**observation(P), "valueQuantity": {"value": "5"}}
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": observation(P), "request": {"method": "POST", "url": "Observation"}},
                {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
            ],
        }
        before = _stored(client, his)
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert "Bundle.entry[1]" in _issue(response)["diagnostics"]
        assert _stored(client, his) == before


class TestUnknownResourceTypes:
    @pytest.mark.parametrize(
        ("method", "url"),
        [
            ("GET", "/fhir/Foo/1"),
            ("DELETE", "/fhir/Foo/1"),
            ("GET", "/fhir/observation"),
            ("GET", "/fhir/observation/1"),
            ("GET", "/fhir/Foo/_history"),
            ("GET", "/fhir/Foo/1/_history/1"),
        ],
    )
    def test_a_type_r4_does_not_have_is_not_found(
        self, client: TestClient, his: dict[str, str], method: str, url: str
    ) -> None:
        response = client.request(method, url, headers=his)
        assert response.status_code == 404, response.text
        assert _issue(response)["code"] == "not-supported"

    def test_a_create_of_such_a_type_is_not_found(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        response = client.post("/fhir/Foo", json={"resourceType": "Foo"}, headers=his)
        assert response.status_code == 404, response.text
        assert _issue(response)["code"] == "not-supported"

    def test_such_a_type_in_a_body_sent_to_a_real_type_is_an_invalid_body(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        response = client.post("/fhir/Observation", json={"resourceType": "Foo"}, headers=his)
        assert response.status_code == 400, response.text
        assert _issue(response)["code"] == "invalid"

    def test_a_batch_entry_of_such_a_type_is_not_found_and_the_others_run(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": "Foo/1"}},
                {"resource": {"resourceType": "Foo"}, "request": {"method": "POST", "url": "Foo"}},
                {"resource": observation(P), "request": {"method": "POST", "url": "Observation"}},
            ],
        }
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        first, second, third = (e["response"] for e in response.json()["entry"])
        for refused in (first, second):
            assert refused["status"] == "404"
            assert refused["outcome"]["issue"][0]["code"] == "not-supported"
        assert third["status"].startswith("201")
