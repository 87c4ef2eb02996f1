"""Bad input gets a clear 4xx, in the format of the part of the app that was called."""

from __future__ import annotations

import itertools

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from helpers import bearer, csrf_from, page_login, system_bearer
from medalliance.app import _JSON_NUL, _carried
from medalliance.auth.policy import public
from medalliance.config import get_settings
from medalliance.kit.http import TransactionalRoute
from medalliance.registry.models import Consortium


class _Payload(BaseModel):
    name: str
    beds: int


def _add_json_route(app: FastAPI) -> None:
    router = APIRouter(route_class=TransactionalRoute)

    @router.post("/api/echo", dependencies=[public()])
    def echo(payload: _Payload) -> _Payload:
        return payload

    app.include_router(router)


class TestApiErrors:
    def test_malformed_json_is_a_422_problem_naming_the_cause(
        self, app: FastAPI, client: TestClient
    ) -> None:
        _add_json_route(app)
        response = client.post(
            "/api/echo",
            content=b'{"name": "x", beds: }',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "JSON" in response.json()["detail"]

    def test_wrong_field_type_names_the_field(self, app: FastAPI, client: TestClient) -> None:
        _add_json_route(app)
        response = client.post("/api/echo", json={"name": "x", "beds": "many"})
        assert response.status_code == 422
        assert "body.beds" in response.json()["detail"]

    def test_oversized_body_is_refused_before_it_is_read(self, client: TestClient) -> None:
        limit = get_settings().max_body_bytes
        response = client.post(
            "/api/auth/token",
            content=b"x" * (limit + 1),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
        assert str(limit) in response.json()["detail"]

    def test_an_oversized_fhir_body_is_an_operation_outcome(self, client: TestClient) -> None:
        limit = get_settings().max_body_bytes
        chunks = (b"x" * (limit // 2 + 1) for _ in range(2))  # sent without Content-Length
        for body in (b"x" * (limit + 1), chunks):
            response = client.post(
                "/fhir/Observation",
                content=body,
                headers={**system_bearer(client), "Content-Type": "application/fhir+json"},
            )
            assert response.status_code == 413
            assert response.headers["content-type"].startswith("application/fhir+json")
            issue = response.json()["issue"][0]
            assert (issue["code"], issue["diagnostics"]) == (
                "too-costly",
                f"request body exceeds {limit} bytes",
            )

    def test_unknown_api_path_is_a_problem_not_a_page(self, client: TestClient) -> None:
        response = client.get("/api/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


class TestPageErrors:
    def test_forbidden_page_shows_the_message_in_place(self, client: TestClient) -> None:
        page_login(client, "doctor")
        response = client.get("/audit")
        assert response.status_code == 403
        assert 'data-testid="error-message"' in response.text

    def test_anonymous_page_visit_goes_to_login_and_comes_back(self, client: TestClient) -> None:
        response = client.get("/audit", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/audit"


def _failing(*args: object, **kwargs: object) -> object:
    raise RuntimeError("secret-detail of the failure")


class TestUnexpectedErrors:
    """A failure nobody expected is a 500 in the caller's format; its detail is logged, never
    sent (the client would learn about the code or the data)."""

    @pytest.mark.parametrize(
        ("name", "url"),
        [
            ("search", "/fhir/Observation?code=x"),  # a FastAPI route
            ("read", "/fhir/Observation/abc"),  # a direct route (kit.direct)
        ],
    )
    def test_a_fhir_failure_is_a_500_outcome_that_tells_nothing(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch, name: str, url: str
    ) -> None:
        from medalliance.records import fhir

        monkeypatch.setattr(fhir.service, name, _failing)
        with TestClient(app, raise_server_exceptions=False) as client, capture_logs() as logs:
            response = client.get(url, headers=system_bearer(client))
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/fhir+json")
        issue = response.json()["issue"][0]
        assert (issue["severity"], issue["code"]) == ("error", "exception")
        assert "secret" not in response.text
        assert "RuntimeError" not in response.text
        logged = [e for e in logs if e["event"] == "unhandled_exception"]
        assert [e["path"] for e in logged] == [url.split("?")[0]]
        assert isinstance(logged[0]["exc_info"], RuntimeError)

    def test_a_failure_is_logged_once_and_not_raised_on_to_the_server(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Raised on after the 500, the server (uvicorn) would log the traceback again: a
        test client that raises what reaches it sees what the server would."""
        from medalliance.records import fhir

        monkeypatch.setattr(fhir.service, "search", _failing)
        with TestClient(app, raise_server_exceptions=True) as client, capture_logs() as logs:
            response = client.get("/fhir/Observation?code=x", headers=system_bearer(client))
        assert response.status_code == 500
        logged = [e for e in logs if e.get("exc_info") is not None]
        assert [e["event"] for e in logged] == ["unhandled_exception"]

    def test_an_api_failure_is_a_500_problem_that_tells_nothing(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from medalliance.referrals import api

        monkeypatch.setattr(api.service, "queue", _failing)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/api/referrals?box=incoming", headers=bearer(client, "doctor"))
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 500
        assert problem["type"].endswith("/server-error")
        assert problem["title"]
        assert "secret" not in response.text
        assert "RuntimeError" not in response.text

    def test_a_page_failure_stays_a_plain_500(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from medalliance.auth import views

        monkeypatch.setattr(views, "render", _failing)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/login")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"


class TestOperationalEndpoints:
    def test_health_and_metrics_answer(self, client: TestClient) -> None:
        assert client.get("/health").json()["status"] == "ok"
        client.get("/login")
        metrics = client.get("/metrics").text
        assert (
            'medalliance_http_requests_total{method="GET",route="/login",status="200"}' in metrics
        )

    def test_openapi_documents_the_api(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        assert "/api/auth/token" in spec["paths"]


class TestNulCharacters:
    """PostgreSQL cannot store a NUL in text: a request carrying one is refused up front,
    in the caller's format, and writes nothing."""

    def test_nul_in_a_fhir_path_or_query_is_an_operation_outcome(self, client: TestClient) -> None:
        headers = bearer(client, "admin")
        for url, where in (("/fhir/Patient/a%00b", "path"), ("/fhir/Patient?name=a%00", "query")):
            response = client.get(url, headers=headers)
            assert response.status_code == 400, url
            assert response.json()["resourceType"] == "OperationOutcome"
            assert where in response.json()["issue"][0]["diagnostics"]

    def test_nul_in_an_api_query_is_a_problem_naming_it(self, client: TestClient) -> None:
        response = client.get("/api/registry/institutions?q=%00", headers=bearer(client, "admin"))
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["field"] == "query string"
        assert "NUL" in response.json()["detail"]

    def test_nul_in_a_json_body_writes_nothing(self, client: TestClient, db: Session) -> None:
        before = db.scalar(select(func.count()).select_from(Consortium))
        response = client.post(
            "/api/registry/consortia",
            json={
                "name": "医共体\x00",
                "type": "tight",
                "kind": "county_medical_community",
                "lead_institution_id": "county-hospital",
            },
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]
        assert db.scalar(select(func.count()).select_from(Consortium)) == before

    def test_nul_in_a_fhir_body_is_refused(self, client: TestClient) -> None:
        response = client.post(
            "/fhir/Observation",
            content=b'{"resourceType": "Observation", "code": {"text": "a\\u0000"}}',
            headers={**system_bearer(client), "Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 400
        assert "NUL" in response.json()["issue"][0]["diagnostics"]

    def test_an_escaped_backslash_before_u0000_is_ordinary_text(
        self, app: FastAPI, client: TestClient
    ) -> None:
        _add_json_route(app)
        response = client.post(
            "/api/echo",
            content=b'{"name": "C:\\\\u0000", "beds": 1}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert response.json()["name"] == "C:\\u0000"

    def test_nul_in_a_form_post_shows_an_error_page(self, client: TestClient, db: Session) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/registry/consortia").text)
        before = db.scalar(select(func.count()).select_from(Consortium))
        form = (
            f"csrf_token={token}&name=a%00&type=tight&kind=county_medical_community"
            "&lead_institution_id=county-hospital"
        )
        response = client.post("/registry/consortia", content=form.encode(), headers=_FORM)
        assert response.status_code == 400
        assert "NUL" in response.text
        assert db.scalar(select(func.count()).select_from(Consortium)) == before

    def test_nul_in_a_multipart_form_is_refused_where_it_cannot_be_stored(
        self, client: TestClient, db: Session
    ) -> None:
        # Multipart bodies may carry binary files, so no middleware scans them: the NUL
        # reaches the database, which refuses it, and the refusal is the caller's 400.
        response = client.post(
            "/fhir/Observation/_search",
            files={"attachment": (None, "")},
            data={"code": "a\x00"},
            headers=system_bearer(client),
        )
        if db.get_bind().dialect.name == "sqlite":  # SQLite text holds a NUL
            assert response.status_code == 200
            return
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["issue"][0]["diagnostics"]


def _scanned_in_chunks(body: bytes, cuts: tuple[int, ...]) -> bool:
    """Whether the NUL check finds a mark in ``body`` arriving cut at ``cuts``."""
    bounds = [0, *cuts, len(body)]
    tail = b""
    for start, end in itertools.pairwise(bounds):
        text = tail + body[start:end]
        if _JSON_NUL.search(text):
            return True
        tail = _carried(text)
    return False


@pytest.mark.parametrize("backslashes", [1, 2, 64, 65])
def test_a_nul_mark_split_across_body_chunks_is_found_as_in_one(backslashes: int) -> None:
    # An even run of backslashes escapes itself: the mark is text, not a NUL.
    body = b'{"a": "' + b"\\" * backslashes + b'u0000"}'
    whole = bool(_JSON_NUL.search(body))
    assert whole == (backslashes % 2 == 1)
    for cut in range(1, len(body)):
        assert _scanned_in_chunks(body, (cut,)) == whole, cut
    assert _scanned_in_chunks(body, (len(body) - 9, len(body) - 5)) == whole


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
