"""CRUD chain against a running server: 32 concurrent member-system clients, each
iteration creating an Encounter, a Condition, 3 Observations, a MedicationRequest, a
DiagnosticReport and a CarePlan for a demo person, then reading, updating and deleting
each. Prints req/s and p50/p99 per operation.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir \
        .venv/bin/medalliance serve --workers 2 --port 8100 &
    .venv/bin/python bench/fhir_crud.py --url http://127.0.0.1:8100 --clients 32 --seconds 60 \
        --server-pid $! --database-url postgresql://postgres@127.0.0.1:5432/bench_fhir

The database needs the demo consortium (``medalliance demo load``): persons are MPI rows,
Patient is not written here.

``--server-pid`` (the ``serve`` process) and ``--database-url`` (the database it serves)
add CPU per request, from /proc: the server's processes, the PostgreSQL backends connected
to that database, and this load generator. Throughput on a shared 2-core machine moves
with whatever else runs; CPU per request moves much less, and says where the time goes.

The load generator shares the server's two cores, so what it spends per request is taken
from the server. ``--client raw`` (the default) writes each HTTP/1.1 request and reads its
response by hand over one keep-alive socket per thread, checking status and
Content-Length like any client; ``--client lean`` uses ``http.client`` (its header
parsing through the ``email`` package cost ~0.1 ms a request) and ``--client httpx``
httpx (~0.6 ms), so the three can be compared against one server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import httpx

FHIR = "application/fhir+json"
TICK = os.sysconf("SC_CLK_TCK")


def token(url: str) -> str:
    response = httpx.post(
        f"{url}/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "county-his",
            "client_secret": "medalliance",
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def resources(person: str, encounter_id: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{person}"}
    enc = {"reference": f"Encounter/{encounter_id}"}
    loinc = "http://loinc.org"
    obs = [
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": subject,
            "encounter": enc,
            "code": {"coding": [{"system": loinc, "code": code}]},
            "effectiveDateTime": "2026-10-01T08:05:00Z",
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit},
        }
        for code, value, unit in (
            ("8867-4", 72, "/min"),
            ("8480-6", 128, "mm[Hg]"),
            ("29463-7", 61, "kg"),
        )
    ]
    return [
        {
            "resourceType": "Condition",
            "subject": subject,
            "encounter": enc,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
            "recordedDate": "2026-10-01",
        },
        *obs,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "encounter": enc,
            "medicationCodeableConcept": {"text": "amlodipine 5 mg"},
            "authoredOn": "2026-10-01",
        },
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "subject": subject,
            "encounter": enc,
            "code": {"coding": [{"system": loinc, "code": "24323-8"}]},
            "effectiveDateTime": "2026-10-01",
        },
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": subject,
            "encounter": enc,
            "period": {"start": "2026-10-01"},
        },
    ]


class Http:
    """One keep-alive connection; ``request`` gives (status, body) for a JSON body."""

    def __init__(self, url: str, bearer: str, client: str) -> None:
        self.base = urlsplit(url).path.rstrip("/") + "/fhir"
        self.headers = {"Authorization": f"Bearer {bearer}", "Content-Type": FHIR}
        if client == "httpx":
            self.httpx: httpx.Client | None = httpx.Client(
                base_url=url, headers=self.headers, timeout=60
            )
        else:
            self.httpx = None
            parts = urlsplit(url)
            self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        if self.httpx is not None:
            response = self.httpx.request(method, self.base + path, content=data, headers=headers)
            return response.status_code, response.content
        self.conn.request(method, self.base + path, data, {**self.headers, **(headers or {})})
        reply = self.conn.getresponse()
        return reply.status, reply.read()


class RawHttp:
    """HTTP/1.1 by hand over one keep-alive socket: ``request`` gives (status, body)."""

    def __init__(self, url: str, bearer: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.base = parts.path.rstrip("/") + "/fhir"
        self.fixed = (
            f"Host: {parts.netloc}\r\nAuthorization: Bearer {bearer}\r\n"
            f"Content-Type: {FHIR}\r\nAccept: {FHIR}\r\n"
        )
        self.pending = b""  # bytes read past the last response

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = (
            f"{method} {self.base}{path} HTTP/1.1\r\n{self.fixed}{extra}"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + data)
        return self._response()

    def _response(self) -> tuple[int, bytes]:
        received = self.pending
        while (end := received.find(b"\r\n\r\n")) < 0:
            received += self._recv()
        head, body = received[:end].lower(), received[end + 4 :]
        if b"\r\ntransfer-encoding:" in head:
            raise ConnectionError("chunked response: the FHIR API sends Content-Length")
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        while len(body) < length:
            body += self._recv()
        self.pending = body[length:]
        return int(head[9:12]), body[:length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk


class Worker(threading.Thread):
    def __init__(
        self, url: str, bearer: str, client: str, deadline: float, stats: dict[str, list[float]]
    ) -> None:
        super().__init__(daemon=True)
        self.http: Http | RawHttp = (
            RawHttp(url, bearer) if client == "raw" else Http(url, bearer, client)
        )
        self.deadline, self.stats, self.errors = deadline, stats, 0
        self.local: dict[str, list[float]] = defaultdict(list)

    def call(
        self, op: str, expected: int, method: str, path: str, body: Any = None, **kw: Any
    ) -> bytes:
        started = time.perf_counter()
        status, content = self.http.request(method, path, body, **kw)
        self.local[op].append(time.perf_counter() - started)
        if status != expected:
            self.errors += 1
        return content

    def create(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        raw = self.call("create", 201, "POST", f"/{resource['resourceType']}", resource)
        made: dict[str, Any] = json.loads(raw)
        return made if made.get("resourceType") == resource["resourceType"] else None

    def run(self) -> None:
        while time.perf_counter() < self.deadline:
            person = f"p{random.randint(1, 2000):08d}"
            encounter = {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{person}"},
                "serviceProvider": {"reference": "Organization/county-hospital"},
                "period": {"start": "2026-10-01T08:00:00Z"},
            }
            first = self.create(encounter)
            if first is None:
                continue  # counted; nothing to chain on
            made = [first]
            for resource in resources(person, first["id"]):
                created = self.create(resource)
                if created is not None:
                    made.append(created)
            for r in made:
                self.call("read", 200, "GET", f"/{r['resourceType']}/{r['id']}")
            for r in made:
                headers = {"If-Match": r["meta"]["versionId"].join(('W/"', '"'))}
                path = f"/{r['resourceType']}/{r['id']}"
                self.call("update", 200, "PUT", path, r, headers=headers)
            for r in reversed(made):
                self.call("delete", 204, "DELETE", f"/{r['resourceType']}/{r['id']}")
        for op, values in self.local.items():
            self.stats[op].extend(values)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes (those that ended meanwhile count as 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children[pid]
    return found


def backends(database_url: str) -> list[int]:
    """PostgreSQL backends serving the database (the server's pooled connections)."""
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


class CpuMeter:
    """CPU spent by the server, its database backends and this process over a run."""

    def __init__(self, server_pid: int, database_url: str) -> None:
        self.server = process_tree(server_pid)
        self.database_url = database_url
        self.before = self.sample(backends(database_url))

    def sample(self, database: list[int]) -> tuple[float, float, float]:
        return (
            cpu_seconds(self.server),
            cpu_seconds(database),
            cpu_seconds([os.getpid()]),
        )

    def report(self, requests: int) -> str:
        # Backends opened during the run started from zero; their whole CPU counts.
        database = backends(self.database_url)
        after = self.sample(database)
        per = [1000 * (a - b) / max(requests, 1) for a, b in zip(after, self.before, strict=True)]
        return (
            f"  CPU per request: server {per[0]:.2f} ms, PostgreSQL {per[1]:.2f} ms, "
            f"load generator {per[2]:.2f} ms, total {sum(per):.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8100")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--client", choices=("raw", "lean", "httpx"), default="raw")
    parser.add_argument("--server-pid", type=int, help="the serve process, for CPU per request")
    parser.add_argument("--database-url", help="the database the server uses (with --server-pid)")
    args = parser.parse_args()
    bearer = token(args.url)
    meter = CpuMeter(args.server_pid, args.database_url) if args.server_pid else None
    stats: dict[str, list[float]] = defaultdict(list)
    started = time.perf_counter()
    workers = [
        Worker(args.url, bearer, args.client, started + args.seconds, stats)
        for _ in range(args.clients)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    total = sum(len(v) for v in stats.values())
    print(
        f"{args.clients} {args.client} clients, {elapsed:.1f}s, {total} requests, "
        f"{total / elapsed:.0f} req/s, errors {sum(w.errors for w in workers)}"
    )
    for op in ("create", "read", "update", "delete"):
        values = sorted(stats[op])
        if values:
            p50 = statistics.median(values) * 1000
            p99 = values[int(len(values) * 0.99) - 1] * 1000
            print(f"  {op:7s} n={len(values):7d}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    if meter is not None:
        print(meter.report(total))


if __name__ == "__main__":
    main()
