"""Helpers for tests that need their own database rather than the shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from conftest import fresh_engine


@contextmanager
def fresh_sqlite_session(directory: Path) -> Iterator[Session]:
    directory.mkdir(parents=True, exist_ok=True)
    engine = fresh_engine("sqlite", directory)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
