"""What BEGIN and COMMIT cost around one small statement, on both sides of the wire.

Runs the same primary-key SELECT N times in a transaction per statement, then in autocommit,
and prints the client's CPU (this process: psycopg and Python), the server backend's CPU
(from /proc, so run it on the database's machine) and the wall time per statement. The
difference is what a request saves by not wrapping its one statement in BEGIN/COMMIT.

    .venv/bin/python bench/pg_transaction_cost.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_fhir [--statements 20000]

The database needs the demo consortium (persons p00000001...).
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(url: str, statements: int, *, autocommit: bool) -> tuple[float, float, float]:
    """(client µs, backend µs, wall µs) per statement."""
    with psycopg.connect(url, autocommit=autocommit) as conn:
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        conn.commit()
        client0, server0, wall0 = time.process_time(), backend_cpu(backend), time.perf_counter()
        for i in range(statements):
            conn.execute(
                "SELECT id FROM person WHERE id = %s", (f"p{i % 2000 + 1:08d}",)
            ).fetchone()
            if not autocommit:
                conn.commit()
        client = time.process_time() - client0
        server = backend_cpu(backend) - server0
        wall = time.perf_counter() - wall0
    return tuple(1e6 * x / statements for x in (client, server, wall))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--statements", type=int, default=20_000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    for autocommit in (False, True, False, True):
        client, server, wall = measure(url, args.statements, autocommit=autocommit)
        how = "autocommit        " if autocommit else "BEGIN ... COMMIT  "
        print(f"{how} client {client:6.1f} µs  backend {server:6.1f} µs  wall {wall:6.1f} µs")


if __name__ == "__main__":
    main()
