"""A resident gives or withdraws their own sharing consent, and nobody else's."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, csrf_from, page_login
from medalliance.access.models import Consent
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.audit.models import AuditEvent
from medalliance.demo.loader import DEMO_RESIDENT_PERSON


class TestResidentConsent:
    def test_resident_records_and_withdraws_their_own_consent(self, client: TestClient) -> None:
        me = bearer(client, "resident")
        for status in ("given", "withdrawn"):
            response = client.post(
                f"/api/patients/{DEMO_RESIDENT_PERSON}/consent",
                json={"status": status, "note": "via the resident portal"},
                headers=me,
            )
            assert response.status_code == 201, response.text
            assert response.json()["status"] == status

    def test_resident_cannot_record_consent_for_someone_else(self, client: TestClient) -> None:
        response = client.post(
            "/api/patients/p00000123/consent",
            json={"status": "given"},
            headers=bearer(client, "resident"),
        )
        assert response.status_code == 403


class TestResidentConsentPage:
    """The resident's own page: consent state, give/withdraw, and who read their record."""

    def test_resident_gives_then_withdraws_consent_on_their_page(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "resident")
        page = client.get("/me/consent")
        assert page.status_code == 200
        assert 'href="/me/consent"' in page.text  # the resident's menu entry
        token = csrf_from(page.text)
        for status, shown in (
            ("given", "Shared across the consortium"),
            ("withdrawn", "Not shared across the consortium"),
        ):
            response = client.post(
                "/me/consent",
                data={"csrf_token": token, "status": status},
                headers={"Accept-Language": "en"},
                follow_redirects=False,
            )
            assert response.status_code == 303
            assert response.headers["location"] == "/me/consent"
            state = _state(client.get("/me/consent", headers={"Accept-Language": "en"}).text)
            assert state == shown
        rows = db.scalars(
            select(Consent).where(Consent.patient_id == DEMO_RESIDENT_PERSON).order_by(Consent.id)
        ).all()
        assert [r.status for r in rows][-2:] == ["given", "withdrawn"]
        actions = db.scalars(
            select(AuditEvent.action).where(
                AuditEvent.patient_id == DEMO_RESIDENT_PERSON,
                AuditEvent.action.like("consent.%"),
            )
        ).all()
        assert {"consent.given", "consent.withdrawn"} <= set(actions)

    def test_consent_form_without_csrf_token_changes_nothing(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "resident")
        before = _consent_count(db)
        response = client.post("/me/consent", data={"status": "given"}, follow_redirects=False)
        assert response.status_code == 403
        assert _consent_count(db) == before

    def test_unknown_status_is_refused(self, client: TestClient, db: Session) -> None:
        page_login(client, "resident")
        token = csrf_from(client.get("/me/consent").text)
        before = _consent_count(db)
        response = client.post("/me/consent", data={"csrf_token": token, "status": "maybe"})
        assert response.status_code == 400
        assert _consent_count(db) == before

    def test_access_log_lists_who_read_the_record(self, client: TestClient, db: Session) -> None:
        audit.record(
            db,
            None,
            "patient.read",
            resource_type="Patient",
            resource_id=DEMO_RESIDENT_PERSON,
            patient_id=DEMO_RESIDENT_PERSON,
            basis=AccessBasis.BREAK_THE_GLASS,
            username="dr-emergency",
        )
        db.flush()
        page_login(client, "resident")
        page = client.get("/me/consent").text
        log = page.split('data-testid="own-access-log"', 1)[1]
        assert "dr-emergency" in log
        assert "break_the_glass" in log

    def test_page_is_in_chinese_by_default(self, client: TestClient) -> None:
        page_login(client, "resident")
        page = client.get("/me/consent", headers={"Accept-Language": "zh-CN"}).text
        assert "谁查阅过您的档案" in page
        assert "同意共享" in page


def _state(html: str) -> str:
    found = re.search(r'data-testid="own-consent-state">([^<]+)<', html)
    assert found, "no consent state on the page"
    return found.group(1)


def _consent_count(db: Session) -> int:
    rows = db.scalars(select(Consent.id).where(Consent.patient_id == DEMO_RESIDENT_PERSON))
    return len(rows.all())
