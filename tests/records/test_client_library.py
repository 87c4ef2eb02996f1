"""A real FHIR client library (fhirpy) against a real uvicorn server over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhirpy import SyncFHIRClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from conftest import fresh_engine
from helpers import uvicorn_in_thread
from medalliance.app import create_app
from medalliance.db import unit_of_work
from medalliance.demo.loader import Scale, load

P = "p00000007"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine: Engine = fresh_engine("sqlite", Path(tmp_path_factory.mktemp("fhirpy")))
    factory = sessionmaker(engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        load(db, scale=Scale.SMALL, seed=1)
    with uvicorn_in_thread(create_app(sessionmaker=factory)) as port:
        yield f"http://127.0.0.1:{port}"
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
