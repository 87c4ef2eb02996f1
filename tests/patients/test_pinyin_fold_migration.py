"""Migration 0030: the pinyin of a Latin name written before it (accented letters dropped)
is folded as new registrations fold it; no other person changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from conftest import BACKENDS, unmigrated_database
from medalliance.config import REPO_ROOT
from medalliance.patients.names import to_pinyin

WHEN = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# name: its pinyin as registrations made it before 0030
BEFORE = {
    "José García": "jos garca",
    "John Smith": "john smith",
    "张伟": "zhang wei",
    "阿依古丽·买买提": "a yi gu li mai mai ti",
    "Ｍüller": "mller",  # full-width letters: NFKC makes them ASCII
}


@pytest.fixture(params=BACKENDS)
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Config]]:
    engine = unmigrated_database(request.param, tmp_path)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0029")
        for number, (name, pinyin) in enumerate(BEFORE.items()):
            connection.execute(
                text(
                    "INSERT INTO person (id, name, pinyin, sex, address, division_code,"
                    " created_at, updated_at) VALUES (:id, :name, :pinyin, 'male', '', '',"
                    " :when, :when)"
                ),
                {"id": f"p{number}", "name": name, "pinyin": pinyin, "when": WHEN},
            )
    yield engine, config
    engine.dispose()


def _pinyin(engine: Engine) -> dict[str, tuple[str, bool]]:
    """Each name's pinyin, and whether the person's ``updated_at`` moved."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, pinyin, updated_at FROM person")).all()
    return {r.name: (r.pinyin, str(r.updated_at)[:19] != "2026-11-01 08:00:00") for r in rows}


def test_latin_names_get_the_pinyin_a_registration_gives_them_now(
    before: tuple[Engine, Config],
) -> None:
    engine, config = before
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0030")
    assert _pinyin(engine) == {
        "José García": ("jose garcia", True),
        "John Smith": ("john smith", False),
        "张伟": ("zhang wei", False),
        "阿依古丽·买买提": ("a yi gu li mai mai ti", False),
        "Ｍüller": ("muller", True),
    }
    assert {name: to_pinyin(name) for name in ("José García", "Ｍüller")} == {
        "José García": "jose garcia",
        "Ｍüller": "muller",
    }
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0029")
    assert {name: pinyin for name, (pinyin, _) in _pinyin(engine).items()} == BEFORE
