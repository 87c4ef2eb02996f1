"""Registering members' local records: exact ID links, thresholds, validation, conflicts."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.patients import registration, service
from medalliance.patients.matching import Demographics
from medalliance.patients.models import LocalRecord, MatchReview, Person
from patients.factories import NEW_ID, one_digit_off, record

URL = "/api/patients/records"


def _counts(db: Session) -> tuple[int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(Person)) or 0,
        db.scalar(select(func.count()).select_from(LocalRecord)) or 0,
        db.scalar(select(func.count()).select_from(MatchReview)) or 0,
    )


def _demo_person(db: Session, person_id: str = "p00000123") -> Person:
    person = db.get(Person, person_id)
    assert person is not None
    return person


class TestExactIdentifier:
    def test_valid_id_number_of_known_person_links_at_once(
        self, client: TestClient, db: Session
    ) -> None:
        p = _demo_person(db)
        body = record(
            name="某某某", id_number=p.id_number, sex=p.sex, birth_date=p.birth_date.isoformat()
        )
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        assert response.status_code == 201, response.text
        assert response.json()["person_id"] == p.id
        assert response.json()["outcome"] == "exact_id"

    def test_legacy_15_digit_number_is_upgraded_and_links(
        self, client: TestClient, db: Session
    ) -> None:
        p = db.scalars(
            select(Person).where(Person.birth_date < date(1999, 1, 1)).order_by(Person.id)
        ).first()
        assert p is not None
        assert p.id_number
        legacy = p.id_number[:6] + p.id_number[8:17]
        body = record(id_number=legacy, name=p.name, sex=p.sex, birth_date=p.birth_date.isoformat())
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        assert response.json()["person_id"] == p.id


class TestProbabilisticLinking:
    def test_homophone_without_id_links_automatically(
        self, client: TestClient, db: Session
    ) -> None:
        p = _demo_person(db)
        body = record(
            name=p.name[0] + "".join(p.name[1:]),
            id_number=None,
            sex=p.sex,
            birth_date=p.birth_date.isoformat(),
            phone=p.phone,
            address=p.address,
        )
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        assert response.json() | {"score": None} == {
            "person_id": p.id,
            "local_record_id": response.json()["local_record_id"],
            "outcome": "auto_linked",
            "score": None,
            "review_id": None,
        }

    def test_moved_with_a_new_phone_but_same_name_and_birth_date_links(
        self, client: TestClient, db: Session
    ) -> None:
        p = _demo_person(db)
        body = record(
            name=p.name,
            id_number=None,
            sex=p.sex,
            birth_date=p.birth_date.isoformat(),
            phone="19900000000",
            address="县城北街18号",
        )
        data = client.post(URL, json=body, headers=bearer(client, "doctor")).json()
        assert (data["outcome"], data["person_id"]) == ("auto_linked", p.id)

    def test_near_miss_creates_new_person_and_review_task(
        self, client: TestClient, db: Session
    ) -> None:
        p = _demo_person(db)
        body = record(
            name=p.name,
            id_number=None,
            sex=p.sex,
            birth_date=one_digit_off(p.birth_date).isoformat(),
            phone="19900000000",
            address="县城北街18号",
        )
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        data = response.json()
        assert data["outcome"] == "review"
        assert data["person_id"] != p.id
        review = db.get(MatchReview, data["review_id"])
        assert review is not None
        assert review.candidate_id == p.id
        assert review.status == "open"

    def test_unknown_person_becomes_a_new_golden_record(
        self, client: TestClient, db: Session
    ) -> None:
        response = client.post(URL, json=record(), headers=bearer(client, "doctor"))
        data = response.json()
        assert data["outcome"] == "new_person"
        person = service.get_person(db, data["person_id"])
        assert person.id_number == NEW_ID
        assert person.pinyin == "qin zirui"

    def test_second_member_registering_same_new_person_links_to_it(
        self, client: TestClient
    ) -> None:
        first = client.post(URL, json=record(), headers=bearer(client, "doctor")).json()
        second = client.post(
            URL, json=record(mrn="ZY-99", id_number=None), headers=bearer(client, "specialist")
        ).json()
        assert second["person_id"] == first["person_id"]
        assert second["outcome"] == "auto_linked"

    def test_a_twin_registered_by_the_mother_goes_to_review_not_into_the_sibling(
        self, client: TestClient, db: Session
    ) -> None:
        first = client.post(URL, json=record(name="覃梓睿"), headers=bearer(client, "doctor"))
        twin = record(mrn="MRN-T-0002", name="覃梓涵", id_number=None)  # same home and phone
        data = client.post(URL, json=twin, headers=bearer(client, "doctor")).json()
        assert data["outcome"] == "review"
        assert data["person_id"] != first.json()["person_id"]
        review = db.get(MatchReview, data["review_id"])
        assert review is not None
        assert review.comparison["hold"] == "possible_twins"
        page = client.get(f"/patients/reviews/{review.id}", headers=bearer(client, "admin"))
        assert "可能是双胞胎" in page.text

    def test_two_unidentified_emergency_patients_stay_two_people(
        self, client: TestClient, db: Session
    ) -> None:
        unknown = {"name": "无名氏", "sex": "male", "birth_date": "1980-01-01", "address": ""}
        first = record(mrn="JZ-0001", id_number=None, phone=None, **unknown)
        second = record(mrn="JZ-0002", id_number=None, phone=None, **unknown)
        headers = bearer(client, "doctor")
        one = client.post(URL, json=first, headers=headers).json()
        other = client.post(URL, json=second, headers=headers).json()
        assert other["outcome"] == "review"
        assert other["person_id"] != one["person_id"]
        review = db.get(MatchReview, other["review_id"])
        assert review is not None
        assert review.comparison["hold"] == "provisional_name"


class TestBadInput:
    def _refused(
        self, client: TestClient, db: Session, body: dict[str, object], status: int, field: str
    ) -> str:
        before = _counts(db)
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        assert response.status_code == status, response.text
        problem = response.json()
        assert problem.get("field") == field or field in problem["detail"]
        assert _counts(db) == before  # nothing half-written
        return str(problem["detail"])

    def test_wrong_length_is_422_naming_id_number(self, client: TestClient, db: Session) -> None:
        detail = self._refused(client, db, record(id_number="13012319710509"), 422, "id_number")
        assert "18 characters" in detail

    def test_wrong_check_digit_is_422(self, client: TestClient, db: Session) -> None:
        bad = NEW_ID[:17] + ("0" if NEW_ID[17] != "0" else "1")
        assert "check character" in self._refused(
            client, db, record(id_number=bad), 422, "id_number"
        )

    def test_impossible_date_is_422(self, client: TestClient, db: Session) -> None:
        from medalliance.patients.identity import check_digit

        first17 = "13012319711332457"
        detail = self._refused(
            client, db, record(id_number=first17 + check_digit(first17)), 422, "id_number"
        )
        assert "impossible birth date" in detail

    def test_sex_contradicting_the_number_is_422_naming_sex(
        self, client: TestClient, db: Session
    ) -> None:
        self._refused(client, db, record(sex="female"), 422, "sex")

    def test_birth_date_contradicting_the_number_is_422(
        self, client: TestClient, db: Session
    ) -> None:
        self._refused(client, db, record(birth_date="1971-05-10"), 422, "birth_date")

    def test_record_number_used_for_another_person_is_409(
        self, client: TestClient, db: Session
    ) -> None:
        client.post(URL, json=record(), headers=bearer(client, "doctor"))
        p = _demo_person(db)
        other = record(
            name=p.name, id_number=p.id_number, sex=p.sex, birth_date=p.birth_date.isoformat()
        )
        self._refused(client, db, other, 409, "mrn")

    def test_same_record_sent_twice_is_idempotent(self, client: TestClient) -> None:
        first = client.post(URL, json=record(), headers=bearer(client, "doctor")).json()
        again = client.post(URL, json=record(), headers=bearer(client, "doctor")).json()
        assert again["person_id"] == first["person_id"]
        assert again["outcome"] == "known_record"

    def test_registering_for_another_member_is_forbidden(self, client: TestClient) -> None:
        body = record(institution_id="county-hospital")
        response = client.post(URL, json=body, headers=bearer(client, "doctor"))
        assert response.status_code == 403

    def test_commission_and_residents_may_not_register(self, client: TestClient) -> None:
        for role in ("commission", "resident"):
            response = client.post(URL, json=record(), headers=bearer(client, role))
            assert response.status_code == 403


class TestBlocking:
    def test_mistyped_surname_is_found_through_birth_date_and_given_name(self, db: Session) -> None:
        p = _demo_person(db)
        other_surname = "李" if not p.name.startswith("李") else "王"
        typed = Demographics(
            name=other_surname + p.name[1:], sex=p.sex, birth_date=p.birth_date, address=p.address
        )
        assert typed.pinyin.split()[0] != p.pinyin.split()[0]
        found = [c.person.id for c in registration.find_candidates(db, typed)]
        assert p.id in found

    def test_same_birth_date_alone_is_not_a_candidate(self, db: Session) -> None:
        p = _demo_person(db)
        stranger = Demographics(name="欧阳娜娜", sex=p.sex, birth_date=p.birth_date)
        found = [c.person.id for c in registration.find_candidates(db, stranger)]
        assert p.id not in found
