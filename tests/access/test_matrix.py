"""Calls every route as every kind of caller and compares with the reviewed matrix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from access_matrix import CALLERS, MATRIX, SAMPLES, Outcome, Row
from medalliance.auth import service as auth_service
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.auth.repository import user_by_username
from medalliance.auth.tokens import issue_token
from medalliance.kit.clock import utcnow
from medalliance.records import service as records
from medalliance.referrals.enums import ReferralStatus
from medalliance.scheduling.models import Appointment
from referrals.factories import referral as referral_factory

ROLE_CALLERS = {r.value: r.value for r in Role if r != Role.SYSTEM}


def route_key(route: APIRoute, method: str) -> str:
    return f"{method} {route.path}"


def all_route_keys(app: FastAPI) -> list[tuple[str, APIRoute, str]]:
    from medalliance.auth.policy import api_routes

    keys = []
    for route in api_routes(list(app.routes)):
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            keys.append((route_key(route, method), route, method))
    return keys


@dataclass
class Callers:
    headers: dict[str, dict[str, str]]


def _token_for(db: Session, username: str) -> dict[str, str]:
    user = user_by_username(db, username)
    assert user is not None, username
    membership = auth_service.memberships_of(db, Actor(user.id, username, Role.DOCTOR, None))[0]
    actor = auth_service.actor_for(user, membership, ip=None)
    return {"Authorization": f"Bearer {issue_token(actor, utcnow())[0]}"}


@pytest.fixture
def scenario(db: Session) -> dict[str, str]:
    """The county hospital's own system records a visit and a result for a patient: its
    staff now have a care relationship; nobody else does."""
    system = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
    now = utcnow()
    patient = SAMPLES["person_id"]
    encounter = records.create(
        db,
        system,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
            "serviceProvider": {"reference": "Organization/county-hospital"},
            "period": {"start": "2026-10-01T08:00:00+08:00"},
        },
        now=now,
    )
    observation = records.create(
        db,
        system,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "encounter": {"reference": f"Encounter/{encounter.id}"},
            "valueQuantity": {"value": 150, "unit": "mm[Hg]"},
        },
        now=now,
    )
    sent = referral_factory(db, status=ReferralStatus.SCHEDULED)
    appointment = db.scalars(
        select(Appointment).where(Appointment.patient_id == sent.patient_id)
    ).one()
    db.flush()
    return {
        "encounter": encounter.id,
        "observation": observation.id,
        "referral": sent.id,
        "appointment": appointment.id,
        "slot": str(appointment.slot_id),
    }


@pytest.fixture
def callers(db: Session) -> Callers:
    auth_service.create_user(
        db,
        None,
        username="other_doctor",
        display_name="赵医生",
        password="other-doctor-pw",
        roles=[("township-02", Role.DOCTOR)],
    )
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for caller in CALLERS:
        if caller in ROLE_CALLERS or caller == "other_doctor":
            headers[caller] = _token_for(db, caller)
    system = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
    headers["system"] = {"Authorization": f"Bearer {issue_token(system, utcnow())[0]}"}
    db.flush()
    return Callers(headers)


def concrete_path(template: str, samples: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return samples.get(name, "does-not-exist")

    return re.sub(r"\{([^}]+)\}", fill, template)


def observed(response: Any, path: str) -> Outcome:
    status = response.status_code
    if status == 401:
        return "LOGIN"
    if status in (302, 303) and response.headers.get("location", "").startswith("/login?next="):
        return "LOGIN"
    if status == 403:
        return "DENY"
    if status == 404:
        return "HIDDEN"
    if status < 400 or status in (400, 405, 409, 410, 412, 413, 415, 422):
        return "ALLOW"
    raise AssertionError(f"{path}: unexpected {status} {response.text[:300]}")


def check_route(
    client: TestClient,
    callers: Callers,
    method: str,
    path: str,
    row: Row,
    connection: Connection | None = None,
) -> list[str]:
    """Every caller's outcome against the row; returns the mismatches. With ``connection``, each
    caller's request is undone before the next one (a DELETE must not hide the row)."""
    mismatches = []
    body: dict[str, Any] = {}
    if path.endswith("/_search"):
        body = {"data": {}}  # a search's criteria come as a form, an empty one here
    elif method in ("POST", "PUT", "PATCH"):
        body = {"json": {}}
    for caller in CALLERS:
        savepoint = connection.begin_nested() if connection is not None else None
        response = client.request(
            method, path, headers=callers.headers[caller], follow_redirects=False, **body
        )
        if savepoint is not None:
            savepoint.rollback()
        got, want = observed(response, path), row.expected(caller)
        if got != want:
            mismatches.append(
                f"{method} {path} as {caller}: expected {want}, got {got} ({response.status_code})"
            )
    return mismatches


class TestMatrixCoversEveryRoute:
    def test_every_route_has_a_row_and_every_row_a_route(self, app: FastAPI) -> None:
        routes = {key for key, _, _ in all_route_keys(app)}
        assert sorted(routes - MATRIX.keys()) == [], "routes missing from tests/access_matrix.py"
        assert sorted(MATRIX.keys() - routes) == [], "rows for routes that no longer exist"


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_route_answers_each_caller_as_the_matrix_says(
    key: str,
    client: TestClient,
    callers: Callers,
    scenario: dict[str, str],
    connection: Connection,
) -> None:
    method, template = key.split(" ", 1)
    params = {k: scenario.get(v.removeprefix("@"), v) for k, v in MATRIX[key].params.items()}
    path = concrete_path(template, {**SAMPLES, **params})
    assert check_route(client, callers, method, path, MATRIX[key], connection) == []


class TestTheMatrixTest:
    def test_a_route_whose_policy_was_removed_is_caught(
        self, app: FastAPI, client: TestClient, callers: Callers
    ) -> None:
        @app.get("/api/audit/verify-unguarded")
        def unguarded() -> dict[str, bool]:  # the same function, its policy deleted
            return {"ok": True}

        mismatches = check_route(
            client, callers, "GET", "/api/audit/verify-unguarded", MATRIX["GET /api/audit/verify"]
        )
        assert any("as doctor: expected DENY, got ALLOW" in m for m in mismatches)
        assert any("as anonymous: expected LOGIN, got ALLOW" in m for m in mismatches)
