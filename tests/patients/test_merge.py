"""Merge and unmerge: reversible, audited, references keep resolving, FHIR links show it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.audit.models import AuditEvent
from medalliance.errors import NotFound
from medalliance.patients import service
from medalliance.patients.models import LocalRecord, Person
from patients.factories import one_digit_off, record

A, B = "p00000201", "p00000202"


def _merge(client: TestClient, survivor: str, merged: str, who: str = "admin") -> Any:
    body = {"survivor_id": survivor, "merged_id": merged, "reason": "same person, checked ID"}
    return client.post("/api/patients/merges", json=body, headers=bearer(client, who))


def _snapshot(db: Session, ids: list[str]) -> dict[str, Any]:
    db.expire_all()
    persons = {
        p.id: {
            c: getattr(p, c)
            for c in (
                "id_number",
                "name",
                "pinyin",
                "sex",
                "birth_date",
                "phone",
                "address",
                "division_code",
                "merged_into_id",
            )
        }
        for p in db.scalars(select(Person).where(Person.id.in_(ids)))
    }
    records = sorted(
        (r.id, r.person_id, r.mrn)
        for r in db.scalars(select(LocalRecord).where(LocalRecord.person_id.in_(ids)))
    )
    resources = {}
    for i in ids:
        resource = service.patient_resource(db, db.get(Person, i))  # type: ignore[arg-type]
        resource.pop("meta")
        resources[i] = resource
    return {"persons": persons, "records": records, "resources": resources}


class TestMerge:
    def test_merge_then_unmerge_restores_the_exact_prior_state(
        self, client: TestClient, db: Session
    ) -> None:
        client.post(
            "/api/patients/records",
            json=record(mrn="M-1", id_number=None, name="某甲", phone="13000000001"),
            headers=bearer(client, "doctor"),
        )
        before = _snapshot(db, [A, B])
        assert _merge(client, A, B).status_code == 200
        assert _snapshot(db, [A, B]) != before
        response = client.post(
            "/api/patients/unmerges",
            json={"merged_id": B, "reason": "different twins"},
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 200, response.text
        assert _snapshot(db, [A, B]) == before

    def test_survivor_keeps_every_identifier_and_links_both_ways(
        self, client: TestClient, db: Session
    ) -> None:
        merged_id_number = db.get(Person, B).id_number  # type: ignore[union-attr]
        _merge(client, A, B)
        headers = bearer(client, "doctor")
        survivor = client.get(f"/fhir/Patient/{A}", headers=headers).json()
        values = {i["value"] for i in survivor["identifier"]}
        assert merged_id_number in values
        assert {"other": {"reference": f"Patient/{B}"}, "type": "replaces"} in survivor["link"]
        old = client.get(f"/fhir/Patient/{B}", headers=headers).json()
        assert old["active"] is False
        assert old["link"] == [{"other": {"reference": f"Patient/{A}"}, "type": "replaced-by"}]

    def test_references_to_the_merged_record_resolve_to_the_survivor(
        self, client: TestClient, db: Session
    ) -> None:
        _merge(client, A, B)
        assert service.resolve_person_id(db, B) == A
        assert service.get_person(db, B).id == A

    def test_unknown_id_does_not_resolve(self, db: Session) -> None:
        with pytest.raises(NotFound):
            service.resolve_person_id(db, "p99999999")

    def test_merge_is_audited_for_both_patients(self, client: TestClient, db: Session) -> None:
        _merge(client, A, B)
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == "patient.merge")).all()
        assert {r.patient_id for r in rows} >= {A, B}

    def test_merging_into_itself_conflicts(self, client: TestClient) -> None:
        assert _merge(client, A, A).status_code == 409

    def test_merging_into_a_merged_person_conflicts(self, client: TestClient) -> None:
        _merge(client, A, B)
        response = _merge(client, B, "p00000203")
        assert response.status_code == 409
        assert response.json()["field"] == "survivor_id"

    def test_merging_an_already_merged_person_conflicts(self, client: TestClient) -> None:
        _merge(client, A, B)
        assert _merge(client, "p00000203", B).status_code == 409

    def test_unmerging_a_person_that_is_not_merged_conflicts(self, client: TestClient) -> None:
        response = client.post(
            "/api/patients/unmerges",
            json={"merged_id": A, "reason": "oops"},
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 409

    def test_doctors_may_not_merge_but_the_referral_office_may(self, client: TestClient) -> None:
        assert _merge(client, A, B, who="doctor").status_code == 403
        assert _merge(client, A, B, who="coordinator").status_code == 200


class TestReviewDecisions:
    def _open_review(self, client: TestClient, db: Session) -> tuple[int, str, str]:
        p = db.get(Person, "p00000123")
        assert p is not None
        body = record(
            name=p.name,
            id_number=None,
            sex=p.sex,
            birth_date=one_digit_off(p.birth_date).isoformat(),
            phone="19900000000",
            address="县城北街18号",
        )
        data = client.post(
            "/api/patients/records", json=body, headers=bearer(client, "doctor")
        ).json()
        return data["review_id"], data["person_id"], p.id

    def test_link_decision_merges_the_new_person_into_the_candidate(
        self, client: TestClient, db: Session
    ) -> None:
        review_id, new_person, candidate = self._open_review(client, db)
        response = client.post(
            f"/api/patients/reviews/{review_id}/decision",
            json={"decision": "link", "reason": "same phone at home visit"},
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "linked"
        assert service.resolve_person_id(db, new_person) == candidate

    def test_keep_separate_leaves_both_and_a_second_decision_conflicts(
        self, client: TestClient, db: Session
    ) -> None:
        review_id, new_person, _ = self._open_review(client, db)
        url = f"/api/patients/reviews/{review_id}/decision"
        headers = bearer(client, "admin")
        body = {"decision": "separate", "reason": "different mother names"}
        assert client.post(url, json=body, headers=headers).json()["status"] == "separate"
        assert service.resolve_person_id(db, new_person) == new_person
        assert client.post(url, json=body, headers=headers).status_code == 409
