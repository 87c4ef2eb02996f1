"""Reading ER7: delimiters declared by MSH, escapes, line endings and character sets."""

from __future__ import annotations

import pytest

from medalliance.records.hl7 import er7
from medalliance.records.hl7.enums import AckCode, ErrorCode
from medalliance.records.hl7.er7 import Hl7Error
from records.hl7.hl7_samples import oru


class TestParse:
    def test_segments_separated_by_line_feeds_are_read_like_carriage_returns(self) -> None:
        message = er7.parse(oru("X-1").decode().replace("\r", "\n"))
        assert [s.id for s in message.segments][:3] == ["MSH", "PID", "PV1"]
        assert message.msh.get(10) == "X-1"

    def test_escape_sequences_become_the_delimiters_they_stand_for(self) -> None:
        text = "MSH|^~\\&|A|B|C|D|20261101||ORU^R01|1|P|2.5\rOBX|1|ST|x||a\\F\\b\\S\\c\\.br\\d"
        obx = er7.parse(text).first("OBX")
        assert obx is not None
        assert obx.get(5) == "a|b^c\nd"

    def test_repetitions_and_components_are_addressed_from_one(self) -> None:
        pid = er7.parse(oru("X-2").decode()).first("PID")
        assert pid is not None
        assert [r.component(5) for r in pid.repetitions(3)] == ["MR", "NNCHN"]
        assert pid.get(5, 1) + pid.get(5, 2) == "欧阳建华"

    def test_a_message_without_msh_is_rejected(self) -> None:
        with pytest.raises(Hl7Error) as refused:
            er7.parse("PID|1||123")
        assert refused.value.ack == AckCode.REJECT
        assert refused.value.code == ErrorCode.SEGMENT_SEQUENCE


class TestCharacterSets:
    def test_gb18030_declared_in_msh_18_is_decoded(self) -> None:
        text = oru("X-3").decode().replace("UNICODE UTF-8", "GB 18030-2000")
        assert "欧阳" in er7.decode(text.encode("gb18030"))

    def test_bytes_that_are_not_the_declared_charset_are_rejected(self) -> None:
        with pytest.raises(Hl7Error) as refused:
            er7.decode(oru("X-4").decode().encode("gb18030"))
        assert refused.value.location is not None
        assert str(refused.value.location) == "MSH-18"


class TestReadableForAReply:
    def test_a_body_in_another_charset_still_yields_its_header(self) -> None:
        body = oru("X-5").decode().encode("gb18030")  # declared UTF-8

        message = er7.readable(body)

        assert message is not None
        assert [s.id for s in message.segments] == ["MSH"]
        assert message.msh.get(10) == "X-5"
        assert message.msh.get(4) == "county-hospital"

    def test_a_body_without_msh_yields_nothing(self) -> None:
        assert er7.readable(b"PID|1||X") is None


class TestHexEscapes:
    @pytest.mark.parametrize(
        ("charset", "hex_bytes"), [("UNICODE UTF-8", "E5BCA0"), ("GB 18030-2000", "D5C5")]
    )
    def test_hex_bytes_are_text_in_the_declared_charset(self, charset: str, hex_bytes: str) -> None:
        header = f"MSH|^~\\&|A|B|C|D|20261101||ORU^R01|1|P|2.5.1|||||CHN|{charset}"
        obx = er7.parse(f"{header}\rOBX|1|ST|x||A\\X{hex_bytes}\\B").first("OBX")
        assert obx is not None
        assert obx.get(5) == "A张B"
