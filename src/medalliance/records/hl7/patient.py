"""PID to the master patient index: the sending member's local record of the person.

PID-3 carries the member's medical record number (identifier type MR, PI or PT, or the
first identifier that is not a resident ID number) and, as another repetition, the resident
ID number (type NNCHN, NI or ID, or assigning authority urn:oid:2.16.156.10011.1.3);
PID-19 is read as the resident ID number when PID-3 has none.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from medalliance.patients.enums import RESIDENT_ID_SYSTEM, AdministrativeSex
from medalliance.patients.schemas import LocalRecordIn
from medalliance.records.hl7 import datatypes
from medalliance.records.hl7.enums import ErrorCode
from medalliance.records.hl7.er7 import Hl7Error, Repetition, Segment

MRN_TYPES = frozenset({"MR", "PI", "PT"})
RESIDENT_ID_TYPES = frozenset({"NNCHN", "NI", "ID", "CZ"})
_RESIDENT_ID_OID = RESIDENT_ID_SYSTEM.removeprefix("urn:oid:")
_SEX = {"M": AdministrativeSex.MALE, "F": AdministrativeSex.FEMALE}
_UNKNOWN_SEX = frozenset({"U", "N"})
_OTHER_SEX = frozenset({"O", "A"})


def _is_resident_id(rep: Repetition) -> bool:
    authority = {rep.component(4, 1), rep.component(4, 2), rep.component(9, 2)}
    return rep.component(5).upper() in RESIDENT_ID_TYPES or _RESIDENT_ID_OID in authority


def medical_record_number(pid: Segment) -> str:
    reps = pid.repetitions(3)
    typed = [r for r in reps if r.component(5).upper() in MRN_TYPES and r.component(1)]
    untyped = [r for r in reps if not _is_resident_id(r) and r.component(1)]
    candidates = typed or untyped
    if not candidates:
        location = pid.at(3)
        raise Hl7Error(
            f"{location} must carry the member's medical record number (identifier type MR)",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )
    return candidates[0].component(1)


def resident_id(pid: Segment) -> str | None:
    for rep in pid.repetitions(3):
        if _is_resident_id(rep) and rep.component(1):
            return rep.component(1)
    return pid.get(19) or None


def sex(pid: Segment) -> AdministrativeSex:
    """PID-8 (HL7 table 0001) as FHIR's administrative gender. U (unknown) and N (not
    applicable) take the sex the resident ID number encodes (its 17th digit, odd for
    male) when there is one, else unknown; A (ambiguous) and O are other."""
    code = pid.get(8).upper()
    if code in _SEX:
        return _SEX[code]
    if code in _UNKNOWN_SEX:
        return _sex_of_id_number(resident_id(pid)) or AdministrativeSex.UNKNOWN
    if code in _OTHER_SEX:
        return AdministrativeSex.OTHER
    location = pid.at(8)
    raise Hl7Error(
        f"{location} (administrative sex) must be one of M, F, U, O, A, N (HL7 table 0001), "
        f"not {code or 'empty'}",
        code=ErrorCode.TABLE_VALUE_NOT_FOUND if code else ErrorCode.REQUIRED_FIELD_MISSING,
        location=location,
    )


def _sex_of_id_number(number: str | None) -> AdministrativeSex | None:
    """The sex digit of an 18- (or legacy 15-) character resident ID number."""
    digit = {18: 16, 15: 14}.get(len(number or ""))
    if number is None or digit is None or not number[digit].isdigit():
        return None
    return AdministrativeSex.MALE if int(number[digit]) % 2 else AdministrativeSex.FEMALE


def local_record(
    pid: Segment, institution_id: str, recorded_at: datetime | None = None
) -> LocalRecordIn:
    """The member's local record as the MPI registers it, captured at ``recorded_at``; a
    bad field is an AE naming it."""
    name = datatypes.person_name(pid.repetitions(5))
    if not name:
        location = pid.at(5)
        raise Hl7Error(
            f"{location} (patient name) is required",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )
    try:
        return LocalRecordIn(
            institution_id=institution_id,
            mrn=medical_record_number(pid),
            name=name,
            sex=sex(pid),
            birth_date=datatypes.birth_date(pid.get(7), pid.at(7)),
            id_number=resident_id(pid),
            phone=datatypes.phone(pid.repetitions(13)),
            address=datatypes.address(pid.repetitions(11)),
            recorded_at=recorded_at,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error.get("loc", ()))
        raise Hl7Error(
            f"PID: {where} {error.get('msg', 'is invalid')}",
            code=ErrorCode.DATA_TYPE,
            location=pid.at(3),
        ) from None
