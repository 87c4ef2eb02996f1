"""What one FHIR create costs through the records service, a transaction (commit) per
create as a request has: an Observation with subject and encounter (a reference to a
stored resource, which the write holds until it commits). Prints client CPU (this
process), PostgreSQL backend CPU (from /proc: run it on the database's machine) and wall
time per create, for each round and their median.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir \
        .venv/bin/python bench/fhir_create_cost.py --creates 2000 --rounds 3

Needs the demo consortium (persons p00000001...). To compare two revisions, run this
file with ``PYTHONPATH`` set to the other revision's ``src`` (``git archive REV src``),
alternating runs: CPU time on a shared machine moves with its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import text

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.db import get_sessionmaker, unit_of_work
from medalliance.records import service

TICK = os.sysconf("SC_CLK_TCK")
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HIS = Actor(
    user_id=None,
    username="county-his",
    role=Role.SYSTEM,
    institution_id="county-hospital",
    client_id="county-his",
)
PATIENTS = [f"p{n:08d}" for n in range(1, 21)]


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def encounter(patient: str) -> dict[str, object]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": "Organization/county-hospital"},
        "period": {"start": "2026-10-01T08:00:00Z", "end": "2026-10-01T09:00:00Z"},
    }


def observation(patient: str, visit: str, value: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{visit}"},
        "effectiveDateTime": "2026-10-01T08:05:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def one_round(creates: int) -> tuple[float, float, float]:
    """(client µs, backend µs, wall µs) per create."""
    factory = get_sessionmaker()
    visits: dict[str, str] = {}
    for patient in PATIENTS:
        with unit_of_work(factory) as db:
            visits[patient] = service.create(db, HIS, encounter(patient), now=NOW).id
    with factory() as db:
        backend = db.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.commit()
        # One pooled connection: every unit of work below reuses this backend.
        c0, s0, w0 = time.process_time(), backend_cpu(backend), time.perf_counter()
    for i in range(creates):
        patient = PATIENTS[i % len(PATIENTS)]
        with unit_of_work(factory) as db:
            service.create(db, HIS, observation(patient, visits[patient], 60 + i % 40), now=NOW)
    c, s, w = time.process_time() - c0, backend_cpu(backend) - s0, time.perf_counter() - w0
    return tuple(1e6 * x / creates for x in (c, s, w))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    one_round(200)  # warm up: prepared statements, caches
    results = [one_round(args.creates) for _ in range(args.rounds)]
    for name, i in (("client", 0), ("backend", 1), ("wall", 2)):
        values = [r[i] for r in results]
        shown = " ".join(f"{v:7.1f}" for v in values)
        print(f"{name:8} µs/create  median {statistics.median(values):7.1f}   ({shown})")


if __name__ == "__main__":
    main()
