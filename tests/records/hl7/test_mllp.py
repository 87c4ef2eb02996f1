"""The MLLP listener over a real TCP socket on 127.0.0.1: framed message in, ACK out."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import hl7.client  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medalliance.audit.models import AuditEvent
from medalliance.records.hl7 import mllp
from medalliance.records.models import FhirResource
from records.hl7.hl7_samples import adt, assert_clean, oru, segment

START, END = b"\x0b", b"\x1c\x0d"


@pytest.fixture
def listener(session_factory: sessionmaker[Session]) -> Iterator[int]:
    running = mllp.start_in_thread(session_factory, "127.0.0.1", 0, limit=1024 * 1024)
    yield running.port
    running.stop()


def _exchange(port: int, *messages: bytes) -> list[bytes]:
    """Send each framed message on one connection and read its framed ACK."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for message in messages:
            sock.sendall(START + message + END)
            buffer = b""
            while not buffer.endswith(END):
                chunk = sock.recv(65536)
                assert chunk, "the listener closed the connection"
                buffer += chunk
            assert buffer.startswith(START)
            answers.append(buffer[1:-2])
    return answers


class TestMllpListener:
    def test_a_message_over_a_raw_socket_is_acknowledged_and_stored(
        self, listener: int, db: Session
    ) -> None:
        [ack] = _exchange(listener, adt("A01", "MLLP-0001"))
        assert segment(ack, "MSA")[1:3] == ["AA", "MLLP-0001"]
        assert segment(ack, "MSH")[8].startswith("ACK^A01")
        stored = db.scalar(
            select(func.count())
            .select_from(FhirResource)
            .where(
                FhirResource.resource_type == "Encounter",
                FhirResource.institution_id == "county-hospital",
            )
        )
        assert stored == 1

    def test_a_resend_on_the_same_connection_gets_the_original_ack(self, listener: int) -> None:
        first, again = _exchange(listener, oru("MLLP-0002"), oru("MLLP-0002"))
        assert again == first

    def test_a_malformed_message_is_answered_with_ar(self, listener: int) -> None:
        [ack] = _exchange(listener, b"this is not HL7")
        assert segment(ack, "MSA")[1] == "AR"

    def test_an_unmapped_facility_is_rejected(self, listener: int) -> None:
        [ack] = _exchange(listener, oru("MLLP-0003", facility="no-such-member"))
        assert segment(ack, "MSA")[1] == "AR"
        assert "not mapped" in segment(ack, "ERR")[8]

    def test_python_hl7_client_round_trip(self, listener: int) -> None:
        with hl7.client.MLLPClient("127.0.0.1", listener, encoding="utf-8") as sender:
            answer = sender.send_message(oru("MLLP-0004").decode())
        assert segment(answer[1:-2], "MSA")[1:3] == ["AA", "MLLP-0004"]


class TestFacilityMapping:
    def test_a_configured_facility_name_is_accepted_for_its_member_system(
        self, listener: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from medalliance.config import get_settings

        monkeypatch.setitem(get_settings().hl7_mllp_systems, "AP-LIS", "county-his")
        [ack] = _exchange(listener, oru("MLLP-0100", facility="AP-LIS"))
        assert segment(ack, "MSA")[1:3] == ["AA", "MLLP-0100"]


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    buffer = b""
    while buffer.count(END) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return [a.lstrip(START) for a in buffer.split(END) if a]


class TestFraming:
    def test_a_line_break_between_frames_does_not_lose_the_next_message(
        self, listener: int
    ) -> None:
        first, second = adt("A04", "MLLP-0201"), adt("A04", "MLLP-0202")
        with socket.create_connection(("127.0.0.1", listener), timeout=30) as sock:
            sock.sendall(START + first + END + b"\r\n" + START + second + END)
            answers = _read_answers(sock, 2)
        assert [segment(a, "MSA")[1:3] for a in answers] == [
            ["AA", "MLLP-0201"],
            ["AA", "MLLP-0202"],
        ]

    def test_an_oversized_message_is_refused_with_an_ack_and_the_connection_closed(
        self, session_factory: sessionmaker[Session]
    ) -> None:
        running = mllp.start_in_thread(session_factory, "127.0.0.1", 0, limit=2048)
        try:
            big = oru(
                "MLLP-0203",
                results=tuple(f"OBX|{i}|ST|T{i}^x^L||{'x' * 80}||||||F" for i in range(1, 60)),
            )
            assert len(big) > 2048
            with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
                sock.sendall(START + big + END)
                [answer] = _read_answers(sock, 1)
                assert sock.recv(1) == b""  # closed after the refusal
        finally:
            running.stop()
        msa = segment(answer, "MSA")
        assert msa[1:3] == ["AR", "MLLP-0203"]
        assert "larger than" in msa[3]
        assert segment(answer, "MSH")[4:6] == ["LIS", "county-hospital"]

    def test_a_frame_ending_without_its_carriage_return_is_answered(self, listener: int) -> None:
        first, second = adt("A04", "MLLP-0205"), adt("A04", "MLLP-0206")
        with socket.create_connection(("127.0.0.1", listener), timeout=5) as sock:
            sock.sendall(START + first + b"\x1c")
            [answer] = _read_answers(sock, 1)  # not a timeout waiting for the CR
            sock.sendall(START + second + b"\x1c\n")
            [again] = _read_answers(sock, 1)
        assert segment(answer, "MSA")[1:3] == ["AA", "MLLP-0205"]
        assert segment(again, "MSA")[1:3] == ["AA", "MLLP-0206"]

    def test_an_oversized_message_is_audited_like_other_refusals(
        self, session_factory: sessionmaker[Session], db: Session
    ) -> None:
        running = mllp.start_in_thread(session_factory, "127.0.0.1", 0, limit=2048)
        try:
            big = oru(
                "MLLP-0207",
                results=tuple(f"OBX|{i}|ST|T{i}^x^L||{'x' * 80}||||||F" for i in range(1, 60)),
            )
            with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
                sock.sendall(START + big + END)
                _read_answers(sock, 1)
        finally:
            running.stop()
        [event] = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "hl7.receive", AuditEvent.resource_id == "MLLP-0207"
            )
        ).all()
        assert event.outcome == "failure"
        assert event.detail["ack"] == "AR"
        assert "larger than" in event.detail["reason"]

    def test_a_message_in_the_wrong_charset_is_refused_echoing_its_control_id(
        self, listener: int
    ) -> None:
        [ack] = _exchange(listener, oru("MLLP-0204").decode().encode("gb18030"))
        assert segment(ack, "MSA")[1:3] == ["AR", "MLLP-0204"]

    def test_a_nul_is_refused_naming_its_field_without_echoing_it(self, listener: int) -> None:
        nul_in_id = oru("MLLP-0205").replace(b"|MLLP-0205|", b"|MLLP-0205\x00|", 1)
        nul_in_pid = oru("MLLP-0206").replace(b"PID|", b"PID|\x00", 1)
        first, second = _exchange(listener, nul_in_id, nul_in_pid)
        for ack in (first, second):
            assert_clean(ack)
        assert segment(first, "MSA")[1:3] == ["AR", ""]
        assert segment(first, "ERR")[2] == "MSH^1^10^1"
        assert segment(second, "MSA")[1:3] == ["AR", "MLLP-0206"]
        assert segment(second, "ERR")[2] == "PID^1^1^1"
