"""A resident gives or withdraws their own sharing consent, and nobody else's."""

from __future__ import annotations

from fastapi.testclient import TestClient

from helpers import bearer
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
