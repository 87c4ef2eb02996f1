"""Batch and transaction entries as R4 (bundle.html, http.html) defines them: what a
response entry holds, entries that depend on each other, entries of odd shape, and reads
of every type the server serves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from helpers import system_bearer
from medalliance.patients.enums import RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person
from records.factories import COUNTY, encounter, observation

P = "p00000005"


def bundle_of(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def post(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    return entry if full_url is None else {"fullUrl": full_url, **entry}


def strictly_r4(body: dict[str, Any]) -> dict[str, Any]:
    """The response as a strict client reads it: every element must be one R4 defines."""
    Bundle.model_validate(body)
    return body


@pytest.fixture
def his(client: TestClient) -> dict[str, str]:
    return system_bearer(client)


@pytest.fixture
def visit(client: TestClient, his: dict[str, str]) -> str:
    """The member's system records an encounter of P: it may then write P's record."""
    response = client.post("/fhir/Encounter", json=encounter(P), headers=his)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def stored(client: TestClient, his: dict[str, str], visit: str) -> str:
    response = client.post("/fhir/Observation", json=observation(P, visit), headers=his)
    assert response.status_code == 201, response.text
    return f"Observation/{response.json()['id']}"


class TestResponseEntries:
    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_what_a_get_returns_is_the_entrys_resource_and_strict_clients_accept_it(
        self, client: TestClient, db: Session, his: dict[str, str], stored: str, kind: str
    ) -> None:
        person = db.get(Person, P)
        assert person is not None
        reads = [
            stored,
            f"Observation?patient={P}",
            f"Patient/{P}",
            f"Patient?identifier={RESIDENT_ID_SYSTEM}|{person.id_number}",
            f"Organization/{COUNTY}",
        ]
        bundle = bundle_of(kind, post(observation(P)), *(get(u) for u in reads))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        entries = strictly_r4(response.json())["entry"]
        assert [e["response"]["status"][:3] for e in entries] == ["201"] + ["200"] * len(reads)
        assert "resource" not in entries[0]  # a write answers where it wrote, not what
        answered = [e["resource"] for e in entries[1:]]
        assert [r["resourceType"] for r in answered] == [
            "Observation",
            "Bundle",
            "Patient",
            "Bundle",
            "Organization",
        ]
        assert answered[0]["id"] == stored.partition("/")[2]
        assert entries[1]["response"]["etag"] == 'W/"1"'
        assert stored.partition("/")[2] in {e["resource"]["id"] for e in answered[1]["entry"]}
        assert [e["resource"]["id"] for e in answered[3]["entry"]] == [P]

    def test_a_failed_batch_entry_answers_its_outcome_and_strict_clients_accept_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bundle = bundle_of("batch", get("Observation/nothing-here"), get(f"Patient/{P}"))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        failed, read = strictly_r4(response.json())["entry"]
        assert "resource" not in failed
        assert failed["response"]["status"] == "404"
        assert failed["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert read["resource"]["id"] == P
