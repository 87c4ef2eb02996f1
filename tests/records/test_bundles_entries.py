"""Batch and transaction entries as R4 (bundle.html, http.html) defines them: what a
response entry holds, entries that depend on each other, entries of odd shape, and reads
of every type the server serves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from helpers import system_bearer
from medalliance.patients.enums import RESIDENT_ID_SYSTEM
from medalliance.patients.models import Person
from records.factories import COUNTY, encounter, observation

P = "p00000005"


def bundle_of(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def post(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    return entry if full_url is None else {"fullUrl": full_url, **entry}


def strictly_r4(body: dict[str, Any]) -> dict[str, Any]:
    """The response as a strict client reads it: every element must be one R4 defines."""
    Bundle.model_validate(body)
    return body


@pytest.fixture
def his(client: TestClient) -> dict[str, str]:
    return system_bearer(client)


@pytest.fixture
def visit(client: TestClient, his: dict[str, str]) -> str:
    """The member's system records an encounter of P: it may then write P's record."""
    response = client.post("/fhir/Encounter", json=encounter(P), headers=his)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def stored(client: TestClient, his: dict[str, str], visit: str) -> str:
    response = client.post("/fhir/Observation", json=observation(P, visit), headers=his)
    assert response.status_code == 201, response.text
    return f"Observation/{response.json()['id']}"


class TestResponseEntries:
    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_what_a_get_returns_is_the_entrys_resource_and_strict_clients_accept_it(
        self, client: TestClient, db: Session, his: dict[str, str], stored: str, kind: str
    ) -> None:
        person = db.get(Person, P)
        assert person is not None
        reads = [
            stored,
            f"Observation?patient={P}",
            f"Patient/{P}",
            f"Patient?identifier={RESIDENT_ID_SYSTEM}|{person.id_number}",
            f"Organization/{COUNTY}",
        ]
        bundle = bundle_of(kind, post(observation(P)), *(get(u) for u in reads))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        entries = strictly_r4(response.json())["entry"]
        assert [e["response"]["status"][:3] for e in entries] == ["201"] + ["200"] * len(reads)
        assert "resource" not in entries[0]  # a write answers where it wrote, not what
        answered = [e["resource"] for e in entries[1:]]
        assert [r["resourceType"] for r in answered] == [
            "Observation",
            "Bundle",
            "Patient",
            "Bundle",
            "Organization",
        ]
        assert answered[0]["id"] == stored.partition("/")[2]
        assert entries[1]["response"]["etag"] == 'W/"1"'
        assert stored.partition("/")[2] in {e["resource"]["id"] for e in answered[1]["entry"]}
        assert [e["resource"]["id"] for e in answered[3]["entry"]] == [P]

    def test_a_failed_batch_entry_answers_its_outcome_and_strict_clients_accept_it(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bundle = bundle_of("batch", get("Observation/nothing-here"), get(f"Patient/{P}"))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        failed, read = strictly_r4(response.json())["entry"]
        assert "resource" not in failed
        assert failed["response"]["status"] == "404"
        assert failed["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert read["resource"]["id"] == P


class TestConditionalReads:
    """R4 Bundle.entry.request.ifNoneMatch and ifModifiedSince: the GET's headers."""

    CONDITIONS = (
        ("ifNoneMatch", "If-None-Match", 'W/"1"'),
        ("ifNoneMatch", "If-None-Match", 'W/"7"'),
        ("ifModifiedSince", "If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ("ifModifiedSince", "If-Modified-Since", "Thu, 01 Jan 2004 00:00:00 GMT"),
    )

    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_a_read_the_clients_copy_answers_is_a_304_entry_as_directly(
        self, client: TestClient, his: dict[str, str], stored: str, kind: str
    ) -> None:
        entries = [
            {"request": {"method": "GET", "url": stored, element: value}}
            for element, _, value in self.CONDITIONS
        ]
        response = client.post("/fhir", json=bundle_of(kind, *entries), headers=his)
        assert response.status_code == 200, response.text
        answered = strictly_r4(response.json())["entry"]
        assert [e["response"]["status"] for e in answered] == [
            "304 Not Modified",
            "200 OK",
            "304 Not Modified",
            "200 OK",
        ]
        assert "resource" not in answered[0]
        assert answered[0]["response"]["etag"] == 'W/"1"'
        assert answered[1]["resource"]["id"] == stored.partition("/")[2]
        for (_, header, value), entry in zip(self.CONDITIONS, answered, strict=True):
            direct = client.get(f"/fhir/{stored}", headers={**his, header: value})
            assert entry["response"]["status"].startswith(str(direct.status_code)), value


class TestEntriesOfWhatIsNotStored:
    """A write of a type no record holds here (an operation's Parameters; a Patient, which
    the MPI holds) is the 405 of the same request alone."""

    ENTRIES = (
        {
            "resource": {"resourceType": "Parameters"},
            "request": {"method": "POST", "url": "Parameters"},
        },
        {"request": {"method": "DELETE", "url": f"Patient/{P}"}},
    )

    @pytest.mark.parametrize("entry", ENTRIES)
    def test_in_a_transaction_it_is_a_422_not_supported_naming_it_not_a_405(
        self, client: TestClient, his: dict[str, str], entry: dict[str, Any]
    ) -> None:
        response = client.post("/fhir", json=bundle_of("transaction", entry), headers=his)
        assert response.status_code == 422, response.text
        assert "allow" not in response.headers  # POST /fhir is allowed
        issue = response.json()["issue"][0]
        assert (issue["code"], issue["expression"]) == ("not-supported", ["Bundle.entry[0]"])
        assert issue["diagnostics"].startswith("Bundle.entry[0]: ")

    def test_in_a_batch_it_is_the_entrys_own_405(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        response = client.post("/fhir", json=bundle_of("batch", *self.ENTRIES), headers=his)
        assert response.status_code == 200, response.text
        for entry in response.json()["entry"]:
            assert entry["response"]["status"] == "405"
            assert outcome_of(entry)["code"] == "not-supported"


def stored_observations(client: TestClient, his: dict[str, str]) -> set[str]:
    found = client.get(f"/fhir/Observation?patient={P}&_count=100", headers=his).json()
    return {e["resource"]["id"] for e in found.get("entry", [])}


def outcome_of(entry: dict[str, Any]) -> dict[str, Any]:
    issue: dict[str, Any] = entry["response"]["outcome"]["issue"][0]
    return issue


@pytest.mark.usefixtures("visit")
class TestIndependentBatchEntries:
    @pytest.mark.parametrize(
        "full_url",
        ["urn:uuid:5b1e0d3c-0000-4000-8000-000000000001", "http://testserver/fhir/Encounter/e1"],
    )
    def test_an_entry_referring_to_another_fails_alone(
        self, client: TestClient, his: dict[str, str], full_url: str
    ) -> None:
        before = stored_observations(client, his)
        dependent = {**observation(P), "encounter": {"reference": full_url}}
        bundle = bundle_of(
            "batch", post(encounter(P), full_url), post(dependent), post(observation(P))
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        made, refused, independent = response.json()["entry"]
        assert made["response"]["status"].startswith("201")
        assert refused["response"]["status"] == "422"
        issue = outcome_of(refused)
        assert issue["expression"] == ["Bundle.entry[1].resource.encounter.reference"]
        assert full_url in issue["diagnostics"]
        assert "Bundle.entry[0]" in issue["diagnostics"]
        assert independent["response"]["status"].startswith("201")
        assert len(stored_observations(client, his) - before) == 1

    @pytest.mark.parametrize("reference", ["urn:uuid:5b1e0d3c-0000-4000-8000-0000000000ff"])
    def test_a_bundle_local_reference_to_no_entry_fails_its_entry(
        self, client: TestClient, his: dict[str, str], reference: str
    ) -> None:
        dependent = {**observation(P), "hasMember": [{"reference": reference}]}
        bundle = bundle_of("batch", post(dependent))
        entry = client.post("/fhir", json=bundle, headers=his).json()["entry"][0]
        assert entry["response"]["status"] == "422"
        assert outcome_of(entry)["expression"] == [
            "Bundle.entry[0].resource.hasMember[0].reference"
        ]


@pytest.mark.usefixtures("visit")
class TestBundleLocalReferencesOutsideBundles:
    @pytest.mark.parametrize(
        "reference", ["urn:uuid:5b1e0d3c-0000-4000-8000-000000000002", "urn:oid:1.2.3"]
    )
    def test_a_create_naming_a_bundle_entry_is_refused(
        self, client: TestClient, his: dict[str, str], reference: str
    ) -> None:
        before = stored_observations(client, his)
        dependent = {**observation(P), "encounter": {"reference": reference}}
        response = client.post("/fhir/Observation", json=dependent, headers=his)
        assert response.status_code == 422, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["Observation.encounter.reference"]
        assert reference in issue["diagnostics"]
        assert stored_observations(client, his) == before

    def test_an_update_naming_a_bundle_entry_is_refused(
        self, client: TestClient, his: dict[str, str], stored: str
    ) -> None:
        current = client.get(f"/fhir/{stored}", headers=his).json()
        current["encounter"] = {"reference": "urn:uuid:5b1e0d3c-0000-4000-8000-000000000003"}
        response = client.put(f"/fhir/{stored}", json=current, headers=his)
        assert response.status_code == 422, response.text
        assert client.get(f"/fhir/{stored}", headers=his).json()["meta"]["versionId"] == "1"

    def test_a_document_bundle_keeps_the_references_among_its_own_entries(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        composition_url = "urn:uuid:5b1e0d3c-0000-4000-8000-000000000004"
        patient_url = "urn:uuid:5b1e0d3c-0000-4000-8000-000000000005"
        document = {
            "resourceType": "Bundle",
            "type": "document",
            "identifier": {"system": "urn:test", "value": "doc-1"},
            "timestamp": "2026-10-01T08:00:00Z",
            "entry": [
                {
                    "fullUrl": composition_url,
                    "resource": {
                        "resourceType": "Composition",
                        "status": "final",
                        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
                        "subject": {"reference": patient_url},
                        "date": "2026-10-01T08:00:00Z",
                        "author": [{"display": "county hospital"}],
                        "title": "Consultation note",
                    },
                },
                {"fullUrl": patient_url, "resource": {"resourceType": "Patient"}},
            ],
        }
        response = client.post("/fhir/Bundle", json=document, headers=his)
        assert response.status_code == 201, response.text


def malformed_entries() -> list[Any]:
    """(entry, the element its 400 names, relative to ``Bundle.entry[i]``)."""
    observed = observation(P)
    return [
        pytest.param(
            {
                "resource": observed,
                "request": {"method": "POST", "url": "Observation", "ifNoneExist": 5},
            },
            ".request.ifNoneExist",
            id="ifNoneExist",
        ),
        pytest.param(
            {
                "resource": {**observed, "id": "x"},
                "request": {"method": "PUT", "url": "Observation/x", "ifMatch": ['W/"1"']},
            },
            ".request.ifMatch",
            id="ifMatch",
        ),
        pytest.param(
            {"request": {"method": "GET", "url": f"Patient/{P}", "ifNoneMatch": {"W": 1}}},
            ".request.ifNoneMatch",
            id="ifNoneMatch",
        ),
        pytest.param(
            {"request": {"method": "GET", "url": f"Patient/{P}", "ifModifiedSince": 20260101}},
            ".request.ifModifiedSince",
            id="ifModifiedSince",
        ),
        pytest.param(
            {"request": {"method": "GET", "url": ["Patient", P]}}, ".request.url", id="url"
        ),
        pytest.param(
            {"request": {"method": ["GET"], "url": f"Patient/{P}"}}, ".request.method", id="method"
        ),
        pytest.param(
            {
                "fullUrl": {"uuid": "5b1e0d3c"},
                "resource": observed,
                "request": {"method": "POST", "url": "Observation"},
            },
            ".fullUrl",
            id="fullUrl",
        ),
        pytest.param(
            {"resource": "W3sib3AiOiAicmVtb3ZlIn1d", "request": {"method": "PATCH", "url": "x"}},
            ".resource",
            id="patch-resource",
        ),
        pytest.param(
            {"request": {"method": "PATCH", "url": "Observation/x"}}, ".resource", id="no-patch"
        ),
        pytest.param("GET Patient", "", id="entry"),
    ]


@pytest.mark.usefixtures("visit")
class TestMalformedEntries:
    @pytest.mark.parametrize(("entry", "element"), malformed_entries())
    def test_a_malformed_entry_fails_the_transaction_with_a_400_naming_it(
        self, client: TestClient, his: dict[str, str], entry: Any, element: str
    ) -> None:
        before = stored_observations(client, his)
        bundle = bundle_of("transaction", post(observation(P)), entry)
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == [f"Bundle.entry[1]{element}"], issue
        assert stored_observations(client, his) == before

    @pytest.mark.parametrize(("entry", "element"), malformed_entries())
    def test_a_malformed_entry_fails_alone_in_a_batch(
        self, client: TestClient, his: dict[str, str], entry: Any, element: str
    ) -> None:
        bundle = bundle_of("batch", entry, post(observation(P)))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        failed, written = strictly_r4(response.json())["entry"]
        assert failed["response"]["status"] == "400"
        assert outcome_of(failed)["expression"] == [f"Bundle.entry[0]{element}"]
        assert written["response"]["status"].startswith("201")


class TestUnexpectedErrors:
    @pytest.fixture
    def broken_reads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from medalliance.records import service

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug with a secret in it")

        monkeypatch.setattr(service, "read", broken)

    @pytest.mark.usefixtures("visit", "broken_reads")
    def test_an_entry_failing_unexpectedly_is_a_500_of_that_entry_alone_in_a_batch(
        self, client: TestClient, his: dict[str, str], stored: str
    ) -> None:
        from structlog.testing import capture_logs

        bundle = bundle_of("batch", get(stored), post(observation(P)))
        with capture_logs() as logs:
            response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        failed, written = strictly_r4(response.json())["entry"]
        assert failed["response"]["status"] == "500"
        issue = outcome_of(failed)
        assert issue["code"] == "exception"
        assert "secret" not in issue["diagnostics"]
        assert written["response"]["status"].startswith("201")
        assert [e["entry"] for e in logs if e["event"] == "batch_entry_failed"] == [
            "Bundle.entry[0]"
        ]

    @pytest.mark.usefixtures("visit", "broken_reads")
    def test_an_entry_failing_unexpectedly_fails_the_whole_transaction(
        self, client: TestClient, his: dict[str, str], stored: str
    ) -> None:
        before = stored_observations(client, his)
        bundle = bundle_of("transaction", post(observation(P)), get(stored))
        failed = client.post("/fhir", json=bundle, headers=his)
        assert failed.status_code == 500
        assert stored_observations(client, his) == before


def served_searches(db: Session) -> list[str]:
    """A search of each type that a router other than the shared record's serves."""
    from sqlalchemy import select

    from medalliance.registry.models import Practitioner

    practitioner = db.scalars(select(Practitioner.id).order_by(Practitioner.id).limit(1)).one()
    return [
        f"Organization?_id={COUNTY}",
        f"Location?organization={COUNTY}",
        "HealthcareService?_count=3",
        f"Practitioner?_id={practitioner}",
        f"PractitionerRole?practitioner={practitioner}",
        "ServiceRequest?_count=2",
        "Task?_count=2&_include=Task:focus",
        "Slot?_count=2",
        "Appointment?_count=2",
    ]


class TestReadEntriesOfEveryType:
    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_a_search_of_any_served_type_answers_as_the_same_get(
        self, client: TestClient, db: Session, his: dict[str, str], kind: str
    ) -> None:
        urls = served_searches(db)
        response = client.post("/fhir", json=bundle_of(kind, *map(get, urls)), headers=his)
        assert response.status_code == 200, response.text
        entries = strictly_r4(response.json())["entry"]
        for url, entry in zip(urls, entries, strict=True):
            assert entry["response"]["status"] == "200 OK", (url, entry)
            direct = client.get(f"/fhir/{url}", headers=his)
            assert direct.status_code == 200, direct.text
            assert entry["resource"] == direct.json(), url
        assert any(e["resource"]["entry"] for e in entries), "searches that find nothing"

    @pytest.mark.usefixtures("visit")
    @pytest.mark.parametrize(
        ("url", "status"), [(f"AuditEvent?patient={P}", 200), ("AuditEvent", 403)]
    )
    def test_an_audit_search_answers_as_the_same_get(
        self, client: TestClient, his: dict[str, str], url: str, status: int
    ) -> None:
        assert client.get(f"/fhir/{url}", headers=his).status_code == status
        response = client.post("/fhir", json=bundle_of("batch", get(url)), headers=his)
        answered = strictly_r4(response.json())["entry"][0]
        assert answered["response"]["status"][:3] == str(status), answered
        if status == 200:
            assert answered["resource"]["entry"][0]["resource"]["resourceType"] == "AuditEvent"

    def test_a_role_the_route_refuses_is_refused_in_a_bundle_and_audited(
        self, client: TestClient, db: Session
    ) -> None:
        """A reader may read the shared record, not the referral workflow: the Task
        route's policy holds for a bundle's read as for the direct one."""
        from sqlalchemy import select

        from helpers import bearer
        from medalliance.audit.models import AuditEvent
        from medalliance.referrals.models import Referral

        reader = bearer(client, "reader")
        referral = db.scalars(
            select(Referral.id).where(Referral.to_institution_id == COUNTY).limit(1)
        ).one()
        for url in (f"Task/{referral}", "Task?_count=1"):
            assert client.get(f"/fhir/{url}", headers=reader).status_code == 403
            answered = client.post("/fhir", json=bundle_of("batch", get(url)), headers=reader)
            assert answered.json()["entry"][0]["response"]["status"] == "403", answered.text
        refused = db.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == "access.denied", AuditEvent.username == "reader"
            )
        ).all()
        assert [d["entry"] for d in refused] == [None, "Bundle.entry[0]"] * 2

    @pytest.mark.usefixtures("visit")
    def test_a_transactions_read_sees_what_it_wrote(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        tagged = {**observation(P), "identifier": [{"system": "urn:test", "value": "seen-1"}]}
        bundle = bundle_of(
            "transaction", get("Observation?identifier=urn:test|seen-1"), post(tagged)
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        found = response.json()["entry"][0]["resource"]
        assert len(found["entry"]) == 1

    def test_an_address_no_route_serves_is_a_404(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        bundle = bundle_of("batch", get("Observation/a/b/c/d/e"))
        entry = client.post("/fhir", json=bundle, headers=his).json()["entry"][0]
        assert entry["response"]["status"] == "404"


def test_every_get_route_under_fhir_can_answer_a_bundle_entry() -> None:
    """Each is resolved once, at the first GET entry: one the bundle cannot call (a
    parameter or dependency it does not provide) would fail every GET entry."""
    from fastapi.routing import APIRoute

    from medalliance.records import bundle_reads
    from medalliance.routes import FHIR_ROUTERS

    gets = [
        route
        for router in FHIR_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    ]
    assert len(bundle_reads._routes()) == len(gets) > 20


@pytest.mark.usefixtures("visit")
class TestReferencesAgainstRestfulFullUrls:
    """R4 bundle.html: a relative reference in an entry whose fullUrl is [root]Type/id
    means [root] + the reference, which may be another entry's fullUrl."""

    @pytest.mark.parametrize("root", ["http://testserver/fhir/", "https://his.example.org/r4/"])
    def test_a_transaction_rewrites_it_to_the_id_the_entry_gets(
        self, client: TestClient, his: dict[str, str], root: str
    ) -> None:
        result = {**observation(P), "encounter": {"reference": "Encounter/tmp1"}}
        bundle = bundle_of(
            "transaction",
            post(result, f"{root}Observation/tmp2"),
            post(encounter(P), f"{root}Encounter/tmp1"),
        )
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        written, visited = (e["response"]["location"] for e in response.json()["entry"])
        assert not visited.startswith("Encounter/tmp1/")  # POST: the server's id
        stored = client.get(f"/fhir/{written.partition('/_history')[0]}", headers=his).json()
        assert stored["encounter"]["reference"] == visited.partition("/_history")[0]

    def test_a_reference_to_no_entry_is_kept(
        self, client: TestClient, his: dict[str, str], visit: str
    ) -> None:
        result = {**observation(P), "encounter": {"reference": f"Encounter/{visit}"}}
        bundle = bundle_of("transaction", post(result, "http://testserver/fhir/Observation/t3"))
        response = client.post("/fhir", json=bundle, headers=his)
        assert response.status_code == 200, response.text
        written = response.json()["entry"][0]["response"]["location"].partition("/_history")[0]
        stored = client.get(f"/fhir/{written}", headers=his).json()
        assert stored["encounter"]["reference"] == f"Encounter/{visit}"

    def test_in_a_batch_it_is_a_dependency_that_fails_its_entry(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        root = "http://testserver/fhir/"
        result = {**observation(P), "encounter": {"reference": "Encounter/tmp1"}}
        bundle = bundle_of(
            "batch",
            post(encounter(P), f"{root}Encounter/tmp1"),
            post(result, f"{root}Observation/tmp2"),
        )
        response = client.post("/fhir", json=bundle, headers=his)
        made, refused = response.json()["entry"]
        assert made["response"]["status"].startswith("201")
        assert refused["response"]["status"] == "422"
        assert outcome_of(refused)["expression"] == ["Bundle.entry[1].resource.encounter.reference"]


@pytest.mark.usefixtures("visit")
class TestVersionsHistoryAndOperations:
    @pytest.mark.parametrize("kind", ["transaction", "batch"])
    def test_vread_history_and_everything_answer_as_the_same_gets(
        self, client: TestClient, his: dict[str, str], stored: str, kind: str
    ) -> None:
        amended = {**client.get(f"/fhir/{stored}", headers=his).json(), "status": "amended"}
        assert client.put(f"/fhir/{stored}", json=amended, headers=his).status_code == 200
        urls = [
            f"{stored}/_history/1",
            f"{stored}/_history",
            f"Patient/{P}/$everything?_count=5",
        ]
        response = client.post("/fhir", json=bundle_of(kind, *map(get, urls)), headers=his)
        assert response.status_code == 200, response.text
        version, history, everything = strictly_r4(response.json())["entry"]
        assert version["response"] == {
            "status": "200 OK",
            "etag": 'W/"1"',
            "lastModified": version["resource"]["meta"]["lastUpdated"],
        }
        assert version["resource"]["status"] == "final"
        assert history["resource"]["type"] == "history"
        assert [e["response"]["etag"] for e in history["resource"]["entry"]] == ['W/"2"', 'W/"1"']
        assert everything["resource"]["type"] == "searchset"
        for url, entry in zip(urls, (version, history, everything), strict=True):
            assert entry["resource"] == client.get(f"/fhir/{url}", headers=his).json(), url

    def test_a_version_that_is_not_a_number_fails_its_entry_with_a_400(
        self, client: TestClient, his: dict[str, str], stored: str
    ) -> None:
        bundle = bundle_of("batch", get(f"{stored}/_history/first"))
        entry = client.post("/fhir", json=bundle, headers=his).json()["entry"][0]
        assert entry["response"]["status"] == "400"
        assert client.get(f"/fhir/{stored}/_history/first", headers=his).status_code == 400
