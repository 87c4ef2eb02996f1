"""POST ``[type]/_search`` (R4 http.html: a server that searches SHALL support it) answers
as the GET search of every type, whichever router serves the type: the same matches,
links that page by GET, the same access checks and audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import bearer, system_bearer
from medalliance.audit.models import AuditEvent
from medalliance.kit.clock import utcnow
from medalliance.referrals.enums import ReferralStatus
from medalliance.scheduling import service as scheduling
from medalliance.scheduling.enums import AppointmentStatus
from referrals.factories import PATIENT, open_slots, referral

FORM = "application/x-www-form-urlencoded"
# Criteria per type: the first in the URL, the rest in the form of the POST.
SEARCHES = {
    "Patient": [("_id", "p00000004,p00000010"), ("_count", "1")],
    "Organization": [("type", "primary"), ("_count", "2")],
    "Location": [("partof", "county-hospital"), ("_count", "2")],
    "HealthcareService": [("organization", "county-hospital"), ("_count", "2")],
    "Practitioner": [("active", "true"), ("_count", "2")],
    "PractitionerRole": [("organization", "county-hospital"), ("_count", "2")],
    "ServiceRequest": [("status", "active"), ("_count", "1")],
    "Task": [("status", "requested"), ("_count", "1")],
    "Slot": [("schedule", "county-hospital:03.04"), ("_count", "2")],
    "Appointment": [("patient", f"Patient/{PATIENT}"), ("_count", "2")],
    "Observation": [("status", "final"), ("_count", "2")],
}


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def _links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


@pytest.mark.parametrize("resource_type", sorted(SEARCHES))
def test_post_search_answers_as_the_get_search(
    client: TestClient, db: Session, resource_type: str
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)  # a ServiceRequest, Task, Slot, Appointment
    headers = bearer(client, "coordinator")
    (first, value), *rest = SEARCHES[resource_type]
    by_get = client.get(f"/fhir/{resource_type}", params=SEARCHES[resource_type], headers=headers)
    assert by_get.status_code == 200, by_get.text
    by_post = client.post(
        f"/fhir/{resource_type}/_search",
        params={first: value},
        data=dict(rest),
        headers={**headers, "Content-Type": FORM},
    )
    assert by_post.status_code == 200, by_post.text
    assert _ids(by_post.json()) == _ids(by_get.json())
    assert by_post.json().get("total") == by_get.json().get("total")
    got, want = _links(by_post.json()), _links(by_get.json())
    assert got.keys() == want.keys()
    for url in got.values():  # the criteria of both, paged by GET on the type
        assert url.startswith(f"http://testserver/fhir/{resource_type}?"), url
        assert f"{first}=" in url


def test_post_search_of_the_audit_log_answers_as_the_get_search(client: TestClient) -> None:
    headers = bearer(client, "admin")
    criteria = {"agent": "nobody-has-this-name", "_count": "1"}
    by_get = client.get("/fhir/AuditEvent", params=criteria, headers=headers).json()
    by_post = client.post("/fhir/AuditEvent/_search", data=criteria, headers=headers).json()
    assert (by_post["total"], _ids(by_post)) == (by_get["total"], _ids(by_get)) == (0, [])
    assert _links(by_post)["self"].startswith("http://testserver/fhir/AuditEvent?")


@pytest.mark.parametrize(
    ("resource_type", "caller"), [("Patient", "commission"), ("AuditEvent", "doctor")]
)
def test_post_search_is_refused_to_whom_the_get_search_is(
    client: TestClient, resource_type: str, caller: str
) -> None:
    headers = bearer(client, caller)
    assert client.get(f"/fhir/{resource_type}", headers=headers).status_code == 403
    refused = client.post(f"/fhir/{resource_type}/_search", data={}, headers=headers)
    assert refused.status_code == 403


def test_post_search_of_tasks_is_audited_as_the_get_search(client: TestClient, db: Session) -> None:
    referral(db)
    headers = system_bearer(client)

    def audited_after(answer: Any) -> int:
        assert answer.status_code == 200
        return db.scalar(select(func.count()).select_from(AuditEvent)) or 0

    before = audited_after(client.get("/fhir/metadata"))
    after_get = audited_after(client.get("/fhir/Task?status=requested", headers=headers))
    after_post = audited_after(
        client.post("/fhir/Task/_search", data={"status": "requested"}, headers=headers)
    )
    assert after_post - after_get == after_get - before == 1


def test_post_search_with_a_json_body_is_an_unsupported_media_type_for_every_router(
    client: TestClient,
) -> None:
    headers = system_bearer(client)
    for resource_type in ("Patient", "Organization", "Task", "Slot", "Observation"):
        refused = client.post(f"/fhir/{resource_type}/_search", json={"_id": "x"}, headers=headers)
        assert refused.status_code == 415, (resource_type, refused.text)
        issue = refused.json()["issue"][0]
        assert (issue["code"], issue["expression"]) == ("not-supported", ["Content-Type"])


# The searches of resources a domain renders from its own tables, not the stored record.
DOMAIN_SEARCHES = {t: SEARCHES[t][0] for t in ("ServiceRequest", "Task", "Slot", "Appointment")}


@pytest.mark.parametrize("resource_type", sorted(DOMAIN_SEARCHES))
def test_a_domain_search_counts_its_matches_when_asked(
    client: TestClient, db: Session, resource_type: str
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)
    headers = bearer(client, "coordinator")
    criterion = dict([DOMAIN_SEARCHES[resource_type]])

    def search(**more: str) -> dict[str, Any]:
        answer = client.get(f"/fhir/{resource_type}", params={**criterion, **more}, headers=headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    counted = search(_summary="count")
    assert counted["total"] >= 1
    assert counted["entry"] == []
    assert search(_count="0")["total"] == counted["total"]
    assert search(_count="1", _total="accurate")["total"] == counted["total"]
    everything = search(_count="200")
    assert "next" not in _links(everything)
    assert len(_ids(everything)) == counted["total"]


@pytest.mark.parametrize("resource_type", sorted(DOMAIN_SEARCHES))
def test_a_domain_search_refuses_an_unknown_parameter_when_strict(
    client: TestClient, resource_type: str
) -> None:
    headers = {**bearer(client, "coordinator"), "Prefer": "handling=strict"}
    refused = client.get(f"/fhir/{resource_type}?shoe-size=42", headers=headers)
    assert refused.status_code == 400, refused.text
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["shoe-size"]
    assert "shoe-size" in issue["diagnostics"]


@pytest.mark.parametrize("resource_type", sorted(DOMAIN_SEARCHES))
def test_a_domain_search_warns_of_an_unknown_parameter_and_leaves_it_out_of_its_links(
    client: TestClient, resource_type: str
) -> None:
    headers = bearer(client, "coordinator")
    answer = client.get(f"/fhir/{resource_type}?shoe-size=42&_count=1", headers=headers)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    warning = outcome["resource"]["issue"][0]
    assert warning["severity"] == "warning"
    assert "shoe-size" in warning["diagnostics"]
    assert "shoe-size" not in _links(answer.json())["self"]


def test_a_task_search_warns_of_an_include_it_does_not_follow(client: TestClient) -> None:
    headers = bearer(client, "coordinator")
    answer = client.get("/fhir/Task?_include=Task:patient", headers=headers).json()
    assert "_include=Task:patient" in answer["entry"][-1]["resource"]["issue"][0]["diagnostics"]


def _searches_audited(client: TestClient, db: Session, url: str) -> list[dict[str, Any]]:
    """The audit rows of the search ``url`` asks, by the member system of the county."""
    headers = system_bearer(client)
    last = db.scalar(select(func.max(AuditEvent.id))) or 0
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    rows = db.scalars(select(AuditEvent).where(AuditEvent.id > last, AuditEvent.action == "search"))
    return [dict(row.detail or {}) for row in rows]


NAMED_COUNTS = [
    f"/fhir/{resource_type}?patient=Patient/{PATIENT}&{asked}"
    for resource_type in ("ServiceRequest", "Task", "Appointment")
    for asked in ("_summary=count", "_count=0", "_total=accurate&_offset=50")
]


@pytest.mark.parametrize("url", NAMED_COUNTS)
def test_a_domain_search_naming_a_patient_is_audited_whatever_the_page_shows(
    client: TestClient, db: Session, url: str
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)
    assert _searches_audited(client, db, url) == [{"patients": [PATIENT]}]


@pytest.mark.parametrize("resource_type", ["ServiceRequest", "Task", "Appointment"])
def test_a_domain_search_naming_no_patient_and_showing_nothing_is_not_audited(
    client: TestClient, db: Session, resource_type: str
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)
    assert _searches_audited(client, db, f"/fhir/{resource_type}?_summary=count") == []


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/fhir/Task?_lastUpdated=gt9999-12-31", "_lastUpdated"),
        ("/fhir/ServiceRequest?_lastUpdated=gt9999-12-31T23:59:59Z", "_lastUpdated"),
        ("/fhir/Task?_lastUpdated=le9999-12-31T23:00:00-05:00", "_lastUpdated"),
        ("/fhir/Slot?start=9999-12-3", "start"),
        ("/fhir/Slot?start=sa2026-11-28", "start"),
    ],
)
def test_a_domain_search_date_it_cannot_read_is_a_400_naming_the_parameter(
    client: TestClient, url: str, parameter: str
) -> None:
    refused = client.get(url, headers=system_bearer(client))
    assert refused.status_code == 400, refused.text
    assert refused.json()["issue"][0]["expression"] == [parameter]


def _total(client: TestClient, url: str) -> int:
    answer = client.get(f"{url}&_summary=count", headers=bearer(client, "coordinator"))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


# A domain search's token values, each present in the store the test makes.
TOKENS = [
    ("Task", "status", "requested", "completed"),
    ("ServiceRequest", "status", "active", "completed"),
    ("Appointment", "status", "booked", "cancelled"),
    ("Slot", "status", "free", "busy"),
]


@pytest.mark.parametrize(("resource_type", "name", "one", "other"), TOKENS)
def test_a_domain_search_ors_a_tokens_values_and_ands_its_repetitions(
    client: TestClient, db: Session, resource_type: str, name: str, one: str, other: str
) -> None:
    referral(db, status=ReferralStatus.REQUESTED)
    referral(db, status=ReferralStatus.COMPLETED)
    cancelled = referral(db, status=ReferralStatus.SCHEDULED)
    referral(db, status=ReferralStatus.SCHEDULED)
    assert cancelled.appointment_id is not None
    scheduling.set_status(db, None, cancelled.appointment_id, AppointmentStatus.CANCELLED, utcnow())
    url = f"/fhir/{resource_type}?"
    ones, others = _total(client, f"{url}{name}={one}"), _total(client, f"{url}{name}={other}")
    assert ones >= 1
    assert others >= 1
    assert _total(client, f"{url}{name}={one},{other}") == ones + others
    assert _total(client, f"{url}{name}={one}&{name}={other}") == 0
    assert _total(client, f"{url}{name}={one},{other}&{name}={other}") == others


OTHER_PATIENT = "p00000004"


@pytest.mark.parametrize(
    ("resource_type", "names"),
    [
        ("Task", ("patient", "for")),
        ("ServiceRequest", ("patient", "subject")),
        ("Appointment", ("patient", "actor")),
    ],
)
def test_a_domain_search_naming_two_patients_ands_them(
    client: TestClient, db: Session, resource_type: str, names: tuple[str, str]
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)
    referral(db, status=ReferralStatus.SCHEDULED, patient_id=OTHER_PATIENT)
    url = f"/fhir/{resource_type}?"
    first, second = names
    mine = _total(client, f"{url}{first}=Patient/{PATIENT}")
    theirs = _total(client, f"{url}{first}=Patient/{OTHER_PATIENT}")
    assert mine >= 1
    assert theirs >= 1
    both = f"Patient/{PATIENT},Patient/{OTHER_PATIENT}"
    assert _total(client, f"{url}{first}={both}") == mine + theirs
    assert _total(client, f"{url}{first}=Patient/{PATIENT}&{second}=Patient/{PATIENT}") == mine
    repeated = f"{url}{first}=Patient/{PATIENT}&{first}=Patient/{OTHER_PATIENT}"
    assert _total(client, repeated) == 0
    assert _total(client, f"{url}{first}={both}&{second}=Patient/{OTHER_PATIENT}") == theirs


def test_an_appointment_search_by_an_actor_other_than_a_patient_is_a_400_naming_it(
    client: TestClient,
) -> None:
    headers = bearer(client, "coordinator")
    refused = client.get("/fhir/Appointment?actor=Organization/county-hospital", headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["issue"][0]["expression"] == ["actor"]


@pytest.mark.parametrize("resource_type", sorted(DOMAIN_SEARCHES))
def test_a_domain_search_parameter_with_no_value_is_refused_when_strict(
    client: TestClient, resource_type: str
) -> None:
    headers = {**bearer(client, "coordinator"), "Prefer": "handling=strict"}
    refused = client.get(f"/fhir/{resource_type}?status=", headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["issue"][0]["expression"] == ["status"]


@pytest.mark.parametrize(
    ("resource_type", "name"),
    [("Task", "_lastUpdated"), ("ServiceRequest", "_lastUpdated"), ("Slot", "start")],
)
def test_a_domain_search_keeps_the_narrower_of_two_date_bounds_whatever_their_order(
    client: TestClient, db: Session, resource_type: str, name: str
) -> None:
    referral(db, status=ReferralStatus.SCHEDULED)
    url = f"/fhir/{resource_type}?{name}="
    assert _total(client, f"{url}ge2000-01-01") >= 1
    assert _total(client, f"{url}ge9000-01-01&{name}=ge2000-01-01") == 0
    assert _total(client, f"{url}lt2000-01-01&{name}=lt9000-01-01") == 0


@pytest.mark.parametrize("edge", ["9999-12-31", "ge9999-12-31T23:00:00-05:00", "gt9999-12-31"])
def test_a_slot_search_at_the_end_of_time_finds_nothing(client: TestClient, edge: str) -> None:
    assert _total(client, f"/fhir/Slot?start={edge}") == 0


def test_a_slot_start_search_reads_the_day_as_a_whole_in_the_consortiums_time(
    client: TestClient, db: Session
) -> None:
    """R4 dates: ``gt`` is after the whole day, ``le`` up to its end, a date-time its
    minute, and a day without a zone the consortium's. ``gt`` used to act as ``ge``,
    ``le`` as ``lt``, and a date-time had no end."""
    day = (utcnow() + timedelta(days=40)).date()
    open_slots(db, count=3, day=day)
    url = "/fhir/Slot?schedule=county-hospital:03.04&start="
    on_the_day = _total(client, f"{url}{day}")
    assert on_the_day == 3
    assert _total(client, f"{url}ge{day}") - _total(client, f"{url}gt{day}") == on_the_day
    assert _total(client, f"{url}le{day}") - _total(client, f"{url}lt{day}") == on_the_day
    assert _total(client, f"{url}{day}T00:00Z") == 1  # 08:00 in Beijing, the first slot
