"""Domain API /api/registry: reads for every role, scoped writes, problem+json errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.registry.models import Institution
from registry.factories import (
    CONSORTIUM_ADMIN,
    DOCTOR,
    TOWNSHIP_ADMIN,
    audit_rows,
    institution_payload,
    practitioner_payload,
    token_for,
)


class TestReads:
    def test_list_searches_by_name_and_filters_by_level_with_member_counts(
        self, client: TestClient
    ) -> None:
        body = client.get(
            "/api/registry/institutions",
            params={"q": "卫生院", "level": "primary", "limit": 3},
            headers=bearer(client, "doctor"),
        ).json()
        assert body["total"] == 10
        assert len(body["items"]) == 3
        first = body["items"][0]
        assert first["level"] == "primary"
        assert first["departments"] == 4
        assert first["children"] == 5

    def test_search_by_code(self, client: TestClient) -> None:
        body = client.get(
            "/api/registry/institutions", params={"q": "ma0002"}, headers=bearer(client, "doctor")
        ).json()
        assert [i["id"] for i in body["items"]] == ["county-hospital"]

    def test_residents_may_read_institutions(self, client: TestClient) -> None:
        response = client.get(
            "/api/registry/institutions/township-01", headers=bearer(client, "resident")
        )
        assert response.status_code == 200
        assert response.json()["division_code"] == "510799101000"

    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.get("/api/registry/institutions").status_code == 401

    def test_unknown_institution_is_a_problem_404(self, client: TestClient) -> None:
        response = client.get("/api/registry/institutions/nope", headers=bearer(client, "admin"))
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")

    def test_practitioner_shows_every_practice_site(self, client: TestClient) -> None:
        admin = token_for(CONSORTIUM_ADMIN)
        client.post(
            "/api/registry/practitioner-roles",
            json={"practitioner_id": "pr-00001", "institution_id": "township-01"},
            headers=admin,
        )
        body = client.get("/api/registry/practitioners/pr-00001", headers=admin).json()
        assert {r["institution_id"] for r in body["roles"]} == {"city-hospital", "township-01"}


class TestWrites:
    def test_consortium_admin_creates_a_member(self, client: TestClient, db: Session) -> None:
        response = client.post(
            "/api/registry/institutions",
            json=institution_payload(),
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 201, response.text
        assert db.get(Institution, response.json()["id"]) is not None

    def test_bad_division_code_is_422_naming_the_field(self, client: TestClient) -> None:
        response = client.post(
            "/api/registry/institutions",
            json=institution_payload(division_code="1234"),
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert ["body", "division_code"] in [e["loc"] for e in response.json()["errors"]]

    def test_duplicate_licence_number_is_409_naming_the_field(self, client: TestClient) -> None:
        response = client.post(
            "/api/registry/practitioners",
            json=practitioner_payload(licence_number="DEMO-doctor"),
            headers=token_for(TOWNSHIP_ADMIN),
        )
        assert response.status_code == 409
        assert response.json()["field"] == "licence_number"

    def test_institution_admin_cannot_patch_another_member(
        self, client: TestClient, db: Session
    ) -> None:
        response = client.patch(
            "/api/registry/institutions/township-02",
            json={"beds": 1},
            headers=token_for(TOWNSHIP_ADMIN),
        )
        assert response.status_code == 403
        assert db.get(Institution, "township-02").beds != 1  # type: ignore[union-attr]

    def test_doctor_cannot_write(self, client: TestClient) -> None:
        response = client.patch(
            "/api/registry/institutions/township-01", json={"beds": 1}, headers=token_for(DOCTOR)
        )
        assert response.status_code == 403

    def test_patch_changes_only_sent_fields_and_audits_them(
        self, client: TestClient, db: Session
    ) -> None:
        response = client.patch(
            "/api/registry/institutions/township-01",
            json={"address": "城关镇人民路 8 号"},
            headers=token_for(TOWNSHIP_ADMIN),
        )
        assert response.status_code == 200
        assert response.json()["address"] == "城关镇人民路 8 号"
        assert response.json()["name"] == "安平县城关镇卫生院"
        (event,) = audit_rows(db, "registry.institution.update", "township-01")
        assert event.detail["after"] == {"address": "城关镇人民路 8 号"}

    def test_null_for_a_required_field_is_refused(self, client: TestClient) -> None:
        response = client.patch(
            "/api/registry/institutions/township-01",
            json={"name": None},
            headers=token_for(TOWNSHIP_ADMIN),
        )
        assert response.status_code == 422
        assert "name" in response.json()["detail"]

    def test_deactivate_keeps_the_department_readable(self, client: TestClient) -> None:
        headers = token_for(TOWNSHIP_ADMIN)
        response = client.post(
            "/api/registry/departments/township-01:02/deactivate", headers=headers
        )
        assert response.status_code == 200
        again = client.get("/api/registry/departments/township-01:02", headers=headers).json()
        assert again["active"] is False
        listed = client.get(
            "/api/registry/departments",
            params={"institution_id": "township-01", "active": "false"},
            headers=headers,
        ).json()
        assert [d["id"] for d in listed["items"]] == ["township-01:02"]

    def test_department_code_must_follow_the_national_catalogue(self, client: TestClient) -> None:
        response = client.post(
            "/api/registry/departments",
            json={"institution_id": "township-01", "code": "cardio", "name": "心内科"},
            headers=token_for(TOWNSHIP_ADMIN),
        )
        assert response.status_code == 422
        assert "code" in response.json()["detail"]
