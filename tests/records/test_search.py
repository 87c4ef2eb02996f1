"""Search: tokens, dates with prefixes, references, sorting, keyset paging, includes,
lenient and strict handling of unknown parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import false
from sqlalchemy.orm import Session

from medalliance.errors import DomainError, Forbidden
from medalliance.patients.enums import RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person
from medalliance.records import service
from medalliance.records.indexing import build_index
from medalliance.records.models import FhirResource
from medalliance.records.search import engine
from medalliance.records.search.criteria import parse
from medalliance.registry.fhir_map import SYSTEMS
from medalliance.registry.models import Institution
from records.factories import (
    COUNTY,
    COUNTY_HIS,
    TOWNSHIP_DOCTOR,
    TOWNSHIP_HIS,
    admitted,
    observation,
    resident,
    stored_unchecked,
)

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
P, Q = "p00000002", "p00000003"


def id_number(db: Session, person_id: str) -> str:
    person = db.get(Person, person_id)
    assert person is not None
    assert person.id_number
    return person.id_number


def ids(
    db: Session, params: list[tuple[str, str]], resource_type: str = "Observation"
) -> list[str]:
    return [m.id for m in service.search(db, COUNTY_HIS, resource_type, params, now=NOW).matches]


@pytest.fixture
def three(db: Session) -> dict[str, str]:
    enc = admitted(db, P, NOW)
    admitted(db, Q, NOW)
    made = {
        "hr": service.create(
            db, COUNTY_HIS, observation(P, enc, when="2026-10-01T08:00:00Z"), now=NOW
        ).id,
        "bp": service.create(
            db, COUNTY_HIS, observation(P, enc, code="8480-6", when="2026-10-15"), now=NOW
        ).id,
        "q": service.create(
            db, COUNTY_HIS, observation(Q, code="8480-6", when="2025-01-01", value=140), now=NOW
        ).id,
    }
    made["enc"] = enc
    return made


class TestParameters:
    def test_token_with_system_and_code(self, db: Session, three: dict[str, str]) -> None:
        assert set(ids(db, [("code", "http://loinc.org|8480-6")])) == {three["bp"], three["q"]}

    def test_token_code_alone_and_system_alone(self, db: Session, three: dict[str, str]) -> None:
        assert set(ids(db, [("code", "8867-4")])) == {three["hr"]}
        assert len(ids(db, [("code", "http://loinc.org|")])) == 3

    def test_patient_and_category(self, db: Session, three: dict[str, str]) -> None:
        found = ids(db, [("patient", P), ("category", "vital-signs")])
        assert set(found) == {three["hr"], three["bp"]}

    def test_date_prefixes_on_partial_dates(self, db: Session, three: dict[str, str]) -> None:
        assert set(ids(db, [("date", "2026-10")])) == {three["hr"], three["bp"]}
        assert set(ids(db, [("date", "lt2026")])) == {three["q"]}
        assert set(ids(db, [("date", "ge2026-10-15")])) == {three["bp"]}
        assert set(ids(db, [("date", "ne2026-10-01")])) == {three["bp"], three["q"]}

    def test_a_day_is_the_consortiums_day(self, db: Session) -> None:
        """A fasting blood draw at 07:30 in Beijing is on that day (23:30 UTC the day
        before); a date written without a time is the local day too."""
        enc = admitted(db, P, NOW)
        early = observation(P, enc, when="2026-11-05T07:30:00+08:00")
        dated = observation(P, enc, code="8480-6", when="2026-11-05")
        made = [service.create(db, COUNTY_HIS, r, now=NOW).id for r in (early, dated)]
        assert set(ids(db, [("patient", P), ("date", "2026-11-05")])) == set(made)
        assert ids(db, [("patient", P), ("date", "2026-11-04")]) == []
        late_evening = [("patient", P), ("date", "ge2026-11-05T23:00:00+08:00")]
        assert ids(db, late_evening) == [made[1]]  # the day reaches local midnight

    def test_last_updated_as_the_server_gave_it_finds_the_resource(self, db: Session) -> None:
        """meta.lastUpdated is in milliseconds; the stored time has microseconds. The value
        a client read back stands for its whole millisecond (a sync's ``gt`` then skips it)."""
        written = NOW.replace(microsecond=628114)
        made = service.create(db, COUNTY_HIS, observation(P, admitted(db, P, NOW)), now=written)
        stamp = made.content["meta"]["lastUpdated"]
        assert stamp.endswith(".628Z")
        assert ids(db, [("_id", made.id), ("_lastUpdated", stamp)]) == [made.id]
        assert ids(db, [("_id", made.id), ("_lastUpdated", f"le{stamp}")]) == [made.id]
        assert ids(db, [("_id", made.id), ("_lastUpdated", f"gt{stamp}")]) == []

    def test_code_text_finds_words_of_the_display_and_text(self, db: Session) -> None:
        """A doctor searches 血红蛋白 (anywhere in the name: Chinese has no spaces), not
        718-7; the code itself is not text."""
        enc = admitted(db, P, NOW)
        coded = {
            "hb": {
                "coding": [
                    {"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}
                ],
                "text": "全血血红蛋白测定",
            },
            "plt": {
                "coding": [{"system": "http://loinc.org", "code": "777-3", "display": "血小板计数"}]
            },
        }
        made = {
            key: service.create(db, COUNTY_HIS, {**observation(P, enc), "code": code}, now=NOW).id
            for key, code in coded.items()
        }
        assert ids(db, [("patient", P), ("code:text", "血红蛋白")]) == [made["hb"]]
        assert ids(db, [("patient", P), ("code:text", "hemoglobin")]) == [made["hb"]]
        assert set(ids(db, [("code:text", "血红蛋白,血小板")])) == set(made.values())
        assert ids(db, [("patient", P), ("code:text", "718-7")]) == []

    def test_exact_string_matches_case_and_accents(self, db: Session) -> None:
        """``:exact`` is the whole string as written (R4 search 3.1.1.5.7); the plain search
        stays a case-insensitive prefix."""
        enc = admitted(db, P, NOW)
        said = ("Son", "son", "SON", "Sonny", "José", "Jose")
        made = {}
        for text in said:
            written = {**observation(P, enc), "valueString": text}
            del written["valueQuantity"]
            made[text] = service.create(db, COUNTY_HIS, written, now=NOW).id

        def exact(value: str) -> set[str]:
            return set(ids(db, [("patient", P), ("value-string:exact", value)]))

        assert exact("Son") == {made["Son"]}
        assert exact("son") == {made["son"]}
        assert exact("Son,SON") == {made["Son"], made["SON"]}
        assert exact("José") == {made["José"]}
        assert exact("Jose") == {made["Jose"]}
        assert exact("So") == set()
        plain = set(ids(db, [("patient", P), ("value-string", "son")]))
        assert plain == {made[t] for t in ("Son", "son", "SON", "Sonny")}

    def test_string_search_ignores_accents_as_well_as_case(self, db: Session) -> None:
        """R4 string search is "case-insensitive and accent-insensitive", whichever way the
        value or the search is written; ``:exact`` keeps both."""
        enc = admitted(db, P, NOW)
        said = ("José", "JOSE", "Joséphine", "Straße", "ｃｔ平扫", "血红蛋白")
        made = {}
        for text in said:
            written = {**observation(P, enc), "valueString": text}
            del written["valueQuantity"]
            made[text] = service.create(db, COUNTY_HIS, written, now=NOW).id

        def found(key: str, value: str) -> set[str]:
            return set(ids(db, [("patient", P), (key, value)]))

        jose = {made["José"], made["JOSE"]}
        assert found("value-string", "jose") == {*jose, made["Joséphine"]}
        assert found("value-string", "JOSÉ") == {*jose, made["Joséphine"]}
        assert found("value-string:contains", "PHINE") == {made["Joséphine"]}
        assert found("value-string:contains", "éphi") == {made["Joséphine"]}
        assert found("value-string", "strasse") == {made["Straße"]}
        assert found("value-string", "CT平") == {made["ｃｔ平扫"]}  # full-width folds too
        assert found("value-string", "血红") == {made["血红蛋白"]}
        assert found("value-string:exact", "JOSÉ") == set()
        assert found("value-string:exact", "JOSE") == {made["JOSE"]}

    def test_chinese_text_is_indexed_as_written(self) -> None:
        rows = build_index({"resourceType": "Observation", "valueString": "全血血红蛋白测定"})
        assert [(r["value"], r["cased"]) for r in rows.string] == [("全血血红蛋白测定", None)]

    def test_code_text_ignores_accents(self, db: Session) -> None:
        enc = admitted(db, P, NOW)
        code = {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Hémoglobine"}
        made = service.create(db, COUNTY_HIS, {**observation(P, enc), "code": code}, now=NOW)
        assert ids(db, [("patient", P), ("code:text", "HEMOGLOB")]) == [made.id]

    def test_quantity_and_encounter_reference(self, db: Session, three: dict[str, str]) -> None:
        assert ids(db, [("value-quantity", "gt100")]) == [three["q"]]
        assert set(ids(db, [("encounter", f"Encounter/{three['enc']}")])) == {
            three["hr"],
            three["bp"],
        }

    def test_or_values_and_id(self, db: Session, three: dict[str, str]) -> None:
        assert set(ids(db, [("_id", f"{three['hr']},{three['q']}")])) == {three["hr"], three["q"]}


class TestResultControl:
    def test_sort_descending_by_date(self, db: Session, three: dict[str, str]) -> None:
        assert ids(db, [("_sort", "-date")]) == [three["bp"], three["hr"], three["q"]]

    def test_paging_is_stable_while_data_changes(self, db: Session, three: dict[str, str]) -> None:
        first = service.search(
            db, COUNTY_HIS, "Observation", [("_count", "2"), ("_sort", "-date")], now=NOW
        )
        assert first.next_cursor
        # A newer observation arrives between pages: it must not shift the second page.
        service.create(db, COUNTY_HIS, observation(P, when="2026-10-20"), now=NOW)
        second = service.search(
            db,
            COUNTY_HIS,
            "Observation",
            [("_count", "2"), ("_sort", "-date"), ("_cursor", first.next_cursor)],
            now=NOW,
        )
        assert [m.id for m in second.matches] == [three["q"]]

    def test_summary_count(self, db: Session, three: dict[str, str]) -> None:
        result = service.search(db, COUNTY_HIS, "Observation", [("_summary", "count")], now=NOW)
        assert (result.total, result.matches) == (3, [])

    def test_include_and_revinclude(self, db: Session, three: dict[str, str]) -> None:
        inc = service.search(
            db,
            COUNTY_HIS,
            "Observation",
            [("_id", three["hr"]), ("_include", "Observation:encounter")],
            now=NOW,
        )
        assert [i.id for i in inc.included] == [three["enc"]]
        rev = service.search(
            db,
            COUNTY_HIS,
            "Encounter",
            [("_id", three["enc"]), ("_revinclude", "Observation:encounter")],
            now=NOW,
        )
        assert {i.id for i in rev.included} == {three["hr"], three["bp"]}


class TestReusedStatements:
    """Searches of one shape share one statement (``conditions``): each must still get
    its own values' matches, under its own reader's access rule."""

    def test_the_same_shape_with_other_values_finds_its_own(
        self, db: Session, three: dict[str, str]
    ) -> None:
        for code, want in (("8867-4", {three["hr"]}), ("8480-6", {three["bp"]})):
            params = [("patient", P), ("code", f"http://loinc.org|{code}")]
            assert set(ids(db, params)) == want
        for when, want in (("2026-10", {three["hr"], three["bp"]}), ("2025", {three["q"]})):
            assert set(ids(db, [("date", f"ge{when}"), ("date", f"le{when}")])) == want

    def test_each_reader_gets_its_own_rule(self, db: Session, three: dict[str, str]) -> None:
        blood_pressure = [("code", "8480-6")]
        assert set(ids(db, blood_pressure)) == {three["bp"], three["q"]}
        for person, want in ((P, [three["bp"]]), (Q, [three["q"]])):
            found = service.search(db, resident(person), "Observation", blood_pressure, now=NOW)
            assert [m.id for m in found.matches] == want
        township = service.search(db, TOWNSHIP_DOCTOR, "Observation", blood_pressure, now=NOW)
        assert township.matches == []
        counted = [*blood_pressure, ("_summary", "count")]
        assert service.search(db, resident(Q), "Observation", counted, now=NOW).total == 1
        assert service.search(db, COUNTY_HIS, "Observation", counted, now=NOW).total == 2


class TestChainedParameters:
    """Members know a patient by ID number or their own MRN, not by the MPI's id."""

    def test_patient_by_id_number(self, db: Session, three: dict[str, str]) -> None:
        number = f"{RESIDENT_ID_SYSTEM}|{id_number(db, P)}"
        assert set(ids(db, [("patient.identifier", number)])) == {three["hr"], three["bp"]}
        assert set(ids(db, [("subject:Patient.identifier", number)])) == {three["hr"], three["bp"]}
        assert ids(db, [("patient.identifier", number), ("code", "8480-6")]) == [three["bp"]]
        either = f"{number},{RESIDENT_ID_SYSTEM}|{id_number(db, Q)}"
        assert set(ids(db, [("patient.identifier", either)])) == {
            three["hr"],
            three["bp"],
            three["q"],
        }

    def test_identifier_systems_are_matched(self, db: Session, three: dict[str, str]) -> None:
        assert ids(db, [("patient.identifier", f"|{id_number(db, P)}")]) == []  # no system
        county = db.get(Institution, COUNTY)
        assert county is not None
        code = f"{SYSTEMS['institution-code']}|{county.code}"
        by_code = ids(db, [("service-provider.identifier", code)], "Encounter")
        assert set(by_code) == {three["enc"], *ids(db, [("patient", Q)], "Encounter")}
        wrong_system = [("service-provider.identifier", f"urn:other|{county.code}")]
        assert ids(db, wrong_system, "Encounter") == []

    def test_an_identifier_no_one_holds_finds_nothing(
        self, db: Session, three: dict[str, str]
    ) -> None:
        nobody = [("patient.identifier", f"{RESIDENT_ID_SYSTEM}|11010119900307451X")]
        assert ids(db, nobody) == []
        counted = service.search(
            db, COUNTY_HIS, "Observation", [*nobody, ("_summary", "count")], now=NOW
        )
        assert counted.total == 0

    def test_naming_a_patient_by_identifier_needs_access(
        self, db: Session, three: dict[str, str]
    ) -> None:
        number = f"{RESIDENT_ID_SYSTEM}|{id_number(db, P)}"
        with pytest.raises(Forbidden):
            service.search(
                db, TOWNSHIP_DOCTOR, "Observation", [("patient.identifier", number)], now=NOW
            )

    def test_chain_into_a_stored_type(self, db: Session, three: dict[str, str]) -> None:
        on_visit = {three["hr"], three["bp"]}
        assert set(ids(db, [("encounter.status", "finished")])) == on_visit
        assert ids(db, [("encounter.status", "cancelled")]) == []
        assert set(ids(db, [("encounter._id", three["enc"])])) == on_visit
        assert set(ids(db, [("encounter.service-provider", "Organization/county-hospital")])) == (
            on_visit
        )
        counted = service.search(
            db,
            COUNTY_HIS,
            "Observation",
            [("encounter.status", "finished"), ("_summary", "count")],
            now=NOW,
        )
        assert counted.total == 2

    @pytest.mark.parametrize("summary", [("_summary", "count"), ("_total", "accurate")])
    def test_a_count_of_a_named_patient_with_a_chain(
        self, db: Session, three: dict[str, str], summary: tuple[str, str]
    ) -> None:
        # The patient is checked up front, yet the chain's targets keep their access rule.
        params = [("patient", P), ("encounter.status", "finished"), summary]
        for actor in (COUNTY_HIS, resident(P)):
            counted = service.search(db, actor, "Observation", params, now=NOW)
            assert counted.total == 2

    def test_a_deleted_target_no_longer_matches(self, db: Session, three: dict[str, str]) -> None:
        withdrawn = admitted(db, P, NOW)  # a finished visit, deleted
        service.delete(db, COUNTY_HIS, "Encounter", withdrawn, now=NOW)
        # A result still names it (stored before writes were refused a deleted target).
        late = stored_unchecked(db, observation(P, withdrawn), NOW).id
        found = ids(db, [("encounter.status", "finished")])
        assert late not in found
        assert {three["hr"], three["bp"]} <= set(found)

    @pytest.mark.parametrize(
        "key",
        [
            "subject.identifier",  # several target types: name one
            "patient.organization.identifier",  # two levels
            "patient.name",  # the MPI is searched by identifier here
            "encounter._lastUpdated",
            "encounter.status:not",
            "code.identifier",  # not a reference
            "encounter:Patient.identifier",  # not a target of encounter
        ],
    )
    def test_chains_that_cannot_be_answered(
        self, db: Session, three: dict[str, str], key: str
    ) -> None:
        with pytest.raises(DomainError) as caught:
            service.search(db, COUNTY_HIS, "Observation", [(key, "x")], now=NOW, strict=True)
        assert caught.value.status == 400
        assert key in str(caught.value)
        lenient = service.search(db, COUNTY_HIS, "Observation", [(key, "x")], now=NOW)
        assert len(lenient.matches) == 3
        assert key in lenient.warnings[0]


class TestConditionalMatchAccess:
    """A conditional write finds its match among what the writer may read: the answer
    (deleted, 403, 412) must not tell what another record holds."""

    @pytest.mark.parametrize("code", ["9999-9", "8480-6"])  # one held by P, one not
    def test_naming_an_unreadable_patient_is_refused_whatever_the_record_holds(
        self, db: Session, three: dict[str, str], code: str
    ) -> None:
        with pytest.raises(Forbidden):
            service.conditional_delete(
                db, TOWNSHIP_HIS, "Observation", f"patient=Patient/{P}&code={code}", now=NOW
            )

    def test_unreadable_resources_do_not_match(self, db: Session, three: dict[str, str]) -> None:
        for condition in ("code=8867-4", "encounter.status=finished&code=8867-4"):
            gone = service.conditional_delete(db, TOWNSHIP_HIS, "Observation", condition, now=NOW)
            assert gone is None
        assert ids(db, [("code", "8867-4")]) == [three["hr"]]

    @pytest.mark.parametrize("condition", ["_pretty=true", "_count=1", "_summary=count", ""])
    def test_a_condition_without_criteria_is_refused(
        self, db: Session, three: dict[str, str], condition: str
    ) -> None:
        with pytest.raises(DomainError) as caught:
            service.conditional_delete(db, COUNTY_HIS, "Observation", condition, now=NOW)
        assert caught.value.status == 400
        assert len(ids(db, [])) == 3


class TestUnknownParameters:
    def test_lenient_search_ignores_and_warns(self, db: Session, three: dict[str, str]) -> None:
        result = service.search(db, COUNTY_HIS, "Observation", [("colour", "blue")], now=NOW)
        assert len(result.matches) == 3
        assert "colour" in result.warnings[0]

    def test_strict_search_refuses(self, db: Session, three: dict[str, str]) -> None:
        with pytest.raises(DomainError) as caught:
            service.search(
                db, COUNTY_HIS, "Observation", [("colour", "blue")], now=NOW, strict=True
            )
        assert caught.value.status == 400


class TestWithinOnePatient:
    """A search naming a patient narrows every index lookup and the access rule to that
    patient (one evaluation instead of one per row): results must not change."""

    def test_token_modifiers_stay_within_the_patient(
        self, db: Session, three: dict[str, str]
    ) -> None:
        assert ids(db, [("patient", P), ("code", "http://loinc.org|8480-6")]) == [three["bp"]]
        assert ids(db, [("patient", Q), ("code", "8480-6")]) == [three["q"]]
        assert ids(db, [("patient", P), ("code:not", "8480-6")]) == [three["hr"]]
        assert ids(db, [("patient", P), ("code", "http://loinc.org|")]) == [
            three["hr"],
            three["bp"],
        ]
        assert ids(db, [("patient", Q), ("encounter:missing", "true")]) == [three["q"]]
        assert ids(db, [("patient", P), ("encounter:missing", "true")]) == []

    def test_dates_within_the_patient(self, db: Session, three: dict[str, str]) -> None:
        assert ids(db, [("patient", P), ("date", "2026-10")]) == [three["hr"], three["bp"]]
        assert ids(db, [("patient", Q), ("date", "2026-10")]) == []
        assert ids(db, [("patient", Q), ("date", "lt2026")]) == [three["q"]]

    def test_two_different_patients_and_ed_find_nothing(
        self, db: Session, three: dict[str, str]
    ) -> None:
        assert ids(db, [("patient", P), ("patient", Q)]) == []
        assert set(ids(db, [("patient", f"{P},{Q}")])) == {three["hr"], three["bp"], three["q"]}

    def test_access_rule_applies_to_the_named_patient(
        self, db: Session, three: dict[str, str]
    ) -> None:
        # The engine alone (the service refuses earlier with a 403): the access rule,
        # narrowed to the one patient, still decides.
        query = parse("Observation", [("patient", P)], strict=True)
        mine = engine.run(
            db,
            query,
            service._readable(resident(P), FhirResource.patient_id, NOW),
            lambda v: v,
        )
        assert {m.id for m in mine.matches} == {three["hr"], three["bp"]}
        other = engine.run(
            db,
            query,
            service._readable(resident(Q), FhirResource.patient_id, NOW),
            lambda v: v,
        )
        assert other.matches == []
        township = engine.run(
            db,
            query,
            service._readable(TOWNSHIP_HIS, FhirResource.patient_id, NOW),
            lambda v: v,
        )
        assert township.matches == []

    def test_a_patient_the_service_already_checked_needs_no_per_row_rule(
        self, db: Session, three: dict[str, str]
    ) -> None:
        nothing = engine.Readable(false(), {})  # a rule that, applied, finds nothing
        query = parse("Observation", [("patient", P)], strict=True)
        found = engine.run(db, query, nothing, lambda v: v, granted={P})
        assert {m.id for m in found.matches} == {three["hr"], three["bp"]}
        other = parse("Observation", [("patient", Q)], strict=True)
        assert engine.run(db, other, nothing, lambda v: v, granted={P}).matches == []

    def test_paging_by_date_visits_every_row_once(self, db: Session) -> None:
        enc = admitted(db, P, NOW)
        # Ties on the date: the pid breaks them, so no row is skipped or repeated.
        made = {
            service.create(
                db, COUNTY_HIS, observation(P, enc, when=f"2026-10-0{1 + i % 3}"), now=NOW
            ).id
            for i in range(7)
        }
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = [("patient", P), ("_sort", "-date"), ("_count", "2")]
            page = service.search(
                db,
                COUNTY_HIS,
                "Observation",
                params + ([("_cursor", cursor)] if cursor else []),
                now=NOW,
            )
            seen += [m.id for m in page.matches]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(made)


def performed(patient: str, practitioner: str, *codes: str) -> dict[str, Any]:
    made = observation(patient)
    made["performer"] = [{"reference": f"Practitioner/{practitioner}"}]
    if codes:
        made["code"] = {"coding": [{"system": "http://loinc.org", "code": c} for c in codes]}
    return made


class TestAcrossPatients:
    """A search over all patients starts from its first token or reference index rows,
    and a count reads index rows and decides access per patient: the matches, their
    order and what each reader may see must be those of the plain definition."""

    @pytest.fixture
    def made(self, db: Session) -> dict[str, list[str]]:
        admitted(db, P, NOW)  # the county hospital's patient
        admitted(db, Q, NOW, TOWNSHIP_HIS)  # the township's
        found: dict[str, list[str]] = {P: [], Q: []}
        for n in range(6):
            patient, writer = (P, COUNTY_HIS) if n % 3 else (Q, TOWNSHIP_HIS)
            resource = performed(patient, "pr-1", "8867-4")
            found[patient].append(service.create(db, writer, resource, now=NOW).id)
        service.create(db, COUNTY_HIS, performed(P, "pr-2"), now=NOW)
        return found

    def pages(self, db: Session, actor: Any, params: list[tuple[str, str]]) -> list[str]:
        seen: list[str] = []
        cursor: list[tuple[str, str]] = []
        while True:
            page = service.search(
                db, actor, "Observation", [*params, ("_count", "2"), *cursor], now=NOW
            )
            seen += [m.id for m in page.matches]
            if page.next_cursor is None:
                return seen
            cursor = [("_cursor", page.next_cursor)]

    def test_pages_follow_creation_order_within_what_each_reader_may_see(
        self, db: Session, made: dict[str, list[str]]
    ) -> None:
        performer = [("performer", "Practitioner/pr-1")]
        assert self.pages(db, COUNTY_HIS, performer) == made[P]
        assert self.pages(db, TOWNSHIP_HIS, performer) == made[Q]
        both = [*performer, ("code", "http://loinc.org|8867-4")]
        assert self.pages(db, COUNTY_HIS, both) == made[P]
        assert self.pages(db, TOWNSHIP_HIS, [("code", "8867-4")]) == made[Q]

    def test_counts_only_readable_patients(self, db: Session, made: dict[str, list[str]]) -> None:
        for actor, patient in ((COUNTY_HIS, P), (TOWNSHIP_HIS, Q)):
            for params in (
                [("performer", "Practitioner/pr-1")],
                [("code", "http://loinc.org|8867-4"), ("performer", "pr-1")],
                [("_id", ",".join(made[P] + made[Q]))],  # a resource column: no index rows
            ):
                counted = service.search(
                    db, actor, "Observation", [*params, ("_summary", "count")], now=NOW
                )
                assert counted.total == len(made[patient]), (actor.username, params)

    def test_a_resource_matching_several_index_rows_counts_once(
        self, db: Session, made: dict[str, list[str]]
    ) -> None:
        service.create(db, COUNTY_HIS, performed(P, "pr-1", "8867-4", "8480-6"), now=NOW)
        counted = service.search(
            db,
            COUNTY_HIS,
            "Observation",
            [("code", "8867-4,8480-6"), ("performer", "pr-1"), ("_summary", "count")],
            now=NOW,
        )
        assert counted.total == len(made[P]) + 1

    def test_deleted_resources_are_not_counted(
        self, db: Session, made: dict[str, list[str]]
    ) -> None:
        service.delete(db, COUNTY_HIS, "Observation", made[P][0], now=NOW)
        params = [("performer", "Practitioner/pr-1"), ("_total", "accurate")]
        found = service.search(db, COUNTY_HIS, "Observation", params, now=NOW)
        assert found.total == len(found.matches) == len(made[P]) - 1

    def test_a_count_applies_a_rule_on_other_columns_per_resource(
        self, db: Session, made: dict[str, list[str]]
    ) -> None:
        query = parse("Observation", [("performer", "pr-1"), ("_summary", "count")], strict=True)
        for rule in (
            FhirResource.patient_id == Q,  # decided once per patient
            FhirResource.institution_id == TOWNSHIP_HIS.institution_id,  # per resource
        ):
            counted = engine.run(db, query, engine.Readable(rule, {}), lambda v: v)
            assert counted.total == len(made[Q])
