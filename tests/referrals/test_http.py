"""The referral API, FHIR and pages as a user and a member system drive them."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from helpers import bearer, csrf_from, page_login
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.records import service as records
from medalliance.referrals.enums import ReferralStatus
from referrals.factories import PATIENT, actor, consent, open_slots, referral

PATCH = {"Content-Type": "application/json-patch+json"}
FORM = {
    "patient_id": PATIENT,
    "direction": "up",
    "to_institution_id": "county-hospital",
    "to_department_id": "county-hospital:03.04",
    "reason_code": "needs_equipment",
    "diagnoses": ["I25"],
}


class TestApi:
    def test_doctor_refers_up_and_the_county_accepts(self, client: TestClient, db: Session) -> None:
        consent(db)
        doctor = bearer(client, "doctor")
        created = client.post("/api/referrals", json=FORM, headers=doctor)
        assert created.status_code == 201, created.text
        rid, etag = created.json()["id"], created.headers["ETag"]
        coordinator = bearer(client, "coordinator")
        queue = client.get("/api/referrals?box=incoming", headers=coordinator).json()
        assert rid in [i["id"] for i in queue["items"]]
        accepted = client.post(
            f"/api/referrals/{rid}/accept", headers={**coordinator, "If-Match": etag}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        again = client.post(
            f"/api/referrals/{rid}/accept", headers={**coordinator, "If-Match": etag}
        )
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")

    def test_bad_field_is_a_422_naming_it(self, client: TestClient, db: Session) -> None:
        consent(db)
        response = client.post(
            "/api/referrals",
            json={**FORM, "to_institution_id": "elsewhere"},
            headers=bearer(client, "doctor"),
        )
        assert response.status_code == 422
        assert response.json()["field"] == "to_institution_id"

    def test_wrong_side_is_403_and_other_institution_404(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        assert (
            client.post(
                f"/api/referrals/{r.id}/accept", headers=bearer(client, "doctor")
            ).status_code
            == 403
        )
        assert (
            client.get(
                f"/api/referrals/{r.id}", headers=bearer(client, "family_doctor")
            ).status_code
            == 200
        )
        assert (
            client.get("/api/referrals/nope", headers=bearer(client, "coordinator")).status_code
            == 404
        )

    def test_recommendation_is_exposed(self, client: TestClient) -> None:
        response = client.post(
            "/api/care-levels/recommend",
            json={"diagnoses": ["I63.9"], "institution_id": "township-01"},
            headers=bearer(client, "doctor"),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["fit"] == "too_low"
        assert body["emergency"][0]["pathway"] == "stroke"


class TestFhir:
    def test_task_search_with_focus_include(self, client: TestClient, db: Session) -> None:
        r = referral(db)
        headers = bearer(client, "coordinator")
        bundle = client.get(
            "/fhir/Task?owner=Organization/county-hospital&status=requested&_include=Task:focus",
            headers=headers,
        ).json()
        ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
        assert ("Task", r.id) in ids
        assert ("ServiceRequest", r.id) in ids
        sr = client.get(f"/fhir/ServiceRequest/{r.id}", headers=headers)
        assert sr.json()["status"] == "active"
        assert sr.headers["ETag"] == f'W/"{r.version}"'

    def test_member_system_accepts_through_task_patch_with_if_match(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        token = client.post(
            "/api/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "county-his",
                "client_secret": "medalliance",
            },
        ).json()["access_token"]
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json-patch+json",
        }
        patch = [{"op": "replace", "path": "/status", "value": "accepted"}]
        stale = client.patch(
            f"/fhir/Task/{r.id}", json=patch, headers={**headers, "If-Match": 'W/"0"'}
        )
        assert stale.status_code == 412
        assert stale.json()["resourceType"] == "OperationOutcome"
        ok = client.patch(
            f"/fhir/Task/{r.id}", json=patch, headers={**headers, "If-Match": f'W/"{r.version}"'}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "accepted"
        illegal = client.patch(
            f"/fhir/Task/{r.id}",
            json=[{"op": "replace", "path": "/status", "value": "completed"}],
            headers={**headers, "If-Match": ok.headers["ETag"]},
        )
        assert illegal.status_code == 409

    def test_task_and_service_request_reads_carry_version_and_http_date(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        headers = bearer(client, "coordinator")
        for resource_type in ("Task", "ServiceRequest"):
            read = client.get(f"/fhir/{resource_type}/{r.id}", headers=headers)
            assert read.headers["etag"] == f'W/"{r.version}"'
            modified = parsedate_to_datetime(read.headers["last-modified"])
            updated = datetime.fromisoformat(read.json()["meta"]["lastUpdated"])
            assert modified == updated.replace(microsecond=0)
            current = {"If-None-Match": read.headers["etag"]}
            again = client.get(f"/fhir/{resource_type}/{r.id}", headers={**headers, **current})
            assert (again.status_code, again.content) == (304, b"")

    def test_a_stale_if_match_is_412_even_when_the_status_would_not_change(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        headers = bearer(client, "coordinator")
        task = client.get(f"/fhir/Task/{r.id}", headers=headers).json()
        stale = {**headers, "If-Match": f'W/"{r.version - 1}"'}
        assert client.put(f"/fhir/Task/{r.id}", json=task, headers=stale).status_code == 412
        unchanged = [{"op": "replace", "path": "/status", "value": task["status"]}]
        patched = client.patch(f"/fhir/Task/{r.id}", json=unchanged, headers={**stale, **PATCH})
        assert patched.status_code == 412

    @pytest.mark.parametrize(
        ("change", "element"),
        [
            ({"status": "accepted", "priority": "stat"}, "Task.priority"),
            ({"status": "accepted", "description": "also this"}, "Task.description"),
            ({"statusReason": {"text": "why not"}}, "Task.statusReason"),  # no status change
            ({"priority": "stat"}, "Task.priority"),
        ],
    )
    def test_a_task_put_changing_what_it_cannot_is_422_naming_it(
        self, client: TestClient, db: Session, change: dict[str, Any], element: str
    ) -> None:
        r = referral(db)
        headers = {**bearer(client, "coordinator"), "If-Match": f'W/"{r.version}"'}
        task = client.get(f"/fhir/Task/{r.id}", headers=headers).json()
        response = client.put(f"/fhir/Task/{r.id}", json={**task, **change}, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == [element]
        after = client.get(f"/fhir/Task/{r.id}", headers=headers).json()
        assert (after["status"], after["meta"]) == (task["status"], task["meta"])

    def test_a_task_put_of_the_status_alone_keeps_what_it_leaves_out(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        headers = {**bearer(client, "coordinator"), "If-Match": f'W/"{r.version}"'}
        body = {"resourceType": "Task", "id": r.id, "status": "accepted"}
        response = client.put(f"/fhir/Task/{r.id}", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        assert response.json()["owner"] == {"reference": "Organization/county-hospital"}

    @pytest.mark.parametrize(
        ("operations", "status"),
        [
            ([{"op": "remove", "path": "/owner"}], 422),  # a removal is a change
            ([{"op": "replace", "path": "/status/text", "value": "x"}], 400),
            ([{"op": "replace", "path": "/basedOn/9", "value": {}}], 400),
            ([{"op": "add", "path": "/basedOn/x", "value": {}}], 400),
        ],
    )
    def test_a_task_patch_that_cannot_apply_or_changes_what_it_cannot_is_refused(
        self, client: TestClient, db: Session, operations: list[dict[str, Any]], status: int
    ) -> None:
        r = referral(db)
        headers = {**bearer(client, "coordinator"), "If-Match": f'W/"{r.version}"', **PATCH}
        response = client.patch(f"/fhir/Task/{r.id}", json=operations, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["resourceType"] == "OperationOutcome"

    @pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
    def test_a_task_patch_in_another_format_than_json_patch_is_a_415(
        self, client: TestClient, db: Session, content_type: str
    ) -> None:
        r = referral(db)
        headers = {
            **bearer(client, "coordinator"),
            "If-Match": f'W/"{r.version}"',
            "Content-Type": content_type,
        }
        accept = [{"op": "replace", "path": "/status", "value": "accepted"}]
        response = client.patch(f"/fhir/Task/{r.id}", json=accept, headers=headers)
        assert response.status_code == 415, response.text
        issue = response.json()["issue"][0]
        assert (issue["code"], issue["expression"]) == ("not-supported", ["Content-Type"])
        task = client.get(f"/fhir/Task/{r.id}", headers=headers).json()
        assert task["status"] == "requested"

    @pytest.mark.parametrize(
        "operation",
        [
            {"op": "replace", "path": "/input/99/value", "value": 1},  # parents made up
            {"op": "replace", "path": "/note", "value": []},
            {"op": "remove", "path": "/note"},
            {"op": "add", "path": "/note/0/text", "value": "x"},
        ],
    )
    def test_a_task_patch_of_a_location_that_does_not_exist_cannot_be_applied(
        self, client: TestClient, db: Session, operation: dict[str, Any]
    ) -> None:
        """RFC 6902 4.1-4.3: a replace's or remove's target, an add's parent, must exist."""
        r = referral(db)
        headers = {**bearer(client, "coordinator"), "If-Match": f'W/"{r.version}"', **PATCH}
        patch = [operation, {"op": "replace", "path": "/status", "value": "accepted"}]
        response = client.patch(f"/fhir/Task/{r.id}", json=patch, headers=headers)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["diagnostics"] == "JSON Patch operation 1 cannot be applied"
        assert client.get(f"/fhir/Task/{r.id}", headers=headers).json()["status"] == "requested"

    def test_a_task_put_with_a_misshapen_reason_is_a_400(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        headers = {**bearer(client, "coordinator"), "If-Match": f'W/"{r.version}"'}
        body = {"resourceType": "Task", "status": "rejected", "statusReason": "full"}
        response = client.put(f"/fhir/Task/{r.id}", json=body, headers=headers)
        assert response.status_code == 400, response.text

    def test_slots_and_appointments_are_readable(self, client: TestClient, db: Session) -> None:
        r = referral(db, status=ReferralStatus.SCHEDULED)
        headers = bearer(client, "coordinator")
        slots = client.get(
            "/fhir/Slot?schedule=county-hospital:03.04&status=busy", headers=headers
        ).json()
        assert len(slots["entry"]) >= 1
        appointment = client.get(f"/fhir/Appointment/{r.appointment_id}", headers=headers).json()
        assert appointment["basedOn"] == [{"reference": f"ServiceRequest/{r.id}"}]


class TestPages:
    def test_queue_page_lists_incoming_and_polls(self, client: TestClient, db: Session) -> None:
        r = referral(db)
        page_login(client, "coordinator")
        html = client.get("/referrals").text
        assert r.id in html
        assert 'hx-trigger="every' in html
        assert r.id in client.get("/referrals/rows?box=incoming").text

    def test_write_a_referral_from_the_form(self, client: TestClient, db: Session) -> None:
        consent(db)
        page_login(client, "doctor")
        token = csrf_from(client.get("/referrals/new").text)
        response = client.post(
            "/referrals/new",
            data={**FORM, "diagnoses": "I25, I10", "csrf_token": token, "action": "submit"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        detail = client.get(response.headers["location"]).text
        assert "I25" in detail

    def test_form_error_names_the_field(self, client: TestClient, db: Session) -> None:
        consent(db)
        page_login(client, "doctor")
        token = csrf_from(client.get("/referrals/new").text)
        response = client.post(
            "/referrals/new", data={**FORM, "diagnoses": "", "csrf_token": token}
        )
        assert response.status_code == 422
        assert 'data-field="diagnoses"' in response.text

    def test_recommendation_fragment_shows_the_level(self, client: TestClient) -> None:
        page_login(client, "doctor")
        html = client.get("/referrals/recommend?diagnoses=I21.0").text
        assert 'data-testid="pathway"' in html
        assert 'data-testid="wrong-level"' in html

    def test_second_accept_on_the_page_gets_409_and_a_fresh_view(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        page_login(client, "coordinator")
        token = csrf_from(client.get(f"/referrals/{r.id}").text)
        form = {"csrf_token": token, "version": str(r.version)}
        first = client.post(f"/referrals/{r.id}/accept", data=form, follow_redirects=False)
        assert first.status_code == 303
        second = client.post(f"/referrals/{r.id}/accept", data=form)
        assert second.status_code == 409
        assert 'data-testid="action-error"' in second.text
        assert 'data-testid="status"' in second.text

    def test_schedule_from_the_detail_page(self, client: TestClient, db: Session) -> None:
        r = referral(db, status=ReferralStatus.ACCEPTED)
        slot = open_slots(db)[0]
        page_login(client, "coordinator")
        html = client.get(f"/referrals/{r.id}").text
        token = csrf_from(html)
        response = client.post(
            f"/referrals/{r.id}/schedule",
            data={"csrf_token": token, "slot_id": str(slot.id), "version": str(r.version)},
            follow_redirects=False,
        )
        assert response.status_code == 303

    def test_accept_and_book_in_one_step_from_the_detail_page(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db)
        slot = open_slots(db)[0]
        page_login(client, "coordinator")
        html = client.get(f"/referrals/{r.id}").text
        assert f'<option value="{slot.id}">' in html  # offered on the accept form
        response = client.post(
            f"/referrals/{r.id}/accept",
            data={
                "csrf_token": csrf_from(html),
                "slot_id": str(slot.id),
                "version": str(r.version),
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        db.refresh(r)
        assert r.status == ReferralStatus.SCHEDULED

    def test_completed_up_referral_offers_the_down_referral_prefilled(
        self, client: TestClient, db: Session
    ) -> None:
        r = referral(db, status=ReferralStatus.COMPLETED)
        r.outcome_reference, r.outcome_summary = "DocumentReference/dc-1", "病情稳定"
        db.flush()
        page_login(client, "coordinator")
        html = client.get(f"/referrals/{r.id}").text
        assert 'data-testid="refer-down"' in html
        # The outcome document opens where the shared record shows it.
        timeline = f'href="/patients/{r.patient_id}/timeline?kind=documents"'
        assert timeline in html
        form = client.get(
            f"/referrals/new?direction=down&patient_id={r.patient_id}&previous_referral_id={r.id}"
        ).text
        assert f'value="{r.id}"' in form

    def test_attachments_are_chosen_from_the_patients_shared_record(
        self, client: TestClient, db: Session
    ) -> None:
        consent(db)
        his = Actor(None, "township-01 HIS", Role.SYSTEM, "township-01", client_id="t01")
        note = records.create(
            db,
            his,
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "type": {"text": "门诊病历"},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "date": "2026-11-01T09:00:00+08:00",
                "content": [{"attachment": {"contentType": "text/plain", "data": "5aS05pmV"}}],
            },
            now=utcnow(),
        )
        db.flush()
        page_login(client, "doctor")
        options = client.get(f"/referrals/attachments?patient_id={PATIENT}").text
        assert f'value="DocumentReference/{note.id}"' in options
        token = csrf_from(client.get("/referrals/new").text)
        response = client.post(
            "/referrals/new",
            data={
                "csrf_token": token,
                "patient_id": PATIENT,
                "direction": "up",
                "urgency": "routine",
                "to_institution_id": "county-hospital",
                "to_department_id": "county-hospital:03.04",
                "reason_code": "needs_equipment",
                "diagnoses": "I25",
                "attachment_pick": f"DocumentReference/{note.id}",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        detail = client.get(response.headers["location"]).text
        assert f"DocumentReference/{note.id}" in detail

    def test_pages_for_admin_and_coordinator(self, client: TestClient, db: Session) -> None:
        open_slots(db)
        page_login(client, "admin")
        assert "I10" in client.get("/care-levels").text
        _ = actor
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/").text)})
        page_login(client, "coordinator")
        assert client.get("/scheduling").status_code == 200
