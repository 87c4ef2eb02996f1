"""Time to load the `county` demo consortium (1,000,000 residents) with bulk inserts.

    .venv/bin/python bench/demo_load.py                      # embedded SQLite under var/bench/
    .venv/bin/python bench/demo_load.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

The target database is emptied first. Prints seconds and residents/s per phase.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "development")

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.orm import Session

from medalliance.config import REPO_ROOT
from medalliance.db import make_engine
from medalliance.demo.loader import RESIDENTS, Scale, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = f"sqlite:///{REPO_ROOT / 'var' / 'bench' / 'county.sqlite3'}"
    parser.add_argument("--database-url", default=default)
    parser.add_argument("--scale", default="county", choices=[s.value for s in Scale])
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    _empty(args.database_url, engine)
    started = time.perf_counter()
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    migrated = time.perf_counter()
    with Session(engine) as session:
        report = load(session, scale=Scale(args.scale), seed=1)
        session.commit()
    loaded = time.perf_counter()
    residents = RESIDENTS[Scale(args.scale)]
    print(f"backend            {engine.dialect.name}")
    print(f"migrate            {migrated - started:8.1f} s")
    print(f"load + commit      {loaded - migrated:8.1f} s  ({report.seconds:.1f} s inside load)")
    print(f"residents          {residents:8d}   {residents / (loaded - migrated):10.0f} /s")
    print(f"institutions       {report.institutions:8d}")
    print(f"practitioners      {report.practitioners:8d}")


def _empty(url: str, engine: object) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


if __name__ == "__main__":
    main()
