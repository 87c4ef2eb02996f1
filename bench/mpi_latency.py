"""Single-record $match latency against a 1,000,000-person index on PostgreSQL.

    .venv/bin/python bench/mpi_latency.py --database-url postgresql+psycopg://.../mpi_county

Migrates and loads the demo `county` scale when the database has fewer persons than that
(takes a few minutes), then times the matcher's $match core (blocking queries + scoring)
for corrupted copies of random residents and prints p50/p95/p99.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ["MEDALLIANCE_DATABASE_URL"] = args.database_url
    os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "development")

    from medalliance.db import make_engine
    from medalliance.demo.loader import RESIDENTS, Scale
    from medalliance.patients.matching import Demographics
    from medalliance.patients.models import Person
    from medalliance.patients.registration import find_candidates

    engine = make_engine(args.database_url)
    _ensure_loaded(engine, RESIDENTS[Scale.COUNTY])
    rng = random.Random(args.seed)
    timings: list[float] = []
    found = 0
    # A live index is vacuumed by autovacuum; right after a bulk load it is not yet, and the
    # birth-date block's index-only scan would read the table instead.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE person"))
    with Session(engine) as db:
        total = db.scalar(select(func.count()).select_from(Person)) or 0
        print(f"persons in index: {total:,}")
        for _ in range(args.queries):
            pid = f"p{rng.randint(1, RESIDENTS[Scale.COUNTY]):08d}"
            p = db.get(Person, pid)
            assert p is not None
            query = Demographics(
                name=p.name,
                sex=p.sex,
                birth_date=_maybe_swap(rng, p.birth_date),
                phone=p.phone if rng.random() < 0.7 else None,
                address=p.address,
            )
            started = time.perf_counter()
            candidates = find_candidates(db, query)
            timings.append((time.perf_counter() - started) * 1000)
            found += bool(candidates and candidates[0].person.id == pid)
            db.expunge_all()
    timings.sort()
    q = statistics.quantiles(timings, n=100)
    print(
        f"$match core over {len(timings):,} queries: p50 {q[49]:.1f} ms  p95 {q[94]:.1f} ms  "
        f"p99 {q[98]:.1f} ms  (top candidate correct {found / len(timings):.1%})"
    )


def _maybe_swap(rng: random.Random, born: date) -> date:
    if rng.random() < 0.1 and born.day <= 12:
        return date(born.year, born.day, born.month)
    return born


def _ensure_loaded(engine: object, residents: int) -> None:
    from sqlalchemy import Engine, inspect

    from medalliance.db import unit_of_work
    from medalliance.demo.loader import Scale, load

    assert isinstance(engine, Engine)
    if "person" not in inspect(engine).get_table_names():
        from alembic import command
        from alembic.config import Config

        from medalliance.config import REPO_ROOT

        command.upgrade(Config(str(REPO_ROOT / "alembic.ini")), "heads")
    with Session(engine) as db:
        count = db.execute(text("SELECT count(*) FROM person")).scalar() or 0
    if count >= residents:
        return
    from sqlalchemy.orm import sessionmaker

    print("loading the county demo (1,000,000 residents)...")
    with unit_of_work(sessionmaker(bind=engine)) as db:
        load(db, scale=Scale.COUNTY, seed=1)


if __name__ == "__main__":
    main()
