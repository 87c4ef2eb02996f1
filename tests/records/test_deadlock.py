"""A request PostgreSQL rolls back to break a deadlock is a 409 that says to send it again,
not a 500: nothing of it was stored (a batch entry: a 409 entry, nothing of it stored).
The deadlock is real and made on purpose: another transaction holds one of the two visits
a bundle updates, then asks for the other, which the bundle holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import sessionmaker

from conftest import PG_URL, demo_side_database
from helpers import system_client
from records.factories import encounter

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL"),
]
P = "p00000012"
_LOCK = "SELECT pid FROM fhir_resource WHERE resource_type = 'Encounter' AND id = :id FOR UPDATE"


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    made = demo_side_database("deadlock")
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with system_client(sessionmaker(engine, expire_on_commit=False)) as made:
        yield made


def _updating_both(first: dict[str, Any], second: dict[str, Any], kind: str) -> dict[str, Any]:
    entries = [
        {
            "resource": {**visit, "status": "cancelled"},
            "request": {"method": "PUT", "url": f"Encounter/{visit['id']}"},
        }
        for visit in (first, second)
    ]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _wait_until_blocked(holder: Connection) -> None:
    """Until another backend waits for a lock (the bundle, behind the held visit)."""
    for _ in range(200):
        holder.execute(text("SELECT pg_stat_clear_snapshot()"))  # else one per transaction
        waiting = holder.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the bundle never waited for the held visit")


def _deadlocked(
    engine: Engine, client: TestClient, kind: str
) -> tuple[httpx.Response, dict[str, Any], dict[str, Any]]:
    """A bundle of ``kind`` updating two visits, which PostgreSQL chooses to break the
    deadlock it makes with a transaction holding the second and asking for the first."""
    visits = (encounter(P, start=f"2026-11-{day:02d}T08:00:00Z") for day in (3, 4))
    first, second = (client.post("/fhir/Encounter", json=v).json() for v in visits)
    answers: list[httpx.Response] = []
    with engine.connect() as holder:
        holder.execute(text("SET deadlock_timeout = '10s'"))  # the bundle's backend detects
        holder.execute(text(_LOCK), {"id": second["id"]})
        bundle = threading.Thread(
            target=lambda: answers.append(
                client.post("/fhir", json=_updating_both(first, second, kind))
            )
        )
        bundle.start()
        _wait_until_blocked(holder)
        holder.execute(text(_LOCK), {"id": first["id"]})  # the cycle: waits for the bundle
        holder.rollback()
        bundle.join(timeout=30)
    (answer,) = answers
    return answer, first, second


def _stored(client: TestClient, visit: dict[str, Any]) -> tuple[str, str]:
    stored = client.get(f"/fhir/Encounter/{visit['id']}").json()
    return stored["status"], stored["meta"]["versionId"]


def test_a_bundle_chosen_to_break_a_deadlock_is_a_409_and_stores_nothing(
    engine: Engine, client: TestClient
) -> None:
    answer, first, second = _deadlocked(engine, client, "transaction")
    assert answer.status_code == 409, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "send it again" in outcome["issue"][0]["diagnostics"]
    for visit in (first, second):
        assert _stored(client, visit) == ("finished", "1")


def test_a_batch_entry_chosen_to_break_a_deadlock_is_a_409_entry_and_the_others_stand(
    engine: Engine, client: TestClient
) -> None:
    answer, first, second = _deadlocked(engine, client, "batch")
    assert answer.status_code == 200, answer.text
    updated, refused = (e["response"] for e in answer.json()["entry"])
    assert updated["status"].startswith("200"), updated
    assert refused["status"] == "409", refused
    issue = refused["outcome"]["issue"][0]
    assert issue["code"] == "conflict"
    assert "Bundle.entry[1]" in issue["diagnostics"]
    assert "send it again" in issue["diagnostics"]
    assert _stored(client, first) == ("cancelled", "2")
    assert _stored(client, second) == ("finished", "1")
