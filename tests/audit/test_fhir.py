"""The audit log searched as FHIR AuditEvents: a resident pages through every access to
their record, however many there are and while new ones are written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.audit import service
from medalliance.audit.enums import AccessBasis
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor

RESIDENT_PERSON = "p00000010"  # the demo resident's own person
COUNTY_DOCTOR = Actor(
    user_id="u-doctor-c", username="cdoctor", role=Role.DOCTOR, institution_id="county-hospital"
)
URL = f"/fhir/AuditEvent?patient={RESIDENT_PERSON}"


@pytest.fixture
def resident(client: TestClient) -> dict[str, str]:
    return bearer(client, "resident")


@pytest.fixture
def accesses(db: Session) -> list[str]:
    """Five reads of the resident's record; the ids of every event about it, newest first."""
    read = service.event_row(
        COUNTY_DOCTOR,
        "read",
        resource_type="Observation",
        patient_id=RESIDENT_PERSON,
        basis=AccessBasis.CARE_RELATIONSHIP,
    )
    service.record_all_now(db, [read] * 5)
    about = select(AuditEvent.id).where(AuditEvent.patient_id == RESIDENT_PERSON)
    return [str(i) for i in db.scalars(about.order_by(AuditEvent.id.desc()))]


def next_url(bundle: dict[str, Any]) -> str | None:
    found = [x["url"] for x in bundle["link"] if x["relation"] == "next"]
    return found[0].replace("http://testserver", "") if found else None


def test_total_counts_every_matching_event_not_the_page(
    client: TestClient, resident: dict[str, str], accesses: list[str]
) -> None:
    bundle = client.get(f"{URL}&_count=2", headers=resident).json()
    assert len(bundle["entry"]) == 2
    assert bundle["total"] == len(accesses)


def test_a_resident_pages_through_every_access_while_new_ones_are_written(
    client: TestClient, resident: dict[str, str], accesses: list[str]
) -> None:
    # Each page read is itself an access to the record, audited: the log grows meanwhile.
    seen: list[str] = []
    url: str | None = f"{URL}&_count=2"
    while url is not None:
        response = client.get(url, headers=resident)
        assert response.status_code == 200, response.text
        seen += [e["resource"]["id"] for e in response.json()["entry"]]
        url = next_url(response.json())
    assert seen == accesses


def test_entries_have_a_full_url_and_the_bundle_a_self_link(
    client: TestClient, resident: dict[str, str], accesses: list[str]
) -> None:
    bundle = client.get(f"{URL}&_count=2", headers=resident).json()
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        f"http://testserver/fhir/AuditEvent/{i}" for i in accesses[:2]
    ]
    assert {"relation": "self", "url": f"http://testserver{URL}&_count=2"} in bundle["link"]


def test_count_zero_answers_the_total_alone(
    client: TestClient, resident: dict[str, str], accesses: list[str]
) -> None:
    bundle = client.get(f"{URL}&_count=0", headers=resident).json()
    assert (bundle["total"], bundle["entry"]) == (len(accesses), [])
    assert next_url(bundle) is None


def test_an_unknown_parameter_warns_or_is_a_400_when_strict(
    client: TestClient, resident: dict[str, str], accesses: list[str]
) -> None:
    lenient = client.get(f"{URL}&action=R", headers=resident).json()
    outcome = lenient["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    assert "action" in outcome["resource"]["issue"][0]["diagnostics"]
    [self_link] = [x["url"] for x in lenient["link"] if x["relation"] == "self"]
    assert "action" not in self_link  # the links show the search as it ran
    strict = client.get(f"{URL}&action=R", headers={**resident, "Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert "action" in strict.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("cursor", ["abc", "²", "99999999999999999999999"])
def test_a_cursor_this_server_did_not_issue_is_a_400(
    client: TestClient, resident: dict[str, str], cursor: str
) -> None:
    response = client.get(f"{URL}&_cursor={cursor}", headers=resident)
    assert response.status_code == 400
    assert "_cursor" in response.json()["issue"][0]["diagnostics"]
