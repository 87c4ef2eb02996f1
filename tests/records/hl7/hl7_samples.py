"""Realistic HL7 v2.5.1 messages from the county hospital's HIS and LIS (UTF-8, Chinese
names), built field by field so each test can change what it is about."""

from __future__ import annotations

ID_NUMBER = "131125196503121235"  # 欧阳建华, male, born 1965-03-12 (valid check digit)
MRN = "ZY0012345"
FACILITY = "county-hospital"


def msh(message_type: str, control_id: str, *, facility: str = FACILITY, app: str = "HIS") -> str:
    return (
        f"MSH|^~\\&|{app}|{facility}|MEDALLIANCE|CONSORTIUM|20261105093000||{message_type}|"
        f"{control_id}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8"
    )


def pid(
    *,
    mrn: str = MRN,
    id_number: str = ID_NUMBER,
    sex: str = "M",
    name: str = "欧阳^建华",
    birth_date: str = "19650312",
    phone: str = "13903180001",
) -> str:
    ids = f"{mrn}^^^{FACILITY}^MR" + (f"~{id_number}^^^CHN^NNCHN" if id_number else "")
    return (
        f"PID|1||{ids}||{name}||{birth_date}|{sex}|||"
        f"幸福路18号^^衡水市^河北省^053600^CHN^H^^安平县||^PRN^PH^^^^^^^^^{phone}"
    )


def pv1(visit: str, *, patient_class: str = "I", admit: str = "", discharge: str = "") -> str:
    fields = ["PV1", "1", patient_class, "0301^12^03^county-hospital", "", "", ""]
    fields += ["D0304^王^静怡", "", "", "MED"]
    fields += [""] * 8 + [visit]  # PV1-11 .. PV1-19 (visit number)
    fields += [""] * 24 + [admit, discharge]  # PV1-20 .. PV1-45
    return "|".join(fields)


def adt(
    trigger: str,
    control_id: str,
    *,
    visit: str = "V20261105001",
    discharge: str = "",
    extra: tuple[str, ...] = (),
    patient: str | None = None,
    recorded: str = "20261105092800",
) -> bytes:
    segments = [
        msh(f"ADT^{trigger}^ADT_A01", control_id),
        f"EVN|{trigger}|{recorded}",
        patient or pid(),
        pv1(visit, admit="20261105092800", discharge=discharge),
        "PV2|||I63.9^脑梗死^I10",
        "DG1|1||I63.9^脑梗死^I10||20261105093000|A",
        *extra,
    ]
    return ("\r".join(segments) + "\r").encode()


LIPID_RESULTS = (
    "OBX|1|NM|2093-3^总胆固醇^LN||6.8|mmol/L^^UCUM|3.1-5.7|H|||F|||20261105080000",
    "OBX|2|NM|2571-8^甘油三酯^LN||1.2|mmol/L^^UCUM|0.4-1.7|N|||F",
    "OBX|3|NM|2085-9^高密度脂蛋白胆固醇^LN||1.1|mmol/L^^UCUM|>1.0|N|||F",
    "OBX|4|ST|8251-1^备注^LN||空腹采血||||||F",
)


def oru(
    control_id: str,
    *,
    results: tuple[str, ...] = LIPID_RESULTS,
    visit: str = "V20261105001",
    order: str = "LAB-20261105-0001",
    facility: str = FACILITY,
    status: str = "F",
    patient: str | None = None,
) -> bytes:
    segments = [
        msh("ORU^R01^ORU_R01", control_id, facility=facility, app="LIS"),
        patient or pid(),
        pv1(visit),
        f"ORC|RE|PL-0001|{order}",
        f"OBR|1|PL-0001|{order}|57698-3^血脂四项^LN|||20261105080000|||||||||||||||"
        f"20261105143000|||{status}",
        *results,
    ]
    return ("\r".join(segments) + "\r").encode()


def segment(message: bytes, segment_id: str) -> list[str]:
    """The fields of the first segment with this id in an ER7 answer."""
    for line in message.decode().split("\r"):
        if line.startswith(segment_id + "|"):
            return line.split("|")
    raise AssertionError(f"no {segment_id} in {message!r}")


def resident_id(first17: str) -> str:
    """A resident ID number with its GB 11643 check digit."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(digit) * weight for digit, weight in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def assert_clean(answer: bytes) -> None:
    """An ACK holds text only: no replacement character, no control character but CR."""
    text = answer.decode()
    assert "\ufffd" not in text, text
    assert all(c == "\r" or c.isprintable() for c in text), repr(text)
