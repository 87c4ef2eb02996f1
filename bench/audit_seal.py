"""What chaining the audit log costs per event: copies N existing audit rows as new ones,
then seals until nothing is pending, and prints wall time, this process's CPU and the
database backend's CPU per event sealed. Every audited request costs one seal, so this is
a share of every request's price.

    .venv/bin/python bench/audit_seal.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir [--events 20000]

The database needs audit rows to copy (any database the CRUD or ingest bench has run on);
the backend's CPU is read from /proc, so run it on the database's machine.
"""

from __future__ import annotations

import argparse
import os
import time

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from medalliance.audit import service
from medalliance.db import make_engine

TICK = os.sysconf("SC_CLK_TCK")
_COPY = text(
    "INSERT INTO audit_event (occurred_at, user_id, username, role, institution_id, "
    "client_id, action, resource_type, resource_id, patient_id, basis, ip, outcome, detail) "
    "SELECT occurred_at, user_id, username, role, institution_id, client_id, action, "
    "resource_type, resource_id, patient_id, basis, ip, outcome, detail "
    "FROM audit_event ORDER BY id LIMIT :n"
)


def backend_cpu(connection: Connection) -> float:
    pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    with engine.connect() as connection, Session(connection) as db:
        while service.seal_pending(db):  # whatever was pending before is not measured
            db.commit()
        db.commit()
        copied = connection.execute(_COPY, {"n": args.events}).rowcount
        db.commit()
        sealed, cpu0 = 0, backend_cpu(connection)
        client0, wall0 = time.process_time(), time.perf_counter()
        while (n := service.seal_pending(db)) > 0:
            db.commit()
            sealed += n
        wall, client = time.perf_counter() - wall0, time.process_time() - client0
        backend = backend_cpu(connection) - cpu0
    if not sealed:
        raise SystemExit(f"nothing sealed ({copied} rows copied): is the audit log empty?")
    per = 1e6 / sealed
    print(
        f"sealed {sealed} events: wall {wall * per:.1f} µs, client CPU {client * per:.1f} µs, "
        f"backend CPU {backend * per:.1f} µs per event"
    )


if __name__ == "__main__":
    main()
