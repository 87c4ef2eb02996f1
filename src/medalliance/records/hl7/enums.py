"""HL7 v2 vocabularies used in acknowledgements and routing."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class AckCode(StrEnum):
    """MSA-1 (HL7 table 0008, original mode)."""

    ACCEPT = "AA"
    ERROR = "AE"  # the message was understood but its content could not be processed
    REJECT = "AR"  # the message was refused (unparseable, unsupported, wrong sender)


class ErrorCode(StrEnum):
    """ERR-3 (HL7 table 0357, message error condition codes)."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION = "203"
    UNKNOWN_KEY = "204"
    DUPLICATE_KEY = "205"
    INTERNAL = "207"


ERROR_TEXT: Final = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY: "Duplicate key identifier",
    ErrorCode.INTERNAL: "Application internal error",
}

SUPPORTED_VERSIONS: Final = frozenset({"2.4", "2.5", "2.5.1"})
SUPPORTED_EVENTS: Final = frozenset(
    {("ADT", "A01"), ("ADT", "A03"), ("ADT", "A04"), ("ADT", "A08"), ("ORU", "R01")}
)
# MSH-11: production and debugging are processed; training messages are refused.
PROCESSING_IDS: Final = frozenset({"P", "D"})
