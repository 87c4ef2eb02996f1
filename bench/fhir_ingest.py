"""Transaction-bundle ingest through the store (validation, reference resolution, index
extraction, history, audit), beside a raw PostgreSQL COPY of the same JSON in the same run, and
beside a COPY of the rows the store wrote for them (current, history, index rows) into
copies of the same tables: the ceiling of the storage design itself.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir \
        .venv/bin/python bench/fhir_ingest.py --resources 1000000 --workers 2

``--workers`` processes (one per core, as ``serve --workers``) each ingest their share;
the rate is all resources over the wall time from the common start (after each process
has loaded the FHIR definitions) to the last one finishing. The raw COPY then loads the
JSON of up to ``--copy-sample`` of the same resources, in the same run.

Needs the demo consortium loaded (patients are MPI persons). Each bundle is one visit of one
person: an Encounter by the county hospital's own system plus its clinical resources.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.db import get_engine, unit_of_work
from medalliance.records import searchparams, service
from medalliance.records.store import INDEX_MODELS
from medalliance.records.validation import validate

HIS = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
LOINC = (("8867-4", "/min"), ("8480-6", "mm[Hg]"), ("8462-4", "mm[Hg]"), ("29463-7", "kg"))


def visit(person: str, observations: int) -> dict[str, Any]:
    enc_url = f"urn:uuid:{uuid.uuid4()}"
    subject = {"reference": f"Patient/{person}"}
    day = f"2026-{random.randint(1, 10):02d}-{random.randint(1, 28):02d}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": enc_url,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "subject": subject,
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceProvider": {"reference": "Organization/county-hospital"},
                "period": {"start": f"{day}T08:00:00Z", "end": f"{day}T08:30:00Z"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        }
    ]
    for i in range(observations):
        code, unit = LOINC[i % len(LOINC)]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "encounter": {"reference": enc_url},
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "effectiveDateTime": f"{day}T08:{i % 60:02d}:00Z",
                    "valueQuantity": {
                        "value": random.randint(40, 200),
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def ingest(total: int, per_bundle: int, patients: int, keep: int) -> tuple[int, list[str]]:
    """Load ``total`` resources in transactions of 10 bundles; keep the JSON of the first
    ``keep`` for the raw COPY."""
    loaded, sample = 0, []
    while loaded < total:
        bundles = [visit(f"p{random.randint(1, patients):08d}", per_bundle - 1) for _ in range(10)]
        with unit_of_work() as db:
            for bundle in bundles:
                service.transaction(db, HIS, bundle, now=datetime.now(UTC))
        loaded += sum(len(b["entry"]) for b in bundles)
        if len(sample) < keep:
            sample += [json.dumps(e["resource"]) for b in bundles for e in b["entry"]]
    return loaded, sample[:keep]


def worker(share: int, args: argparse.Namespace, start: Any, results: Any, index: int) -> None:
    """One process: warm up (definitions, models), wait for the others, then ingest."""
    random.seed(args.seed + index)
    warm = visit("p00000001", 3)
    searchparams.warm()
    for entry in warm["entry"]:
        validate(entry["resource"])
    start.wait()
    began = time.perf_counter()
    keep = args.copy_sample // args.workers
    loaded, sample = ingest(share, args.bundle_size, args.patients, keep)
    results.put((index, began, time.perf_counter(), loaded, sample))


def raw_copy(sample: list[str]) -> float:
    """The ceiling: COPY of the same resource JSON into a logged table of (id, jsonb) with a
    primary key and nothing else (no validation, history, index rows or audit)."""
    engine = get_engine()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_raw_fhir")
        cur.execute("CREATE TABLE bench_raw_fhir (id bigserial PRIMARY KEY, content jsonb)")
        raw.commit()
        started = time.perf_counter()
        with cur.copy("COPY bench_raw_fhir (content) FROM STDIN") as copy:
            for doc in sample:
                copy.write_row((doc,))
        raw.commit()
        rate = len(sample) / (time.perf_counter() - started)
        cur.execute("DROP TABLE bench_raw_fhir")
        raw.commit()
        return rate


STORE_TABLES = (
    "fhir_resource",
    "fhir_resource_version",
    *(model.__tablename__ for model in INDEX_MODELS),
)


def max_pid() -> int:
    engine = get_engine()
    with engine.connect() as conn:
        found = int(conn.execute(text("SELECT coalesce(max(pid), 0) FROM fhir_resource")).scalar())
    engine.dispose()  # the workers are forked next: they must not inherit this connection
    return found


def stored_rows_copy(after_pid: int, limit: int) -> tuple[float, int]:
    """The ceiling of this storage design: the rows the store wrote for ``limit`` of the
    ingested resources (current, history and index rows, as stored), COPYed in binary into
    copies of the same tables with the same indexes (no foreign keys). No Python per row."""
    engine = get_engine()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute(
            "SELECT max(pid) FROM (SELECT pid FROM fhir_resource WHERE pid > %s "
            "ORDER BY pid LIMIT %s) p",
            (after_pid, limit),
        )
        last = cur.fetchone()[0]
        dumps: dict[str, bytearray] = {}
        for table in STORE_TABLES:
            data = bytearray()
            select = f"SELECT * FROM {table} WHERE pid > {after_pid} AND pid <= {last}"
            with cur.copy(f"COPY ({select}) TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    data += block
            dumps[table] = data
            cur.execute(f"DROP TABLE IF EXISTS bench_copy_{table}")
            cur.execute(f"CREATE TABLE bench_copy_{table} (LIKE {table} INCLUDING ALL)")
        cur.execute(f"SELECT count(*) FROM fhir_resource WHERE pid > {after_pid} AND pid <= {last}")
        resources = int(cur.fetchone()[0])
        raw.commit()
        started = time.perf_counter()
        for table, data in dumps.items():
            with cur.copy(f"COPY bench_copy_{table} FROM STDIN (FORMAT binary)") as copy:
                copy.write(data)
        raw.commit()
        rate = resources / (time.perf_counter() - started)
        for table in STORE_TABLES:
            cur.execute(f"DROP TABLE bench_copy_{table}")
        raw.commit()
        return rate, resources


def main() -> None:
    parser = argparse.ArgumentParser(description="FHIR transaction ingest vs raw COPY")
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--bundle-size", type=int, default=100)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="processes (one per core)")
    parser.add_argument("--copy-sample", type=int, default=100_000, help="docs for raw COPY")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    context = multiprocessing.get_context("fork")  # before any connection is opened here
    start, results = context.Barrier(args.workers + 1), context.Queue()
    share = -(-args.resources // args.workers)
    processes = [
        context.Process(target=worker, args=(share, args, start, results, i))
        for i in range(args.workers)
    ]
    first_pid = max_pid()
    for process in processes:
        process.start()
    start.wait()
    done = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = max(d[2] for d in done) - min(d[1] for d in done)
    loaded = sum(d[3] for d in done)
    sample = [doc for d in sorted(done) for doc in d[4]]
    rate = loaded / elapsed
    load_during = os.getloadavg()[0]
    copy_rate = raw_copy(sample)
    rows_rate, rows_resources = stored_rows_copy(first_pid, args.copy_sample)
    with get_engine().connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM fhir_resource")).scalar()
    print(
        f"store:    {rate:9.0f} resources/s  ({loaded} resources in {elapsed:.0f}s, "
        f"{args.workers} processes, transaction bundles of {args.bundle_size}, "
        f"{stored} stored in total)"
    )
    print(
        f"raw COPY: {copy_rate:9.0f} resources/s  "
        f"(same JSON, {len(sample)} docs, logged jsonb table, primary key only)"
    )
    print(
        f"rows COPY:{rows_rate:9.0f} resources/s  (the rows the store wrote for {rows_resources} "
        "of them: current, history, index rows, into copies of the same tables and indexes)"
    )
    print(f"ratio:    {rate / copy_rate:9.1%} of raw COPY, {rate / rows_rate:.1%} of rows COPY")
    print(f"load at end of ingest {load_during:.2f}")


if __name__ == "__main__":
    main()
