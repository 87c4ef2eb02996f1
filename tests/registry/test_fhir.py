"""FHIR R4 read and search of the registry: each parameter, paging, OperationOutcome errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import bearer
from medalliance.registry.fhir_map import SYSTEMS


@pytest.fixture
def auth(client: TestClient) -> dict[str, str]:
    return bearer(client, "doctor")


def _search(client: TestClient, auth: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/fhir/{path}", params=params, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle"
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


class TestOrganization:
    def test_read_maps_level_kind_identifier_and_parent(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        org = client.get("/fhir/Organization/township-01", headers=auth).json()
        assert org["partOf"] == {"reference": "Organization/county-hospital"}
        assert {"system": SYSTEMS["level"], "code": "primary"}.items() <= org["type"][0]["coding"][
            0
        ].items()
        assert org["identifier"] == [{"system": SYSTEMS["institution-code"], "value": "MA0005"}]

    def test_search_by_id(self, client: TestClient, auth: dict[str, str]) -> None:
        assert _ids(_search(client, auth, "Organization", _id="county-tcm")) == ["county-tcm"]

    def test_search_by_name_starts_with_and_contains(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        starts = _search(client, auth, "Organization", name="安平县中医")
        assert _ids(starts) == ["county-tcm"]
        assert _search(client, auth, "Organization", name="中医医院")["total"] == 0
        contains = _search(client, auth, "Organization", **{"name:contains": "中医医院"})
        assert _ids(contains) == ["county-tcm"]

    def test_search_by_level_type_with_and_without_system(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        assert _search(client, auth, "Organization", type="secondary")["total"] == 3
        qualified = _search(client, auth, "Organization", type=f"{SYSTEMS['level']}|tertiary")
        assert _ids(qualified) == ["city-hospital"]
        assert _ids(_search(client, auth, "Organization", type="tcm")) == ["county-tcm"]

    def test_type_from_a_foreign_system_matches_nothing(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        assert _search(client, auth, "Organization", type="http://other|primary")["total"] == 0

    def test_search_by_partof(self, client: TestClient, auth: dict[str, str]) -> None:
        villages = _search(client, auth, "Organization", partof="Organization/township-01")
        assert villages["total"] == 5
        assert all(i.startswith("township-01-village-") for i in _ids(villages))

    def test_search_by_identifier(self, client: TestClient, auth: dict[str, str]) -> None:
        found = _search(
            client, auth, "Organization", identifier=f"{SYSTEMS['institution-code']}|MA0002"
        )
        assert _ids(found) == ["county-hospital"]
        assert _ids(_search(client, auth, "Organization", identifier="MA0002")) == [
            "county-hospital"
        ]

    def test_unknown_parameters_are_ignored(self, client: TestClient, auth: dict[str, str]) -> None:
        plain = _search(client, auth, "Organization", _count=5)
        lenient = _search(client, auth, "Organization", _count=5, colour="blue")
        assert lenient["total"] == plain["total"] == 64


class TestPaging:
    def test_count_limits_and_next_link_returns_the_rest(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        first = _search(client, auth, "Organization", partof="township-02", _count=3)
        assert len(first["entry"]) == 3
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        rest = client.get(next_url, headers=auth).json()
        assert len(rest["entry"]) == 2
        assert not [link for link in rest["link"] if link["relation"] == "next"]
        assert set(_ids(first)) | set(_ids(rest)) == {
            f"township-02-village-{n}" for n in range(1, 6)
        }

    @pytest.mark.parametrize("count", ["-1", "abc", "1.5"])
    def test_bad_count_is_a_400_operation_outcome(
        self, client: TestClient, auth: dict[str, str], count: str
    ) -> None:
        response = client.get("/fhir/Practitioner", params={"_count": count}, headers=auth)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.json()["issue"][0]["expression"] == ["_count"]

    def test_count_zero_gives_only_the_total(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        bundle = _search(client, auth, "Organization", _count=0)
        assert bundle["total"] == 64
        assert not bundle["entry"]
        assert [link["relation"] for link in bundle["link"]] == ["self"]


class TestReadErrors:
    @pytest.mark.parametrize(
        "path",
        [
            "Organization/nope",
            "Location/nope",
            "HealthcareService/nope",
            "HealthcareService/county-hospital.department.99",
            "Practitioner/nope",
            "PractitionerRole/nope",
        ],
    )
    def test_unknown_id_is_a_404_operation_outcome(
        self, client: TestClient, auth: dict[str, str], path: str
    ) -> None:
        response = client.get(f"/fhir/{path}", headers=auth)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert response.json()["issue"][0]["code"] == "not-found"

    def test_anonymous_search_is_a_401_operation_outcome(self, client: TestClient) -> None:
        response = client.get("/fhir/Organization")
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"


class TestLocation:
    def test_location_has_position_and_managing_organization(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        found = _search(client, auth, "Location", organization="Organization/county-hospital")
        (location,) = [e["resource"] for e in found["entry"]]
        assert location["position"] == {"latitude": 31.05, "longitude": 104.62}
        assert location["managingOrganization"] == {"reference": "Organization/county-hospital"}

    def test_search_location_by_name(self, client: TestClient, auth: dict[str, str]) -> None:
        assert _ids(_search(client, auth, "Location", name="锦江市")) == ["city-hospital"]


class TestHealthcareService:
    def test_emergency_centres_of_an_organization(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        found = _search(
            client,
            auth,
            "HealthcareService",
            organization="county-hospital",
            **{"service-category": "emergency-centre"},
        )
        assert _ids(found) == [
            "county-hospital.emergency-centre.chest-pain",
            "county-hospital.emergency-centre.stroke",
            "county-hospital.emergency-centre.trauma",
        ]

    def test_regional_imaging_centres_by_type(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        found = _search(client, auth, "HealthcareService", **{"service-type": "imaging"})
        assert {e["resource"]["providedBy"]["reference"] for e in found["entry"]} == {
            "Organization/city-hospital",
            "Organization/county-hospital",
        }

    def test_department_read_round_trips_its_id(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        service = client.get(
            "/fhir/HealthcareService/county-hospital.department.03.04", headers=auth
        ).json()
        assert service["name"] == "心血管内科"
        assert service["characteristic"][0]["coding"][0]["code"] == "brand"

    def test_paging_over_services(self, client: TestClient, auth: dict[str, str]) -> None:
        first = _search(
            client, auth, "HealthcareService", organization="county-hospital", _count=10
        )
        total = first["total"]
        assert total == 11 + 3 + 5  # departments, emergency centres, regional centres
        rest = client.get(
            next(link["url"] for link in first["link"] if link["relation"] == "next"), headers=auth
        ).json()
        assert len(first["entry"]) + len(rest["entry"]) == total


class TestPractitioners:
    def test_search_practitioner_by_identifier(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        found = _search(
            client, auth, "Practitioner", identifier=f"{SYSTEMS['licence']}|DEMO-doctor"
        )
        assert _ids(found) == ["pr-demo-doctor"]
        assert found["entry"][0]["resource"]["name"][0]["text"] == "李建国"

    def test_search_practitioner_by_name(self, client: TestClient, auth: dict[str, str]) -> None:
        assert "pr-demo-doctor" in _ids(_search(client, auth, "Practitioner", name="李建国"))

    def test_roles_by_practitioner_and_organization(
        self, client: TestClient, auth: dict[str, str]
    ) -> None:
        at_township = _search(client, auth, "PractitionerRole", organization="township-01")
        assert at_township["total"] > 0
        role = at_township["entry"][0]["resource"]
        by_person = _search(
            client, auth, "PractitionerRole", practitioner=role["practitioner"]["reference"]
        )
        assert role["id"] in _ids(by_person)

    def test_roles_by_specialty(self, client: TestClient, auth: dict[str, str]) -> None:
        found = _search(client, auth, "PractitionerRole", specialty="03.04", _count=200)
        assert found["total"] > 0
        codes = {e["resource"]["specialty"][0]["coding"][0]["code"] for e in found["entry"]}
        assert codes == {"03.04"}
