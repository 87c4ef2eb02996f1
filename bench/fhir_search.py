"""Search latency on a store of encounters with observations: each search through the
service (access scoping, audit, keyset paging) beside the same query hand-written in SQL
over the same index tables, in the same run. Prints p50/p95 per search.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir \
        .venv/bin/python bench/fhir_search.py --encounters 1000000

Loading goes through the real write path (transaction bundles); ``--encounters`` is the
target count of Encounters in the store, loading only what is missing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from fhir_ingest import HIS, visit

from medalliance.db import get_sessionmaker, unit_of_work
from medalliance.records import service

PATIENTS = 2000
SEARCHES: dict[str, tuple[str, list[tuple[str, str]], str]] = {
    "patient+code": (
        "Observation",
        [("patient", "{p}"), ("code", "http://loinc.org|8480-6")],
        """SELECT r.content FROM fhir_resource r WHERE r.resource_type='Observation'
           AND NOT r.deleted AND r.patient_id=:p AND r.pid IN (SELECT pid FROM fhir_idx_token
           WHERE resource_type='Observation' AND name='code' AND code='8480-6'
           AND system='http://loinc.org') ORDER BY r.pid LIMIT 21""",
    ),
    "patient+date-range": (
        "Encounter",
        [("patient", "{p}"), ("date", "ge2026-03-01"), ("date", "lt2026-06-01")],
        """SELECT r.content FROM fhir_resource r WHERE r.resource_type='Encounter'
           AND NOT r.deleted AND r.patient_id=:p AND r.pid IN (SELECT pid FROM fhir_idx_date
           WHERE resource_type='Encounter' AND name='date' AND high >= '2026-03-01'
           AND low < '2026-06-01') ORDER BY r.pid LIMIT 21""",
    ),
    "patient sort -date": (
        "Observation",
        [("patient", "{p}"), ("_sort", "-date"), ("_count", "20")],
        """SELECT r.content FROM fhir_resource r WHERE r.resource_type='Observation'
           AND NOT r.deleted AND r.patient_id=:p ORDER BY r.sort_date DESC, r.pid DESC LIMIT 21""",
    ),
    "encounter revinclude obs": (
        "Encounter",
        [("patient", "{p}"), ("_count", "5"), ("_revinclude", "Observation:encounter")],
        """SELECT o.content FROM fhir_resource o JOIN fhir_idx_reference x ON x.pid=o.pid
           WHERE x.resource_type='Observation' AND x.name='encounter' AND x.target_type='Encounter'
           AND x.target_id IN (SELECT id FROM fhir_resource WHERE resource_type='Encounter'
           AND patient_id=:p ORDER BY pid LIMIT 5)""",
    ),
    "code count (all patients)": (
        "Observation",
        [("code", "http://loinc.org|8867-4"), ("_summary", "count")],
        """SELECT count(*) FROM fhir_idx_token WHERE resource_type='Observation' AND name='code'
           AND code='8867-4' AND system='http://loinc.org'""",
    ),
}


def load(target: int, observations: int) -> None:
    with unit_of_work() as db:
        have = int(
            db.scalar(text("SELECT count(*) FROM fhir_resource WHERE resource_type='Encounter'"))
            or 0
        )
    started, made = time.perf_counter(), 0
    while have + made < target:
        with unit_of_work() as db:
            for _ in range(min(50, target - have - made)):
                person = f"p{random.randint(1, PATIENTS):08d}"
                service.transaction(db, HIS, visit(person, observations), now=datetime.now(UTC))
                made += 1
    if made:
        seconds = time.perf_counter() - started
        print(f"loaded {made} encounters (+{made * observations} observations) in {seconds:.0f}s")


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        values.append((time.perf_counter() - started) * 1000)
    values.sort()
    return statistics.median(values), values[int(len(values) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description="FHIR search latency vs hand-written SQL")
    parser.add_argument("--encounters", type=int, default=1_000_000)
    parser.add_argument("--observations", type=int, default=4, help="per encounter")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    load(args.encounters, args.observations)
    factory = get_sessionmaker()
    with unit_of_work() as db:
        counts = db.execute(
            text("SELECT resource_type, count(*) FROM fhir_resource GROUP BY 1")
        ).all()
        patients = list(
            db.scalars(
                text(
                    "SELECT DISTINCT patient_id FROM fhir_resource WHERE resource_type='Encounter'"
                )
            )
        )
    print("store:", ", ".join(f"{t} {n}" for t, n in counts), f"({len(patients)} patients)")
    print(f"{'search':28s} {'service p50':>11s} {'p95':>7s}   {'SQL p50':>8s} {'p95':>7s}  (ms)")
    for name, (resource_type, params, sql) in SEARCHES.items():
        db: Session = factory()

        def via_service(
            rt: str = resource_type, ps: list[tuple[str, str]] = params, db: Session = db
        ) -> None:
            p = random.choice(patients)
            service.search(db, HIS, rt, [(k, v.format(p=p)) for k, v in ps], now=datetime.now(UTC))
            db.rollback()  # no audit rows pile up between runs

        def via_sql(q: str = sql, db: Session = db) -> None:
            db.execute(text(q), {"p": random.choice(patients)}).all()

        s50, s95 = timed(via_service, args.runs)
        q50, q95 = timed(via_sql, args.runs)
        db.close()
        print(f"{name:28s} {s50:11.1f} {s95:7.1f}   {q50:8.1f} {q95:7.1f}")


if __name__ == "__main__":
    main()
