"""A real FHIR client library (fhirpy) against a real uvicorn server over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fhirpy import SyncFHIRClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from conftest import fresh_engine
from medalliance.app import create_app
from medalliance.db import unit_of_work
from medalliance.demo.loader import Scale, load
from medalliance.kit.serving import CoalescingHttpToolsProtocol

P = "p00000007"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine: Engine = fresh_engine("sqlite", Path(tmp_path_factory.mktemp("fhirpy")))
    factory = sessionmaker(engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        load(db, scale=Scale.SMALL, seed=1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(sessionmaker=factory),
        host="127.0.0.1",
        port=port,
        log_level="error",
        http=CoalescingHttpToolsProtocol,  # as `medalliance serve` runs it
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if uv.started:
            break
        time.sleep(0.05)
    yield base
    uv.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def _client(base: str) -> SyncFHIRClient:
    token = httpx.post(
        f"{base}/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "county-his",
            "client_secret": "medalliance",
        },
    ).json()["access_token"]
    return SyncFHIRClient(f"{base}/fhir", authorization=f"Bearer {token}")


def test_fhirpy_creates_searches_updates_and_deletes(server: str) -> None:
    client = _client(server)
    encounter = client.resource(
        "Encounter",
        status="finished",
        **{"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
        subject={"reference": f"Patient/{P}"},
        serviceProvider={"reference": "Organization/county-hospital"},
        period={"start": "2026-10-01T08:00:00Z"},
    )
    encounter.save()
    condition = client.resource(
        "Condition",
        subject={"reference": f"Patient/{P}"},
        encounter={"reference": f"Encounter/{encounter.id}"},
        code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
        recordedDate="2026-10-01",
    )
    condition.save()
    found = (
        client.resources("Condition")
        .search(patient=P, code="http://hl7.org/fhir/sid/icd-10|I10")
        .fetch()
    )
    assert [c.id for c in found] == [condition.id]
    condition["clinicalStatus"] = {"coding": [{"code": "active"}]}
    condition.save()
    assert client.reference("Condition", condition.id).to_resource()["meta"]["versionId"] == "2"
    condition.delete()
    assert client.resources("Condition").search(patient=P).fetch() == []
