"""FHIR Patient read, search and $match as member systems and staff use them."""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.patients.enums import MATCH_GRADE_URL, RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person

P = "p00000123"


def _person(db: Session, person_id: str = P) -> Person:
    person = db.get(Person, person_id)
    assert person is not None
    return person


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _match_body(patient: dict[str, Any], **params: Any) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [{"name": "resource", "resource": patient}]
    if "count" in params:
        parameters.append({"name": "count", "valueInteger": params["count"]})
    if "only_certain" in params:
        parameters.append({"name": "onlyCertainMatches", "valueBoolean": params["only_certain"]})
    return {"resourceType": "Parameters", "parameter": parameters}


class TestRead:
    def test_staff_read_returns_identifiers_names_and_demographics(
        self, client: TestClient, db: Session
    ) -> None:
        p = _person(db)
        response = client.get(f"/fhir/Patient/{P}", headers=bearer(client, "doctor"))
        assert response.headers["content-type"].startswith("application/fhir+json")
        body = response.json()
        assert {"system": RESIDENT_ID_SYSTEM, "value": p.id_number}.items() <= body["identifier"][
            0
        ].items()
        assert body["name"][0]["text"] == p.name
        assert body["name"][1]["text"] == p.pinyin
        assert (body["gender"], body["birthDate"]) == (p.sex, p.birth_date.isoformat())
        assert body["telecom"][0]["value"] == p.phone

    def test_a_read_says_when_the_patient_last_changed_as_an_http_date(
        self, client: TestClient, db: Session
    ) -> None:
        response = client.get(f"/fhir/Patient/{P}", headers=bearer(client, "doctor"))
        updated = _person(db).updated_at.astimezone(UTC).replace(microsecond=0)
        assert parsedate_to_datetime(response.headers["last-modified"]) == updated
        assert "etag" not in response.headers  # a Patient has no version

    def test_resident_reads_own_record_but_not_others(self, client: TestClient) -> None:
        headers = bearer(client, "resident")
        assert client.get("/fhir/Patient/p00000010", headers=headers).status_code == 200
        assert client.get(f"/fhir/Patient/{P}", headers=headers).status_code == 404

    def test_commission_may_not_read_patients(self, client: TestClient) -> None:
        response = client.get(f"/fhir/Patient/{P}", headers=bearer(client, "commission"))
        assert response.status_code == 403
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_unknown_patient_is_404_outcome(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient/nobody", headers=bearer(client, "doctor"))
        assert response.status_code == 404


class TestSearch:
    def test_by_resident_id_identifier(self, client: TestClient, db: Session) -> None:
        p = _person(db)
        url = f"/fhir/Patient?identifier={RESIDENT_ID_SYSTEM}|{p.id_number}"
        assert _ids(client.get(url, headers=bearer(client, "doctor")).json()) == [P]

    def test_by_chinese_name_prefix_and_by_pinyin(self, client: TestClient, db: Session) -> None:
        p = _person(db)
        headers = bearer(client, "doctor")
        by_name = client.get(f"/fhir/Patient?name={p.name}", headers=headers).json()
        assert P in _ids(by_name)
        pinyin = p.pinyin.replace(" ", "")
        by_pinyin = client.get(
            f"/fhir/Patient?name={pinyin}&birthdate={p.birth_date}", headers=headers
        ).json()
        assert _ids(by_pinyin) == [P]

    def test_by_phone_gender_and_birthdate_range(self, client: TestClient, db: Session) -> None:
        p = _person(db)
        url = (
            f"/fhir/Patient?phone={p.phone}&gender={p.sex}"
            f"&birthdate=ge{p.birth_date}&birthdate=le{p.birth_date}"
        )
        assert _ids(client.get(url, headers=bearer(client, "doctor")).json()) == [P]

    def test_bad_birthdate_is_400_naming_it(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient?birthdate=yesterday", headers=bearer(client, "doctor"))
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["birthdate"]

    def test_resident_search_sees_only_themselves(self, client: TestClient) -> None:
        bundle = client.get("/fhir/Patient?gender=female", headers=bearer(client, "resident"))
        assert set(_ids(bundle.json())) <= {"p00000010"}


class TestMatch:
    def test_exact_copy_is_a_certain_match_with_score(
        self, client: TestClient, db: Session
    ) -> None:
        p = _person(db)
        patient = {
            "resourceType": "Patient",
            "name": [{"text": p.name}],
            "gender": p.sex,
            "birthDate": p.birth_date.isoformat(),
            "telecom": [{"system": "phone", "value": p.phone}],
        }
        response = client.post(
            "/fhir/Patient/$match", json=_match_body(patient), headers=bearer(client, "doctor")
        )
        assert response.status_code == 200, response.text
        first = response.json()["entry"][0]
        assert first["resource"]["id"] == P
        assert first["search"]["score"] > 0.99
        assert first["search"]["extension"] == [{"url": MATCH_GRADE_URL, "valueCode": "certain"}]

    def test_only_certain_and_count_limit_the_candidates(
        self, client: TestClient, db: Session
    ) -> None:
        p = _person(db)
        patient = {
            "resourceType": "Patient",
            "name": [{"text": p.name}],
            "gender": p.sex,
            "birthDate": p.birth_date.isoformat(),
        }
        headers = bearer(client, "doctor")
        loose = client.post(
            "/fhir/Patient/$match", json=_match_body(patient, count=1), headers=headers
        ).json()
        assert len(loose["entry"]) == 1
        strict = client.post(
            "/fhir/Patient/$match",
            json=_match_body({**patient, "birthDate": "1900-01-01"}, only_certain=True),
            headers=headers,
        ).json()
        assert strict["entry"] == []

    def test_invalid_id_number_in_match_is_422(self, client: TestClient) -> None:
        patient = {
            "resourceType": "Patient",
            "name": [{"text": "张三"}],
            "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "123"}],
        }
        response = client.post(
            "/fhir/Patient/$match", json=_match_body(patient), headers=bearer(client, "doctor")
        )
        assert response.status_code == 422

    def test_match_without_parameters_resource_is_400(self, client: TestClient) -> None:
        response = client.post(
            "/fhir/Patient/$match",
            json={"resourceType": "Patient"},
            headers=bearer(client, "doctor"),
        )
        assert response.status_code == 400
