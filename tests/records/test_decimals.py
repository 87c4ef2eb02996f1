"""FHIR decimals keep their precision (R4: 0.010 is not 0.01): a lab value sent as 5.60
is stored, read, searched, patched and bundled back as 5.60."""

from __future__ import annotations

import base64
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from medalliance.kit import fhirjson
from records.factories import observation, related_system

P = "p00000004"
FHIR = "application/fhir+json"
# Built as text: a Python dict would have made 5.60 a float (5.6) before it was sent.
BODY = json.dumps(observation(P, value=1)).replace('"value": 1', '"value": 5.60')


@pytest.fixture
def his(client: TestClient, db: Session) -> dict[str, str]:
    return related_system(client, db, P)


def values(text: str) -> list[str]:
    return re.findall(r'"value":\s*([-0-9.eE+]+)', text)


def test_a_decimal_comes_back_as_it_was_written(client: TestClient, his: dict[str, str]) -> None:
    assert "5.60" in BODY
    created = client.post("/fhir/Observation", content=BODY, headers=his)
    assert created.status_code == 201, created.text
    assert values(created.text) == ["5.60"]
    oid = created.json()["id"]
    assert values(client.get(f"/fhir/Observation/{oid}", headers=his).text) == ["5.60"]
    found = client.get(f"/fhir/Observation?_id={oid}", headers=his)
    assert values(found.text) == ["5.60"]
    elements = client.get(f"/fhir/Observation?_id={oid}&_elements=valueQuantity", headers=his)
    assert values(elements.text) == ["5.60"]


def test_a_patch_elsewhere_and_a_transaction_keep_it(
    client: TestClient, his: dict[str, str]
) -> None:
    oid = client.post("/fhir/Observation", content=BODY, headers=his).json()["id"]
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    patched = client.patch(
        f"/fhir/Observation/{oid}",
        json=patch,
        headers={**his, "Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert values(patched.text) == ["5.60"]
    ops = json.dumps([{"op": "replace", "path": "/valueQuantity/value", "value": 0}])
    ops = ops.replace('"value": 0', '"value": 0.010')
    entry = {
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                     "data": base64.b64encode(ops.encode()).decode()},
        "request": {"method": "PATCH", "url": f"Observation/{oid}"},
    }  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    done = client.post("/fhir", json=bundle, headers=his)
    assert done.status_code == 200, done.text
    assert values(client.get(f"/fhir/Observation/{oid}", headers=his).text) == ["0.010"]


def test_the_quantity_search_compares_the_number(client: TestClient, his: dict[str, str]) -> None:
    oid = client.post("/fhir/Observation", content=BODY, headers=his).json()["id"]
    found = client.get(f"/fhir/Observation?value-quantity=5.6&subject=Patient/{P}", headers=his)
    assert oid in {e["resource"]["id"] for e in found.json().get("entry", [])}


@pytest.mark.parametrize(
    ("text", "exact"),
    [("5.60", True), ("0.010", True), ("1e3", True), ("5.6", False), ("1.0", False)],
)
def test_only_numbers_that_would_change_are_kept_as_text(text: str, exact: bool) -> None:
    number = fhirjson.loads(f"[{text}]")[0]
    assert isinstance(number, fhirjson.DecimalLiteral) is exact
    assert number == float(text)  # computes like the float it is
    assert fhirjson.dumps([number]) == f"[{text}]".encode()


def test_a_decimal_beside_an_integer_beyond_64_bits_keeps_its_digits() -> None:
    text = '{"a":5.60,"c":12345678901234567890123}'
    assert fhirjson.dumps(fhirjson.loads(text)) == text.encode()
