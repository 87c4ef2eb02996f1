"""Migration 0028: string index rows stored before it (lower-cased only) get the value as
written, so that ``:exact`` tells "Son" from "son" in resources written before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

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
        command.upgrade(config, "0027")
    yield engine, config
    engine.dispose()


def _store(engine: Engine, pid: int, said: str) -> None:
    """An Observation saying ``said``, with its string row as writes made it before 0028."""
    content = {"resourceType": "Observation", "id": f"o{pid}", "valueString": said}
    row = {"pid": pid, "content": json.dumps(content), "when": WHEN, "id": f"o{pid}"}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO fhir_resource (pid, resource_type, id, version, last_updated,"
                " patient_id, institution_id, sort_date, deleted, content) VALUES (:pid,"
                " 'Observation', :id, 1, :when, 'p1', NULL, :when, false, :content)"
            ),
            row,
        )
        connection.execute(
            text(
                "INSERT INTO fhir_idx_string (pid, resource_type, name, patient_id, value)"
                " VALUES (:pid, 'Observation', 'value-string', 'p1', :value)"
            ),
            {"pid": pid, "value": said.lower()},
        )


def test_rows_written_before_get_the_value_as_written(before: tuple[Engine, Config]) -> None:
    engine, config = before
    for pid, said in enumerate(("Son", "son", "血红蛋白"), start=1):
        _store(engine, pid, said)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0028")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT pid, name, value, cased FROM fhir_idx_string ORDER BY pid")
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "value-string", "son", "Son"),
        (2, "value-string", "son", None),
        (3, "value-string", "血红蛋白", None),
    ]
