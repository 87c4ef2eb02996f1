"""Migration 0029: string index rows written before it (lower-cased only) are folded as new
writes are (accents gone too), and only rows that folding may change are read."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select, text

from conftest import BACKENDS, unmigrated_database
from medalliance.config import REPO_ROOT
from medalliance.kit.text import fold
from medalliance.records.indexing import build_index

WHEN = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# (parameter, text as written) of each resource; the Observation's code text is a token's.
SAID = [
    ("value-string", "José"),
    ("value-string", "jose"),
    ("value-string", "MÜLLER"),
    ("value-string", "血红蛋白"),
    ("value-string", "血压（坐位）"),  # full-width brackets fold to ASCII (NFKD)
    ("value-string", "阿依古丽·买买提"),
    ("code:text", "Hémoglobine"),
]


def migration() -> ModuleType:
    [path] = (REPO_ROOT / "migrations" / "versions").glob("*-0029_*.py")
    spec = importlib.util.spec_from_file_location("migration_0029", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=BACKENDS)
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Config]]:
    """A database at the revision before, and the Alembic config to move it on."""
    engine = unmigrated_database(request.param, tmp_path)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0028")
    yield engine, config
    engine.dispose()


def _store(engine: Engine, pid: int, name: str, said: str) -> None:
    """A resource saying ``said``, with its string row as writes made it before 0029."""
    content = {"resourceType": "Observation", "id": f"o{pid}", "valueString": said}
    row = {"pid": pid, "content": json.dumps(content), "when": WHEN, "id": f"o{pid}"}
    lowered = said.lower()
    cased = None if name.endswith(":text") or said == lowered else said
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
                "INSERT INTO fhir_idx_string (pid, resource_type, name, patient_id, value, cased)"
                " VALUES (:pid, 'Observation', :name, 'p1', :value, :cased)"
            ),
            {"pid": pid, "name": name, "value": lowered, "cased": cased},
        )


def _rows(engine: Engine) -> list[tuple[int, str, str | None]]:
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT pid, value, cased FROM fhir_idx_string ORDER BY pid")
        ).all()
    return [(r.pid, r.value, r.cased) for r in found]


def test_rows_written_before_are_folded_as_a_new_write_is(
    before: tuple[Engine, Config],
) -> None:
    engine, config = before
    for pid, (name, said) in enumerate(SAID, start=1):
        _store(engine, pid, name, said)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0029")
    assert _rows(engine) == [
        (1, "jose", "José"),
        (2, "jose", None),
        (3, "muller", "MÜLLER"),
        (4, "血红蛋白", None),
        (5, "血压(坐位)", "血压（坐位）"),
        (6, "阿依古丽·买买提", None),
        (7, "hemoglobine", None),
    ]
    written = build_index({"resourceType": "Observation", "valueString": "José"}).string
    assert [(r["value"], r["cased"]) for r in written] == [("jose", "José")]


def test_downgrade_lower_cases_again_what_it_kept_as_written(
    before: tuple[Engine, Config],
) -> None:
    engine, config = before
    for pid, (name, said) in enumerate(SAID, start=1):
        _store(engine, pid, name, said)
    lowered = _rows(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0029")
        command.downgrade(config, "0028")
    # A code's words stay folded: what they said with accents is not kept.
    assert _rows(engine) == [*lowered[:-1], (7, "hemoglobine", None)]


def test_rows_of_only_the_characters_left_alone_are_not_read(
    before: tuple[Engine, Config],
) -> None:
    """Each of those characters folds to itself (its lower case is what a row holds), so
    the rows the migration skips would not have changed."""
    revision = migration()
    left_alone = [
        ch
        for first, last in revision.LEFT_ALONE
        for ch in map(chr, range(first, last + 1))
        if ch == ch.lower()
    ]
    assert [ch for ch in left_alone if fold(ch) != ch] == []
    engine, _ = before
    for pid, (name, said) in enumerate(SAID, start=1):
        _store(engine, pid, name, said)
    pid = revision.strings.c.pid
    with engine.connect() as connection:
        read = connection.scalars(
            select(pid).where(revision._may_change(engine.dialect.name)).order_by(pid)
        ).all()
    assert read == [1, 3, 5, 7]
