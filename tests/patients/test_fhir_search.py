"""FHIR Patient search parameters as R4 defines them: names by part and modifier, partial
dates with prefixes, OR-ed values and AND-ed parameters, and what is not applied said so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.patients.models import Person
from medalliance.patients.names import to_pinyin

# A surname the demo does not use (禤, xuan), and a compound one (欧阳) whose given name is 禤.
PEOPLE = {
    "t-xuan-cheng": ("禤成", date(1980, 4, 2), datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
    "t-xuan-chenglin": ("禤成林", date(1980, 11, 30), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    "t-ouyang-xuan": ("欧阳禤", date(1981, 1, 1), datetime(2026, 3, 3, 8, 0, tzinfo=UTC)),
}
ONLY_THEM = "_id=" + ",".join(PEOPLE)


@pytest.fixture
def people(db: Session) -> None:
    for person_id, (name, born, updated) in PEOPLE.items():
        db.add(
            Person(
                id=person_id,
                name=name,
                pinyin=to_pinyin(name),
                sex="female",
                birth_date=born,
                phone="13700009999",
                address="安平县测试镇",
                created_at=updated,
                updated_at=updated,
            )
        )
    db.flush()


@pytest.fixture
def doctor(client: TestClient) -> dict[str, str]:
    return bearer(client, "doctor")


def _search(client: TestClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = client.get(f"/fhir/Patient?{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _found(client: TestClient, headers: dict[str, str], query: str) -> set[str]:
    """The test persons a search finds (the demo's are left out by ``_id``)."""
    bundle = _search(client, headers, f"{ONLY_THEM}&{query}")
    return {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}


def _warnings(bundle: dict[str, Any]) -> list[str]:
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    return [issue["diagnostics"] for o in outcomes for issue in o["issue"]]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


@pytest.mark.usefixtures("people")
class TestNames:
    def test_family_finds_only_that_surname(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "family=禤") == {"t-xuan-cheng", "t-xuan-chenglin"}

    def test_family_alone_does_not_return_every_patient(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        bundle = _search(client, doctor, "family=禤&_count=1")
        assert bundle["total"] == 2

    def test_name_matches_the_start_of_the_whole_name(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        """A Chinese name starts with the family name: ``name`` is a prefix of it (one
        index range at a million persons); the given name alone is ``given``."""
        assert _found(client, doctor, "name=禤") == set(PEOPLE) - {"t-ouyang-xuan"}
        assert _found(client, doctor, "given=禤") == {"t-ouyang-xuan"}

    def test_name_exact_matches_the_whole_name_not_longer_ones(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "name:exact=禤成") == {"t-xuan-cheng"}

    def test_name_contains_matches_inside_the_name(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "name:contains=成林") == {"t-xuan-chenglin"}

    def test_given_and_given_exact(self, client: TestClient, doctor: dict[str, str]) -> None:
        assert _found(client, doctor, "given=成") == {"t-xuan-cheng", "t-xuan-chenglin"}
        assert _found(client, doctor, "given:exact=成") == {"t-xuan-cheng"}

    def test_a_compound_surname_is_the_family(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "family:exact=欧阳") == {"t-ouyang-xuan"}
        assert _found(client, doctor, "given:exact=禤") == {"t-ouyang-xuan"}
        assert _found(client, doctor, "family:contains=阳") == {"t-ouyang-xuan"}

    def test_pinyin_family_and_given(self, client: TestClient, doctor: dict[str, str]) -> None:
        assert _found(client, doctor, "family:exact=xuan") == {"t-xuan-cheng", "t-xuan-chenglin"}
        assert _found(client, doctor, "given:exact=chenglin") == {"t-xuan-chenglin"}
        assert _found(client, doctor, "name:exact=xuancheng") == {"t-xuan-cheng"}

    def test_comma_separated_names_are_alternatives(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        found = _found(client, doctor, "name=禤成林,欧阳")
        assert found == {"t-xuan-chenglin", "t-ouyang-xuan"}

    def test_a_repeated_name_must_match_every_time(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "name=禤成&name=欧阳") == set()
        assert _found(client, doctor, "name=禤&name=禤成") == {"t-xuan-cheng", "t-xuan-chenglin"}


@pytest.fixture
def jose(db: Session) -> str:
    """A person whose name is written in Latin letters with accents."""
    name, when = "José García", datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    db.add(
        Person(
            id="t-jose",
            name=name,
            pinyin=to_pinyin(name),
            sex="male",
            birth_date=date(1979, 5, 6),
            created_at=when,
            updated_at=when,
        )
    )
    db.flush()
    return "t-jose"


def test_a_latin_name_with_accents_is_shown_as_a_latin_name_is(
    client: TestClient, doctor: dict[str, str], jose: str
) -> None:
    """Not cut after its first letter as a Chinese name after its surname."""
    patient = client.get(f"/fhir/Patient/{jose}", headers=doctor).json()
    official = patient["name"][0]
    assert (official["text"], official["family"]) == ("José García", "José García")
    assert official["given"] == []


@pytest.mark.usefixtures("people")
class TestCaseAndAccents:
    """As the records' string search: case and accents ignored, ``:exact`` as written."""

    def test_a_name_is_found_whatever_its_case_and_accents(
        self, client: TestClient, doctor: dict[str, str], jose: str
    ) -> None:
        for value in ("jose", "JOSÉ", "josé garcía", "Jose Garcia", "garcía"):
            query = f"_id={jose}&{'given' if value == 'garcía' else 'name'}={value}"
            bundle = _search(client, doctor, query)
            assert [e["resource"]["id"] for e in bundle["entry"]] == [jose], value

    def test_pinyin_with_tone_marks_finds_the_characters(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "family=Xuān") == {"t-xuan-cheng", "t-xuan-chenglin"}
        assert _found(client, doctor, "name=XUĀN CHÉNG") == {"t-xuan-cheng", "t-xuan-chenglin"}

    def test_exact_is_the_name_as_written(
        self, client: TestClient, doctor: dict[str, str], jose: str
    ) -> None:
        """The Patient shows the name in characters and in (lower-case, toneless) pinyin."""

        def exact(value: str) -> bool:
            bundle = _search(client, doctor, f"_id={jose}&name:exact={value}")
            return bool(bundle["entry"]) and bundle["entry"][0]["resource"]["id"] == jose

        assert exact("José García")
        assert exact("jose garcia")  # its pinyin
        assert not exact("JOSÉ GARCÍA")
        assert not exact("Jose Garcia")
        assert _found(client, doctor, "family:exact=Xuan") == set()
        assert _found(client, doctor, "family:exact=xuān") == set()


def _living_at(
    client: TestClient, db: Session, doctor: dict[str, str], person_id: str, address: str
) -> Callable[[str], bool]:
    """The person given ``address``, and whether a search for them with a query finds them."""
    person = db.get(Person, person_id)
    assert person is not None
    person.address = address
    db.flush()

    def found(query: str) -> bool:
        return bool(_search(client, doctor, f"_id={person_id}&{query}")["entry"])

    return found


def test_an_exact_address_is_the_address_as_written_case_included(
    client: TestClient, db: Session, doctor: dict[str, str], jose: str
) -> None:
    found = _living_at(client, db, doctor, jose, "Calle Mayor 5 Madrid")

    assert found("address:exact=Calle Mayor 5 Madrid")
    assert not found("address:exact=calle mayor 5 madrid")
    assert not found("address:exact=Calle Mayor")
    assert found("address=calle mayor")  # a prefix ignores case


def test_an_address_entered_in_full_width_is_found_as_written_and_half_width(
    client: TestClient, db: Session, doctor: dict[str, str], jose: str
) -> None:
    """Chinese input methods write brackets and digits full-width."""
    found = _living_at(client, db, doctor, jose, "城关镇（东门）１号")

    assert found("address:exact=城关镇（东门）１号")
    assert not found("address:exact=城关镇(东门)1号")
    assert found("address=城关镇（东门）")
    assert found("address=城关镇(东门)1")  # typed half-width


@pytest.mark.usefixtures("people")
class TestDates:
    def test_a_birth_year_or_month_is_the_whole_range(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "birthdate=1980") == {"t-xuan-cheng", "t-xuan-chenglin"}
        assert _found(client, doctor, "birthdate=1980-04") == {"t-xuan-cheng"}

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("lt1980-11", {"t-xuan-cheng"}),
            ("le1980-11", {"t-xuan-cheng", "t-xuan-chenglin"}),
            ("gt1980", {"t-ouyang-xuan"}),
            ("ge1980-11", {"t-xuan-chenglin", "t-ouyang-xuan"}),
            ("ne1980", {"t-ouyang-xuan"}),
            ("sa1980-04", {"t-xuan-chenglin", "t-ouyang-xuan"}),
            ("eb1981", {"t-xuan-cheng", "t-xuan-chenglin"}),
            ("ap1981", set(PEOPLE)),  # 10% of the 45 years since, either side
            ("ap2000", set()),
        ],
    )
    def test_prefixes_compare_with_the_partial_date_range(
        self, client: TestClient, doctor: dict[str, str], value: str, expected: set[str]
    ) -> None:
        assert _found(client, doctor, f"birthdate={value}") == expected

    def test_last_updated_as_a_day_is_that_whole_day(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        assert _found(client, doctor, "_lastUpdated=2026-03-02") == {"t-xuan-chenglin"}
        assert _found(client, doctor, "_lastUpdated=gt2026-03-01") == {
            "t-xuan-chenglin",
            "t-ouyang-xuan",
        }

    def test_a_birthdate_that_is_no_date_is_400_naming_it(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        response = client.get("/fhir/Patient?birthdate=1980-13", headers=doctor)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["birthdate"]


@pytest.mark.usefixtures("people")
class TestParametersNotApplied:
    def test_an_unknown_parameter_is_ignored_with_a_warning_and_left_out_of_the_links(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        bundle = _search(client, doctor, f"{ONLY_THEM}&deceased=true&_count=1")
        assert bundle["total"] == len(PEOPLE)
        assert any("deceased" in w for w in _warnings(bundle))
        for relation in ("self", "next"):
            url = _link(bundle, relation)
            assert url is not None
            assert "deceased" not in url
            assert "_id=" in url

    def test_an_unsupported_modifier_is_ignored_with_a_warning(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        bundle = _search(client, doctor, f"{ONLY_THEM}&gender:not=female")
        assert bundle["total"] == len(PEOPLE)
        assert any(":not" in w for w in _warnings(bundle))

    def test_under_strict_handling_an_unknown_parameter_is_400_naming_it(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        headers = {**doctor, "Prefer": "handling=strict"}
        response = client.get("/fhir/Patient?deceased=true", headers=headers)
        assert response.status_code == 400
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == ["deceased"]

    def test_every_parameter_the_capability_statement_lists_is_applied_when_strict(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        samples = {
            "_id": "t-xuan-cheng",
            "identifier": "MRN-NOBODY",
            "name": "禤成",
            "family": "禤",
            "given": "成",
            "birthdate": "1980-04",
            "gender": "female",
            "phone": "13700009999",
            "address": "安平县",
            "_lastUpdated": "2026-03",
        }
        statement = client.get("/fhir/metadata").json()
        patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
        headers = {**doctor, "Prefer": "handling=strict"}
        for param in patient["searchParam"]:
            query = f"{param['name']}={samples[param['name']]}"
            response = client.get(f"/fhir/Patient?{query}", headers=headers)
            assert response.status_code == 200, (query, response.text)
            assert _warnings(response.json()) == []

    def test_a_batch_patient_search_warns_about_what_it_ignored(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        url = f"Patient?{ONLY_THEM}&family=禤&deceased=true"
        entry = {"request": {"method": "GET", "url": url}}
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
        response = client.post("/fhir", json=batch, headers=doctor)
        found = response.json()["entry"][0]["resource"]
        assert found["total"] == 2
        assert any("deceased" in w for w in _warnings(found))


@pytest.mark.usefixtures("people")
class TestCounts:
    def test_count_zero_gives_the_total_and_no_page_to_follow(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        bundle = _search(client, doctor, f"{ONLY_THEM}&_count=0")
        assert bundle["total"] == len(PEOPLE)
        assert bundle["entry"] == []
        assert _link(bundle, "next") is None

    def test_summary_count_gives_only_the_total(
        self, client: TestClient, doctor: dict[str, str]
    ) -> None:
        bundle = _search(client, doctor, f"{ONLY_THEM}&_summary=count")
        assert bundle["total"] == len(PEOPLE)
        assert bundle["entry"] == []
        assert _link(bundle, "next") is None
