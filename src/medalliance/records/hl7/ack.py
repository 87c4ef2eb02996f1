"""Acknowledgements (original mode): MSA with the code and text, ERR with the location
(ERR-2), the HL7 error code (ERR-3), the severity and the reason in words (ERR-8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from medalliance.config import get_settings
from medalliance.kit.ids import new_id
from medalliance.records.hl7 import er7
from medalliance.records.hl7.enums import ERROR_TEXT, AckCode
from medalliance.records.hl7.er7 import Delimiters, Hl7Error, Message, Segment

RECEIVER_APPLICATION = "MEDALLIANCE"
DEFAULT = Delimiters()
MSA_TEXT_LIMIT = 80  # MSA-3 is 80 characters in v2.4
# The ACK is sent in the codec its message was read in; MSH-18 names it (HL7 table 0211).
_CHARSET_NAMES = {
    "utf-8": "UNICODE UTF-8",
    "gb18030": "GB 18030-2000",
    "latin-1": "8859/1",
    "ascii": "ASCII",
}


@dataclass(frozen=True)
class Ack:
    code: AckCode
    text: str  # ER7, segments separated by CR
    reason: str = ""
    codec: str = "utf-8"  # what the text is sent in (MSH-18 says so when it is not ASCII)

    def encoded(self) -> bytes:
        return self.text.encode(self.codec, errors="replace")


def _escape(value: str, d: Delimiters) -> str:
    """Free text inside a field: delimiters become escape sequences, lines become \\.br\\."""
    out = value.replace(d.escape, f"{d.escape}E{d.escape}")
    for char, code in (
        (d.field, "F"),
        (d.component, "S"),
        (d.subcomponent, "T"),
        (d.repetition, "R"),
    ):
        out = out.replace(char, f"{d.escape}{code}{d.escape}")
    return out.replace("\r", " ").replace("\n", f"{d.escape}.br{d.escape}")


def build(
    message: Message | None,
    code: AckCode,
    now: datetime,
    *,
    error: Hl7Error | None = None,
) -> Ack:
    d = message.delimiters if message else DEFAULT
    msh = message.msh if message else None
    trigger = msh.get(9, 2) if msh else ""
    version = (msh.get(12) if msh else "") or "2.5.1"
    stamp = now.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y%m%d%H%M%S%z")
    header = [
        "MSH",
        d.encoding_characters,
        RECEIVER_APPLICATION,
        _raw(message, 6) or RECEIVER_APPLICATION,  # the facility the sender addressed
        _raw(message, 3),
        _raw(message, 4),
        stamp,
        "",
        d.component.join(["ACK", trigger, "ACK"]) if trigger else "ACK",
        new_id(),
        (msh.get(11) if msh else "") or "P",
        version,
    ]
    control_id = _escape(msh.get(10), d) if msh else ""
    reason = error.message if error else ""
    msa = ["MSA", code.value, control_id]
    if reason:
        msa.append(_clip(_escape(reason, d), MSA_TEXT_LIMIT, d))
    body = [d.field.join(msa)]
    if error is not None:
        body.append(_err(error, d, legacy=version.startswith("2.4")))
    charset = _charset(msh, d, "".join(header) + "".join(body))
    if charset:
        header += [""] * (17 - len(header)) + [charset]
    text = "\r".join([d.field.join(header), *body]) + "\r"
    return Ack(code, text, reason, d.codec)


def _charset(msh: Segment | None, d: Delimiters, text: str) -> str:
    """MSH-18 of the ACK: the sender's own name for the character set it declared (and the
    ACK is encoded in), else the name of the one used when the ACK is not plain ASCII."""
    declared = msh.raw(18).split(d.repetition)[0].strip() if msh else ""
    if declared and declared.upper() in er7.CHARSETS:
        return declared
    return "" if text.isascii() else _CHARSET_NAMES.get(d.codec, "UNICODE UTF-8")


def _clip(escaped: str, limit: int, d: Delimiters) -> str:
    """At most ``limit`` characters of escaped text, never ending inside an escape sequence
    (a cut \\F\\ would turn the rest of the message into one escape)."""
    if len(escaped) <= limit:
        return escaped
    clipped = escaped[:limit]
    if clipped.count(d.escape) % 2:
        clipped = clipped[: clipped.rindex(d.escape)]
    return clipped


def _raw(message: Message | None, number: int) -> str:
    """The sender's application and facility, echoed back as receiver (already escaped)."""
    return message.msh.raw(number) if message else ""


def _err(error: Hl7Error, d: Delimiters, *, legacy: bool) -> str:
    """ERR-2..8 (v2.5); v2.4 receivers read ERR-1 (ELD), so it is filled for them too."""
    location = error.location.er7(d.component) if error.location else ""
    code = d.component.join([error.code.value, ERROR_TEXT[error.code], "HL70357"])
    eld = ""
    if legacy:
        where = error.location
        sub = d.subcomponent.join([error.code.value, ERROR_TEXT[error.code], "HL70357"])
        parts = (
            [where.segment, str(where.sequence), str(where.field or "")] if where else ["", "", ""]
        )
        eld = d.component.join([*parts, sub])
    fields = ["ERR", eld, location, code, "E", "", "", "", _escape(error.message, d)]
    return d.field.join(fields)
