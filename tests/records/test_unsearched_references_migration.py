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
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO fhir_resource (pid, resource_type, id, version, last_updated,"
                " patient_id, institution_id, sort_date, deleted, content) VALUES (:pid,"
                " 'Observation', :id, 1, :when, 'p1', NULL, :when, :deleted, :content)"
            ),
            {**row, "content": json.dumps(content)},
        )
        if not deleted:
            connection.execute(
                text(
                    "INSERT INTO fhir_idx_reference (pid, resource_type, name, patient_id,"
                    " target_type, target_id) VALUES (:pid, 'Observation', 'encounter',"
                    " 'p1', 'Encounter', 'e1')"
                ),
                {"pid": pid},
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
