"""The MLLP listener (``medalliance hl7 listen``): an asyncio TCP server framing messages as
0x0B … 0x1C 0x0D (read here, tolerating a missing CR; answered with python-hl7's stream
writer), each message processed in its own transaction by the same service as
``POST /api/hl7v2``, each answered with its ACK.

MLLP has no authentication: the sending facility (MSH-4) is mapped to a registered member
system (``MEDALLIANCE_HL7_MLLP_SYSTEMS``), and the listener binds to 127.0.0.1 by default;
expose it only through a VPN or a TLS tunnel that authenticates the member.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from hl7.mllp import InvalidBlockError, start_hl7_server  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from medalliance.db import unit_of_work
from medalliance.kit.clock import utcnow
from medalliance.records.hl7 import ack as acks
from medalliance.records.hl7 import er7, service
from medalliance.records.hl7.enums import AckCode, ErrorCode
from medalliance.records.hl7.er7 import Hl7Error

log = structlog.get_logger(__name__)


def process_block(factory: sessionmaker[Session], block: bytes) -> bytes:
    """One framed message in, its ACK out (encoded as the message was)."""
    try:
        with unit_of_work(factory) as db:
            received = service.receive_unauthenticated(db, block, now=utcnow())
        return received.ack.encoded()
    except Exception:
        # The transaction is rolled back; the sender gets an AR and may resend.
        log.exception("hl7_mllp_processing_failed")
        error = Hl7Error(
            "the message could not be processed; nothing was stored, please resend",
            code=ErrorCode.INTERNAL,
            ack=AckCode.REJECT,
        )
        return acks.build(er7.readable(block), AckCode.REJECT, utcnow(), error=error).encoded()


START_BLOCK, END_BLOCK = b"\x0b", b"\x1c"
# The frame ends with 0x1C 0x0D, but many senders omit the CR (or send LF): 0x1C, which
# never occurs in HL7 text, ends the message, and whatever follows it up to the next frame
# (CR, LF, spaces) means nothing.
_BETWEEN_FRAMES = b" \t\r\n"
_KEPT_OF_OVERSIZED = 4096  # enough for the MSH segment the refusal echoes


@dataclass(frozen=True)
class Frame:
    body: bytes  # of an oversized message, only its first bytes
    size: int

    def oversized(self, limit: int) -> bool:
        return self.size > limit


class FrameReader:
    """MLLP frames (0x0B … 0x1C, then usually 0x0D) from a stream: whitespace between frames
    is skipped, and a message over the limit is read to its end (keeping its head) so that
    it can be refused with an ACK instead of a reset."""

    def __init__(self, reader: Any, limit: int) -> None:
        self.reader, self.limit = reader, limit
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        chunk = await self.reader.read(65536)
        self.buffer += chunk
        return bool(chunk)

    async def next(self) -> Frame | None:
        """The next frame; None when the sender closed between frames."""
        while True:
            rest = self.buffer.lstrip(_BETWEEN_FRAMES)
            if rest:
                if not rest.startswith(START_BLOCK):
                    raise InvalidBlockError("Block does not begin with Start Block character <VT>")
                self.buffer = bytearray(rest[1:])
                break
            self.buffer.clear()
            if not await self._fill():
                return None
        kept, size = bytearray(), 0
        while True:
            end = self.buffer.find(END_BLOCK)
            taken = end if end >= 0 else len(self.buffer)
            kept += self.buffer[:taken]
            size += taken
            del self.buffer[:taken]
            if size > self.limit:
                del kept[_KEPT_OF_OVERSIZED:]
            if end >= 0:
                # The CR that should follow is skipped as space before the next frame; not
                # waiting for it answers a sender that never sends it.
                del self.buffer[: len(END_BLOCK)]
                return Frame(bytes(kept), size)
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(kept), None)


def refuse_oversized(factory: sessionmaker[Session], frame: Frame, limit: int) -> bytes:
    """AR for a message over the size limit, echoing its control ID when MSH is readable,
    audited like any refused message."""
    error = Hl7Error(
        f"the message is {frame.size} bytes, larger than the {limit} bytes accepted; "
        "nothing was stored",
        code=ErrorCode.INTERNAL,
        ack=AckCode.REJECT,
    )
    message = er7.readable(frame.body.split(b"\r", 1)[0].split(b"\n", 1)[0])
    try:
        with unit_of_work(factory) as db:
            return service.refuse_unauthenticated(db, message, error, now=utcnow()).ack.encoded()
    except Exception:
        log.exception("hl7_mllp_refusal_not_audited")
        return acks.build(message, AckCode.REJECT, utcnow(), error=error).encoded()


async def _serve_connection(
    process: Callable[[bytes], bytes],
    refuse: Callable[[Frame], bytes],
    reader: Any,
    writer: Any,
    *,
    limit: int,
) -> None:
    """Messages on one connection are answered in order, one at a time (original mode).
    An oversized message is refused and the connection closed: the sender's stream may
    not be in step any more."""
    peer = writer.get_extra_info("peername")
    loop = asyncio.get_running_loop()
    frames = FrameReader(reader, limit)
    try:
        while True:
            try:
                frame = await frames.next()
            except asyncio.IncompleteReadError:
                break  # the sender closed the connection inside a frame
            except InvalidBlockError as exc:
                log.warning("hl7_mllp_bad_frame", peer=peer, error=str(exc))
                break
            if frame is None:
                break
            if frame.oversized(limit):
                log.warning("hl7_mllp_oversized", peer=peer, size=frame.size, limit=limit)
                writer.writeblock(await loop.run_in_executor(None, refuse, frame))
                await writer.drain()
                break
            answer = await loop.run_in_executor(None, process, frame.body)
            writer.writeblock(answer)
            await writer.drain()
    finally:
        writer.close()


@dataclass
class Listener:
    """A running server; ``port`` is the bound one (useful when asked for port 0)."""

    server: asyncio.AbstractServer
    port: int


async def start(factory: sessionmaker[Session], host: str, port: int, *, limit: int) -> Listener:
    def process(block: bytes) -> bytes:
        return process_block(factory, block)

    def refuse(frame: Frame) -> bytes:
        return refuse_oversized(factory, frame, limit)

    def connected(reader: Any, writer: Any) -> Any:
        return _serve_connection(process, refuse, reader, writer, limit=limit)

    server = await start_hl7_server(connected, host, port, limit=limit)
    bound = server.sockets[0].getsockname()[1]
    log.info("hl7_mllp_listening", host=host, port=bound)
    return Listener(server, int(bound))


def serve_forever(factory: sessionmaker[Session], host: str, port: int, *, limit: int) -> None:
    """Run until interrupted (the CLI command)."""

    async def main() -> None:
        listener = await start(factory, host, port, limit=limit)
        async with listener.server:
            await listener.server.serve_forever()

    asyncio.run(main())


@dataclass
class Background:
    """A listener on its own event loop thread (tests, or an embedded deployment)."""

    port: int
    stop: Callable[[], None]


def start_in_thread(
    factory: sessionmaker[Session], host: str = "127.0.0.1", port: int = 0, *, limit: int
) -> Background:
    loop = asyncio.new_event_loop()
    ready: dict[str, Listener] = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        ready["listener"] = loop.run_until_complete(start(factory, host, port, limit=limit))
        started.set()
        loop.run_forever()
        ready["listener"].server.close()
        loop.run_until_complete(ready["listener"].server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, name="hl7-mllp", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the MLLP listener did not start")

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return Background(ready["listener"].port, stop)
