"""Direct dispatch of the FHIR interactions: what a client sees is what the FastAPI route
answered (the access matrix covers every caller); here, the edges of the mechanism."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from helpers import system_bearer
from medalliance.app import create_app
from medalliance.audit.models import AuditEvent
from medalliance.auth.policy import api_routes
from medalliance.config import get_settings
from medalliance.kit.direct import DirectRoutes, NotDirect, direct
from medalliance.kit.http import TransactionalRoute
from records.factories import encounter, ensure_person, observation

P = "p00000004"
FHIR = "application/fhir+json"


@pytest.fixture
def his(client: TestClient) -> dict[str, str]:
    return {**system_bearer(client), "Content-Type": FHIR}


@pytest.fixture
def made(client: TestClient, db: Session, his: dict[str, str]) -> dict[str, Any]:
    ensure_person(db, P)
    enc = client.post("/fhir/Encounter", json=encounter(P), headers=his).json()
    response = client.post("/fhir/Observation", json=observation(P, enc["id"]), headers=his)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _audit_rows(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(AuditEvent)) or 0


class TestDirectDispatch:
    def test_a_read_answers_like_the_route_with_language_and_metrics(
        self, client: TestClient, his: dict[str, str], made: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Observation/{made['id']}", headers=his)
        assert response.status_code == 200
        assert response.headers["etag"] == 'W/"1"'
        assert response.headers["content-language"] in {"zh-CN", "en"}
        metrics = client.get("/metrics").text
        assert 'route="/fhir/{resource_type}/{resource_id}"' in metrics

    def test_specific_routers_still_win_their_paths(
        self, client: TestClient, his: dict[str, str], made: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Patient/{P}", headers=his)
        assert response.status_code == 200
        assert response.json()["resourceType"] == "Patient"

    def test_a_version_that_is_not_a_number_is_a_400_outcome(
        self, client: TestClient, his: dict[str, str], made: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Observation/{made['id']}/_history/one", headers=his)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_without_a_token_the_answer_is_401_outcome(
        self, client: TestClient, made: dict[str, Any]
    ) -> None:
        response = client.get(f"/fhir/Observation/{made['id']}")
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_a_body_that_is_not_json_is_a_400_outcome(
        self, client: TestClient, his: dict[str, str]
    ) -> None:
        response = client.post("/fhir/Observation", content=b"{not json", headers=his)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["body"]

    def test_a_refused_write_keeps_nothing_but_its_refusal(
        self, client: TestClient, db: Session, his: dict[str, str], made: dict[str, Any]
    ) -> None:
        from helpers import bearer

        headers = {**bearer(client, "doctor"), "If-Match": 'W/"1"'}  # no basis at township-01
        before = _audit_rows(db)
        response = client.put(
            f"/fhir/Observation/{made['id']}", json={**made, "status": "amended"}, headers=headers
        )
        assert response.status_code == 403
        denied = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (denied.action, _audit_rows(db)) == ("access.denied", before + 1)
        current = client.get(f"/fhir/Observation/{made['id']}", headers=his)
        assert (current.headers["etag"], current.json()["status"]) == ('W/"1"', "final")

    def test_an_oversized_body_is_refused_before_the_route(
        self, session_factory: sessionmaker[Session], his: dict[str, str]
    ) -> None:
        settings = get_settings().model_copy(update={"max_body_bytes": 64})
        small = create_app(settings, sessionmaker=session_factory)
        with TestClient(small) as client:
            response = client.post("/fhir/Observation", json=observation(P, "x"), headers=his)
        assert response.status_code == 413


class TestPlans:
    def test_a_marked_route_with_a_query_parameter_fails_at_startup(self) -> None:
        router = APIRouter(route_class=TransactionalRoute)

        @router.get("/fhir/Thing/{thing_id}")
        @direct
        def thing(thing_id: str, q: str | None = None) -> None:
            raise AssertionError("never called")

        app = FastAPI()
        app.include_router(router)
        with pytest.raises(NotDirect, match="only path, header"):
            DirectRoutes(app, routes=api_routes(list(app.routes)), prefix="/fhir/", threads=1)
