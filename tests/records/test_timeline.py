"""The patient timeline: what the consortium holds for a person, whoever wrote it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, page_login
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.patients.models import Person
from medalliance.records import service as records
from medalliance.records import timeline
from records.hl7.hl7_samples import ID_NUMBER, adt, oru

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
TOWNSHIP_SYSTEM = Actor(None, "township-01 HIS", Role.SYSTEM, "township-01", client_id="t01-his")


@pytest.fixture
def person_id(client: TestClient, db: Session) -> str:
    """The county hospital admits the patient, sends lipid results, then discharges."""
    token = client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "county-his",
            "client_secret": "medalliance",
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", **ER7}
    for message in (adt("A01", "T-1"), oru("T-2"), adt("A03", "T-3", discharge="20261112100000")):
        response = client.post("/api/hl7v2", content=message, headers=headers)
        assert response.status_code == 200, response.text
    person = db.scalar(select(Person).where(Person.id_number == ID_NUMBER))
    assert person is not None
    return person.id


def _consent(client: TestClient, person_id: str) -> None:
    response = client.post(
        f"/api/patients/{person_id}/consent",
        json={"status": "given", "source_document": "同意书-2026-001"},
        headers=bearer(client, "coordinator"),
    )
    assert response.status_code == 201, response.text
    client.cookies.clear()


def _push_up_from_township(db: Session, person_id: str) -> None:
    """The township's own system records a follow-up visit with a hypertension diagnosis."""
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    visit = records.create(
        db,
        TOWNSHIP_SYSTEM,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{person_id}"},
            "serviceProvider": {"reference": "Organization/township-01"},
            "period": {"start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T09:20:00+08:00"},
        },
        now=now,
    )
    records.create(
        db,
        TOWNSHIP_SYSTEM,
        {
            "resourceType": "Condition",
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10",
                        "code": "I10",
                        "display": "原发性高血压",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{person_id}"},
            "encounter": {"reference": visit.reference},
            "recordedDate": "2026-11-20T09:10:00+08:00",
        },
        now=now,
    )
    db.flush()


class TestWithoutBasis:
    def test_a_township_doctor_is_refused_and_offered_emergency_access(
        self, client: TestClient, person_id: str, db: Session
    ) -> None:
        page_login(client, "doctor")
        response = client.get(f"/patients/{person_id}/timeline")
        assert response.status_code == 403
        assert 'data-testid="break-glass-link"' in response.text
        assert "血脂" not in response.text
        refusal = db.scalars(
            select(AuditEvent).where(
                AuditEvent.patient_id == person_id, AuditEvent.action == "access.denied"
            )
        ).all()
        assert [e.username for e in refusal] == ["doctor"]

    def test_a_resident_opening_someone_elses_timeline_gets_no_emergency_link(
        self, client: TestClient, person_id: str
    ) -> None:
        page_login(client, "resident")
        response = client.get(f"/patients/{person_id}/timeline")
        assert response.status_code == 403
        assert "break-glass-link" not in response.text

    def test_the_commission_may_not_open_timelines(
        self, client: TestClient, person_id: str
    ) -> None:
        page_login(client, "commission")
        assert client.get(f"/patients/{person_id}/timeline").status_code == 403


class TestCareRelationship:
    def test_the_county_reader_sees_the_stay_through_the_hospitals_own_encounter(
        self, client: TestClient, person_id: str
    ) -> None:
        page_login(client, "reader")
        response = client.get(f"/patients/{person_id}/timeline")
        assert response.status_code == 200
        assert 'data-testid="timeline-basis">访问依据：诊疗关系' in response.text


class TestWithConsent:
    def test_the_township_doctor_sees_the_county_stay_grouped_with_its_results(
        self, client: TestClient, person_id: str, db: Session
    ) -> None:
        _consent(client, person_id)
        page_login(client, "doctor")
        response = client.get(f"/patients/{person_id}/timeline")
        assert response.status_code == 200, response.text
        html = response.text
        assert "欧阳建华" in html
        assert "总胆固醇" in html
        assert "6.8 mmol/L ↑" in html  # the high flag (H) as a lab report prints it
        assert "脑梗死" in html
        assert "安平县人民医院" in html  # the source member on the items
        # $everything's first entry, the Patient itself, is the page's title, not an item.
        assert 'data-kind="other"' not in html
        read = db.scalars(
            select(AuditEvent).where(
                AuditEvent.patient_id == person_id,
                AuditEvent.username == "doctor",
                AuditEvent.action == "read",
            )
        ).all()
        assert [e.basis for e in read] == ["consent"]

    def test_records_pushed_up_by_the_township_appear_beside_the_county_ones(
        self, client: TestClient, person_id: str, db: Session
    ) -> None:
        _consent(client, person_id)
        _push_up_from_township(db, person_id)
        page_login(client, "doctor")
        html = client.get(f"/patients/{person_id}/timeline").text
        assert "原发性高血压" in html
        newest = html.index("原发性高血压")
        assert newest < html.index("总胆固醇"), "newest first"

    def test_the_labs_filter_answers_htmx_with_only_the_list(
        self, client: TestClient, person_id: str
    ) -> None:
        _consent(client, person_id)
        page_login(client, "doctor")
        response = client.get(
            f"/patients/{person_id}/timeline?kind=labs", headers={"HX-Request": "true"}
        )
        assert response.status_code == 200
        assert "<html" not in response.text
        assert 'data-kind="labs"' in response.text
        assert "总胆固醇" in response.text
        # The stay is shown as context, but its diagnosis (not a lab item) is filtered out.
        assert 'data-kind="visits"' in response.text
        assert 'data-kind="diagnoses"' not in response.text

    def test_the_page_speaks_english_too(self, client: TestClient, person_id: str) -> None:
        _consent(client, person_id)
        page_login(client, "doctor")
        client.get("/lang/en")
        html = client.get(f"/patients/{person_id}/timeline").text
        assert "Inpatient" in html
        assert "Basis: patient consent" in html

    def test_an_unknown_kind_is_a_bad_request(self, client: TestClient, person_id: str) -> None:
        _consent(client, person_id)
        page_login(client, "doctor")
        assert client.get(f"/patients/{person_id}/timeline?kind=gossip").status_code == 400


def test_an_unknown_person_is_not_found(client: TestClient) -> None:
    page_login(client, "doctor")
    assert client.get("/patients/no-such-person/timeline").status_code == 404


class TestDocuments:
    def test_a_discharge_summary_shows_its_text_not_only_its_title(
        self, client: TestClient, db: Session, person_id: str
    ) -> None:
        county = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
        summary = "血压控制于 135/85 mmHg，准予出院，2周后乡镇卫生院复诊"
        records.create(
            db,
            county,
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "type": {
                    "coding": [
                        {"system": "http://loinc.org", "code": "18842-5", "display": "出院小结"}
                    ]
                },
                "subject": {"reference": f"Patient/{person_id}"},
                "date": "2026-11-12T10:00:00+08:00",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "data": base64.b64encode(summary.encode()).decode(),
                        }
                    }
                ],
            },
            now=datetime(2026, 11, 12, 2, 0, tzinfo=UTC),
        )
        db.flush()
        page_login(client, "reader")
        page = client.get(f"/patients/{person_id}/timeline")
        assert page.status_code == 200
        assert summary in page.text


class TestObservationDetail:
    def test_flags_print_as_arrows_normal_prints_nothing_and_ranges_from_limits(self) -> None:
        def detail(flag: str, reference_range: dict[str, object]) -> str:
            observation = {
                "resourceType": "Observation",
                "code": {"text": "血红蛋白"},
                "valueQuantity": {"value": 98.0, "unit": "g/L"},
                "interpretation": [{"coding": [{"code": flag}]}],
                "referenceRange": [reference_range],
            }
            return timeline._observation(observation)[1]

        low, high = {"value": 115.0}, {"value": 150}
        assert detail("L", {"low": low, "high": high}) == "98 g/L ↓ (115-150)"
        assert detail("N", {"low": low}) == "98 g/L (≥115)"
        assert detail("HH", {"text": "<150"}) == "98 g/L ↑↑ (<150)"
        assert detail("A", {}) == "98 g/L A"


class TestOwnRecord:
    def test_my_health_record_opens_the_residents_own_timeline(self, client: TestClient) -> None:
        page_login(client, "resident")
        home = client.get("/").text
        assert 'href="/me/record"' in home
        response = client.get("/me/record", follow_redirects=False)
        assert response.status_code == 303
        own = response.headers["location"]
        assert own == "/patients/p00000010/timeline"  # the demo resident's person
        page = client.get(own)
        assert page.status_code == 200
        assert 'data-testid="timeline-basis"' in page.text

    def test_a_doctor_has_no_own_record_page(self, client: TestClient) -> None:
        page_login(client, "doctor")
        assert client.get("/me/record", follow_redirects=False).status_code == 403
