"""Numbers from a URL that reach SQL (offsets, ids, counts) are bounded: past
PostgreSQL's integers, or in digits ``int()`` cannot read (``²``), they are the client's
4xx naming the parameter, never a server error."""

from __future__ import annotations

from fastapi.testclient import TestClient

from helpers import bearer, page_login, system_bearer

HUGE = "99999999999999999999"


def test_a_huge_api_offset_is_a_422_naming_offset(client: TestClient) -> None:
    headers = bearer(client, "admin")
    for url in (
        f"/api/registry/institutions?offset={HUGE}",
        f"/api/registry/practitioner-roles?offset={HUGE}",
        f"/api/patients/reviews?offset={HUGE}",
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["loc"] == ["query", "offset"]


def test_a_huge_fhir_offset_or_a_non_ascii_digit_is_a_400(client: TestClient) -> None:
    headers = system_bearer(client)
    for query, name in ((f"_offset={HUGE}", "_offset"), ("_count=²", "_count")):
        for kind in ("Organization", "Practitioner", "Patient"):
            response = client.get(f"/fhir/{kind}?{query}", headers=headers)
            assert response.status_code == 400, (kind, query, response.text)
            assert response.json()["issue"][0]["expression"] == [name]


def test_a_review_id_past_the_integers_is_not_found(client: TestClient) -> None:
    response = client.post(
        f"/api/patients/reviews/{2**63}/decision",
        json={"decision": "link", "reason": "same phone at home visit"},
        headers=bearer(client, "admin"),
    )
    assert response.status_code == 404
    assert str(2**63) in response.json()["detail"]


def test_a_page_offset_past_the_integers_is_an_error_page(client: TestClient) -> None:
    page_login(client, "admin")
    for url in (f"/patients?offset={HUGE}", f"/registry?offset={HUGE}"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "offset" in response.text
    assert client.get("/patients?offset=-5").status_code == 200  # still read as 0
