"""Acknowledgements (original mode): MSA with the code and text, ERR with the location
(ERR-2), the HL7 error code (ERR-3), the severity and the reason in words (ERR-8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from medalliance.config import get_settings
from medalliance.kit.ids import new_id
from medalliance.records.hl7.enums import ERROR_TEXT, AckCode
from medalliance.records.hl7.er7 import Delimiters, Hl7Error, Message

RECEIVER_APPLICATION = "MEDALLIANCE"
DEFAULT = Delimiters()


@dataclass(frozen=True)
class Ack:
    code: AckCode
    text: str  # ER7, segments separated by CR
    reason: str = ""


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
        RECEIVER_APPLICATION,
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
        msa.append(_escape(reason, d)[:80])  # MSA-3 is 80 characters in v2.4
    segments = [d.field.join(header), d.field.join(msa)]
    if error is not None:
        segments.append(_err(error, d, legacy=version.startswith("2.4")))
    return Ack(code, "\r".join(segments) + "\r", reason)


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
