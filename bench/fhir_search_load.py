"""Bulk loader for the search benchmark: encounters with their observations, written as the
rows the write path produces, without going through HTTP or transaction bundles.

Each resource is stamped (``store.stamp``), indexed (``indexing.build_index``) and persisted
as ``store.persist_holding`` would — the write path's own functions — so the current,
history and index rows are exactly what a transaction bundle would leave. What is skipped:
structural validation (the resources are built valid; a sample is validated), reference
rewriting (ids are assigned here) and the per-write audit rows. The care relationship an
own-system visit opens is written too (one per patient and institution), since reads are
scoped on it.

Resumable: chunks of one transaction each, recorded in ``bench_search_chunk``; a rerun
loads only the chunks missing.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bs_search \
        .venv/bin/python bench/fhir_search_load.py --encounters 1000000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from medalliance.db import get_engine, unit_of_work
from medalliance.kit.ids import new_id
from medalliance.records import store
from medalliance.records.indexing import build_index
from medalliance.records.store import Prepared
from medalliance.records.validation import validate

CHUNK = 5_000  # encounters per transaction
OBSERVATIONS = 3  # per encounter
FIRST_DAY = datetime(2017, 1, 1, tzinfo=UTC)
DAYS = 365 * 9 + 300  # encounters from 2017 to late 2026
# Most visits are at the county hospital (whose own system is the benchmark's actor).
PROVIDERS = (("county-hospital", 7), ("city-hospital", 1), ("township-01", 1), ("county-tcm", 1))
LOINC = (
    ("8867-4", "/min", "vital-signs"),
    ("8480-6", "mm[Hg]", "vital-signs"),
    ("8462-4", "mm[Hg]", "vital-signs"),
    ("29463-7", "kg", "vital-signs"),
    ("2345-7", "mg/dL", "laboratory"),
    ("718-7", "g/dL", "laboratory"),
)
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ENCOUNTER_STATUS = (("finished", 90), ("in-progress", 5), ("cancelled", 5))


def encounter(
    rng: random.Random, person: str, provider: str, practitioner: str, n: int
) -> dict[str, Any]:
    start = FIRST_DAY + timedelta(days=rng.randrange(DAYS), minutes=rng.randrange(8 * 60, 17 * 60))
    status = rng.choices([s for s, _ in ENCOUNTER_STATUS], [w for _, w in ENCOUNTER_STATUS])[0]
    return {
        "resourceType": "Encounter",
        "id": new_id(),
        "identifier": [{"system": f"urn:medalliance:{provider}:visit", "value": f"V{n:08d}"}],
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{person}"},
        "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
        "serviceProvider": {"reference": f"Organization/{provider}"},
        "period": {"start": _instant(start), "end": _instant(start + timedelta(minutes=30))},
    }


def observation(
    rng: random.Random, enc: dict[str, Any], i: int, practitioner: str
) -> dict[str, Any]:
    code, unit, category = LOINC[rng.randrange(len(LOINC))] if i else LOINC[0]
    start = datetime.fromisoformat(enc["period"]["start"])
    return {
        "resourceType": "Observation",
        "id": new_id(),
        "status": "final" if rng.random() < 0.95 else "amended",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": enc["subject"],
        "encounter": {"reference": f"Encounter/{enc['id']}"},
        "effectiveDateTime": _instant(start + timedelta(minutes=i + 1)),
        "performer": [{"reference": f"Practitioner/{practitioner}"}],
        "valueQuantity": {
            "value": rng.randint(40, 200),
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def prepared(resource: dict[str, Any], person: str, institution: str, now: datetime) -> Prepared:
    store.stamp(resource, 1, now)
    return Prepared(
        resource=resource,
        patient_id=person,
        institution_id=institution,
        index=build_index(resource),
        method="create",
    )


def load_chunk(
    db: Session, chunk: int, persons: list[str], practitioners: list[str], now: datetime
) -> int:
    rng = random.Random(chunk)
    providers = [p for p, _ in PROVIDERS]
    weights = [w for _, w in PROVIDERS]
    writes: list[Prepared] = []
    relationships: list[tuple[str, str, str]] = []
    for n in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        person = rng.choice(persons)
        provider = rng.choices(providers, weights)[0]
        practitioner = rng.choice(practitioners)
        enc = encounter(rng, person, provider, practitioner, n)
        writes.append(prepared(enc, person, provider, now))
        for i in range(OBSERVATIONS):
            obs = observation(rng, enc, i, practitioner)
            writes.append(prepared(obs, person, provider, now))
        relationships.append((person, provider, enc["id"]))
    persist(db, writes, now)
    record_visits(db, relationships, now)
    _copy(db, "bench_search_chunk", ("chunk",), [(chunk,)])
    return len(writes)


def record_visits(db: Session, visits: list[tuple[str, str, str]], now: datetime) -> None:
    """What ``access.record_visit`` leaves: one standing relationship per (patient,
    institution), sourced from the first visit."""
    first: dict[tuple[str, str], str] = {}
    for person, institution, encounter_id in visits:
        first.setdefault((person, institution), encounter_id)
    db.execute(
        text(
            "INSERT INTO care_relationship (patient_id, institution_id, kind, source_type,"
            " source_id, created_at) SELECT v.p, v.i, 'encounter', 'Encounter', v.e, :now"
            " FROM jsonb_to_recordset(CAST(:visits AS jsonb)) AS v(p text, i text, e text)"
            " WHERE NOT EXISTS (SELECT 1 FROM care_relationship c WHERE c.patient_id = v.p"
            " AND c.institution_id = v.i AND c.kind = 'encounter' AND c.expires_at IS NULL)"
        ),
        {
            "visits": json.dumps([{"p": p, "i": i, "e": e} for (p, i), e in first.items()]),
            "now": now,
        },
    )


def persist(db: Session, writes: list[Prepared], now: datetime) -> None:
    """The rows of ``store.persist_holding`` for creates, all by COPY (pids drawn from the
    sequence)."""
    pids = db.scalars(
        text("SELECT nextval('fhir_resource_pid_seq') FROM generate_series(1, :n)"),
        {"n": len(writes)},
    ).all()
    for w, pid in zip(writes, pids, strict=True):
        w.pid, w.raw = pid, store.dump(w.resource)
    resource_columns = ("pid", "resource_type", "id", "version", "last_updated", "patient_id")
    _copy(
        db,
        "fhir_resource",
        (*resource_columns, "institution_id", "sort_date", "deleted", "content"),
        [
            (*_head(w, now), w.institution_id, w.index.sort_date, False, w.raw.decode())
            for w in writes
        ],
    )
    _copy(
        db,
        "fhir_resource_version",
        (*resource_columns, "method", "deleted", "content"),
        [(*_head(w, now), w.method, False, w.raw.decode()) for w in writes],
    )
    for kind, table in INDEX_TABLES.items():
        rows = [
            {**row, "pid": w.pid, "resource_type": w.resource["resourceType"]}
            | {"patient_id": w.patient_id}
            for w in writes
            for row in getattr(w.index, kind)
        ]
        if rows:
            columns = tuple(rows[0])
            _copy(db, table, columns, [tuple(r[c] for c in columns) for r in rows])


def _head(w: Prepared, now: datetime) -> tuple[Any, ...]:
    return (w.pid, w.resource["resourceType"], w.resource["id"], w.version, now, w.patient_id)


INDEX_TABLES = {
    "token": "fhir_idx_token",
    "string": "fhir_idx_string",
    "date": "fhir_idx_date",
    "reference": "fhir_idx_reference",
    "quantity": "fhir_idx_quantity",
}


def _copy(db: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    raw: Any = db.connection().connection.dbapi_connection
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _worker(chunk: int) -> int:
    with unit_of_work() as db:
        persons = list(db.scalars(text("SELECT id FROM person ORDER BY id")))
        practitioners = list(db.scalars(text("SELECT id FROM practitioner ORDER BY id")))
        # Bulk-load settings: the index rows' foreign-key triggers are skipped (every row
        # points at a resource of the same transaction) and commits do not wait for fsync.
        db.execute(text("SET LOCAL session_replication_role = replica"))
        db.execute(text("SET LOCAL synchronous_commit = off"))
        return load_chunk(db, chunk, persons, practitioners, datetime.now(UTC))


def load(target: int, workers: int) -> None:
    with unit_of_work() as db:
        db.execute(text("CREATE TABLE IF NOT EXISTS bench_search_chunk (chunk int PRIMARY KEY)"))
    with unit_of_work() as db:
        done = set(db.scalars(text("SELECT chunk FROM bench_search_chunk")))
        persons = list(db.scalars(text("SELECT id FROM person ORDER BY id LIMIT 1")))
        practitioners = list(db.scalars(text("SELECT id FROM practitioner ORDER BY id LIMIT 1")))
    sample = random.Random(0)
    enc = encounter(sample, persons[0], "county-hospital", practitioners[0], 0)
    validate(enc)  # the generated shapes are valid R4 (checked once, not per resource)
    validate(observation(sample, enc, 1, practitioners[0]))
    todo = [c for c in range(-(-target // CHUNK)) if c not in done]
    started, loaded = time.perf_counter(), 0
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for written in pool.imap_unordered(_worker, todo):
            loaded += CHUNK
            rate = loaded / (time.perf_counter() - started)
            print(
                f"+{written} resources: {loaded} of {len(todo) * CHUNK} encounters, {rate:.0f}/s",
                flush=True,
            )
    # What autovacuum would have done by the time a store this size is searched: statistics
    # for the planner, and the visibility map for index-only scans.
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("fhir_resource", *INDEX_TABLES.values(), "care_relationship"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))


def main() -> None:
    parser = argparse.ArgumentParser(description="bulk-load encounters for bench/fhir_search.py")
    parser.add_argument("--encounters", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load(args.encounters, args.workers)


if __name__ == "__main__":
    main()
