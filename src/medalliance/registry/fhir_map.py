"""How registry rows look as FHIR R4 resources, and the systems of every code we emit.

Mapping (documented here because member systems depend on it):
- Institution → Organization (same id): identifier = consortium institution code; type =
  level and kind codings; partOf = parent institution; alias = English name.
- Institution → Location (same id): the site, with position (lat/long) and address.
- HealthcareService, three categories, id ``{institution}.{category}.{code}``:
  ``department`` (a clinical department, national 诊疗科目 code, "brand" characteristic),
  ``emergency-centre`` (chest pain, stroke, trauma) and ``regional-centre`` (imaging, ECG,
  lab, pathology, sterile supply). FHIR ids allow no ``_`` so codes use ``-`` there.
- Practitioner → Practitioner: identifier = practising licence number, qualification =
  professional title. PractitionerRole: organization, location, department as specialty and
  healthcareService, code = primary or additional practice site (多点执业).
"""

from __future__ import annotations

from typing import Any, Final

from medalliance.registry.models import Department, Institution, Practitioner, PractitionerRole

BASE: Final = "https://medalliance.example/fhir"
SYSTEMS: Final = {
    "institution-code": f"{BASE}/NamingSystem/institution-code",
    "licence": f"{BASE}/NamingSystem/practitioner-licence",
    "level": f"{BASE}/CodeSystem/institution-level",
    "kind": f"{BASE}/CodeSystem/institution-kind",
    "department": f"{BASE}/CodeSystem/clinical-department",
    "service-category": f"{BASE}/CodeSystem/healthcare-service-category",
    "centre": f"{BASE}/CodeSystem/centre",
    "department-characteristic": f"{BASE}/CodeSystem/department-characteristic",
    "title": f"{BASE}/CodeSystem/professional-title",
    "practice-site": f"{BASE}/CodeSystem/practice-site",
    "division-code": f"{BASE}/StructureDefinition/division-code",
}
DEPARTMENT, EMERGENCY, REGIONAL = "department", "emergency-centre", "regional-centre"
SERVICE_CATEGORIES: Final = (DEPARTMENT, EMERGENCY, REGIONAL)


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": SYSTEMS[system], "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _display(code: str) -> str:
    return code.replace("_", " ").capitalize()


def _address(i: Institution) -> dict[str, Any]:
    address: dict[str, Any] = {"use": "work", "text": i.address or i.name, "country": "CN"}
    if i.division_code:
        address["extension"] = [{"url": SYSTEMS["division-code"], "valueCode": i.division_code}]
    return address


def organization(i: Institution) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": i.id,
        "active": i.active,
        "identifier": [{"system": SYSTEMS["institution-code"], "value": i.code}],
        "type": [
            _coding("level", i.level, _display(i.level)),
            _coding("kind", i.kind, _display(i.kind)),
        ],
        "name": i.name,
        "address": [_address(i)],
    }
    if i.name_en:
        resource["alias"] = [i.name_en]
    if i.parent_id:
        resource["partOf"] = {"reference": f"Organization/{i.parent_id}"}
    return resource


def location(i: Institution) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": i.id,
        "status": "active" if i.active else "inactive",
        "name": i.name,
        "mode": "instance",
        "address": _address(i),
        "managingOrganization": {"reference": f"Organization/{i.id}"},
    }
    if i.name_en:
        resource["alias"] = [i.name_en]
    if i.latitude is not None and i.longitude is not None:
        resource["position"] = {"latitude": i.latitude, "longitude": i.longitude}
    return resource


def service_id(institution_id: str, category: str, code: str) -> str:
    return f"{institution_id}.{category}.{code.replace('_', '-')}"


def parse_service_id(value: str) -> tuple[str, str, str] | None:
    """(institution id, category, stored code) or None when the id is not one of ours."""
    parts = value.split(".", 2)
    if len(parts) != 3 or parts[1] not in SERVICE_CATEGORIES:
        return None
    code = parts[2] if parts[1] == DEPARTMENT else parts[2].replace("-", "_")
    return parts[0], parts[1], code


def department_service(d: Department, i: Institution) -> dict[str, Any]:
    resource = _service(i, DEPARTMENT, d.code, d.name, active=d.active and i.active)
    resource["type"] = [_coding("department", d.code, d.name_en or None)]
    if d.brand:
        resource["characteristic"] = [_coding("department-characteristic", "brand", "Brand")]
    return resource


def centre_service(i: Institution, category: str, code: str, name: str) -> dict[str, Any]:
    resource = _service(i, category, code, name, active=i.active)
    resource["type"] = [_coding("centre", code, _display(code))]
    return resource


def _service(
    i: Institution, category: str, code: str, name: str, *, active: bool
) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": service_id(i.id, category, code),
        "active": active,
        "providedBy": {"reference": f"Organization/{i.id}", "display": i.name},
        "category": [_coding("service-category", category, _display(category))],
        "name": name,
        "location": [{"reference": f"Location/{i.id}"}],
    }


def practitioner(p: Practitioner) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "active": p.active,
        "identifier": [{"system": SYSTEMS["licence"], "value": p.licence_number}],
        "name": [{"use": "official", "text": p.name}],
        "gender": p.sex,
        "qualification": [{"code": _coding("title", p.title, _display(p.title))}],
    }


def practitioner_role(r: PractitionerRole, department: Department | None) -> dict[str, Any]:
    site = "primary" if r.primary_site else "additional"
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": r.id,
        "active": r.active,
        "practitioner": {"reference": f"Practitioner/{r.practitioner_id}"},
        "organization": {"reference": f"Organization/{r.institution_id}"},
        "location": [{"reference": f"Location/{r.institution_id}"}],
        "code": [_coding("practice-site", site, f"{site.capitalize()} practice site")],
    }
    if department is not None:
        resource["specialty"] = [_coding("department", department.code, department.name_en or None)]
        service = service_id(r.institution_id, DEPARTMENT, department.code)
        resource["healthcareService"] = [{"reference": f"HealthcareService/{service}"}]
    return resource


# Names of the designated centres as members publish them (DOMAIN.md glossary).
CENTRE_NAMES: Final = {
    "chest_pain": "胸痛中心",
    "stroke": "卒中中心",
    "trauma": "创伤中心",
    "imaging": "影像中心",
    "ecg": "心电中心",
    "lab": "检验中心",
    "pathology": "病理中心",
    "sterile_supply": "消毒供应中心",
}
