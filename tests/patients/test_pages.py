"""MPI pages: search, the patient card, consent buttons, emergency access, review queue."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import csrf_from, page_login
from medalliance.access import service as access
from medalliance.access.enums import RelationshipKind
from medalliance.patients.models import MatchReview, Person

P = "p00000123"


class TestSearchAndCard:
    def test_search_by_id_number_phone_name_and_pinyin(
        self, client: TestClient, db: Session
    ) -> None:
        p = db.get(Person, P)
        assert p is not None
        page_login(client, "doctor")
        for q in (p.id_number, p.phone, p.name, p.pinyin):
            page = client.get("/patients", params={"q": q})
            assert page.status_code == 200
            assert f"/patients/{P}" in page.text, q

    def test_card_shows_identifiers_and_members(self, client: TestClient, db: Session) -> None:
        p = db.get(Person, P)
        assert p is not None
        page_login(client, "coordinator")
        page = client.get(f"/patients/{P}")
        assert p.id_number
        assert p.id_number in page.text
        assert 'data-testid="known-at"' in page.text

    def test_a_patient_without_birth_date_shows_it_is_unknown(
        self, client: TestClient, db: Session
    ) -> None:
        p = db.get(Person, P)
        assert p is not None
        p.birth_date = None  # registered unidentified in the emergency room
        db.flush()
        page_login(client, "coordinator")
        card = client.get(f"/patients/{P}")
        assert card.status_code == 200, card.text
        assert "出生日期不详" in card.text
        found = client.get("/patients", params={"q": p.phone})
        assert "出生日期不详" in found.text

    def test_clinicians_open_the_timeline_from_the_card_and_the_admin_does_not(
        self, client: TestClient
    ) -> None:
        link = f'href="/patients/{P}/timeline"'
        page_login(client, "doctor")
        assert link in client.get(f"/patients/{P}").text
        page_login(client, "admin")
        assert link not in client.get(f"/patients/{P}").text

    def test_emergency_access_is_offered_only_without_another_basis(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "doctor")
        assert 'data-testid="break-glass"' in client.get(f"/patients/{P}").text
        access.record_relationship(
            db,
            patient_id=P,
            institution_id="township-01",
            kind=RelationshipKind.ENCOUNTER,
            source_type="Encounter",
            source_id="visit-124",
        )
        db.flush()
        card = client.get(f"/patients/{P}").text
        assert 'data-testid="break-glass"' not in card
        assert 'data-testid="card-basis"' in card

    def test_consent_given_then_withdrawn_shows_in_history(
        self, client: TestClient, db: Session
    ) -> None:
        access.record_relationship(
            db,
            patient_id=P,
            institution_id="township-01",
            kind=RelationshipKind.ENCOUNTER,
            source_type="Encounter",
            source_id="visit-123",
        )
        db.flush()
        page_login(client, "doctor")
        token = csrf_from(client.get(f"/patients/{P}").text)
        for status in ("given", "withdrawn"):
            response = client.post(
                f"/patients/{P}/consent",
                data={"csrf_token": token, "status": status, "source_document": "F-2026-17"},
                follow_redirects=False,
            )
            assert response.status_code == 303
        page = client.get(f"/patients/{P}").text
        assert page.count("F-2026-17") == 2

    def test_a_doctor_who_does_not_treat_the_patient_cannot_record_consent(
        self, client: TestClient
    ) -> None:
        page_login(client, "doctor")
        token = csrf_from(client.get(f"/patients/{P}").text)
        response = client.post(
            f"/patients/{P}/consent", data={"csrf_token": token, "status": "given"}
        )
        assert response.status_code == 403

    def test_consent_without_csrf_is_refused(self, client: TestClient) -> None:
        page_login(client, "doctor")
        response = client.post(f"/patients/{P}/consent", data={"status": "given"})
        assert response.status_code == 403

    def test_break_the_glass_needs_a_reason_and_is_listed(self, client: TestClient) -> None:
        page_login(client, "doctor")
        token = csrf_from(client.get(f"/patients/{P}").text)
        short = client.post(f"/patients/{P}/break-glass", data={"csrf_token": token, "reason": "x"})
        assert short.status_code == 422
        reason = "unconscious after a road accident"
        ok = client.post(
            f"/patients/{P}/break-glass",
            data={"csrf_token": token, "reason": reason},
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert reason in client.get(f"/patients/{P}").text

    def test_commission_cannot_open_patient_pages(self, client: TestClient) -> None:
        page_login(client, "commission")
        assert client.get("/patients", params={"q": "王"}).status_code == 403


class TestReviewQueue:
    def test_demo_queue_has_work_and_compare_highlights_differences(
        self, client: TestClient, db: Session
    ) -> None:
        review = db.scalars(select(MatchReview).where(MatchReview.status == "open")).first()
        assert review is not None
        page_login(client, "admin")
        assert f"/patients/reviews/{review.id}" in client.get("/patients/reviews").text
        compare = client.get(f"/patients/reviews/{review.id}").text
        assert 'data-differs="yes"' in compare

    def test_keep_separate_with_reason_closes_the_task(
        self, client: TestClient, db: Session
    ) -> None:
        review = db.scalars(select(MatchReview).where(MatchReview.status == "open")).first()
        assert review is not None
        page_login(client, "admin")
        token = csrf_from(client.get(f"/patients/reviews/{review.id}").text)
        response = client.post(
            f"/patients/reviews/{review.id}",
            data={"csrf_token": token, "decision": "separate", "reason": "different fathers"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        db.expire_all()
        assert db.get(MatchReview, review.id).status == "separate"  # type: ignore[union-attr]

    def test_doctors_do_not_decide_reviews(self, client: TestClient) -> None:
        page_login(client, "doctor")
        assert client.get("/patients/reviews").status_code == 403
