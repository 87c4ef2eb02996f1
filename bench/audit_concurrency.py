"""Does auditing serialise writers? 32 threads each commit small write transactions on
PostgreSQL, once with an audit row per transaction (and the sealer chaining them in the
background), once without; then the chain is verified.

    .venv/bin/python bench/audit_concurrency.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_audit

Target (issue: access matrix): audited throughput no worse than half the unaudited one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable

os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "development")

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from medalliance.audit import service as audit
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import REPO_ROOT
from medalliance.db import make_engine
from medalliance.events import service as events

ACTOR = Actor("u1", "doctor", Role.DOCTOR, "township-01", ip="127.0.0.1")


def _prepare(url: str) -> Engine:
    base, _, name = url.rpartition("/")
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(url)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


def _write(factory: sessionmaker[Session], audited: bool, n: int) -> None:
    with factory() as db, db.begin():
        event = events.publish(db, "bench.write", {"n": n}, institution_ids=["township-01"])
        if audited:
            audit.record(
                db,
                ACTOR,
                "write",
                resource_type="OutboxEvent",
                resource_id=str(event.id),
                patient_id=f"p{n % 5000:08d}",
            )


def _run(
    factory: sessionmaker[Session],
    *,
    audited: bool,
    threads: int,
    per_thread: int,
    sealer: Callable[[threading.Event], None] | None,
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        mine = []
        for i in range(per_thread):
            started = time.perf_counter()
            _write(factory, audited, offset * per_thread + i)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    stop = threading.Event()
    sealing = threading.Thread(target=sealer, args=(stop,)) if sealer else None
    if sealing:
        sealing.start()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    stop.set()
    if sealing:
        sealing.join()
    return threads * per_thread / elapsed, latencies


def _sealer(factory: sessionmaker[Session]) -> Callable[[threading.Event], None]:
    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            with factory() as db, db.begin():
                audit.seal_pending(db)
            stop.wait(0.2)

    return loop


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_audit"
    )
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--per-thread", type=int, default=200)
    args = parser.parse_args()
    engine = _prepare(args.database_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    _run(factory, audited=False, threads=4, per_thread=20, sealer=None)  # warm the pool
    plain, plain_lat = _run(
        factory, audited=False, threads=args.threads, per_thread=args.per_thread, sealer=None
    )
    audited, audited_lat = _run(
        factory,
        audited=True,
        threads=args.threads,
        per_thread=args.per_thread,
        sealer=_sealer(factory),
    )
    with factory() as db, db.begin():
        while audit.seal_pending(db):
            pass
    with factory() as db:
        report = audit.verify(db)
    print(f"writers                 {args.threads} threads x {args.per_thread} transactions")
    print(
        f"without audit           {plain:8.0f} tx/s   p50 {_pct(plain_lat, 50):6.1f} ms"
        f"   p99 {_pct(plain_lat, 99):6.1f} ms"
    )
    print(
        f"with audit + sealer     {audited:8.0f} tx/s   p50 {_pct(audited_lat, 50):6.1f} ms"
        f"   p99 {_pct(audited_lat, 99):6.1f} ms"
    )
    print(f"audited / unaudited     {audited / plain:8.2f}  (target >= 0.50)")
    print(
        f"chain                   {'intact' if report.ok else 'BROKEN: ' + str(report.reason)}"
        f", {report.checked} sealed, {report.unsealed} pending"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
