"""The ACK's header and error segments: the character set it is sent in (MSH-18), the
facility it comes from (MSH-4), MSA-3 cut without breaking an escape, and ERR-2 naming
the field whose content the shared record refused."""

from __future__ import annotations

from datetime import UTC, datetime

from medalliance.records.hl7 import ack as acks
from medalliance.records.hl7 import er7
from medalliance.records.hl7.enums import AckCode, ErrorCode
from medalliance.records.hl7.er7 import Hl7Error
from records.hl7.conftest import Send
from records.hl7.hl7_samples import adt, oru, segment

NOT_A_NUMBER = "OBX|1|NM|GLU^血糖^L||五|mmol/L^^UCUM|3.9-6.1|N|||F"


def _fields(answer: bytes, segment_id: str, codec: str) -> list[str]:
    for line in answer.decode(codec).split("\r"):
        if line.startswith(segment_id + "|"):
            return line.split("|")
    raise AssertionError(f"no {segment_id} in {answer!r}")


def _without_charset(message: bytes) -> bytes:
    return message.replace(b"|CHN|UNICODE UTF-8", b"|CHN")


class TestCharacterSet:
    def test_the_declared_character_set_is_named_in_the_acks_msh_18(self, send: Send) -> None:
        answer = send(adt("A04", "ACK-0001")).content
        assert segment(answer, "MSH")[17] == "UNICODE UTF-8"

    def test_a_gb18030_message_is_answered_in_gb18030_and_says_so(self, send: Send) -> None:
        text = oru("ACK-0002", results=(NOT_A_NUMBER,)).decode()
        answer = send(text.replace("UNICODE UTF-8", "GB 18030-2000").encode("gb18030")).content

        assert _fields(answer, "MSH", "gb18030")[17] == "GB 18030-2000"
        assert "五" in _fields(answer, "ERR", "gb18030")[8]

    def test_an_error_in_chinese_names_utf_8_when_the_sender_declared_nothing(
        self, send: Send
    ) -> None:
        answer = send(_without_charset(oru("ACK-0003", results=(NOT_A_NUMBER,)))).content
        assert segment(answer, "MSA")[1] == "AE"
        assert segment(answer, "MSH")[17] == "UNICODE UTF-8"

    def test_a_plain_ascii_ack_to_a_message_without_msh_18_declares_none(self, send: Send) -> None:
        answer = send(_without_charset(adt("A04", "ACK-0004"))).content
        assert segment(answer, "MSA")[1] == "AA"
        assert len(segment(answer, "MSH")) == 12


class TestHeader:
    def test_the_ack_comes_from_the_facility_the_message_was_sent_to(self, send: Send) -> None:
        answer = send(adt("A04", "ACK-0010")).content
        msh = segment(answer, "MSH")
        assert msh[2:6] == ["MEDALLIANCE", "CONSORTIUM", "HIS", "county-hospital"]


class TestTruncation:
    def test_msa_3_is_cut_before_an_escape_sequence_not_inside_it(self) -> None:
        message = er7.parse(adt("A04", "ACK-0020").decode())
        reason = "x" * 78 + "|y"  # escaped, the bar is \F\ across the 80th character
        error = Hl7Error(reason, code=ErrorCode.DATA_TYPE)

        built = acks.build(message, AckCode.ERROR, datetime(2026, 11, 5, tzinfo=UTC), error=error)

        msa_3 = segment(built.text.encode(), "MSA")[3]
        assert msa_3 == "x" * 78
        assert er7.parse(built.text).first("ERR") is not None


class TestValidatorRefusalsAreLocated:
    def test_a_coded_value_the_validator_refuses_names_obx_5(self, send: Send) -> None:
        coded = "OBX|1|CWE|5778-6^尿液颜色^LN||YEL  X^黄色^L||||||F"
        response = send(oru("ACK-0030", results=(coded,), order="ORD-ACK-30"))

        assert segment(response.content, "MSA")[1] == "AE"
        assert segment(response.content, "ERR")[2] == "OBX^1^5^1"

    def test_an_order_code_the_validator_refuses_names_obr_4(self, send: Send) -> None:
        text = oru("ACK-0031", order="ORD-ACK-31").decode()
        response = send(text.replace("57698-3^血脂四项", "57698  3^血脂四项").encode())

        assert segment(response.content, "MSA")[1] == "AE"
        assert segment(response.content, "ERR")[2] == "OBR^1^4^1"
