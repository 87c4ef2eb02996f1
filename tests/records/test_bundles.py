"""Transaction bundles: a Synthea patient history loads atomically, or not at all."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import system_bearer
from medalliance.patients.enums import RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person
from medalliance.records.models import FhirResource
from medalliance.registry.fhir_map import SYSTEMS
from medalliance.registry.models import Institution, Practitioner
from records import synthea
from records.factories import COUNTY

P = "p00000005"


@pytest.fixture(scope="module")
def raw_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    return synthea.generate(tmp_path_factory.mktemp("synthea"))


@pytest.fixture
def his(client: TestClient) -> dict[str, str]:
    return system_bearer(client)


@pytest.fixture
def member_bundle(db: Session, raw_bundle: dict[str, Any]) -> dict[str, Any]:
    person = db.get(Person, P)
    assert person is not None
    assert person.id_number
    code = db.scalars(select(Institution.code).where(Institution.id == COUNTY)).one()
    licence = db.scalars(
        select(Practitioner.licence_number).order_by(Practitioner.id).limit(1)
    ).one()
    return synthea.for_member(
        copy.deepcopy(raw_bundle),
        id_system=RESIDENT_ID_SYSTEM,
        id_number=person.id_number,
        organization=f"{SYSTEMS['institution-code']}|{code}",
        practitioner=f"{SYSTEMS['licence']}|{licence}",
    )


def stored_for(db: Session, patient_id: str) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(FhirResource)
            .where(FhirResource.patient_id == patient_id)
        )
        or 0
    )


class TestTransaction:
    def test_full_patient_history_loads_atomically(
        self, client: TestClient, db: Session, his: dict[str, str], member_bundle: dict[str, Any]
    ) -> None:
        response = client.post("/fhir", json=member_bundle, headers=his)
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        assert body["type"] == "transaction-response"
        written = [e for e in body["entry"] if e["response"]["status"] == "201 Created"]
        assert len(written) == len(member_bundle["entry"]) - 1  # all but the MPI patient
        assert stored_for(db, P) > 1000
        # References now point at stored resources and at the registry.
        encounter = client.get(
            "/fhir/Encounter", params={"patient": P, "_count": "1"}, headers=his
        ).json()
        resource = encounter["entry"][0]["resource"]
        assert resource["subject"]["reference"] == f"Patient/{P}"
        assert resource["serviceProvider"]["reference"] == f"Organization/{COUNTY}"

    def test_one_broken_reference_loads_nothing(
        self, client: TestClient, db: Session, his: dict[str, str], member_bundle: dict[str, Any]
    ) -> None:
        broken = copy.deepcopy(member_bundle)
        victim = next(e for e in broken["entry"] if e["resource"]["resourceType"] == "Observation")
        victim["resource"]["encounter"] = {
            "reference": "urn:uuid:00000000-0000-0000-0000-000000000000"
        }
        response = client.post("/fhir", json=broken, headers=his)
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert "urn:uuid:00000000" in issue["diagnostics"]
        assert issue["expression"][0].endswith(".resource.encounter.reference")
        assert stored_for(db, P) == 0

    def test_unresolvable_conditional_reference_fails_the_bundle(
        self, client: TestClient, db: Session, his: dict[str, str], member_bundle: dict[str, Any]
    ) -> None:
        broken = copy.deepcopy(member_bundle)
        encounter = next(e for e in broken["entry"] if e["resource"]["resourceType"] == "Encounter")
        encounter["resource"]["participant"] = [
            {
                "individual": {
                    "reference": f"Practitioner?identifier={SYSTEMS['licence']}|no-such-licence"
                }
            }
        ]
        response = client.post("/fhir", json=broken, headers=his)
        assert response.status_code == 422
        assert "matched no" in response.json()["issue"][0]["diagnostics"]
        assert stored_for(db, P) == 0


class TestBatch:
    def test_batch_entries_succeed_or_fail_on_their_own(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        from records.factories import encounter

        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": encounter(P), "request": {"method": "POST", "url": "Encounter"}},
                {
                    "resource": encounter("nobody"),
                    "request": {"method": "POST", "url": "Encounter"},
                },
            ],
        }
        body = client.post("/fhir", json=bundle, headers=his).json()
        assert [e["response"]["status"][:3] for e in body["entry"]] == ["201", "422"]

    def test_a_malformed_entry_fails_alone_and_the_others_run(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        from records.factories import encounter

        good = {"resource": encounter(P), "request": {"method": "POST", "url": "Encounter"}}
        bundle = bundle_of(
            "batch",
            {"resource": encounter(P), "request": {"method": "FETCH", "url": "Encounter"}},
            {"resource": encounter(P)},  # no request
            good,
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        entries = [e["response"] for e in response.json()["entry"]]
        assert [e["status"][:3] for e in entries] == ["400", "400", "201"]
        assert "Bundle.entry[1].request is required" in str(entries[1]["outcome"])
        assert client.get(f"/fhir/{entries[2]['location']}", headers=his).status_code == 200


def bundle_of(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def binary_patch(url: str, data: str) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": data,
        },
        "request": {"method": "PATCH", "url": url},
    }


@pytest.fixture
def related(client: TestClient, his: dict[str, str]) -> None:
    """The member's system records an encounter of P: it may then write P's record."""
    from records.factories import encounter

    assert client.post("/fhir/Encounter", json=encounter(P), headers=his).status_code == 201


@pytest.fixture
def stored_observation(client: TestClient, his: dict[str, str], related: None) -> dict[str, Any]:
    from records.factories import observation

    response = client.post("/fhir/Observation", json=observation(P), headers=his)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


BAD_PATCH_DATA = ["not base64 at all!", base64.b64encode(b"not json").decode()]


class TestPatchEntries:
    @pytest.mark.parametrize("data", BAD_PATCH_DATA)
    def test_unreadable_patch_fails_the_transaction_with_a_400(
        self,
        client: TestClient,
        his: dict[str, str],
        stored_observation: dict[str, Any],
        data: str,
    ) -> None:
        url = f"Observation/{stored_observation['id']}"
        response = client.post(
            "/fhir", json=bundle_of("transaction", binary_patch(url, data)), headers=his
        )
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "Bundle.entry[0]" in outcome["issue"][0]["diagnostics"]

    @pytest.mark.parametrize("data", BAD_PATCH_DATA)
    def test_unreadable_patch_fails_only_its_batch_entry(
        self,
        client: TestClient,
        his: dict[str, str],
        stored_observation: dict[str, Any],
        data: str,
    ) -> None:
        url = f"Observation/{stored_observation['id']}"
        good = base64.b64encode(
            json.dumps([{"op": "replace", "path": "/status", "value": "amended"}]).encode()
        ).decode()
        response = client.post(
            "/fhir",
            json=bundle_of("batch", binary_patch(url, data), binary_patch(url, good)),
            headers=his,
        )
        assert response.status_code == 200, response.text
        bad, ok = (e["response"] for e in response.json()["entry"])
        assert bad["status"] == "400"
        assert bad["outcome"]["resourceType"] == "OperationOutcome"
        assert ok["status"] == "200 OK"


def tagged(identifier: str) -> dict[str, Any]:
    from records.factories import observation

    return {**observation(P), "identifier": [{"system": "urn:test", "value": identifier}]}


def delete_and_report(delete_url: str, *, report_on: str) -> dict[str, Any]:
    """A transaction: DELETE ``delete_url``, and create a lipid panel report of P whose
    result is the reference ``report_on``."""
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24331-1"}]},
        "subject": {"reference": f"Patient/{P}"},
        "result": [{"reference": report_on}],
    }
    return bundle_of(
        "transaction",
        {"request": {"method": "DELETE", "url": delete_url}},
        {"resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}},
    )


def with_identifier(db: Session, identifier: str) -> int:
    from medalliance.kit.clock import utcnow
    from medalliance.records import service
    from records.factories import COUNTY_HIS

    found = service.search(
        db, COUNTY_HIS, "Observation", [("identifier", f"urn:test|{identifier}")], now=utcnow()
    )
    return len(found.matches)


@pytest.mark.usefixtures("related")
class TestOverlappingIdentities:
    def test_a_full_url_given_twice_fails_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        url = "urn:uuid:9a7f3c1e-0000-4000-8000-000000000001"
        create = {"method": "POST", "url": "Observation"}
        bundle = bundle_of(
            "transaction",
            {"fullUrl": url, "resource": tagged("dup-1"), "request": create},
            {"fullUrl": url, "resource": tagged("dup-2"), "request": create},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert "fullUrl" in response.json()["issue"][0]["diagnostics"]
        assert with_identifier(db, "dup-1") == 0

    def test_put_and_delete_of_one_resource_fail_the_transaction(
        self, client: TestClient, his: dict[str, str], stored_observation: dict[str, Any]
    ) -> None:
        url = f"Observation/{stored_observation['id']}"
        amended = {**stored_observation, "status": "amended"}
        bundle = bundle_of(
            "transaction",
            {"resource": amended, "request": {"method": "PUT", "url": url}},
            {"request": {"method": "DELETE", "url": url}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert url in response.json()["issue"][0]["diagnostics"]
        assert client.get(f"/fhir/{url}", headers=his).json()["status"] == "final"

    def test_a_reference_to_a_version_of_what_the_transaction_deletes_is_kept(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        stored = client.post("/fhir/Observation", json=tagged("kept-1"), headers=his).json()
        target = f"Observation/{stored['id']}"
        # A version stays readable (vread).
        bundle = delete_and_report(target, report_on=f"{target}/_history/1")
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        assert client.get(f"/fhir/{target}/_history/1", headers=his).status_code == 200

    @pytest.mark.parametrize("conditional", [True, False])
    def test_a_reference_to_what_the_transaction_deletes_fails_it(
        self, client: TestClient, db: Session, his: dict[str, str], conditional: bool
    ) -> None:
        stored = client.post("/fhir/Observation", json=tagged("gone-1"), headers=his).json()
        target = f"Observation/{stored['id']}"
        named = "Observation?identifier=urn:test|gone-1" if conditional else target
        bundle = delete_and_report(named, report_on=named)
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 422, response.text
        diagnostics = response.json()["issue"][0]["diagnostics"]
        assert target in diagnostics
        assert "deleted by this transaction" in diagnostics
        assert with_identifier(db, "gone-1") == 1
        reports = db.scalar(
            select(func.count()).where(FhirResource.resource_type == "DiagnosticReport")
        )
        assert reports == 0

    def test_two_conditional_creates_of_one_criteria_fail_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        request = {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:test|c-1"}
        bundle = bundle_of(
            "transaction",
            {"resource": tagged("c-1"), "request": request},
            {"resource": tagged("c-1"), "request": request},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert with_identifier(db, "c-1") == 0

    def test_two_conditional_updates_of_one_criteria_fail_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        request = {"method": "PUT", "url": "Observation?identifier=urn:test|u-1"}
        bundle = bundle_of(
            "transaction",
            {"resource": tagged("u-1"), "request": request},
            {"resource": {**tagged("u-1"), "status": "amended"}, "request": request},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert with_identifier(db, "u-1") == 0


@pytest.mark.usefixtures("related")
class TestRequestUrl:
    def test_put_whose_body_names_another_id_fails_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        resource = {**tagged("put-a"), "id": "b"}
        bundle = bundle_of(
            "transaction",
            {"resource": resource, "request": {"method": "PUT", "url": "Observation/a"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert with_identifier(db, "put-a") == 0

    def test_conditional_put_naming_another_id_than_its_match_is_a_conflict(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        """R4: one match, a resource id that is not the match's: 409, as on /fhir/Type?."""
        first = bundle_of(
            "transaction",
            {"resource": tagged("cond-a"), "request": {"method": "POST", "url": "Observation"}},
        )
        assert client.post("/fhir", json=first, headers=his).status_code == 200
        url = "Observation?identifier=urn:test|cond-a"
        entry = {
            "resource": {**tagged("cond-a"), "id": "elsewhere"},
            "request": {"method": "PUT", "url": url},
        }
        response = client.post("/fhir", json=bundle_of("transaction", entry), headers=his)
        assert response.status_code == 409, response.text
        direct = client.put(
            f"/fhir/{url}", json={**tagged("cond-a"), "id": "elsewhere"}, headers=his
        )
        assert direct.status_code == 409, direct.text

    def test_conditional_put_without_a_match_does_not_overwrite_the_id_it_names(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        """No match and an id that a live resource the criteria did not match holds."""
        kept = client.put(
            "/fhir/Observation/kept-1", json={**tagged("kept"), "id": "kept-1"}, headers=his
        )
        assert kept.status_code == 201, kept.text
        url = "Observation?identifier=urn:test|nobody"
        body = {**tagged("nobody"), "id": "kept-1"}
        entry = {"resource": body, "request": {"method": "PUT", "url": url}}
        in_bundle = client.post("/fhir", json=bundle_of("transaction", entry), headers=his)
        assert in_bundle.status_code == 409, in_bundle.text
        assert client.put(f"/fhir/{url}", json=body, headers=his).status_code == 409
        assert with_identifier(db, "kept") == 1
        assert with_identifier(db, "nobody") == 0

    @pytest.mark.parametrize(
        "request_part",
        [{"method": "POST", "url": "Condition"}, {"method": "PUT", "url": "Condition/c-1"}],
    )
    def test_body_of_another_type_than_the_url_fails_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str], request_part: dict[str, str]
    ) -> None:
        bundle = bundle_of("transaction", {"resource": tagged("typed"), "request": request_part})
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert "Condition" in response.json()["issue"][0]["diagnostics"]
        assert with_identifier(db, "typed") == 0

    def test_body_of_another_type_than_the_url_fails_its_batch_entry(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        bundle = bundle_of(
            "batch",
            {"resource": tagged("typed"), "request": {"method": "POST", "url": "Condition"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        assert response.json()["entry"][0]["response"]["status"] == "400"
        assert with_identifier(db, "typed") == 0


class TestReadEntries:
    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_patient_and_registry_reads_answer_as_at_the_top_level(
        self, client: TestClient, db: Session, his: dict[str, str], kind: str
    ) -> None:
        practitioner = db.scalars(select(Practitioner.id).order_by(Practitioner.id).limit(1)).one()
        urls = [f"Patient/{P}", f"Organization/{COUNTY}", f"Practitioner/{practitioner}"]
        bundle = bundle_of(kind, *({"request": {"method": "GET", "url": u}} for u in urls))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        entries = response.json()["entry"]
        assert [e["response"]["status"] for e in entries] == ["200 OK"] * 3, entries
        for url, entry in zip(urls, entries, strict=True):
            top = client.get(f"/fhir/{url}", headers=his).json()
            assert entry["resource"] == top

    def test_a_referral_read_as_service_request_and_task_answers_as_at_the_top_level(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        from medalliance.referrals.models import Referral

        referral = db.scalars(
            select(Referral.id).where(Referral.to_institution_id == COUNTY).limit(1)
        ).one()
        urls = [f"ServiceRequest/{referral}", f"Task/{referral}"]
        bundle = bundle_of("batch", *({"request": {"method": "GET", "url": u}} for u in urls))
        entries = client.post("/fhir", json=bundle, headers=his).json()["entry"]
        assert [e["response"]["status"] for e in entries] == ["200 OK"] * 2, entries
        for url, entry in zip(urls, entries, strict=True):
            top = client.get(f"/fhir/{url}", headers=his)
            assert top.status_code == 200, top.text
            assert entry["resource"]["id"] == top.json()["id"]

    def test_a_search_entry_answers_as_the_search_at_the_top_level(
        self, client: TestClient, his: dict[str, str], related: None
    ) -> None:
        from records.factories import observation

        visit = client.get(f"/fhir/Encounter?patient={P}", headers=his).json()["entry"][0]
        for _ in range(2):
            made = observation(P, visit["resource"]["id"])
            assert client.post("/fhir/Observation", json=made, headers=his).status_code == 201
        urls = [
            f"Observation?patient={P}&_count=1&_include=Observation:encounter",
            f"Observation?patient={P}&_summary=count",
            f"Observation?patient={P}&shoe-size=42",
        ]
        bundle = bundle_of("batch", *({"request": {"method": "GET", "url": u}} for u in urls))
        response = client.post("/fhir", json=bundle, headers=his)
        paged, counted, warned = (e["resource"] for e in response.json()["entry"])
        modes = [e["search"]["mode"] for e in paged["entry"]]
        assert modes == ["match", "include"]
        assert paged["entry"][1]["resource"]["id"] == visit["resource"]["id"]
        following = next(link["url"] for link in paged["link"] if link["relation"] == "next")
        top = client.get(f"/fhir/{urls[0]}", headers=his).json()
        assert following == next(link["url"] for link in top["link"] if link["relation"] == "next")
        assert "_cursor=" in following
        assert len(client.get(following, headers=his).json()["entry"]) == 2  # match, include
        assert counted["total"] == 2
        assert warned["entry"][-1]["search"]["mode"] == "outcome"

    def test_a_patient_search_entry_asks_the_master_patient_index(
        self, client: TestClient, db: Session, his: dict[str, str], related: None
    ) -> None:
        person = db.get(Person, P)
        assert person is not None
        url = f"Patient?identifier={RESIDENT_ID_SYSTEM}|{person.id_number}"
        bundle = bundle_of("batch", {"request": {"method": "GET", "url": url}})
        response = client.post("/fhir", json=bundle, headers=his)
        entry = response.json()["entry"][0]
        assert entry["response"]["status"] == "200 OK", entry
        assert entry["resource"]["total"] == 1
        assert [e["resource"]["id"] for e in entry["resource"]["entry"]] == [P]

    def test_an_unknown_patient_fails_its_batch_entry_with_404(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bundle = bundle_of("batch", {"request": {"method": "GET", "url": "Patient/nobody"}})
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.json()["entry"][0]["response"]["status"] == "404"


def test_a_transaction_put_bringing_back_a_deleted_resource_answers_201(
    client: TestClient, his: dict[str, str], stored_observation: dict[str, Any]
) -> None:
    url = f"Observation/{stored_observation['id']}"
    assert client.delete(f"/fhir/{url}", headers=his).status_code == 204
    bundle = bundle_of(
        "transaction", {"resource": stored_observation, "request": {"method": "PUT", "url": url}}
    )
    response = client.post("/fhir", json=bundle, headers=his)
    assert response.status_code == 200, response.text
    entry = response.json()["entry"][0]["response"]
    assert (entry["status"], entry["location"]) == ("201 Created", f"{url}/_history/3")


@pytest.mark.usefixtures("related")
class TestConditionalDelete:
    """DELETE Type?criteria deletes the one match; a lab withdrawing a result knows it by
    its own number, not by the store's id."""

    def stored(self, client: TestClient, his: dict[str, str], identifier: str) -> str:
        response = client.post("/fhir/Observation", json=tagged(identifier), headers=his)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def test_the_one_match_is_deleted(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        gone, kept = self.stored(client, his, "d-1"), self.stored(client, his, "d-2")
        response = client.delete("/fhir/Observation?identifier=urn:test|d-1", headers=his)
        assert response.status_code == 204
        assert client.get(f"/fhir/Observation/{gone}", headers=his).status_code == 410
        assert client.get(f"/fhir/Observation/{kept}", headers=his).status_code == 200
        again = client.delete("/fhir/Observation?identifier=urn:test|d-1", headers=his)
        assert again.status_code == 204  # nothing matches any more: nothing to delete

    def test_several_matches_are_a_412_and_delete_nothing(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        self.stored(client, his, "d-3")
        self.stored(client, his, "d-3")
        response = client.delete("/fhir/Observation?identifier=urn:test|d-3", headers=his)
        assert response.status_code == 412
        assert response.json()["resourceType"] == "OperationOutcome"
        assert with_identifier(db, "d-3") == 2

    def test_criteria_are_required(self, client: TestClient, his: dict[str, str]) -> None:
        response = client.delete("/fhir/Observation", headers=his)
        assert response.status_code == 400
        assert "criteria" in response.json()["issue"][0]["diagnostics"]

    def test_in_a_transaction(self, client: TestClient, db: Session, his: dict[str, str]) -> None:
        self.stored(client, his, "d-4")
        bundle = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": "Observation?identifier=urn:test|d-4"}},
            {"resource": tagged("d-5"), "request": {"method": "POST", "url": "Observation"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        assert (with_identifier(db, "d-4"), with_identifier(db, "d-5")) == (0, 1)

    def test_touching_its_match_again_fails_the_transaction(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        match = self.stored(client, his, "d-6")
        amended = {**tagged("d-6"), "id": match, "status": "amended"}
        bundle = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": "Observation?identifier=urn:test|d-6"}},
            {"resource": amended, "request": {"method": "PUT", "url": f"Observation/{match}"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        assert client.get(f"/fhir/Observation/{match}", headers=his).json()["status"] == "final"


@pytest.mark.usefixtures("related")
class TestReferentialIntegrity:
    """A visit its results still point at is not deleted: they would point at nothing,
    and the timeline could no longer group them under it."""

    def visit_with_result(self, client: TestClient, his: dict[str, str]) -> tuple[str, str]:
        from records.factories import encounter, observation

        enc = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        obs = client.post("/fhir/Observation", json=observation(P, enc), headers=his)
        assert obs.status_code == 201, obs.text
        return f"Encounter/{enc}", f"Observation/{obs.json()['id']}"

    def test_deleting_a_referenced_resource_is_a_409_naming_what_refers_to_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        visit, result = self.visit_with_result(client, his)
        response = client.delete(f"/fhir/{visit}", headers=his)
        assert response.status_code == 409, response.text
        said = response.json()["issue"][0]
        assert said["code"] == "conflict"
        assert f"{visit} is still referred to by 1 Observation" in said["diagnostics"]
        assert client.get(f"/fhir/{visit}", headers=his).status_code == 200
        # Once its result is gone, the visit may go.
        assert client.delete(f"/fhir/{result}", headers=his).status_code == 204
        assert client.delete(f"/fhir/{visit}", headers=his).status_code == 204

    def test_a_transaction_may_delete_the_referrers_too_or_change_them(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        visit, result = self.visit_with_result(client, his)
        both = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": visit}},
            {"request": {"method": "DELETE", "url": result}},
        )
        assert client.post("/fhir", json=both, headers=his).status_code == 200
        visit, result = self.visit_with_result(client, his)
        detached = client.get(f"/fhir/{result}", headers=his).json()
        detached.pop("encounter")
        changed = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": visit}},
            {"resource": detached, "request": {"method": "PUT", "url": result}},
        )
        response = client.post("/fhir", json=changed, headers=his)
        assert response.status_code == 200, response.text
        assert client.get(f"/fhir/{visit}", headers=his).status_code == 410

    def test_a_transaction_leaving_a_referrer_fails_whole(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        visit, _ = self.visit_with_result(client, his)
        bundle = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": visit}},
            {"resource": tagged("ri-1"), "request": {"method": "POST", "url": "Observation"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 409, response.text
        assert "Bundle.entry[0]" in response.json()["issue"][0]["diagnostics"]
        assert client.get(f"/fhir/{visit}", headers=his).status_code == 200
        assert with_identifier(db, "ri-1") == 0

    def test_a_patch_pointing_at_what_the_transaction_deletes_fails_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        from records.factories import encounter

        _, result = self.visit_with_result(client, his)
        spare = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        patch = [{"op": "replace", "path": "/encounter/reference", "value": f"Encounter/{spare}"}]
        bundle = bundle_of(
            "transaction",
            {"request": {"method": "DELETE", "url": f"Encounter/{spare}"}},
            binary_patch(result, base64.b64encode(json.dumps(patch).encode()).decode()),
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 409, response.text
        assert client.get(f"/fhir/Encounter/{spare}", headers=his).status_code == 200

    def test_a_reference_from_another_patients_record_does_not_hold_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        """Writes do not check their targets: a system could point another record at this
        visit, and would then make it undeletable by whoever may write it."""
        from records.factories import encounter, observation

        other = "p00000006"
        assert client.post("/fhir/Encounter", json=encounter(other), headers=his).status_code == 201
        visit = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        planted = observation(other, visit)
        assert client.post("/fhir/Observation", json=planted, headers=his).status_code == 201
        assert client.delete(f"/fhir/Encounter/{visit}", headers=his).status_code == 204

    def test_a_resource_without_a_patient_is_held_by_any_record(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        """A Medication belongs to no one's record; a prescription naming it still breaks."""
        medication = {
            "resourceType": "Medication",
            "code": {"coding": [{"system": "urn:test:drug", "code": "metformin-0.5g"}]},
        }
        made = client.post("/fhir/Medication", json=medication, headers=his)
        assert made.status_code == 201, made.text
        drug = f"Medication/{made.json()['id']}"
        prescription = {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{P}"},
            "medicationReference": {"reference": drug},
        }
        assert (
            client.post("/fhir/MedicationRequest", json=prescription, headers=his).status_code
            == 201
        )
        response = client.delete(f"/fhir/{drug}", headers=his)
        assert response.status_code == 409, response.text
        said = response.json()["issue"][0]["diagnostics"]
        assert "1 resources" in said
        assert "MedicationRequest" not in said  # maybe another's record: no types told

    def test_deleting_in_a_transaction_what_is_already_deleted_still_succeeds(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        """A retried transaction: deleting nothing breaks nothing, whatever refers to it
        (here a result naming the withdrawn visit, stored before writes were refused a
        deleted target)."""
        from medalliance.kit.clock import utcnow
        from records.factories import observation, stored_unchecked

        visit, result = self.visit_with_result(client, his)
        assert client.delete(f"/fhir/{result}", headers=his).status_code == 204
        assert client.delete(f"/fhir/{visit}", headers=his).status_code == 204
        stored_unchecked(db, observation(P, visit.partition("/")[2]), utcnow())
        again = bundle_of("transaction", {"request": {"method": "DELETE", "url": visit}})
        response = client.post("/fhir", json=again, headers=his)
        assert response.status_code == 200, response.text

    def test_in_a_batch_only_that_entry_fails(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        visit, result = self.visit_with_result(client, his)
        bundle = bundle_of(
            "batch",
            {"request": {"method": "DELETE", "url": visit}},
            {"request": {"method": "GET", "url": result}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        assert statuses[0].startswith("409")
        assert statuses[1].startswith("200")


@pytest.mark.usefixtures("related")
class TestReferencesToADeletedResource:
    """A write may not add what a DELETE refuses to leave: a reference to a deleted
    resource of the record (409, naming the element and the reference)."""

    def deleted_visit(self, client: TestClient, his: dict[str, str]) -> str:
        from records.factories import encounter

        visit = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        assert client.delete(f"/fhir/Encounter/{visit}", headers=his).status_code == 204
        return str(visit)

    def test_a_create_referring_to_it_is_a_409_and_writes_nothing(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        visit = self.deleted_visit(client, his)
        late = {**tagged("late-1"), "encounter": {"reference": f"Encounter/{visit}"}}
        response = client.post("/fhir/Observation", json=late, headers=his)
        assert response.status_code == 409, response.text
        said = response.json()["issue"][0]
        assert said["code"] == "conflict"
        assert (
            f"Observation.encounter refers to Encounter/{visit}, which was deleted"
            in said["diagnostics"]
        )
        assert with_identifier(db, "late-1") == 0

    def test_an_update_adding_it_is_a_409_and_changes_nothing(
        self, client: TestClient, his: dict[str, str], stored_observation: dict[str, Any]
    ) -> None:
        visit = self.deleted_visit(client, his)
        changed = {**stored_observation, "encounter": {"reference": f"Encounter/{visit}"}}
        url = f"/fhir/Observation/{stored_observation['id']}"
        assert client.put(url, json=changed, headers=his).status_code == 409
        assert "encounter" not in client.get(url, headers=his).json()

    def test_a_reference_to_one_of_its_versions_is_written(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        visit = self.deleted_visit(client, his)
        late = {**tagged("late-2"), "encounter": {"reference": f"Encounter/{visit}/_history/1"}}
        response = client.post("/fhir/Observation", json=late, headers=his)
        assert response.status_code == 201, response.text

    def test_a_transaction_names_the_entry_referring_to_it(
        self, client: TestClient, db: Session, his: dict[str, str]
    ) -> None:
        visit = self.deleted_visit(client, his)
        late = {**tagged("late-3"), "encounter": {"reference": f"Encounter/{visit}"}}
        bundle = bundle_of(
            "transaction",
            {"resource": tagged("late-4"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": late, "request": {"method": "POST", "url": "Observation"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 409, response.text
        assert response.json()["issue"][0]["diagnostics"].startswith("Bundle.entry[1]: ")
        assert with_identifier(db, "late-3") + with_identifier(db, "late-4") == 0

    def test_a_transaction_bringing_it_back_may_refer_to_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        from records.factories import encounter

        visit = self.deleted_visit(client, his)
        back = {**encounter(P), "id": visit}
        late = {**tagged("late-5"), "encounter": {"reference": f"Encounter/{visit}"}}
        bundle = bundle_of(
            "transaction",
            {"resource": back, "request": {"method": "PUT", "url": f"Encounter/{visit}"}},
            {"resource": late, "request": {"method": "POST", "url": "Observation"}},
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text

    def test_one_of_another_patients_record_is_not_looked_at(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        """That record's DELETE does not count this reference; and the writer, who may
        not read that record, is not told what it holds."""
        from records.factories import encounter, observation

        other = "p00000006"
        assert client.post("/fhir/Encounter", json=encounter(other), headers=his).status_code == 201
        visit = self.deleted_visit(client, his)
        planted = observation(other, visit)
        assert client.post("/fhir/Observation", json=planted, headers=his).status_code == 201


def referring_by_extension(visit: str, identifier: str) -> dict[str, Any]:
    extension = {
        "url": "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare",
        "valueReference": {"reference": f"Encounter/{visit}"},
    }
    return {**tagged(identifier), "extension": [extension]}


def referring_from_contained(visit: str, identifier: str) -> dict[str, Any]:
    problem = {
        "resourceType": "Condition",
        "id": "problem",
        "code": {"text": "发热"},
        "subject": {"reference": f"Patient/{P}"},
        "encounter": {"reference": f"Encounter/{visit}"},
    }
    return {**tagged(identifier), "contained": [problem], "focus": [{"reference": "#problem"}]}


REFERRING_ELEMENT = {
    "referring_by_extension": "Observation.extension[0].valueReference",
    "referring_from_contained": "Observation.contained[0].encounter",
}


@pytest.mark.usefixtures("related")
@pytest.mark.parametrize("referring", [referring_by_extension, referring_from_contained])
class TestReferencesNoSearchParameterReads:
    """A reference in an extension or a contained resource is as much the record's as
    one a search parameter reads: it holds a DELETE of its target, and may not name a
    deleted one. It is indexed apart (``indexing.UNSEARCHED``) and never searched."""

    def test_it_holds_a_delete_of_its_target(
        self, client: TestClient, his: dict[str, str], referring: Any
    ) -> None:
        from records.factories import encounter

        visit = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        made = client.post("/fhir/Observation", json=referring(visit, "held-1"), headers=his)
        assert made.status_code == 201, made.text
        response = client.delete(f"/fhir/Encounter/{visit}", headers=his)
        assert response.status_code == 409, response.text
        assert "1 Observation" in response.json()["issue"][0]["diagnostics"]
        searched = client.get("/fhir/Observation", params={"encounter": visit}, headers=his)
        assert searched.status_code == 200, searched.text
        assert searched.json().get("entry", []) == []
        referrer = f"/fhir/Observation/{made.json()['id']}"
        assert client.delete(referrer, headers=his).status_code == 204
        assert client.delete(f"/fhir/Encounter/{visit}", headers=his).status_code == 204

    def test_it_may_not_name_a_deleted_target(
        self, client: TestClient, db: Session, his: dict[str, str], referring: Any
    ) -> None:
        from records.factories import encounter

        visit = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        assert client.delete(f"/fhir/Encounter/{visit}", headers=his).status_code == 204
        response = client.post("/fhir/Observation", json=referring(visit, "held-2"), headers=his)
        assert response.status_code == 409, response.text
        issue = response.json()["issue"][0]
        where = REFERRING_ELEMENT[referring.__name__]
        assert issue["diagnostics"].startswith(
            f"{where} refers to Encounter/{visit}, which was deleted"
        )
        assert issue["expression"] == [where]
        assert with_identifier(db, "held-2") == 0

    def test_the_element_named_is_the_one_naming_it_not_a_version_of_it(
        self, client: TestClient, his: dict[str, str], referring: Any
    ) -> None:
        from records.factories import encounter

        visit = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()["id"]
        assert client.delete(f"/fhir/Encounter/{visit}", headers=his).status_code == 204
        both = {
            **referring(visit, "held-3"),
            "encounter": {"reference": f"Encounter/{visit}/_history/1"},
        }
        response = client.post("/fhir/Observation", json=both, headers=his)
        assert response.status_code == 409, response.text
        assert response.json()["issue"][0]["expression"] == [REFERRING_ELEMENT[referring.__name__]]


@pytest.mark.usefixtures("related")
def test_free_text_in_a_reference_holds_nothing_and_is_stored(
    client: TestClient, db: Session, his: dict[str, str]
) -> None:
    """Text before a "/" that is no resource type names nothing stored; taken for a type
    it did not fit the index's type column: a 500 on PostgreSQL."""
    scanned = "检验科报告单据扫描件存档位置说明" * 5 + "/2026"
    extension = {"url": "urn:his:scan", "valueReference": {"reference": scanned}}
    made = client.post(
        "/fhir/Observation", json={**tagged("free-text"), "extension": [extension]}, headers=his
    )
    assert made.status_code == 201, made.text
    read = client.get(f"/fhir/Observation/{made.json()['id']}", headers=his).json()
    assert read["extension"] == [extension]


def test_a_stored_collection_holds_no_delete_of_what_its_entries_name(
    client: TestClient, his: dict[str, str]
) -> None:
    """A Bundle held as a resource refers among its own entries, or to its sender's server
    (fullUrl): a local Medication of the same id stays deletable."""
    medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
    local = client.post("/fhir/Medication", json=medication, headers=his).json()["id"]
    statement = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationReference": {"reference": f"Medication/{local}"},
        "subject": {"reference": "Patient/x"},
    }
    base = "http://his.example.org/fhir"
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"{base}/MedicationStatement/1", "resource": statement}],
    }
    stored = client.post("/fhir/Bundle", json=collection, headers=his)
    assert stored.status_code == 201, stored.text
    deleted = client.delete(f"/fhir/Medication/{local}", headers=his)
    assert deleted.status_code == 204, deleted.text


PATIENT_ENTRY = "urn:uuid:22222222-2222-4222-8222-222222222222"


def _document() -> dict[str, Any]:
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"text": "出院小结"},
        "date": "2026-11-01",
        "author": [{"display": "县医院"}],
        "title": "出院小结",
        "subject": {"reference": PATIENT_ENTRY},
    }
    return {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3201bd"},
        "timestamp": "2026-11-01T00:00:00Z",
        "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": composition},
            {"fullUrl": PATIENT_ENTRY, "resource": {"resourceType": "Patient"}},
        ],
    }


@pytest.mark.parametrize("sharing_a_full_url", [False, True])
def test_a_document_in_a_transaction_is_stored_as_sent(
    client: TestClient, his: dict[str, str], sharing_a_full_url: bool
) -> None:
    """Its references resolve among its own entries: the transaction neither refuses them
    (no entry of the transaction has that fullUrl) nor rewrites them (one has)."""
    entries = [{"resource": _document(), "request": {"method": "POST", "url": "Bundle"}}]
    if sharing_a_full_url:
        medication = {"resourceType": "Medication", "code": {"text": "阿司匹林肠溶片"}}
        request = {"method": "POST", "url": "Medication"}
        entries.append({"fullUrl": PATIENT_ENTRY, "resource": medication, "request": request})
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answered = client.post("/fhir", json=transaction, headers=his)
    assert answered.status_code == 200, answered.text
    location = answered.json()["entry"][0]["response"]["location"].split("/_history")[0]
    stored = client.get(f"/fhir/{location}", headers=his).json()
    assert stored["entry"] == _document()["entry"]


def test_a_resource_of_a_loaded_history_can_be_deleted_alone(
    client: TestClient, his: dict[str, str], member_bundle: dict[str, Any]
) -> None:
    """The bundle's Provenance names every resource it brought: a record about records,
    which must not make each of them undeletable."""
    response = client.post("/fhir", json=member_bundle, headers=his)
    assert response.status_code == 200, response.text
    observations = [
        e["response"]["location"].rpartition("/_history")[0]
        for e in response.json()["entry"]
        if e["response"].get("location", "").startswith("Observation/")
    ]
    assert observations
    deleted = client.delete(f"/fhir/{observations[0]}", headers=his)
    assert deleted.status_code == 204, deleted.text
