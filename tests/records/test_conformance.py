"""Conformance over the official R4 examples of the types the platform uses deeply:
each one creates, reads back equal (ignoring id and meta) and is found by every search
parameter it has a value for."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.access.enums import RelationshipKind
from medalliance.config import get_settings
from medalliance.records import service
from medalliance.records.capability import DEEP_TYPES
from medalliance.records.indexing import build_index
from records.factories import COUNTY, COUNTY_HIS, ensure_person, example

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
EXAMPLES = sorted(
    p.name for t in DEEP_TYPES for p in Path(get_settings().fhir_package_dir).glob(f"{t}-*.json")
)


def _registered(resource: dict[str, Any]) -> dict[str, Any]:
    """The example with a contained Patient it refers to (the Apgar scores' newborn) made a
    Patient of the master patient index: the store files a resource under its patient and
    refuses one whose patient is only contained (``test_validation``)."""
    contained = resource.get("contained", [])
    patients = [c["id"] for c in contained if c["resourceType"] == "Patient"]
    if not patients:
        return resource
    text = json.dumps(resource)
    for pid in patients:
        text = text.replace(f'"#{pid}"', f'"Patient/{pid}"')
    registered: dict[str, Any] = json.loads(text)
    others = [c for c in contained if c["resourceType"] != "Patient"]
    if others:
        registered["contained"] = others
    else:
        del registered["contained"]
    return registered


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def _patients(resource: dict[str, Any]) -> set[str]:
    return set(re.findall(r'"Patient/([A-Za-z0-9\-.]+)"', json.dumps(resource)))


def _queries(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """One query per indexed parameter, built from the values the index holds."""
    rows = build_index(resource)
    queries: dict[str, str] = {}
    for t in rows.token:
        queries.setdefault(t["name"], f"{t['system']}|{t['code']}" if t["system"] else t["code"])
    for s in rows.string:
        queries.setdefault(s["name"], s["value"])
    for d in rows.date:
        open_start = d["low"].year == 1
        bound = f"le{d['high'].isoformat()}" if open_start else f"ge{d['low'].isoformat()}"
        queries.setdefault(d["name"], bound)
    for r in rows.reference:
        value = f"{r['target_type']}/{r['target_id']}" if r["target_type"] else r["target_id"]
        queries.setdefault(r["name"], value)
    for q in rows.quantity:
        queries.setdefault(q["name"], f"le{q['value']}")
    return sorted(queries.items())


def _grant(db: Session, resource: dict[str, Any]) -> None:
    for person in _patients(resource):
        ensure_person(db, person)
        access.record_relationship(
            db, patient_id=person, institution_id=COUNTY, kind=RelationshipKind.REFERRAL,
            source_type="test", source_id=f"conformance-{person}",
        )  # fmt: skip


def test_every_deep_type_has_official_examples() -> None:
    covered = {name.split("-")[0] for name in EXAMPLES}
    assert covered == set(DEEP_TYPES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_example_round_trips_and_is_found(db: Session, name: str) -> None:
    original = _registered(example(name))
    _grant(db, original)
    stored = service.create(db, COUNTY_HIS, original, now=NOW)
    read = service.read(db, COUNTY_HIS, stored.resource_type, stored.id, now=NOW)
    assert _without_meta(read.content) == _without_meta(original)
    for param, value in _queries(read.content):
        if param == "patient":
            value = value.split("/")[-1]
        found = service.search(db, COUNTY_HIS, stored.resource_type, [(param, value)], now=NOW)
        assert stored.id in [m.id for m in found.matches], (param, value)
