"""ORU^R01 order groups (ORC/OBR with their OBX) to DiagnosticReport and Observations.

Results are keyed by the filler order number (OBR-3, else the placer's) within the sending
member, so a preliminary report followed by the final one, or a correction, updates the
same resources instead of adding a second set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from medalliance.kit import fhirjson
from medalliance.records.hl7 import datatypes, systems
from medalliance.records.hl7.enums import ErrorCode
from medalliance.records.hl7.er7 import Hl7Error, Location, Message, Segment

# OBX-11 / OBR-25 (HL7 tables 0085 / 0123) to FHIR statuses.
_OBSERVATION_STATUS = {
    "F": "final",
    "C": "corrected",
    "P": "preliminary",
    "S": "preliminary",
    "R": "registered",
    "I": "registered",
    "U": "final",
    "X": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
    # N (not asked) and O (order detail only): no result was produced. As the v2-to-FHIR
    # mapping does, N is cancelled (with data-absent-reason not-asked) and O registered;
    # OBX-5, -7 and -8 are not read for them.
    "N": "cancelled",
    "O": "registered",
}
_NO_RESULT = frozenset({"N", "O"})
_REPORT_STATUS = {
    "F": "final",
    "C": "corrected",
    "P": "preliminary",
    "A": "partial",
    "S": "partial",
    "R": "registered",
    "I": "registered",
    "O": "registered",
    "X": "cancelled",
}
# OBX-8 abnormal flags (HL7 table 0078) share their codes with v3 ObservationInterpretation.
_INTERPRETATION = {
    "H": "High",
    "L": "Low",
    "HH": "Critical high",
    "LL": "Critical low",
    "N": "Normal",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "<": "Off scale low",
    ">": "Off scale high",
    "S": "Susceptible",
    "R": "Resistant",
    "I": "Intermediate",
    "B": "Better",
    "W": "Worse",
    "U": "Significant change up",
    "D": "Significant change down",
    "MS": "moderately susceptible",
    "VS": "very susceptible",
}
# OBR-24 sections (HL7 table 0074) that are imaging rather than laboratory.
IMAGING_SECTIONS = frozenset({"RAD", "CT", "NMR", "US", "RX", "VUS", "NMS", "CUS", "OUS", "XRC"})
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[-~]\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")
_NM = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_DATE_TYPES = frozenset({"DT", "TS", "DTM"})
SUPPORTED_VALUE_TYPES = ("NM", "SN", "ST", "TX", "FT", "CE", "CWE", "DT", "TS", "DTM")


# Elements of the resources written back to the field they came from, so that a refusal
# by the shared record's validator names it in ERR-2 (first matching prefix wins).
_OBSERVATION_SOURCES = (
    ("valueQuantity.unit", 6),
    ("valueQuantity.code", 6),
    ("valueQuantity.system", 6),
    ("value", 5),
    ("dataAbsentReason", 11),
    ("code", 3),
    ("referenceRange", 7),
    ("interpretation", 8),
    ("status", 11),
    ("effective", 14),
)
_REPORT_SOURCES = (("code", 4), ("status", 25), ("effective", 7), ("issued", 22))


def source_of(expression: str | None, segment: Segment) -> Location:
    """Where in the OBX (of an Observation) or OBR (of the DiagnosticReport) the element a
    FHIR expression such as "Observation.valueQuantity.value" names came from; the
    segment alone when it is not known."""
    sources = _OBSERVATION_SOURCES if segment.id == "OBX" else _REPORT_SOURCES
    path = (expression or "").partition(".")[2]
    number = next((n for prefix, n in sources if path.startswith(prefix)), None)
    return segment.at(number) if number else Location(segment.id, segment.sequence)


@dataclass
class OrderGroup:
    obr: Segment
    orc: Segment | None
    obx: list[Segment] = field(default_factory=list)
    notes: list[Segment] = field(default_factory=list)  # NTE right after the OBR
    obx_notes: dict[int, list[Segment]] = field(default_factory=dict)  # by OBX sequence


def order_groups(message: Message) -> list[OrderGroup]:
    """ORC? OBR NTE* (OBX NTE*)*; an NTE belongs to the OBR or OBX it follows (one after any
    other segment, e.g. SPM or PID, is not about a result and is skipped); an OBX before
    any OBR is out of sequence."""
    groups: list[OrderGroup] = []
    pending_orc: Segment | None = None
    notes: list[Segment] | None = None  # where an NTE here would go
    for segment in message.segments:
        if segment.id == "NTE":
            if notes is not None:
                notes.append(segment)
            continue
        notes = None
        if segment.id == "ORC":
            pending_orc = segment
        elif segment.id == "OBR":
            groups.append(OrderGroup(segment, pending_orc))
            pending_orc = None
            notes = groups[-1].notes
        elif segment.id == "OBX":
            if not groups:
                raise Hl7Error(
                    "OBX before any OBR: results belong to an order (OBR)",
                    code=ErrorCode.SEGMENT_SEQUENCE,
                    location=segment.at(1),
                )
            groups[-1].obx.append(segment)
            notes = groups[-1].obx_notes.setdefault(segment.sequence, [])
    if not groups:
        raise Hl7Error(
            "an ORU^R01 needs at least one OBR with its OBX results",
            code=ErrorCode.SEGMENT_SEQUENCE,
            location=message.msh.at(9),
        )
    return groups


def order_number(group: OrderGroup) -> str:
    """Filler order number (OBR-3, ORC-3), else the placer's (OBR-2, ORC-2)."""
    candidates = [(group.obr, 3), (group.orc, 3), (group.obr, 2), (group.orc, 2)]
    for segment, number in candidates:
        if segment is not None and segment.get(number):
            return segment.get(number)
    location = group.obr.at(3)
    raise Hl7Error(
        f"{location} (filler order number) or OBR-2 (placer order number) is required",
        code=ErrorCode.REQUIRED_FIELD_MISSING,
        location=location,
    )


def is_imaging(group: OrderGroup) -> bool:
    return group.obr.get(24).upper() in IMAGING_SECTIONS


@dataclass(frozen=True)
class Context:
    """What every resource of one order shares."""

    patient_id: str
    institution_id: str
    encounter_ref: str | None
    order: str
    imaging: bool

    def common(self) -> dict[str, Any]:
        common: dict[str, Any] = {"subject": {"reference": f"Patient/{self.patient_id}"}}
        if self.encounter_ref:
            common["encounter"] = {"reference": self.encounter_ref}
        common["performer"] = [{"reference": f"Organization/{self.institution_id}"}]
        return common


def observation(obx: Segment, group: OrderGroup, ctx: Context) -> tuple[str, dict[str, Any]]:
    """(identifier value, Observation) for one OBX."""
    local = systems.local_codes(ctx.institution_id)
    code = datatypes.codeable_concept(_first(obx, 3), local_system=local)
    code_value = obx.get(3)
    if code is None or not code_value:
        raise Hl7Error(
            f"{obx.at(3)} (observation identifier) is required",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=obx.at(3),
        )
    key = _result_key(obx, group, ctx.order)
    category = "imaging" if ctx.imaging else "laboratory"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": systems.result(ctx.institution_id), "value": key}],
        "status": _status(obx),
        "category": [{"coding": [{"system": systems.OBSERVATION_CATEGORY, "code": category}]}],
        "code": code,
        **ctx.common(),
    }
    effective = datatypes.fhir_datetime(obx.get(14), obx.at(14), "observation time")
    effective = effective or datatypes.fhir_datetime(
        group.obr.get(7), group.obr.at(7), "observation time"
    )
    if effective:
        resource["effectiveDateTime"] = effective
    notes = _notes(obx, group)
    if notes:
        resource["note"] = notes
    if obx.get(11).upper() in _NO_RESULT:
        if obx.get(11).upper() == "N":
            reason = {"system": systems.DATA_ABSENT_REASON, "code": "not-asked"}
            resource["dataAbsentReason"] = {"coding": [{**reason, "display": "Not Asked"}]}
        return key, resource
    resource.update(_value(obx, local))
    unit = resource.get("valueQuantity", {})
    reference_range = _reference_range(obx.get(7), unit)
    if reference_range:
        resource["referenceRange"] = [reference_range]
    interpretation = _interpretation(obx)
    if interpretation:
        resource["interpretation"] = interpretation
    return key, resource


def _notes(obx: Segment, group: OrderGroup) -> list[dict[str, str]]:
    """NTE-3 comments as Observation.note (v2-to-FHIR: NTE to Annotation): the OBX's own,
    then the order's. The mapping puts an order's NTE on its ServiceRequest, which is not
    created here, and an R4 DiagnosticReport has no note (its conclusion is the
    reporter's interpretation, not a remark such as "specimen haemolysed"), so they go
    on each result of the order, where a reader of any one result sees them."""
    own = group.obx_notes.get(obx.sequence, [])
    return [{"text": text} for text in (_note_text(n) for n in [*own, *group.notes]) if text]


def _note_text(nte: Segment) -> str:
    """NTE-3 is FT and repeats: each repetition a line, \\.br\\ a line break."""
    lines = [nte.delimiters.unescape(rep.raw).strip() for rep in nte.repetitions(3)]
    return "\n".join(line for line in lines if line)


def _result_key(obx: Segment, group: OrderGroup, order: str) -> str:
    """Order number, test code and OBX-4 sub-ID: what the result is, not where it was
    listed (OBX-1 numbers the lines, so a correction listing the tests in another order
    would otherwise make a second set). A test repeated without sub-IDs is told apart by
    its occurrence among its own repeats."""
    code, sub = obx.get(3), obx.get(4)
    if sub:
        return f"{order}/{code}/{sub}"
    earlier = 0
    for other in group.obx:
        if other is obx:
            break
        earlier += other.get(3) == code and not other.get(4)
    return f"{order}/{code}" + (f"#{earlier + 1}" if earlier else "")


def report(
    group: OrderGroup, ctx: Context, results: list[str], statuses: list[str]
) -> dict[str, Any]:
    obr = group.obr
    local = systems.local_codes(ctx.institution_id)
    code = datatypes.codeable_concept(_first(obr, 4), local_system=local)
    if code is None:
        raise Hl7Error(
            f"{obr.at(4)} (universal service identifier) is required",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=obr.at(4),
        )
    section = obr.get(24).upper() or "LAB"
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": systems.order(ctx.institution_id), "value": ctx.order}],
        "status": _report_status(obr, statuses),
        "category": [{"coding": [{"system": systems.V2_0074, "code": section}]}],
        "code": code,
        **ctx.common(),
        "result": [{"reference": ref} for ref in results],
    }
    effective = datatypes.fhir_datetime(obr.get(7), obr.at(7), "observation date/time")
    if effective:
        resource["effectiveDateTime"] = effective
    issued = datatypes.fhir_instant(obr.get(22), obr.at(22), "results report time")
    if issued:
        resource["issued"] = issued
    return resource


def _first(segment: Segment, number: int) -> Any:
    reps = segment.repetitions(number)
    return reps[0] if reps else None


def _status(obx: Segment) -> str:
    code = obx.get(11).upper()
    if code not in _OBSERVATION_STATUS:
        location = obx.at(11)
        raise Hl7Error(
            f"{location} (observation result status) must be one of "
            f"{', '.join(sorted(_OBSERVATION_STATUS))}, not {code or 'empty'}",
            code=ErrorCode.TABLE_VALUE_NOT_FOUND if code else ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )
    return _OBSERVATION_STATUS[code]


def _report_status(obr: Segment, statuses: list[str]) -> str:
    code = obr.get(25).upper()
    if code in _REPORT_STATUS:
        return _REPORT_STATUS[code]
    if statuses and all(s in ("final", "corrected") for s in statuses):
        return "corrected" if "corrected" in statuses else "final"
    return "preliminary" if statuses else "registered"


def _value(obx: Segment, local: str) -> dict[str, Any]:
    value_type = obx.get(2).upper()
    reps = obx.repetitions(5)
    if not reps:
        return {}
    location = obx.at(5)
    if value_type == "NM":
        return {"valueQuantity": _quantity(reps[0].component(1), obx, location)}
    if value_type == "SN":
        return _structured_numeric(obx, location)
    if value_type in _TEXT_TYPES:
        text = "\n".join(obx.delimiters.unescape(r.raw) for r in reps)
        return {"valueString": text}
    if value_type in ("CE", "CWE"):
        return {"valueCodeableConcept": datatypes.codeable_concept(reps[0], local_system=local)}
    if value_type in _DATE_TYPES:
        return {"valueDateTime": datatypes.fhir_datetime(reps[0].component(1), location, "value")}
    raise Hl7Error(
        f"{obx.at(2)} value type {value_type or 'empty'} is not supported "
        f"({', '.join(SUPPORTED_VALUE_TYPES)})",
        code=ErrorCode.TABLE_VALUE_NOT_FOUND,
        location=obx.at(2),
    )


def _number(raw: str, location: Any) -> float | int:
    """HL7 NM: an optional sign, digits and an optional decimal point, nothing else (no
    exponent, NaN, underscores or hex, which float() would take). A whole number stays an
    int so that "12" is not stored as 12.0, a precision the sender did not report, and a
    decimal keeps its digits (5.60 stays 5.60); the sign and zeros JSON forbids go ("+.5"
    is 0.5)."""
    text = raw.strip()
    if not _NM.match(text):
        raise Hl7Error(
            f"{location} {raw!r} is not a number (value type NM: [+|-]digits[.digits])",
            code=ErrorCode.DATA_TYPE,
            location=location,
        )
    return _json_number(text)


def _json_number(text: str) -> float | int:
    """A checked decimal's text as the number JSON writes back with the same digits."""
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("+-").partition(".")
    whole = whole.lstrip("0") or "0"
    if not fraction:
        return int(f"{sign}{whole}")
    return fhirjson.number(f"{sign}{whole}.{fraction}")


def _quantity(raw: str, obx: Segment, location: Any) -> dict[str, Any]:
    """NM with its OBX-6 unit; a UCUM system and code only when OBX-6.3 names UCUM (a
    bare unit such as "10^9/L" or "mmol/L" is the sender's text, not a checked code)."""
    quantity: dict[str, Any] = {"value": _number(raw, location)}
    unit, unit_text, unit_system = obx.get(6, 1), obx.get(6, 2), obx.get(6, 3).upper()
    if not unit_system and unit.isascii() and unit.isdigit() and unit_text[:1].isdigit():
        # "10^9/L": a power of ten written with the component separator, not a code
        # "10" with the text "9/L".
        unit, unit_text = f"{unit}{obx.delimiters.component}{unit_text}", ""
    if unit:
        quantity["unit"] = unit_text or unit
        if unit_system == "UCUM":
            quantity["system"] = systems.UCUM
            quantity["code"] = unit
    return quantity


def _structured_numeric(obx: Segment, location: Any) -> dict[str, Any]:
    """SN: comparator^num1^separator^num2. A single bound or number is a Quantity, a range
    ("^10^-^20") a Range in the result's unit, a ratio or titer ("^1^:^128") a Ratio;
    anything else (a suffix such as "^2^+") keeps its text."""
    rep = obx.repetitions(5)[0]
    comparator, number, separator = rep.component(1), rep.component(2), rep.component(3)
    second = rep.component(4)
    if number and second and not comparator and separator == "-":
        low, high = _quantity(number, obx, location), _quantity(second, obx, location)
        return {"valueRange": {"low": low, "high": high}}
    if number and second and not comparator and separator in (":", "/"):
        ratio = {"numerator": _number(number, location), "denominator": _number(second, location)}
        return {"valueRatio": {k: {"value": v} for k, v in ratio.items()}}
    if separator or not number:
        return {"valueString": obx.text(5).replace(obx.delimiters.component, "")}
    quantity = _quantity(number, obx, location)
    if comparator in ("<", "<=", ">", ">="):
        quantity["comparator"] = comparator
    return {"valueQuantity": quantity}


def _reference_range(raw: str, quantity: dict[str, Any]) -> dict[str, Any] | None:
    """OBX-7 as low/high quantities in the result's unit ("3.9-6.1", "<5", ">=60")."""
    if not raw:
        return None
    unit = {k: quantity[k] for k in ("unit", "system", "code") if k in quantity}
    match = _RANGE.match(raw)
    if match:
        return {
            "low": {"value": _json_number(match.group(1)), **unit},
            "high": {"value": _json_number(match.group(2)), **unit},
            "text": raw,
        }
    bound = _BOUND.match(raw)
    if bound:
        side = "high" if bound.group(1).startswith("<") else "low"
        return {side: {"value": _json_number(bound.group(2)), **unit}, "text": raw}
    return {"text": raw}


def _interpretation(obx: Segment) -> list[dict[str, Any]]:
    concepts = []
    for rep in obx.repetitions(8):
        code = rep.component(1).upper()
        if code not in _INTERPRETATION:
            location = obx.at(8)
            raise Hl7Error(
                f"{location} abnormal flag {code!r} is not in HL7 table 0078",
                code=ErrorCode.TABLE_VALUE_NOT_FOUND,
                location=location,
            )
        coding = {"system": systems.INTERPRETATION, "code": code, "display": _INTERPRETATION[code]}
        concepts.append({"coding": [coding]})
    return concepts
