"""A refusal reads the same in the audit log wherever it was refused: a request the error
handler answered 403, a batch's refused entry, the timeline page that answers 403 itself."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, page_login, system_bearer
from medalliance.audit.models import AuditEvent
from records.factories import encounter, ensure_person, observation

P = "p00000007"  # treated by the county hospital, not by township-01
FHIR = "application/fhir+json"


@pytest.fixture
def refused(client: TestClient, db: Session) -> str:
    """The township doctor, with no basis to read P's record, tries it three ways; the id
    of the county's observation they were refused."""
    his = {**system_bearer(client), "Content-Type": FHIR}
    ensure_person(db, P)
    made = client.post("/fhir/Encounter", json=encounter(P), headers=his)
    obs = client.post("/fhir/Observation", json=observation(P, made.json()["id"]), headers=his)
    obs_id: str = obs.json()["id"]
    doctor = {**bearer(client, "doctor"), "Content-Type": FHIR}
    assert client.get(f"/fhir/Observation/{obs_id}", headers=doctor).status_code == 403
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation/{obs_id}"}}],
    }
    answered = client.post("/fhir", json=batch, headers=doctor)
    assert answered.json()["entry"][0]["response"]["status"] == "403", answered.text
    page_login(client, "doctor")
    assert client.get(f"/patients/{P}/timeline").status_code == 403
    client.cookies.clear()
    return obs_id


def test_every_refusal_has_the_same_detail_keys(
    client: TestClient, db: Session, refused: str
) -> None:
    rows = db.scalars(
        select(AuditEvent.detail)
        .where(AuditEvent.action == "access.denied", AuditEvent.username == "doctor")
        .order_by(AuditEvent.id)
    ).all()
    assert [(d["method"], d["path"], d["entry"]) for d in rows] == [
        ("GET", f"/fhir/Observation/{refused}", None),
        ("GET", f"/fhir/Observation/{refused}", "Bundle.entry[0]"),
        ("GET", f"/patients/{P}/timeline", None),
    ]
    assert {frozenset(d) for d in rows} == {frozenset({"method", "path", "entry", "reason"})}


def test_every_refusal_shows_its_request_and_reason_as_an_audit_event(
    client: TestClient, db: Session, refused: str
) -> None:
    found = client.get("/fhir/AuditEvent?agent=doctor", headers=bearer(client, "admin"))
    assert found.status_code == 200, found.text
    events = [e["resource"] for e in reversed(found.json()["entry"])]
    denials = [e for e in events if e["subtype"][0]["code"] == "access.denied"]

    def request(event: dict[str, Any]) -> dict[str, str]:
        [asked] = [x for x in event["entity"] if x.get("type", {}).get("code") == "2"]
        return {d["type"]: d["valueString"] for d in asked["detail"]}

    assert [request(e) for e in denials] == [
        {"method": "GET", "path": f"/fhir/Observation/{refused}"},
        {"method": "GET", "path": f"/fhir/Observation/{refused}", "entry": "Bundle.entry[0]"},
        {"method": "GET", "path": f"/patients/{P}/timeline"},
    ]
    assert all(e["outcome"] == "4" and e["outcomeDesc"] for e in denials)
