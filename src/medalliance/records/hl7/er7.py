"""ER7 (pipe-and-hat) parsing into a small typed structure.

python-hl7 is used for MLLP framing; its parsed containers nest differently depending on
whether a field repeats, and they carry no types, so the message itself is read here: split
by the delimiters MSH declares, unescape on access, and report errors with an HL7 location
(ERR-2) so that the ACK can say exactly what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medalliance.records.hl7.enums import AckCode, ErrorCode

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_HEX = re.compile(r"^X([0-9A-Fa-f]{2})+$")
# C0 and C1 controls but the line ends and tab: no HL7 text holds one, a FHIR string may
# not, PostgreSQL text cannot store NUL, and echoed in an ACK they corrupt it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Location:
    """ERR-2 (ERL): segment, its occurrence, field, repetition and component."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    def er7(self, comp: str = "^") -> str:
        parts = [self.segment, str(self.sequence)]
        if self.field is not None:
            parts += [str(self.field), "1"]
            if self.component is not None:
                parts.append(str(self.component))
        return comp.join(parts)

    def __str__(self) -> str:
        where = self.segment
        if self.field is not None:
            where += f"-{self.field}"
            if self.component is not None:
                where += f".{self.component}"
        return where


class Hl7Error(Exception):
    """A message (or part of it) that cannot be accepted: becomes an AE or AR with ERR."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode,
        ack: AckCode = AckCode.ERROR,
        location: Location | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.ack = ack
        self.location = location
        self.status = status  # HTTP status for POST /api/hl7v2 when not the default


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    codec: str = "utf-8"  # MSH-18: the bytes of \Xhh\ escapes are text in this charset

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent

    def unescape(self, value: str) -> str:
        """HL7 escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\) to text."""
        if self.escape not in value:
            return value
        out: list[str] = []
        pieces = value.split(self.escape)
        # Odd pieces are escape sequences (text between two escape characters).
        for index, piece in enumerate(pieces):
            out.append(self._sequence(piece) if index % 2 else piece)
        return "".join(out)

    def _sequence(self, code: str) -> str:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            ".br": "\n",
        }
        if code in simple:
            return simple[code]
        if _HEX.match(code):
            # Parsing refused any that is not text (``unreadable``): nothing is replaced.
            return bytes.fromhex(code[1:]).decode(self.codec, errors="replace")
        return ""  # highlighting (\H\ \N\) and unknown sequences carry no text

    def unreadable(self, value: str) -> str | None:
        """Why a raw field value is not text (a control character, itself or escaped as
        \\Xhh\\, or escaped bytes the charset does not decode); None when it is."""
        found = _control(value)
        if found is not None:
            return found
        if self.escape not in value:
            return None
        for code in value.split(self.escape)[1::2]:
            if not _HEX.match(code):
                continue
            try:
                text = bytes.fromhex(code[1:]).decode(self.codec)
            except UnicodeDecodeError:
                return f"escaped bytes (hex {code[1:]}) that are not {self.codec}"
            found = _control(text, "an escaped")
            if found is not None:
                return found
        return None


def _control(text: str, kind: str = "a") -> str | None:
    found = _CONTROL.search(text)
    return f"{kind} control character (U+{ord(found.group()):04X})" if found else None


@dataclass(frozen=True)
class Repetition:
    """One repetition of a field: its components, each with its subcomponents."""

    raw: str
    delimiters: Delimiters

    def component(self, number: int, sub: int = 1) -> str:
        components = self.raw.split(self.delimiters.component)
        if number > len(components):
            return ""
        subs = components[number - 1].split(self.delimiters.subcomponent)
        return self.delimiters.unescape(subs[sub - 1]).strip() if sub <= len(subs) else ""

    @property
    def empty(self) -> bool:
        return not self.raw.strip(self.delimiters.component + self.delimiters.subcomponent + " ")


@dataclass(frozen=True)
class Segment:
    id: str
    fields: list[str]  # fields[n] is field n (for MSH, fields[1] is the field separator)
    sequence: int  # 1 for the first segment with this id, 2 for the second ...
    delimiters: Delimiters

    def raw(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def repetitions(self, number: int) -> list[Repetition]:
        if self.id == "MSH" and number <= 2:
            return [Repetition(self.raw(number), Delimiters(component="\0", subcomponent="\0"))]
        raw = self.raw(number)
        reps = [Repetition(r, self.delimiters) for r in raw.split(self.delimiters.repetition)]
        return [r for r in reps if not r.empty]

    def get(self, number: int, component: int = 1, sub: int = 1) -> str:
        """The first repetition's component, unescaped ('' when absent)."""
        reps = self.repetitions(number)
        return reps[0].component(component, sub) if reps else ""

    def text(self, number: int) -> str:
        """The whole field as text (every component, for free-text fields)."""
        return self.delimiters.unescape(self.raw(number)).strip()

    def at(self, number: int, component: int | None = None) -> Location:
        return Location(self.id, self.sequence, number, component)

    def require(self, number: int, component: int = 1, *, what: str) -> str:
        value = self.get(number, component)
        if not value:
            location = self.at(number, component if component > 1 else None)
            raise Hl7Error(
                f"{location} ({what}) is required",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location=location,
            )
        return value


@dataclass(frozen=True)
class Message:
    segments: list[Segment]
    delimiters: Delimiters
    raw: str = field(repr=False)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def all(self, segment_id: str) -> list[Segment]:
        return [s for s in self.segments if s.id == segment_id]

    def require_segment(self, segment_id: str, what: str) -> Segment:
        found = self.first(segment_id)
        if found is None:
            raise Hl7Error(
                f"the {segment_id} segment ({what}) is missing",
                code=ErrorCode.SEGMENT_SEQUENCE,
                location=Location(segment_id),
            )
        return found


def parse(text: str) -> Message:
    """Parse ER7 text; segments may end with CR, LF or CRLF (HTTP clients often send LF)."""
    lines = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise Hl7Error(
            "the message does not start with an MSH segment",
            code=ErrorCode.SEGMENT_SEQUENCE,
            ack=AckCode.REJECT,
            location=Location("MSH"),
        )
    delimiters = _delimiters(lines[0])
    # One scan of the whole text; fields are looked at one by one only when it finds some.
    check = bool(_CONTROL.search(text)) or f"{delimiters.escape}X" in text
    counts: dict[str, int] = {}
    segments = []
    for number, line in enumerate(lines, start=1):
        segment_id = line[:3]
        if not _SEGMENT_ID.match(segment_id) or (len(line) > 3 and line[3] != delimiters.field):
            raise Hl7Error(
                f"segment {number} ({line[:10]!r}) is not a valid HL7 segment",
                code=ErrorCode.SEGMENT_SEQUENCE,
                ack=AckCode.REJECT,
                location=Location(segment_id if _SEGMENT_ID.match(segment_id) else "MSH"),
            )
        counts[segment_id] = counts.get(segment_id, 0) + 1
        parts = line.split(delimiters.field)
        fields = ["MSH", delimiters.field, *parts[1:]] if segment_id == "MSH" else parts
        if segment_id == "MSH" and number > 1:
            raise Hl7Error(
                "a message has exactly one MSH segment (batches are not accepted)",
                code=ErrorCode.SEGMENT_SEQUENCE,
                ack=AckCode.REJECT,
                location=Location("MSH", counts["MSH"]),
            )
        segment = Segment(segment_id, fields, counts[segment_id], delimiters)
        if check:
            _refuse_unreadable(segment)
        segments.append(segment)
    return Message(segments, delimiters, text)


def _refuse_unreadable(segment: Segment) -> None:
    """AR naming the first field that is not text; MSH-1 and MSH-2 are the delimiters."""
    first = 3 if segment.id == "MSH" else 1
    for number in range(first, len(segment.fields)):
        problem = segment.delimiters.unreadable(segment.fields[number])
        if problem is not None:
            location = segment.at(number)
            raise Hl7Error(
                f"{location} holds {problem}",
                code=ErrorCode.DATA_TYPE,
                ack=AckCode.REJECT,
                location=location,
            )


def readable(body: bytes) -> Message | None:
    """As much of the message as a refusal needs: all of it when it parses, else its MSH
    segment alone, so that the ACK still echoes MSH-10 and names the sender; None when
    not even MSH can be read. A field that is not text (control characters, bytes not in
    the charset) is left out rather than echoed altered."""
    try:
        return parse(decode(body))
    except Hl7Error:
        pass
    line = re.split(rb"[\r\n]", body.lstrip(), maxsplit=1)[0]
    text = line.decode(codec_of(body), errors="replace")
    if not text.startswith("MSH") or len(text) < 8:
        return None
    try:
        delimiters = _delimiters(text)
        fields = text.split(delimiters.field)
        # fields[0] is "MSH", fields[1] MSH-2: MSH-n is fields[n - 1] from MSH-3 on.
        kept = [
            f if n < 2 or ("\ufffd" not in f and delimiters.unreadable(f) is None) else ""
            for n, f in enumerate(fields)
        ]
        return parse(delimiters.field.join(kept))
    except Hl7Error:
        return None


def _delimiters(msh: str) -> Delimiters:
    field_sep = msh[3]
    encoding = msh[4:].split(field_sep, 1)[0]
    if len(encoding) < 4 or len(set(encoding[:4] + field_sep)) != 5 or field_sep.isalnum():
        raise Hl7Error(
            "MSH-1/MSH-2 must declare five distinct delimiters (e.g. |^~\\&)",
            code=ErrorCode.DATA_TYPE,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 2),
        )
    codec = CHARSETS.get(_declared_charset(msh, encoding[1]), "utf-8")
    return Delimiters(field_sep, encoding[0], encoding[1], encoding[2], encoding[3], codec)


# MSH-18 (HL7 table 0211) to Python codecs; Chinese systems send UTF-8 or GB 18030.
CHARSETS = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "GB 18030-2000": "gb18030",
    "8859/1": "latin-1",
    "ASCII": "ascii",
}


def codec_of(body: bytes) -> str:
    """The Python codec of the character set MSH-18 declares (UTF-8 when absent or unknown)."""
    try:
        return _codec(body)
    except Hl7Error:
        return "utf-8"


def decode(body: bytes) -> str:
    """Message bytes to text in the character set MSH-18 declares (UTF-8 when absent)."""
    codec = _codec(body)
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        where = _field_at(body[: exc.start].decode(codec))
        raise Hl7Error(
            f"the bytes of {where} are not valid {codec} (declare the character set in MSH-18)",
            code=ErrorCode.DATA_TYPE,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 18),  # the likely mistake: the declared charset
        ) from None


def _field_at(before: str) -> str:
    """Which field (``PID-5``) the text after ``before``, the start of a message, is in."""
    lines = before.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    current = lines[-1]
    segment_id = current[:3]
    separator = before[3] if before.startswith("MSH") and len(before) > 3 else "|"
    separators = current.count(separator)
    if not _SEGMENT_ID.match(segment_id) or not separators:
        return f"segment {len([s for s in lines if s.strip()])}"
    # MSH-1 is the field separator itself: the field after n separators is MSH-(n+1).
    return f"{segment_id}-{separators + (segment_id == 'MSH')}"


def _declared_charset(msh: str, repetition: str) -> str:
    """MSH-18's first repetition, upper-cased ("" when absent)."""
    fields = msh.split(msh[3])
    return fields[17].split(repetition)[0].strip().upper() if len(fields) > 17 else ""


def _codec(body: bytes) -> str:
    head = body.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    charset = _declared_charset(head, "~") if head.startswith("MSH") and len(head) > 3 else ""
    codec = CHARSETS.get(charset)
    if codec is None:
        raise Hl7Error(
            f"MSH-18 character set {charset!r} is not supported (use UNICODE UTF-8 or "
            "GB 18030-2000)",
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 18),
        )
    return codec
