"""Background jobs: each runs in its own transaction, on a timer, in-process or standalone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.db import unit_of_work
from medalliance.events import service as events
from medalliance.indicators import sources as indicators_sources
from medalliance.referrals import escalation as referral_escalation

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Session], int]


JOBS: list[Job] = [
    # Before routing, so that an escalation's outbox event leaves on the same tick.
    Job("referrals.escalate", lambda db: referral_escalation.escalate_overdue(db)),
    Job("audit.seal", audit.seal_pending),
    Job("events.route", events.route_pending),
    Job("events.deliver", lambda db: events.deliver_due(db)),
    Job("indicators.refresh", indicators_sources.refresh),
]


def run_once() -> dict[str, int]:
    """Run every job once; a failing job is logged and retried next tick, never fatal."""
    done: dict[str, int] = {}
    for job in JOBS:
        try:
            with unit_of_work() as db:
                done[job.name] = job.run(db)
        except Exception:
            log.exception("job_failed", job=job.name)
    return done


def run_forever(stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        run_once()
        stop.wait(interval)


def start_in_process(interval: float) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(stop, interval), name="medalliance-worker", daemon=True
    )
    thread.start()
    return thread, stop
