"""The HTTP protocol ``serve`` runs: responses whole and in order over a real uvicorn
server, and a response's writes leaving as one."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from helpers import uvicorn_in_thread
from medalliance.kit.serving import CoalescingTransport

BIG = b"x" * 1_000_000
T = TypeVar("T")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/stream":  # three body messages with waits between them: chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = BIG if path == "/big" else path.encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with uvicorn_in_thread(app, lifespan="off") as free:
        yield free


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, bytes]:
    """One response off a keep-alive socket: (head, body); ``buffer`` keeps what follows."""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    if b"content-length" in fields:
        length = int(fields[b"content-length"])
        while len(buffer) < length:
            buffer += sock.recv(65536)
        body, buffer[:] = bytes(buffer[:length]), buffer[length:]
        return head, body
    assert fields[b"transfer-encoding"] == b"chunked"
    body = b""
    while True:
        while b"\r\n" not in buffer:
            buffer += sock.recv(65536)
        size_line, _, _ = bytes(buffer).partition(b"\r\n")
        size = int(size_line, 16)
        while len(buffer) < len(size_line) + 2 + size + 2:
            buffer += sock.recv(65536)
        body += bytes(buffer[len(size_line) + 2 : len(size_line) + 2 + size])
        buffer[:] = buffer[len(size_line) + 2 + size + 2 :]
        if size == 0:
            return head, body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode()


def test_keep_alive_responses_arrive_whole_and_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = bytearray()
        for path in ("/a", "/big", "/stream", "/b"):
            sock.sendall(_get(path))
            head, body = _read_response(sock, buffer)
            assert head.startswith(b"HTTP/1.1 200 OK")
            expected = {"/big": BIG, "/stream": b"one,two,three"}.get(path, path.encode())
            assert body == expected
        # Pipelined: both sent before either is read, both answered in order.
        sock.sendall(_get("/first") + _get("/second"))
        assert _read_response(sock, buffer)[1] == b"/first"
        assert _read_response(sock, buffer)[1] == b"/second"


def test_a_closing_response_is_sent_whole_before_the_connection_closes(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_get("/close"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.endswith(b"\r\n\r\n/close")


def _run_in_own_loop(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run`` in a thread of its own: the suite's browser tests keep an event
    loop running in the main thread."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(scenario())))
    thread.start()
    thread.join()
    return results[0]


class _RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_loop_turn_leave_in_one_write() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        inner = _RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        before = list(inner.writes)
        await asyncio.sleep(0)  # the loop turns once
        after_turn = list(inner.writes)
        transport.write(b"last")
        transport.close()  # sends what is pending, then closes
        return before, after_turn, inner.writes

    before, after_turn, final = _run_in_own_loop(scenario)
    assert before == []
    assert after_turn == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    assert final == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"last"]


def test_everything_else_is_the_wrapped_transports() -> None:
    async def scenario() -> str:
        transport = CoalescingTransport(_RecordingTransport(), asyncio.get_running_loop())  # type: ignore[arg-type]
        return str(transport.get_extra_info("peername"))

    assert _run_in_own_loop(scenario) == "info:peername"
