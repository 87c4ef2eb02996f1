"""Referral benchmark on PostgreSQL: 100,000 referrals in the store, 32 concurrent
coordinators running accept(+book) → arrive → complete, and the referral queue's query.

    MEDALLIANCE_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_db \
        .venv/bin/python bench/referrals.py [--referrals 100000] [--coordinators 32] [--per 25]

The database named by the URL is DROPPED and rebuilt. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "test")
os.environ.setdefault("MEDALLIANCE_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from medalliance.access.models import CareRelationship
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import REPO_ROOT
from medalliance.db import make_engine
from medalliance.demo import referrals as demo
from medalliance.demo.loader import Scale, load
from medalliance.errors import Conflict
from medalliance.kit.clock import utcnow
from medalliance.patients.models import Person
from medalliance.referrals import repository, service
from medalliance.referrals.enums import Box, ReferralEvent
from medalliance.referrals.models import Referral, ReferralHistory
from medalliance.referrals.repository import QueueFilter
from medalliance.referrals.schemas import Outcome, TransitionRequest
from medalliance.registry.models import Department
from medalliance.scheduling import service as scheduling


def build(engine: Engine, referrals: int, work: int) -> tuple[list[str], list[int]]:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        config = Config(str(REPO_ROOT / "alembic.ini"))
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")
    started = time.perf_counter()
    with Session(engine) as db:
        load(db, scale=Scale.SMALL, seed=1)
        existing = db.scalar(select(func.count()).select_from(Referral)) or 0
        names = dict(db.execute(select(Person.id, Person.name)).all())
        ids = sorted(names)
        rng = random.Random(42)
        end = datetime(2026, 11, 1, 9, tzinfo=UTC)
        rows, history = [], []
        for row, steps, _ in demo._generate(rng, ids, names, referrals - existing, end):
            rows.append(row)
            history.extend(steps)
        for start in range(0, len(rows), 5000):
            db.execute(insert(Referral), rows[start : start + 5000])
        for start in range(0, len(history), 10000):
            db.execute(insert(ReferralHistory), history[start : start + 10000])
        pending, slot_ids = _work(db, rng, ids, names, work)
        db.commit()
        total = db.scalar(select(func.count()).select_from(Referral))
    db_size = _db_size(engine)
    print(
        f"store: {total:,} referrals, {len(history):,}+ history rows, "
        f"built in {time.perf_counter() - started:.1f} s, database {db_size}"
    )
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return pending, slot_ids


def _work(
    db: Session, rng: random.Random, ids: list[str], names: dict[str, str], count: int
) -> tuple[list[str], list[int]]:
    """Fresh requested referrals to the county's cardiology, and enough open slots."""
    now = utcnow()
    pending = []
    for n in range(count):
        patient = rng.choice(ids)
        rid = f"bench{n:08d}"
        db.add(
            Referral(
                id=rid,
                patient_id=patient,
                patient_name=names[patient],
                episode_id=rid,
                direction="up",
                urgency="routine",
                status="requested",
                green_channel=False,
                from_institution_id=f"township-{rng.randint(1, 10):02d}",
                to_institution_id="county-hospital",
                to_department_id="county-hospital:03.04",
                requester_name="bench",
                reason_code="needs_equipment",
                diagnoses=[{"code": "I25", "display": "慢性缺血性心脏病"}],
                requested_at=now,
                deadline_at=now + timedelta(hours=24),
                escalation_deadline_at=now + timedelta(hours=48),
                created_at=now,
                updated_at=now,
            )
        )
        pending.append(rid)
    db.flush()
    db.execute(
        insert(CareRelationship),
        [
            {
                "patient_id": p,
                "institution_id": "county-hospital",
                "kind": "referral",
                "source_type": "ServiceRequest",
                "source_id": rid,
            }
            for rid, p in ((r, db.get(Referral, r).patient_id) for r in pending)  # type: ignore[union-attr]
        ],
    )
    dept = db.get(Department, "county-hospital:03.04")
    assert dept is not None
    admin = Actor(user_id=None, username="bench", role=Role.ADMIN, institution_id="county-hospital")
    slot_ids: list[int] = []
    day = (now + timedelta(days=2)).date()
    while len(slot_ids) < count:
        slots = scheduling.open_day(
            db, admin, dept, day=day, count=200, first_start=datetime.min.time(), minutes=5, now=now
        )
        slot_ids += [s.id for s in slots]
        day += timedelta(days=1)
    return pending, slot_ids[:count]


def _db_size(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar()
        )


def race(engine: Engine, pending: list[str], slots: list[int], coordinators: int) -> None:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    latencies: list[float] = []
    by_event: dict[str, list[float]] = {}
    conflicts = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(coordinators)

    def coordinator(n: int) -> None:
        actor = Actor(
            user_id=f"bench-{n}",
            username=f"coordinator{n}",
            role=Role.COORDINATOR,
            institution_id="county-hospital",
        )
        mine = list(range(n, len(pending), coordinators))
        barrier.wait()
        for index in mine:
            steps = [
                (ReferralEvent.ACCEPT, TransitionRequest(slot_id=slots[index])),
                (ReferralEvent.ARRIVE, TransitionRequest()),
                (ReferralEvent.COMPLETE, TransitionRequest(outcome=Outcome(text="PCI, stable"))),
            ]
            for event, body in steps:
                started = time.perf_counter()
                try:
                    with factory() as db:
                        service.transition(db, actor, pending[index], event, body, now=utcnow())
                        db.commit()
                except Conflict:
                    with lock:
                        conflicts[0] += 1
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    by_event.setdefault(event.value, []).append(elapsed * 1000)

    threads = [threading.Thread(target=coordinator, args=(n,)) for n in range(coordinators)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"workflow: {coordinators} coordinators, {len(ms):,} transitions "
        f"(accept+book, arrive, complete) in {wall:.1f} s = {len(ms) / wall:,.0f} transitions/s; "
        f"p50 {_pct(ms, 50):.1f} ms, p99 {_pct(ms, 99):.1f} ms, conflicts {conflicts[0]}"
    )
    for event, values in by_event.items():
        values.sort()
        print(f"  {event}: p50 {_pct(values, 50):.1f} ms, p99 {_pct(values, 99):.1f} ms")


def queue(engine: Engine, runs: int) -> None:
    """The queue page's query: county-hospital (the busiest receiver), open and all."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    actor = Actor(
        user_id="q", username="coordinator", role=Role.COORDINATOR, institution_id="county-hospital"
    )
    township = Actor(user_id="t", username="doctor", role=Role.DOCTOR, institution_id="township-03")
    cases = {
        "incoming open (by deadline)": (actor, QueueFilter(box=Box.INCOMING)),
        "incoming all (by last change)": (actor, QueueFilter(box=Box.INCOMING, statuses=[])),
        "outgoing all, township": (township, QueueFilter(box=Box.OUTGOING, statuses=[])),
        "incoming completed, filtered": (
            actor,
            QueueFilter(box=Box.INCOMING, statuses=["completed"], urgency="urgent"),
        ),
    }
    for name, (who, criteria) in cases.items():
        query_ms, page_ms = [], []
        for _ in range(runs):
            with factory() as db:
                started = time.perf_counter()
                repository.queue(db, who.institution_id or "", criteria, offset=0, limit=101)
                query_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                service.queue(db, who, criteria, now=utcnow(), limit=100)
                page_ms.append((time.perf_counter() - started) * 1000)
                db.rollback()
        query_ms.sort()
        page_ms.sort()
        print(
            f"queue {name}: query p50 {_pct(query_ms, 50):.1f} ms p95 {_pct(query_ms, 95):.1f} ms; "
            f"service (query + audit row) p95 {_pct(page_ms, 95):.1f} ms (target ≤ 50 ms)"
        )


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--coordinators", type=int, default=32)
    parser.add_argument("--per", type=int, default=25, help="referrals per coordinator")
    parser.add_argument("--queue-runs", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("MEDALLIANCE_BENCH_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        raise SystemExit("set MEDALLIANCE_BENCH_DATABASE_URL to a PostgreSQL database to rebuild")
    engine = make_engine(url)
    work = args.coordinators * args.per
    pending, slots = build(engine, args.referrals, work)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    print(f"PostgreSQL {version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    queue(engine, args.queue_runs)
    race(engine, pending, slots, args.coordinators)
    queue(engine, args.queue_runs)  # again, with the workflow's rows in place
    engine.dispose()


if __name__ == "__main__":
    main()
