"""Migration 0031: references no search parameter reads, in resources stored before it,
get their index rows, so that they hold a DELETE of their target as new writes' do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from medalliance.config import REPO_ROOT
from medalliance.db import make_engine
from medalliance.records.indexing import UNSEARCHED

WHEN = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def before(tmp_path: Path) -> Iterator[tuple[Engine, Config]]:
    """A SQLite database at the revision before, and the Alembic config to move it on."""
    engine = make_engine(f"sqlite:///{tmp_path / 'before.sqlite3'}")
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0030")
    yield engine, config
    engine.dispose()


def _store(engine: Engine, pid: int, content: dict[str, Any], *, deleted: bool = False) -> None:
    """A resource with its ``encounter`` reference row, as writes made it before 0031."""
    row = {"pid": pid, "id": content["id"], "when": WHEN, "deleted": deleted}
    row["type"] = content["resourceType"]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO fhir_resource (pid, resource_type, id, version, last_updated,"
                " patient_id, institution_id, sort_date, deleted, content) VALUES (:pid,"
                " :type, :id, 1, :when, 'p1', NULL, :when, :deleted, :content)"
            ),
            {**row, "content": json.dumps(content)},
        )
        if not deleted:
            connection.execute(
                text(
                    "INSERT INTO fhir_idx_reference (pid, resource_type, name, patient_id,"
                    " target_type, target_id) VALUES (:pid, :type, 'encounter',"
                    " 'p1', 'Encounter', 'e1')"
                ),
                {"pid": pid, "type": row["type"]},
            )


def _observation(resource_id: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "encounter": {"reference": "Encounter/e1"},
        **elements,
    }


def test_references_no_parameter_reads_get_rows_of_their_own(
    before: tuple[Engine, Config],
) -> None:
    engine, config = before
    extension = {"url": "urn:test", "valueReference": {"reference": "Encounter/e2"}}
    contained = {"resourceType": "Condition", "id": "c", "encounter": {"reference": "Encounter/e3"}}
    _store(engine, 1, _observation("o1", extension=[extension]))
    _store(engine, 2, _observation("o2", contained=[contained], focus=[{"reference": "#c"}]))
    _store(engine, 3, _observation("o3", extension=[{**extension, "url": "urn:again"}]))
    _store(engine, 4, _observation("o4", extension=[extension]), deleted=True)
    _store(engine, 5, _observation("o5", derivedFrom=[{"reference": "Encounter/e1"}]))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0031")
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid, name, patient_id, target_type, target_id FROM fhir_idx_reference"
                " WHERE name != 'encounter' ORDER BY pid"
            )
        ).all()
    # Not for what a parameter's row already names (o5), nor for a deleted resource (o4).
    assert [tuple(r) for r in rows] == [
        (1, ":unsearched", "p1", "Encounter", "e2"),
        (2, ":unsearched", "p1", "Encounter", "e3"),
        (3, ":unsearched", "p1", "Encounter", "e2"),
    ]


def _unsearched(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid, target_type, target_id FROM fhir_idx_reference"
                " WHERE name = :name ORDER BY pid"
            ),
            {"name": UNSEARCHED},
        ).all()
    return [tuple(r) for r in rows]


# An extension's free text with a "/" in it: its "type" did not fit the index's type
# column (varchar 64), so on PostgreSQL one such resource made the upgrade fail.
FREE_TEXT = "检验科报告单据扫描件存档位置说明" * 5 + "/2026"


def _collection(resource_id: str) -> dict[str, Any]:
    statement = {
        "resourceType": "MedicationStatement",
        "medicationReference": {"reference": "Medication/m1"},
    }
    return {
        "resourceType": "Bundle",
        "id": resource_id,
        "type": "collection",
        "entry": [
            {"fullUrl": "http://his.example.org/fhir/MedicationStatement/1", "resource": statement}
        ],
    }


def test_references_that_name_nothing_stored_get_no_rows(before: tuple[Engine, Config]) -> None:
    engine, config = before
    free_text = {"url": "urn:his:scan", "valueReference": {"reference": FREE_TEXT}}
    _store(engine, 1, _observation("o1", extension=[free_text]))
    _store(engine, 2, _collection("b1"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0031")
    assert _unsearched(engine) == []


def test_0032_removes_the_rows_0031_made_for_them(before: tuple[Engine, Config]) -> None:
    engine, config = before
    _store(engine, 1, _observation("o1"))
    _store(engine, 2, _collection("b1"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0031")
        # As 0031 made them before it learnt better (SQLite keeps text of any length).
        for pid, kind, target in ((1, "Observation", "扫描件"), (2, "Bundle", "Medication")):
            connection.execute(
                text(
                    "INSERT INTO fhir_idx_reference (pid, resource_type, name, patient_id,"
                    " target_type, target_id) VALUES (:pid, :kind, :name, 'p1', :target,"
                    " 'x')"
                ),
                {"pid": pid, "kind": kind, "name": UNSEARCHED, "target": target},
            )
        connection.execute(
            text(
                "INSERT INTO fhir_idx_reference (pid, resource_type, name, patient_id,"
                " target_type, target_id) VALUES (1, 'Observation', :name, 'p1', 'Encounter',"
                " 'e2')"
            ),
            {"name": UNSEARCHED},
        )
        command.upgrade(config, "0032")
    assert _unsearched(engine) == [(1, "Encounter", "e2")]
