"""``serve --workers N``: N uvicorn processes, each accepting on a socket of its own.

Uvicorn's own supervisor shares one listening socket between its workers, and whichever
worker wakes first accepts every connection waiting (the event loop accepts until the
queue is empty). Clients that open their connections together and keep them alive (a
hospital system's pool, the CRUD benchmark's 32 clients) land mostly on one worker:
25 of 32 and 29 of 32 were seen on two workers, one process then doing three quarters
of the work on a 2-core machine while the other idled. Here each worker binds its own
socket with ``SO_REUSEPORT`` and the kernel spreads new connections over them by a
hash of their addresses, as nginx's ``reuseport`` does.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess

import uvicorn
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger("uvicorn.error")


def serve_workers(config: uvicorn.Config, workers: int) -> None:
    """Run ``workers`` processes serving ``config`` (its app an import string) until
    SIGINT or SIGTERM; a worker that dies is replaced, unless it could not start (a port
    taken, an app that fails to load): then all stop and the process exits with uvicorn's
    startup-failure status, as a second try would fail the same way."""
    _refuse_a_taken_port(config.host, config.port)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def start() -> BaseProcess:
        process = context.Process(target=_serve_on_own_socket, args=(config,))
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    failed = False
    while not failed and not stop.wait(0.5):
        for n, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %s could not start; stopping", process.pid)
                failed = True
                break
            logger.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            processes[n] = start()
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
    if failed:
        sys.exit(STARTUP_FAILURE)


def _refuse_a_taken_port(host: str, port: int) -> None:
    """A listener that also set ``SO_REUSEPORT`` (another ``serve --workers``) would let
    the workers bind beside it and take half its connections: a bind without the option
    finds any listener first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            logger.error("cannot listen on %s:%s: %s", host, port, exc)
            sys.exit(STARTUP_FAILURE)


def _serve_on_own_socket(config: uvicorn.Config) -> None:
    config.configure_logging()
    try:
        sock = reuse_port_socket(config.host, config.port, config.backlog)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock
