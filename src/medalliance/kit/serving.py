"""The HTTP protocol ``serve`` runs: uvicorn's httptools protocol, one syscall per response.

Uvicorn writes a response's status line and headers, then its body, as two transport
writes. On an idle socket each is its own ``send()``, and the client wakes twice to read
one small FHIR response: in the CRUD benchmark those sends were the largest single item of
the event loop's time holding the GIL (14 %; 10 % once joined). Here the writes a response
makes within one event-loop iteration (all of them, for a body sent in one piece) are
joined and leave together at the end of that iteration. Nothing is reordered and nothing
waits for I/O: the delay is one turn of the loop, which was running the response anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Wraps a transport: ``write`` collects, the next loop turn sends what was collected
    in one call. Anything else is the wrapped transport's; ``close`` sends what is
    pending first, so a last response before a ``Connection: close`` still leaves."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they quack like one.
        wrapped: Any = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(wrapped)
