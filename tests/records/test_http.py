"""The /fhir interactions over HTTP, as a member system and as staff use them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, system_bearer
from medalliance.access import service as access
from medalliance.audit.models import AuditEvent
from medalliance.auth.tokens import read_token
from medalliance.kit.clock import utcnow
from medalliance.patients.enums import RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person
from records.factories import encounter, ensure_person, observation

P = "p00000004"
FHIR = "application/fhir+json"


@pytest.fixture
def his(client: TestClient) -> dict[str, str]:
    return {**system_bearer(client), "Content-Type": FHIR}


def post(client: TestClient, headers: dict[str, str], resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def amend_with_if_match(
    client: TestClient, headers: dict[str, str], resource: dict[str, Any], etag: str
) -> Any:
    return client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}",
        json={**resource, "status": "amended"},
        headers={**headers, "If-Match": etag},
    )


@pytest.fixture
def visit(client: TestClient, db: Session, his: dict[str, str]) -> dict[str, Any]:
    ensure_person(db, P)
    enc = post(client, his, encounter(P))
    obs = post(client, his, observation(P, enc["id"]))
    return {"encounter": enc, "observation": obs}


class TestInteractions:
    def test_create_answers_location_and_etag(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        ensure_person(db, P)
        response = client.post("/fhir/Encounter", json=encounter(P), headers=his)
        assert response.status_code == 201
        assert response.headers["etag"] == 'W/"1"'
        assert response.headers["location"].endswith("/_history/1")
        assert response.headers["content-type"].startswith(FHIR)

    def test_update_with_if_match_then_stale_412(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        first = client.put(
            url, json={**obs, "status": "amended"}, headers={**his, "If-Match": 'W/"1"'}
        )
        assert first.status_code == 200
        assert first.headers["etag"] == 'W/"2"'
        stale = client.put(
            url, json={**obs, "status": "corrected"}, headers={**his, "If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
        assert stale.json()["resourceType"] == "OperationOutcome"

    def test_json_patch_and_vread(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        patch = [{"op": "replace", "path": "/status", "value": "amended"}]
        response = client.patch(
            url, json=patch, headers={**his, "Content-Type": "application/json-patch+json"}
        )
        assert response.status_code == 200, response.text
        assert client.get(f"{url}/_history/1", headers=his).json()["status"] == "final"
        assert client.get(url, headers=his).json()["status"] == "amended"
        history = client.get(f"{url}/_history", headers=his).json()
        assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']

    def test_deleted_resource_answers_410(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        assert client.delete(url, headers=his).status_code == 204
        assert client.get(url, headers=his).status_code == 410

    def test_delete_with_a_stale_if_match_is_412_and_deletes_nothing(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        amended = client.put(url, json={**obs, "status": "amended"}, headers=his)
        assert amended.status_code == 200
        stale = client.delete(url, headers={**his, "If-Match": 'W/"1"'})
        assert stale.status_code == 412
        assert client.get(url, headers=his).status_code == 200
        current = client.delete(url, headers={**his, "If-Match": 'W/"2"'})
        assert current.status_code == 204
        assert client.get(url, headers=his).status_code == 410

    def test_a_conditional_update_with_if_match_that_matches_nothing_is_412(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        body = {
            **observation(P, visit["encounter"]["id"]),
            "identifier": [{"system": "urn:test", "value": "none-1"}],
        }
        url = "/fhir/Observation?identifier=urn:test|none-1"
        refused = client.put(url, json=body, headers={**his, "If-Match": 'W/"1"'})
        assert refused.status_code == 412, refused.text
        assert client.get(url, headers=his).json().get("entry", []) == []
        assert client.put(url, json=body, headers=his).status_code == 201  # without: creates

    def test_conditional_create_returns_the_existing_match(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        ensure_person(db, P)
        post(client, his, encounter(P))
        resource = {**observation(P), "identifier": [{"system": "urn:lab", "value": "A-1"}]}
        first = client.post(
            "/fhir/Observation",
            json=resource,
            headers={**his, "If-None-Exist": "identifier=urn:lab|A-1"},
        )
        again = client.post(
            "/fhir/Observation",
            json=resource,
            headers={**his, "If-None-Exist": "identifier=urn:lab|A-1"},
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]

    def test_search_by_get_and_post_agree(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        by_get = client.get(
            f"/fhir/Observation?patient={P}&code=http://loinc.org|8867-4", headers=his
        ).json()
        form_headers = {"Authorization": his["Authorization"]}
        by_post = client.post(
            "/fhir/Observation/_search",
            data={"patient": P, "code": "http://loinc.org|8867-4"},
            headers=form_headers,
        ).json()
        assert [e["resource"]["id"] for e in by_get["entry"]] == [visit["observation"]["id"]]
        assert [e["resource"]["id"] for e in by_post["entry"]] == [visit["observation"]["id"]]

    def test_search_by_the_patients_id_number(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        person = db.get(Person, P)
        assert person is not None
        chain = f"patient.identifier={RESIDENT_ID_SYSTEM}|{person.id_number}"
        bundle = client.get(f"/fhir/Observation?{chain}", headers=his).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [visit["observation"]["id"]]
        refused = client.get(f"/fhir/Observation?{chain}", headers=bearer(client, "doctor"))
        assert refused.status_code == 403

    def test_unknown_parameter_warns_or_fails_when_strict(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        lenient = client.get("/fhir/Observation?shoe-size=42&status=final", headers=his).json()
        assert lenient["entry"][-1]["search"]["mode"] == "outcome"
        # The self link shows the search as it ran: without what it ignored.
        assert link(lenient, "self") == "/fhir/Observation?status=final"
        strict = client.get(
            "/fhir/Observation?shoe-size=42", headers={**his, "Prefer": "handling=strict"}
        )
        assert strict.status_code == 400

    @pytest.mark.parametrize(
        "query",
        [
            "shoe-size=42",
            "status:above=final",
            "status=",
            "_sort=value-quantity",
            "_sort=date,_id",
            "_include=Observation:nothing",
            "_summary=everything",
            "subject.name=x",
        ],
    )
    def test_under_strict_handling_the_400_says_what_cannot_be_done_not_ignored(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], query: str
    ) -> None:
        strict = {**his, "Prefer": "handling=strict"}
        refused = client.get(f"/fhir/Observation?{query}", headers=strict)
        assert refused.status_code == 400, refused.text
        said = refused.json()["issue"][0]["diagnostics"]
        lenient = client.get(f"/fhir/Observation?{query}", headers=his).json()
        warned = lenient["entry"][-1]["resource"]["issue"][0]["diagnostics"]
        assert "ignored" not in said
        assert "sorted by" not in said
        assert warned.startswith(said)
        assert warned != said  # and what was done instead

    def test_under_strict_handling_a_patient_search_400_does_not_say_ignored(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        strict = {**his, "Prefer": "handling=strict"}
        for query in ("deceased=true", "gender:not=female", "name=", "_summary=true"):
            refused = client.get(f"/fhir/Patient?{query}", headers=strict)
            assert refused.status_code == 400, refused.text
            assert "ignored" not in refused.json()["issue"][0]["diagnostics"]

    @pytest.mark.parametrize(
        ("query", "parameter"),
        [
            ("date=garbage", "date"),
            ("date=ge2026-13-01", "date"),
            ("_lastUpdated=garbage", "_lastUpdated"),
            ("value-quantity=lots", "value-quantity"),
            ("encounter.date=garbage", "encounter.date"),
        ],
    )
    def test_a_value_that_cannot_be_read_is_a_400_naming_its_parameter(
        self, client: TestClient, his: dict[str, str], query: str, parameter: str
    ) -> None:
        response = client.get(f"/fhir/Observation?{query}", headers=his)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == [parameter]
        value = query.split("=", 1)[1]
        assert issue["diagnostics"].startswith(f"{parameter}: '{value}'")

    def test_elements_subsets(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        bundle = client.get(f"/fhir/Observation?patient={P}&_elements=status", headers=his).json()
        resource = bundle["entry"][0]["resource"]
        assert "status" in resource
        assert "valueQuantity" not in resource
        assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"

    def test_elements_keep_the_mandatory_elements_and_choices_by_their_name(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        """A subset stays a valid Observation: status and code (1..1) come along."""
        url = f"/fhir/Observation?patient={P}&_elements=value"
        resource = client.get(url, headers=his).json()["entry"][0]["resource"]
        assert {"status", "code", "valueQuantity"} <= resource.keys()
        assert "subject" not in resource

    @pytest.mark.parametrize(
        ("summary", "kept", "left_out"),
        [
            ("true", {"status", "code", "subject", "valueQuantity"}, {"category", "text"}),
            ("text", {"status", "code", "text"}, {"subject", "valueQuantity"}),
            ("data", {"status", "subject", "category", "valueQuantity"}, {"text"}),
        ],
    )
    def test_summary_returns_the_elements_it_names(
        self,
        client: TestClient,
        his: dict[str, str],
        visit: dict[str, Any],
        summary: str,
        kept: set[str],
        left_out: set[str],
    ) -> None:
        obs = visit["observation"]
        narrative = {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">心率</div>',
        }
        url = f"/fhir/Observation/{obs['id']}"
        assert client.put(url, json={**obs, "text": narrative}, headers=his).status_code == 200
        bundle = client.get(f"/fhir/Observation?_id={obs['id']}&_summary={summary}", headers=his)
        resource = bundle.json()["entry"][0]["resource"]
        assert kept <= resource.keys()
        assert not left_out & resource.keys()
        assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"
        assert "outcome" not in str(bundle.json()["entry"])  # no "not supported" warning

    def test_include_brings_the_patient_and_organization_the_other_domains_keep(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        enc = visit["encounter"]
        params = f"_id={enc['id']}&_include=Encounter:subject&_include=Encounter:service-provider"
        bundle = client.get(f"/fhir/Encounter?{params}", headers=his).json()
        included = {
            (e["resource"]["resourceType"], e["resource"]["id"])
            for e in bundle["entry"]
            if e["search"]["mode"] == "include"
        }
        organization = enc["serviceProvider"]["reference"].split("/")[1]
        assert included == {("Patient", P), ("Organization", organization)}
        # The included Patient is a read of the record, audited.
        assert "Patient" in _reads_of(db, P)

    def test_summary_subsets_an_included_resource_by_its_own_type(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        params = f"_id={obs['id']}&_include=Observation:patient"
        bundle = client.get(f"/fhir/Observation?{params}&_summary=true", headers=his).json()
        [patient] = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
        assert {"name", "gender", "birthDate"} <= patient.keys()  # Patient's summary elements
        elements = client.get(f"/fhir/Observation?{params}&_elements=status", headers=his)
        [whole] = [
            e["resource"] for e in elements.json()["entry"] if e["search"]["mode"] == "include"
        ]
        assert "name" in whole  # _elements names Observation's elements: includes stay whole

    def test_patient_everything(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        bundle = client.get(f"/fhir/Patient/{P}/$everything", headers=his).json()
        first = bundle["entry"][0]["resource"]
        assert (first["resourceType"], first["id"]) == ("Patient", P)
        assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {
            "Patient",
            "Encounter",
            "Observation",
        }
        # Later pages carry the compartment only, not the Patient again.
        paged = client.get(f"/fhir/Patient/{P}/$everything?_count=1", headers=his).json()
        following = next(link["url"] for link in paged["link"] if link["relation"] == "next")
        second = client.get(following.replace("http://testserver", ""), headers=his).json()
        assert "Patient" not in {e["resource"]["resourceType"] for e in second["entry"]}

    def test_patient_is_not_written_here(self, client: TestClient, his: dict[str, str]) -> None:
        response = client.put(
            "/fhir/Location/x", json={"resourceType": "Location", "id": "x"}, headers=his
        )
        assert response.status_code == 405
        assert "registry" in response.json()["issue"][0]["diagnostics"]

    @pytest.mark.parametrize(
        ("method", "url", "allowed"),
        [
            ("PUT", "/fhir", "POST"),  # no route has the method: the router's 405
            ("PUT", "/fhir/Location/x", "GET"),  # the store refuses the registry's type
            ("POST", "/fhir/Patient", "GET"),
            ("DELETE", "/fhir/Task/x", "GET, PATCH, PUT"),
        ],
    )
    def test_a_405_lists_what_is_allowed_and_is_not_supported(
        self, client: TestClient, his: dict[str, str], method: str, url: str, allowed: str
    ) -> None:
        response = client.request(method, url, json={"resourceType": "Location"}, headers=his)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == allowed
        assert response.json()["issue"][0]["code"] == "not-supported"

    def test_metadata_is_public_and_lists_search_parameters(self, client: TestClient) -> None:
        statement = client.get("/fhir/metadata").json()
        types = {r["type"]: r for r in statement["rest"][0]["resource"]}
        assert [i["code"] for i in types["Patient"]["interaction"]] == ["read", "search-type"]
        assert "Observation" in types
        assert any(p["name"] == "code" for p in types["Observation"]["searchParam"])


def everything_pages(
    client: TestClient, headers: dict[str, str], query: str
) -> list[list[tuple[str, str]]]:
    """Each page of $everything, following its next links: (type, id) of its entries."""
    pages: list[list[tuple[str, str]]] = []
    url: str | None = f"/fhir/Patient/{P}/$everything{query}"
    while url is not None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        bundle = response.json()
        pages.append(
            [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
        )
        url = link(bundle, "next")
    return pages


class TestEverything:
    @pytest.fixture
    def dated(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> dict[str, str]:
        """The visit (October 2026) and observations of January and March, and one
        without a clinical date."""
        enc = visit["encounter"]["id"]
        january = post(client, his, observation(P, enc, when="2026-01-10T08:00:00Z"))
        march = post(client, his, observation(P, enc, when="2026-03-10T08:00:00Z"))
        undated = {k: v for k, v in observation(P, enc).items() if k != "effectiveDateTime"}
        return {
            "encounter": enc,
            "october": visit["observation"]["id"],
            "january": january["id"],
            "march": march["id"],
            "undated": post(client, his, undated)["id"],
        }

    def test_count_zero_answers_the_total_without_entries(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Patient/{P}/$everything?_count=0", headers=his)
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["entry"] == []
        assert bundle["total"] == 3  # the Patient, the Encounter, the Observation
        assert link(bundle, "next") is None

    def test_a_page_holds_count_entries_the_patient_included(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        pages = everything_pages(client, his, "?_count=1")
        assert pages == [
            [("Patient", P)],
            [("Encounter", visit["encounter"]["id"])],
            [("Observation", visit["observation"]["id"])],
        ]
        assert [len(p) for p in everything_pages(client, his, "?_count=2")] == [2, 1]

    def test_since_leaves_out_a_patient_not_updated_since(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        person = db.get(Person, P)
        assert person is not None
        person.updated_at = datetime(2020, 1, 1, tzinfo=UTC)
        db.flush()
        later = everything_pages(client, his, "?_since=2024-01-01T00:00:00Z")
        assert [t for t, _ in later[0]] == ["Encounter", "Observation"]
        earlier = everything_pages(client, his, "?_since=2019-01-01T00:00:00Z")
        assert [t for t, _ in earlier[0]] == ["Patient", "Encounter", "Observation"]

    def test_type_keeps_only_the_types_named(
        self, client: TestClient, his: dict[str, str], dated: dict[str, str]
    ) -> None:
        only = everything_pages(client, his, "?_type=Observation")
        assert {t for t, _ in only[0]} == {"Observation"}
        both = everything_pages(client, his, "?_type=Patient&_type=Encounter")
        assert both == [[("Patient", P), ("Encounter", dated["encounter"])]]

    @pytest.mark.parametrize("types", ["Shoe", "Observation,Organization"])
    def test_a_type_everything_does_not_return_is_a_400(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], types: str
    ) -> None:
        response = client.get(f"/fhir/Patient/{P}/$everything?_type={types}", headers=his)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert types.split(",")[-1] in outcome["issue"][0]["diagnostics"]

    def test_start_and_end_keep_care_in_the_range_and_undated_resources(
        self, client: TestClient, his: dict[str, str], dated: dict[str, str]
    ) -> None:
        pages = everything_pages(client, his, "?start=2026-02&end=2026-03&_count=1")
        found = [entry for page in pages for entry in page]
        assert found == [
            ("Patient", P),
            ("Observation", dated["march"]),
            ("Observation", dated["undated"]),
        ]
        before = everything_pages(client, his, "?end=2026-02-01&_type=Observation")
        assert {i for _, i in before[0]} == {dated["january"], dated["undated"]}

    @pytest.mark.parametrize("query", ["start=yesterday", "end=2026-13"])
    def test_a_date_that_is_not_a_fhir_date_is_a_400(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], query: str
    ) -> None:
        response = client.get(f"/fhir/Patient/{P}/$everything?{query}", headers=his)
        assert response.status_code == 400, response.text
        assert query.split("=")[0] in response.json()["issue"][0]["diagnostics"]

    def test_an_unknown_parameter_is_a_warning_left_out_of_the_links(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Patient/{P}/$everything?_count=1&shoe-size=42"
        bundle = client.get(url, headers=his).json()
        *entries, outcome = bundle["entry"]
        assert [e["resource"]["id"] for e in entries] == [P]
        assert outcome["search"]["mode"] == "outcome"
        [issue] = outcome["resource"]["issue"]
        assert issue["severity"] == "warning"
        assert "shoe-size" in issue["diagnostics"]
        # The links show the operation as it ran: paging on carries no warning.
        for relation in ("self", "next"):
            assert "shoe-size" not in str(link(bundle, relation))
        following = client.get(str(link(bundle, "next")), headers=his).json()
        assert "outcome" not in {e["search"]["mode"] for e in following["entry"]}

    def test_a_parameter_given_twice_is_a_400_naming_it(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Patient/{P}/$everything?start=2026-01-01&start=2026-06-01"
        response = client.get(url, headers=his)
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == ["start"]

    def test_an_unknown_parameter_under_strict_handling_is_a_400_naming_it(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        strict = {**his, "Prefer": "handling=strict"}
        url = f"/fhir/Patient/{P}/$everything?shoe-size=42"
        response = client.get(url, headers=strict)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"  # not a Bundle: nothing returned
        assert "shoe-size" in outcome["issue"][0]["diagnostics"]
        assert outcome["issue"][0]["expression"] == ["shoe-size"]
        # What $everything reads, its own paging cursor included, stays accepted.
        known = "?_count=1&_since=2020-01-01&_type=Patient,Encounter&start=2026&end=2026"
        pages = everything_pages(client, strict, f"{known}&_format=json&_pretty=true")
        assert pages == [[("Patient", P)], [("Encounter", visit["encounter"]["id"])]]

    @pytest.mark.parametrize(
        "period",
        [
            {"start": "2026-03-01", "end": "2026-03-20"},
            {"start": "2026-03-01"},  # still in hospital
            # 00:30 in Beijing, still 03-09 in UTC: start is the consortium's local day.
            {"start": "2026-03-01", "end": "2026-03-10T00:30:00+08:00"},
        ],
    )
    def test_start_keeps_a_stay_that_began_before_it_and_ended_after(
        self, client: TestClient, db: Session, his: dict[str, str], period: dict[str, str]
    ) -> None:
        stay = _encounter_over(client, db, his, period)
        for query in ("?start=2026-03-10", "?start=2026-03-10&end=2026-03-10"):
            assert everything_pages(client, his, f"{query}&_type=Encounter") == [
                [("Encounter", stay)]
            ]
            counted = client.get(f"/fhir/Patient/{P}/$everything{query}&_count=0", headers=his)
            assert counted.json()["total"] == 2  # the Patient and the stay

    @pytest.mark.parametrize(
        "period", [{"start": "2026-02-01", "end": "2026-03-09"}, {"end": "2026-03-09"}]
    )
    def test_start_leaves_out_a_stay_that_ended_before_it(
        self, client: TestClient, db: Session, his: dict[str, str], period: dict[str, str]
    ) -> None:
        _encounter_over(client, db, his, period)
        assert everything_pages(client, his, "?start=2026-03-10&_type=Encounter") == [[]]

    def test_start_and_end_keep_a_resource_without_a_clinical_date(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        undated = _encounter_over(client, db, his, None)
        query = "?start=2026-03-10&end=2026-03-10&_type=Encounter"
        assert everything_pages(client, his, query) == [[("Encounter", undated)]]


def _encounter_over(
    client: TestClient, db: Session, headers: dict[str, str], period: dict[str, str] | None
) -> str:
    """An Encounter of the patient over ``period`` (None: without one, so undated)."""
    ensure_person(db, P)
    resource = {k: v for k, v in encounter(P).items() if k != "period"}
    if period is not None:
        resource["period"] = period
    return str(post(client, headers, resource)["id"])


class TestAuthorisation:
    def test_doctor_without_basis_is_refused_and_the_refusal_audited(
        self, client: TestClient, db: Session, visit: dict[str, Any]
    ) -> None:
        headers = bearer(client, "doctor")  # township-01: no relationship, no consent
        response = client.get(f"/fhir/Observation/{visit['observation']['id']}", headers=headers)
        assert response.status_code == 403
        denied = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "access.denied", AuditEvent.username == "doctor"
            )
        ).all()
        assert denied

    def test_every_write_leaves_one_audit_event_and_a_refused_one_none(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        assert client.put(url, json={**obs, "status": "amended"}, headers=his).status_code == 200
        assert client.delete(url, headers=his).status_code == 204
        doctor = {**bearer(client, "doctor"), "Content-Type": FHIR}  # no basis for P
        assert client.post("/fhir/Observation", json=obs, headers=doctor).status_code == 403
        events = db.execute(
            select(AuditEvent.action, AuditEvent.client_id, AuditEvent.basis, AuditEvent.detail)
            .where(AuditEvent.resource_id == obs["id"], AuditEvent.action.like("fhir.%"))
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.detail["version"]) for e in events] == [
            ("fhir.create", 1),
            ("fhir.update", 2),
            ("fhir.delete", 3),
        ]
        assert {(e.client_id, e.basis) for e in events} == {("county-his", "care_relationship")}
        written = db.scalars(
            select(AuditEvent.action).where(
                AuditEvent.username == "doctor", AuditEvent.action.like("fhir.%")
            )
        ).all()
        assert written == []

    def test_a_json_patch_without_basis_is_refused_before_it_is_tried(
        self, client: TestClient, db: Session, visit: dict[str, Any]
    ) -> None:
        """A failing ``test`` operation must not tell an outsider what the record holds."""
        obs = visit["observation"]
        doctor = {**bearer(client, "doctor"), "Content-Type": "application/json-patch+json"}
        probe = [{"op": "test", "path": "/status", "value": "guess"}]
        response = client.patch(f"/fhir/Observation/{obs['id']}", json=probe, headers=doctor)
        assert response.status_code == 403, response.text
        assert obs["status"] not in response.text
        assert obs["id"] not in response.text
        actions = db.scalars(
            select(AuditEvent.action).where(
                AuditEvent.username == "doctor", AuditEvent.action != "auth.login"
            )
        ).all()
        assert actions == ["access.denied"]

    def test_a_failing_json_patch_names_its_operation_not_the_values_it_met(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        patch = [
            {"op": "replace", "path": "/status", "value": "amended"},
            {"op": "test", "path": "/valueQuantity/value", "value": 0},
        ]
        headers = {**his, "Content-Type": "application/json-patch+json"}
        response = client.patch(url, json=patch, headers=headers)
        assert response.status_code == 400, response.text
        message = response.json()["issue"][0]["diagnostics"]
        assert "operation 2 (test /valueQuantity/value)" in message
        assert "valueQuantity" not in message.replace("/valueQuantity/value", "")
        assert client.get(url, headers=his).json()["status"] == "final"  # nothing applied

    def test_a_resource_cannot_be_taken_out_of_its_patients_record(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        """Without its patient it would be readable by anyone, unaudited."""
        url = f"/fhir/Observation/{visit['observation']['id']}"
        headers = {**his, "Content-Type": "application/json-patch+json"}
        response = client.patch(url, json=[{"op": "remove", "path": "/subject"}], headers=headers)
        assert response.status_code == 422, response.text
        assert "Observation.subject" in response.text
        assert client.get(url, headers=his).json()["subject"]["reference"] == f"Patient/{P}"

    def test_an_old_version_filed_under_another_patient_is_that_patients_record(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        """A result filed on the wrong patient and moved: its first version still shows the
        first patient's data, and only who may read that patient may read it."""
        resident = "p00000010"  # the demo resident's own person
        post(client, his, encounter(resident))
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        moved = {**obs, "subject": {"reference": f"Patient/{resident}"}}
        moved.pop("encounter", None)
        assert client.put(url, json=moved, headers=his).status_code == 200
        own = bearer(client, "resident")
        assert client.get(url, headers=own).status_code == 200
        assert client.get(f"{url}/_history/2", headers=own).status_code == 200
        assert client.get(f"{url}/_history/1", headers=own).status_code == 403
        # The instance's history shows the first patient's version: a read of P, audited.
        before = len(_reads_of(db, P))
        versions = client.get(f"{url}/_history", headers=his).json()["entry"]
        assert len(versions) == 2
        assert len(_reads_of(db, P)) == before + 1

    def test_search_naming_an_unreadable_patient_is_refused(
        self, client: TestClient, visit: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Observation?patient={P}", headers=bearer(client, "doctor"))
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "criteria",
        [
            "",
            "&code=http://loinc.org|0000-0",  # finds nothing: naming P still read P's record
            "&_include=Observation:encounter",  # P's own encounter: not audited twice
            "&_summary=count",
            "&_total=accurate",
            "&_count=0",
        ],
    )
    def test_a_search_naming_a_patient_audits_one_read_with_its_basis(
        self,
        client: TestClient,
        db: Session,
        his: dict[str, str],
        visit: dict[str, Any],
        criteria: str,
    ) -> None:
        before = len(_reads_of(db, P))
        response = client.get(f"/fhir/Observation?patient={P}{criteria}", headers=his)
        assert response.status_code == 200, response.text
        reads = _reads(db, P)
        assert len(reads) == before + 1
        assert reads[-1] == ("Observation", "care_relationship")

    def test_break_the_glass_opens_the_record_and_is_audited(
        self, client: TestClient, db: Session, visit: dict[str, Any]
    ) -> None:
        headers = bearer(client, "doctor")
        actor = read_token(headers["Authorization"][7:])
        access.break_glass(
            db, actor, patient_id=P, reason="unconscious in the emergency room", now=utcnow()
        )
        db.flush()
        response = client.get(f"/fhir/Observation/{visit['observation']['id']}", headers=headers)
        assert response.status_code == 200
        bases = db.scalars(
            select(AuditEvent.basis).where(
                AuditEvent.action == "read",
                AuditEvent.patient_id == P,
                AuditEvent.username == "doctor",
            )
        ).all()
        assert bases == ["break_the_glass"]

    def test_staff_cannot_fabricate_a_care_relationship_with_an_encounter(
        self, client: TestClient, db: Session
    ) -> None:
        ensure_person(db, P)
        response = client.post(
            "/fhir/Encounter",
            json=encounter(P, institution="township-01"),
            headers=bearer(client, "doctor"),
        )
        assert response.status_code == 403

    def test_resident_reads_who_accessed_their_record(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        person = "p00000010"  # the demo resident's own person
        post(client, his, encounter(person))
        bundle = client.get(
            f"/fhir/AuditEvent?patient={person}", headers=bearer(client, "resident")
        ).json()
        agents = {e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in bundle["entry"]}
        assert "county-his" in agents
        other = client.get(f"/fhir/AuditEvent?patient={P}", headers=bearer(client, "resident"))
        assert other.status_code == 403


def _reads(db: Session, patient: str) -> list[tuple[str, str | None]]:
    """(resource type, basis) of county-his's audited reads of the patient's record, oldest
    first."""
    rows = db.execute(
        select(AuditEvent.resource_type, AuditEvent.basis)
        .where(
            AuditEvent.patient_id == patient,
            AuditEvent.action == "read",
            AuditEvent.client_id == "county-his",
        )
        .order_by(AuditEvent.id)
    ).all()
    return [(str(kind), basis) for kind, basis in rows]


def _reads_of(db: Session, patient: str) -> list[str]:
    """The resource types of county-his's audited reads of the patient's record."""
    return [kind for kind, _ in _reads(db, patient)]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    found = [x["url"] for x in bundle.get("link", []) if x["relation"] == relation]
    return found[0].replace("http://testserver", "") if found else None


class TestPaging:
    def test_post_search_pages_by_get_with_its_criteria(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        enc = visit["encounter"]["id"]
        second = post(client, his, observation(P, enc, when="2026-10-02T08:00:00Z"))
        post(client, his, observation(P, enc, code="8480-6"))  # not matched by the criteria
        first = client.post(
            "/fhir/Observation/_search",
            data={"patient": P, "code": "http://loinc.org|8867-4", "_count": "1"},
            headers={"Authorization": his["Authorization"]},
        )
        assert first.status_code == 200, first.text
        following = link(first.json(), "next")
        assert following is not None
        assert following.startswith("/fhir/Observation?")
        assert "code=" in following
        assert "_search" not in (link(first.json(), "self") or "")
        page = client.get(following, headers=his)
        assert page.status_code == 200, page.text
        seen = [e["resource"]["id"] for e in (first.json()["entry"] + page.json()["entry"])]
        assert sorted(seen) == sorted([visit["observation"]["id"], second["id"]])
        assert link(page.json(), "next") is None


class TestCountZero:
    """``_count=0`` asks how many match and nothing else, as ``_summary=count`` does."""

    @pytest.mark.parametrize("way", ["GET", "POST"])
    def test_a_search_answers_the_total_without_entries(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], way: str
    ) -> None:
        post(client, his, observation(P, visit["encounter"]["id"]))
        criteria = {"patient": P, "_count": "0"}
        if way == "GET":
            response = client.get("/fhir/Observation", params=criteria, headers=his)
        else:
            auth = {"Authorization": his["Authorization"]}
            response = client.post("/fhir/Observation/_search", data=criteria, headers=auth)
        bundle = response.json()
        assert (bundle["total"], bundle["entry"]) == (2, [])
        summary = client.get(f"/fhir/Observation?patient={P}&_summary=count", headers=his)
        assert summary.json()["total"] == 2

    @pytest.mark.parametrize("scope", ["instance", "type"])
    def test_a_history_answers_the_number_of_versions_without_entries(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], scope: str
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        for status in ("amended", "corrected"):
            assert client.put(url, json={**obs, "status": status}, headers=his).status_code == 200
        history = f"{url}/_history" if scope == "instance" else "/fhir/Observation/_history"
        counted = client.get(f"{history}?_count=0", headers=his).json()
        everything = client.get(f"{history}?_count=1000", headers=his).json()
        assert counted["entry"] == []
        assert counted["total"] == everything["total"] == len(everything["entry"])
        assert counted["total"] >= 3
        assert not [link for link in counted["link"] if link["relation"] == "next"]


class TestHistory:
    @pytest.fixture
    def amended(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> dict[str, Any]:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        assert client.put(url, json={**obs, "status": "amended"}, headers=his).status_code == 200
        body: dict[str, Any] = obs
        return body

    def test_instance_history_pages_by_count_through_next_links(
        self, client: TestClient, his: dict[str, str], amended: dict[str, Any]
    ) -> None:
        first = client.get(f"/fhir/Observation/{amended['id']}/_history?_count=1", headers=his)
        assert first.status_code == 200, first.text
        assert [e["response"]["etag"] for e in first.json()["entry"]] == ['W/"2"']
        assert link(first.json(), "self") is not None
        following = link(first.json(), "next")
        assert following is not None
        second = client.get(following, headers=his).json()
        assert [e["response"]["etag"] for e in second["entry"]] == ['W/"1"']
        assert link(second, "next") is None

    def test_history_tells_a_create_by_put_from_one_by_post(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        # A client replaying the history must create this one at its own id again.
        by_put = {**observation(P, visit["encounter"]["id"]), "id": "client-chosen-1"}
        created = client.put("/fhir/Observation/client-chosen-1", json=by_put, headers=his)
        assert created.status_code == 201, created.text
        bundle = client.get("/fhir/Observation/_history", headers=his).json()
        requests = {
            e["resource"]["id"]: (e["request"], e["response"]["status"]) for e in bundle["entry"]
        }
        put_request = {"method": "PUT", "url": "Observation/client-chosen-1"}
        assert requests["client-chosen-1"] == (put_request, "201")
        posted = visit["observation"]["id"]
        assert requests[posted] == ({"method": "POST", "url": "Observation"}, "201")
        action = select(AuditEvent.action).where(AuditEvent.resource_id == "client-chosen-1")
        assert db.scalars(action).all() == ["fhir.create"]

    def test_instance_history_honours_since(
        self, client: TestClient, his: dict[str, str], amended: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{amended['id']}/_history"
        everything = client.get(url, headers=his)
        assert everything.status_code == 200, everything.text
        assert len(everything.json()["entry"]) == 2
        later = client.get(f"{url}?_since=2999-01-01T00:00:00Z", headers=his)
        assert later.status_code == 200, later.text
        assert later.json().get("entry", []) == []

    def test_type_history_reaches_every_version_through_next_links(
        self, client: TestClient, his: dict[str, str], amended: dict[str, Any]
    ) -> None:
        url: str | None = "/fhir/Observation/_history?_count=1"
        seen: list[tuple[str, str]] = []
        while url is not None and len(seen) < 100:
            page = client.get(url, headers=his).json()
            seen += [(e["resource"]["id"], e["response"]["etag"]) for e in page["entry"]]
            url = link(page, "next")
        assert [v for i, v in seen if i == amended["id"]] == ['W/"2"', 'W/"1"']
        assert len(seen) == len(set(seen))

    @pytest.mark.parametrize("scope", ["instance", "type"])
    def test_a_parameter_history_does_not_read_is_refused_when_strict_else_left_out(
        self, client: TestClient, his: dict[str, str], amended: dict[str, Any], scope: str
    ) -> None:
        url = f"/fhir/Observation/{amended['id']}/_history"
        url = url if scope == "instance" else "/fhir/Observation/_history"
        strict = {**his, "Prefer": "handling=strict"}
        refused = client.get(f"{url}?_at=2026&_count=1", headers=strict)
        assert refused.status_code == 400, refused.text
        issue = refused.json()["issue"][0]
        assert (issue["expression"], issue["diagnostics"]) == (
            ["_at"],
            "unknown parameter _at for history",
        )
        lenient = client.get(f"{url}?_at=2026&_count=1", headers=his)
        assert lenient.status_code == 200
        assert link(lenient.json(), "self") == f"{url}?_count=1"
        following = link(lenient.json(), "next")
        assert following is not None
        assert "_at" not in following
        assert client.get(f"{url}?_count=1&_format=json", headers=strict).status_code == 200

    def test_a_create_is_a_post_of_the_type_answered_201(
        self, client: TestClient, his: dict[str, str], amended: dict[str, Any]
    ) -> None:
        history = client.get(f"/fhir/Observation/{amended['id']}/_history", headers=his).json()
        update, create = history["entry"]
        assert update["request"] == {"method": "PUT", "url": f"Observation/{amended['id']}"}
        assert update["response"]["status"] == "200"
        assert create["request"] == {"method": "POST", "url": "Observation"}
        assert create["response"]["status"] == "201"


class TestFormats:
    @pytest.mark.parametrize(
        ("query", "accept"),
        [
            ("", "application/fhir+xml"),
            ("", "application/xml, text/xml"),
            ("?_format=xml", None),
            ("?_format=application/fhir%2Bxml", None),
            ("?_format=application/fhir+xml", None),  # an unescaped + reads as a space
            ("?_format=xml", "application/fhir+json"),  # _format wins over Accept
        ],
    )
    def test_xml_is_not_acceptable(
        self,
        client: TestClient,
        his: dict[str, str],
        visit: dict[str, Any],
        query: str,
        accept: str | None,
    ) -> None:
        headers = {**his, **({"Accept": accept} if accept else {})}
        for url in (f"/fhir/Observation/{visit['observation']['id']}", "/fhir/Observation"):
            response = client.get(url + query, headers=headers)
            assert response.status_code == 406, (url, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"
        assert client.get(f"/fhir/metadata{query}", headers=headers).status_code == 406

    @pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer not-a-token"}])
    @pytest.mark.parametrize(
        ("query", "accept"),
        [("", "application/fhir+xml"), ("?_format=xml", None), ("", None)],
    )
    def test_an_unauthenticated_request_is_401_whatever_format_it_asks_for(
        self,
        client: TestClient,
        visit: dict[str, Any],
        credentials: dict[str, str],
        query: str,
        accept: str | None,
    ) -> None:
        """A 406 would tell a caller without credentials which routes exist and answer."""
        headers = {**credentials, **({"Accept": accept} if accept else {})}
        urls = (
            f"/fhir/Observation/{visit['observation']['id']}",  # direct dispatch
            "/fhir/Observation",
            f"/fhir/Patient/{P}",
            "/fhir/Organization",
        )
        for url in urls:
            response = client.get(url + query, headers=headers)
            assert response.status_code == 401, (url, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"

    @pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer not-a-token"}])
    def test_an_unauthenticated_xml_body_is_401(
        self, client: TestClient, visit: dict[str, Any], credentials: dict[str, str]
    ) -> None:
        headers = {**credentials, "Content-Type": "application/fhir+xml"}
        xml = '<Observation xmlns="http://hl7.org/fhir"><status value="final"/></Observation>'
        created = client.post("/fhir/Observation", content=xml, headers=headers)
        assert created.status_code == 401, created.text
        obs = visit["observation"]["id"]
        updated = client.put(f"/fhir/Observation/{obs}", content=xml, headers=headers)
        assert updated.status_code == 401, updated.text
        assert client.post("/fhir", content=xml, headers=headers).status_code == 401

    @pytest.mark.parametrize(
        "url",
        [f"/fhir/Patient/{P}", "/fhir/Organization", "/fhir/ServiceRequest", "/fhir/Slot"],
    )
    def test_the_mpi_registry_and_workflow_types_refuse_xml_too(
        self, client: TestClient, his: dict[str, str], url: str
    ) -> None:
        assert client.get(url, headers=his).status_code == 200
        response = client.get(f"{url}?_format=xml", headers=his)
        assert response.status_code == 406, response.text

    @pytest.mark.parametrize(
        ("query", "accept"),
        [
            ("", "*/*"),
            ("", "application/json"),
            ("", "application/fhir+json; fhirVersion=4.0"),
            ("", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            ("?_format=json", None),
            ("?_format=application/fhir%2Bjson", None),
            ("?_format=json", "application/fhir+xml"),
        ],
    )
    def test_json_is_served(
        self,
        client: TestClient,
        his: dict[str, str],
        visit: dict[str, Any],
        query: str,
        accept: str | None,
    ) -> None:
        headers = {**his, **({"Accept": accept} if accept else {})}
        url = f"/fhir/Observation/{visit['observation']['id']}{query}"
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(FHIR)

    @pytest.mark.parametrize(
        ("method", "url"),
        [
            ("GET", "/fhir/Observation/{obs}"),  # direct dispatch
            ("GET", "/fhir/Observation"),
            ("GET", "/fhir/Observation/{obs}/_history"),
            ("GET", "/fhir/Observation/nothing-has-this-id"),  # an OperationOutcome
            ("GET", "/fhir/metadata"),
            ("GET", f"/fhir/Patient/{P}"),
            ("GET", "/fhir/Organization"),
            ("GET", "/fhir/Task"),
            ("GET", "/fhir/Slot"),
            ("PUT", "/fhir"),  # the router's 405
        ],
    )
    def test_every_answer_states_its_charset(
        self,
        client: TestClient,
        his: dict[str, str],
        visit: dict[str, Any],
        method: str,
        url: str,
    ) -> None:
        """R4 http.html, Content Types and encodings: the charset SHALL be given."""
        response = client.request(method, url.format(obs=visit["observation"]["id"]), headers=his)
        assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"

    def test_an_xml_body_is_an_unsupported_media_type(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        headers = {**his, "Content-Type": "application/fhir+xml"}
        xml = '<Observation xmlns="http://hl7.org/fhir"><status value="final"/></Observation>'
        created = client.post("/fhir/Observation", content=xml, headers=headers)
        assert created.status_code == 415, created.text
        updated = client.put(f"/fhir/Observation/{obs['id']}", content=xml, headers=headers)
        assert updated.status_code == 415, updated.text
        assert client.post("/fhir", content=xml, headers=headers).status_code == 415

    def test_refused_formats_are_not_supported_issues(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        xml = {**his, "Content-Type": "application/fhir+xml"}
        for response, status in (
            (client.get(f"{url}?_format=xml", headers=his), 406),
            (client.put(url, content="<Observation/>", headers=xml), 415),
        ):
            assert response.status_code == status
            assert response.json()["issue"][0]["code"] == "not-supported"

    def test_a_patch_in_another_format_than_json_patch_is_415(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        patch = [{"op": "replace", "path": "/status", "value": "amended"}]
        for media in (FHIR, "application/json"):
            response = client.patch(url, json=patch, headers={**his, "Content-Type": media})
            assert response.status_code == 415, response.text
            issue = response.json()["issue"][0]
            assert (issue["code"], issue["expression"]) == ("not-supported", ["Content-Type"])
        assert client.get(url, headers=his).json()["status"] == "final"

    def test_post_search_with_a_json_body_is_refused(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        response = client.post(
            "/fhir/Observation/_search",
            json={"code": "http://loinc.org|nothing-has-this"},
            headers={"Authorization": his["Authorization"]},
        )
        assert response.status_code == 415, response.text
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-supported"
        assert "x-www-form-urlencoded" in issue["diagnostics"]


class TestConditionalRead:
    """R4 http.html read: a client holding a version asks whether it changed (304, no
    body) with If-None-Match or If-Modified-Since."""

    @pytest.mark.parametrize(
        ("headers", "status"),
        [
            ({"If-None-Match": 'W/"1"'}, 304),
            ({"If-None-Match": '"1"'}, 304),  # weak comparison
            ({"If-None-Match": 'W/"7", W/"1"'}, 304),
            ({"If-None-Match": "*"}, 304),
            ({"If-None-Match": 'W/"2"'}, 200),
            ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, 304),
            ({"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}, 200),
            ({"If-Modified-Since": "yesterday"}, 200),  # not an HTTP-date: ignored
            # If-None-Match decides when both are sent (RFC 9110 13.2.2).
            ({"If-None-Match": 'W/"2"', "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, 200),
        ],
    )
    @pytest.mark.parametrize("interaction", ["read", "vread"])
    def test_a_current_copy_is_not_sent_again(
        self,
        client: TestClient,
        his: dict[str, str],
        visit: dict[str, Any],
        headers: dict[str, str],
        status: int,
        interaction: str,
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        url += "/_history/1" if interaction == "vread" else ""
        response = client.get(url, headers={**his, **headers})
        assert response.status_code == status, response.text
        assert response.headers["etag"] == 'W/"1"'
        if status == 304:
            assert response.content == b""
            assert "content-type" not in response.headers
        else:
            assert response.json()["id"] == visit["observation"]["id"]

    def test_a_changed_resource_is_sent_to_a_client_holding_its_last_version(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        first = client.get(url, headers=his)
        assert client.put(url, json={**obs, "status": "amended"}, headers=his).status_code == 200
        again = client.get(url, headers={**his, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 200
        assert again.json()["status"] == "amended"

    def test_the_capability_statement_says_conditional_reads_are_served(
        self, client: TestClient
    ) -> None:
        statement = client.get("/fhir/metadata").json()
        kinds = {r["type"]: r.get("conditionalRead") for r in statement["rest"][0]["resource"]}
        assert kinds["Observation"] == kinds["Encounter"] == "full-support"


class TestPreferences:
    def test_prefer_operation_outcome_answers_one_with_the_headers(
        self, client: TestClient, db: Session, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        headers = {**his, "Prefer": "return=OperationOutcome"}
        created = client.post("/fhir/Observation", json=observation(P), headers=headers)
        assert created.status_code == 201, created.text
        assert created.json()["resourceType"] == "OperationOutcome"
        assert created.headers["location"].endswith("/_history/1")
        assert created.headers["etag"] == 'W/"1"'

    @pytest.mark.parametrize("prefer", ["return=minimal", "return=OperationOutcome"])
    def test_a_read_returns_the_resource_whatever_prefer_says(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], prefer: str
    ) -> None:
        url = f"/fhir/Observation/{visit['observation']['id']}"
        for read in (url, f"{url}/_history/1"):
            response = client.get(read, headers={**his, "Prefer": prefer})
            assert response.json()["id"] == visit["observation"]["id"], response.text

    @pytest.mark.parametrize("etag", ['W/"x"', "W/1", "version-1"])
    def test_a_malformed_if_match_is_a_400(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], etag: str
    ) -> None:
        response = amend_with_if_match(client, his, visit["observation"], etag)
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == ["If-Match"]

    @pytest.mark.parametrize("etag", ['W/"1"', '"1"', "*"])
    def test_a_well_formed_current_if_match_updates(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any], etag: str
    ) -> None:
        response = amend_with_if_match(client, his, visit["observation"], etag)
        assert response.status_code == 200, response.text

    def test_put_recreating_a_deleted_resource_answers_201_with_location(
        self, client: TestClient, his: dict[str, str], visit: dict[str, Any]
    ) -> None:
        obs = visit["observation"]
        url = f"/fhir/Observation/{obs['id']}"
        assert client.delete(url, headers=his).status_code == 204
        again = client.put(url, json=obs, headers=his)
        assert again.status_code == 201, again.text
        assert again.headers["location"].endswith(f"{url}/_history/3")
        assert client.get(url, headers=his).status_code == 200
        history = client.get(f"{url}/_history", headers=his).json()["entry"]
        said = [(e["request"]["method"], e["response"]["status"]) for e in history]
        assert said == [("PUT", "201"), ("DELETE", "200"), ("POST", "201")]
