"""Boundary validation of single resources (``records.validation.validate``), without the
database: JSON types of primitives, narrative, local references, periods, contained
resources, the patient a resource is filed under, and the official R4 examples."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from medalliance.config import get_settings
from medalliance.errors import DomainError, ValidationFailed
from medalliance.records import narrative, structure
from medalliance.records.searchparams import resource_type_set
from medalliance.records.validation import (
    InvalidResource,
    UnsupportedType,
    _model,
    require_type,
    validate,
)
from records.factories import example, observation

XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _observation(**changes: Any) -> dict[str, Any]:
    resource = observation("p00000001")
    resource.update(copy.deepcopy(changes))
    return resource


def _refused(resource: dict[str, Any]) -> InvalidResource:
    with pytest.raises(InvalidResource) as refused:
        validate(resource)
    return refused.value


def _div(inner: str, attributes: str = "") -> dict[str, Any]:
    return {"status": "generated", "div": f"<div {XHTML}{attributes}>{inner}</div>"}


class TestPrimitiveJsonTypes:
    @pytest.mark.parametrize(
        ("change", "element"),
        [
            ({"valueQuantity": {"value": "5", "unit": "/min"}}, "Observation.valueQuantity.value"),
            ({"valueBoolean": "true"}, "Observation.valueBoolean"),
            ({"valueInteger": "5"}, "Observation.valueInteger"),
            ({"valueInteger": 5.5}, "Observation.valueInteger"),
            ({"valueString": 5}, "Observation.valueString"),
            ({"valueString": None}, "Observation.valueString"),
            ({"language": 5}, "Observation.language"),
            ({"status": True}, "Observation.status"),
            ({"issued": 20261001}, "Observation.issued"),
            ({"effectiveDateTime": 2026}, "Observation.effectiveDateTime"),
            (
                {"component": [{"code": {"text": "x"}, "valueBoolean": 1}]},
                "Observation.component.valueBoolean",
            ),
            (
                {"referenceRange": [{"low": {"value": "1.5"}}]},
                "Observation.referenceRange.low.value",
            ),
            (
                {"extension": [{"url": "http://x", "valueDecimal": "2"}]},
                "Observation.extension.valueDecimal",
            ),
        ],
    )
    def test_a_primitive_written_as_another_json_type_is_refused_naming_it(
        self, change: dict[str, Any], element: str
    ) -> None:
        refused = _refused(_observation(**change))
        assert refused.field == element
        assert refused.message.startswith(f"{element}: ")

    def test_the_message_says_what_json_type_fhir_wants(self) -> None:
        refused = _refused(_observation(valueQuantity={"value": "5"}))
        assert '"5" is a JSON string' in refused.message
        assert "decimal as a JSON number" in refused.message

    @pytest.mark.parametrize("value", [5, 5.25, 0, -1e-3])
    def test_a_decimal_may_be_any_json_number(self, value: float) -> None:
        validate(_observation(valueQuantity={"value": value}))

    def test_a_repeating_element_must_be_an_array_and_a_single_one_not(self) -> None:
        assert _refused(_observation(category={"text": "x"})).field == "Observation.category"
        assert _refused(_observation(code=[{"text": "x"}])).field == "Observation.code"

    def test_an_element_r4_does_not_define_is_refused(self) -> None:
        refused = _refused(_observation(fhir_comments=["a DSTU2 comment"]))
        assert refused.field == "Observation.fhir_comments"

    def test_primitive_extensions_and_nulls_that_align_arrays_are_valid(self) -> None:
        extension = {"extension": [{"url": "http://example.org/x", "valueBoolean": True}]}
        validate(
            _observation(
                _status=extension,
                note=[{"text": "a"}],
                identifier=[{"value": "1"}],
                basedOn=[{"reference": "ServiceRequest/1"}],
                _issued=extension,
            )
        )
        patient = {
            "resourceType": "Patient",
            "name": [{"given": ["Li", None], "_given": [None, extension]}],
        }
        validate(patient)


class TestNarrative:
    @pytest.mark.parametrize(
        "div",
        [
            "<script>alert(1)</script>",
            f"<div {XHTML}><script>alert(1)</script></div>",
            f'<div {XHTML}><p onclick="alert(1)">x</p></div>',
            f'<div {XHTML}><img src="x" onerror="alert(1)"/></div>',
            f'<div {XHTML}><a href="javascript:alert(1)">x</a></div>',
            f'<div {XHTML}><a href=" JaVa&#x09;Script:alert(1)">x</a></div>',
            f'<div {XHTML}><a href="data:text/html,&lt;script&gt;">x</a></div>',
            f'<div {XHTML}><img src="data:image/svg+xml;base64,PHN2Zz4="/></div>',
            f'<div {XHTML}><p style="background:url(javascript:alert(1))">x</p></div>',
            f'<div {XHTML}><p style="width: expression(alert(1))">x</p></div>',
            f'<div {XHTML}><iframe src="http://example.org"/></div>',
            f'<div {XHTML}><object data="x"/></div>',
            f"<div {XHTML}><form><input/></form></div>",
            f'<div {XHTML}><svg xmlns="http://www.w3.org/2000/svg"/></div>',
            f'<div {XHTML}><a xmlns:x="http://www.w3.org/1999/xlink" x:href="#">x</a></div>',
            "<div>no namespace</div>",
            f"<p {XHTML}>not a div</p>",
            f"<div {XHTML}>unclosed",
            f"<div {XHTML}>&nbsp;</div>",  # not an XML entity: not well-formed
            f'<!DOCTYPE d [<!ENTITY e "x">]><div {XHTML}>&e;</div>',
            f"<div {XHTML}><?php echo 1 ?></div>",
        ],
    )
    def test_markup_outside_txt_1_is_refused(self, div: str) -> None:
        refused = _refused(_observation(text={"status": "generated", "div": div}))
        assert refused.field == "Observation.text.div"

    @pytest.mark.parametrize(
        "inner",
        [
            "心率 72 /min",
            '<p style="color: red">x <a href="http://example.org/a">link</a></p>',
            '<a href="#anchor">x</a><a name="anchor"/><a href="Patient/1">y</a>',
            '<a href="mailto:a@example.org">x</a><a href="https://example.org">y</a>',
            '<img src="data:image/png;base64,iVBORw0KGgo=" alt="chart"/>',
            "<table><tbody><tr><td>1</td></tr></tbody></table>",
            "<ul><li>&lt;script&gt; as text</li></ul>",
            "",  # txt-2 (some content) is not enforced: empty generated divs are common
        ],
    )
    def test_basic_formatting_is_valid(self, inner: str) -> None:
        validate(_observation(text=_div(inner)))

    def test_a_narrative_in_a_contained_resource_is_checked_too(self) -> None:
        device = {"resourceType": "Device", "id": "d", "text": _div("<script/>")}
        refused = _refused(_observation(contained=[device], device={"reference": "#d"}))
        assert refused.field == "Observation.contained.text.div"

    def test_the_allowed_names_are_those_of_the_r4_definition(self) -> None:
        path = Path(get_settings().fhir_package_dir) / "StructureDefinition-Narrative.json"
        [element] = [
            e
            for e in json.loads(path.read_text(encoding="utf-8"))["snapshot"]["element"]
            if e["path"] == "Narrative.div"
        ]
        [txt1] = [c for c in element["constraint"] if c["key"] == "txt-1"]
        elements, attributes = re.findall(r"name\(\.\)=\(([^)]*)\)", txt1["xpath"])
        assert frozenset(re.findall(r"'([\w-]+)'", elements)) == narrative.ELEMENTS
        assert frozenset(re.findall(r"'([\w-]+)'", attributes)) == narrative.ATTRIBUTES


class TestLocalReferences:
    def test_a_local_reference_to_no_contained_resource_is_refused(self) -> None:
        refused = _refused(_observation(subject={"reference": "#nothing"}))
        assert refused.field == "Observation.subject.reference"
        assert "ref-1" in refused.message

    def test_a_local_reference_to_a_contained_resource_is_valid(self) -> None:
        device = {"resourceType": "Device", "id": "d1", "status": "active"}
        validate(_observation(contained=[device], device={"reference": "#d1"}))

    def test_only_a_contained_resource_may_refer_to_its_container_by_hash(self) -> None:
        assert _refused(_observation(focus=[{"reference": "#"}])).field == (
            "Observation.focus.reference"
        )
        device = {"resourceType": "Device", "id": "d1", "parent": {"reference": "#"}}
        validate(_observation(contained=[device], device={"reference": "#d1"}))

    def test_a_contained_resource_resolves_in_its_container(self) -> None:
        device = {"resourceType": "Device", "id": "d1"}
        location = {"resourceType": "Location", "id": "l1"}
        device["location"] = {"reference": "#l1"}
        validate(_observation(contained=[device, location], device={"reference": "#d1"}))

    def test_a_bundle_entry_resolves_in_its_own_resource(self) -> None:
        entry = {"resource": _observation(subject={"reference": "#elsewhere"})}
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "contained": [{"resourceType": "Basic", "id": "elsewhere", "code": {"text": "x"}}],
            "entry": [entry],
        }
        # Bundle is no DomainResource: its "contained" is not an element either.
        assert _refused(bundle).field == "Bundle.contained"
        del bundle["contained"]
        assert _refused(bundle).field == "Bundle.entry.resource.subject.reference"


def _effective(start: str, end: str) -> dict[str, Any]:
    resource = _observation(effectivePeriod={"start": start, "end": end})
    del resource["effectiveDateTime"]
    return resource


class TestPeriods:
    @pytest.mark.parametrize(
        ("start", "end"),
        [
            ("2026-10-02", "2026-10-01"),
            ("2026-02", "2026-01-31"),
            ("2027", "2026-12-31T23:59:59+08:00"),
            ("2026-10-01T10:00:01Z", "2026-10-01T10:00:00Z"),
            ("2026-10-01T10:00:00+08:00", "2026-10-01T01:59:59Z"),
        ],
    )
    def test_a_start_after_its_end_is_refused(self, start: str, end: str) -> None:
        refused = _refused(_effective(start, end))
        assert refused.field == "Observation.effectivePeriod"
        assert "per-1" in refused.message

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            ("2026-10-01", "2026-10-01"),
            ("2026-10-01T10:00:00Z", "2026-10-01T10:00:00Z"),
            ("2026-10", "2026-10-15"),  # partial dates overlap: not certainly after
            ("2026-10-15", "2026-10"),
            ("2026", "2026-03-01T08:00:00+08:00"),
            ("2026-10-01T10:00:00+08:00", "2026-10-01T02:00:00Z"),
        ],
    )
    def test_a_start_not_after_its_end_is_valid(self, start: str, end: str) -> None:
        validate(_effective(start, end))

    def test_a_period_inside_a_data_type_is_checked(self) -> None:
        bad = {"start": "2026-10-02", "end": "2026-10-01"}
        refused = _refused(_observation(identifier=[{"value": "1", "period": bad}]))
        assert refused.field == "Observation.identifier.period"


class TestContainedResources:
    @pytest.mark.parametrize(
        ("contained", "said"),
        [
            ([{"resourceType": "Foo"}], "not an R4 resource type"),
            ([{}], "no resourceType"),
            (["Patient/1"], "must be a resource"),
            ([{"resourceType": "Device", "id": "d", "contained": []}], "dom-2"),
        ],
    )
    def test_a_contained_item_that_is_no_resource_is_a_400(
        self, contained: list[Any], said: str
    ) -> None:
        refused = _refused(_observation(contained=contained))
        assert refused.field is not None
        assert refused.field.startswith("Observation.contained")
        assert said in refused.message

    def test_a_contained_resource_is_validated_as_its_type(self) -> None:
        device = {"resourceType": "Device", "id": "d", "manufactureDate": 2026}
        refused = _refused(_observation(contained=[device], device={"reference": "#d"}))
        assert refused.field == "Observation.contained.manufactureDate"


class TestContainedPatient:
    def test_a_subject_that_is_only_a_contained_patient_is_refused(self) -> None:
        newborn = {"resourceType": "Patient", "id": "newborn"}
        with pytest.raises(ValidationFailed) as refused:
            validate(_observation(contained=[newborn], subject={"reference": "#newborn"}))
        assert refused.value.field == "Observation.subject"
        assert "Patient/<id>" in refused.value.message

    def test_a_contained_patient_beside_the_registered_one_is_valid(self) -> None:
        mother = {"resourceType": "Patient", "id": "mother"}
        visit = {
            "resourceType": "Appointment",
            "status": "booked",
            "contained": [mother],
            "participant": [
                {"actor": {"reference": "Patient/p00000001"}, "status": "accepted"},
                {"actor": {"reference": "#mother"}, "status": "accepted"},
            ],
        }
        validate(visit)

    def test_a_contained_non_patient_subject_is_valid(self) -> None:
        group = {"resourceType": "Group", "id": "g", "type": "person", "actual": True}
        validate(_observation(contained=[group], subject={"reference": "#g"}))


class TestResourceTypes:
    def test_a_type_the_url_names_that_r4_lacks_is_not_found(self) -> None:
        with pytest.raises(UnsupportedType) as refused:
            require_type("observation")
        assert refused.value.status == 404
        assert refused.value.issue == "not-supported"

    def test_an_unknown_type_in_the_url_is_a_404_whatever_the_body(self) -> None:
        with pytest.raises(UnsupportedType):
            validate({"resourceType": "Foo"}, expected_type="Foo")

    def test_an_unknown_type_in_the_body_is_an_invalid_body(self) -> None:
        assert _refused({"resourceType": "Foo"}).status == 400
        assert _refused({"resourceType": "Foo"}).field == "resourceType"


# The package's examples that are not valid R4, or that this store refuses by design,
# each with why; every other example of a non-definitional type must validate.
_REFUSED_EXAMPLES = {
    # Their patient is a contained Patient, which no patient's record can file.
    **dict.fromkeys(
        [
            "Claim-100152.json", "Claim-100155.json", "Claim-MED-00050.json",
            "Observation-1minute-apgar-score.json", "Observation-2minute-apgar-score.json",
            "Observation-5minute-apgar-score.json", "Observation-10minute-apgar-score.json",
            "Observation-20minute-apgar-score.json", "QuestionnaireResponse-3141.json",
        ],
        ValidationFailed,
    ),
    "Questionnaire-qs1.json": InvalidResource,  # item.item.linkId (1..1) is missing
}  # fmt: skip
_DEFINITIONS = {"CodeSystem", "ValueSet", "StructureDefinition", "SearchParameter"}
_DEFINITIONS |= {"ConceptMap", "OperationDefinition", "ImplementationGuide"}


def _official_examples() -> list[str]:
    directory = Path(get_settings().fhir_package_dir)
    types = resource_type_set() - _DEFINITIONS
    return sorted(
        p.name
        for p in directory.glob("*-*.json")
        if p.name.split("-")[0] in types and p.stat().st_size < 1_000_000  # not definitions
    )


class TestOfficialExamples:
    def test_every_official_example_of_a_data_type_validates_but_the_invalid_ones(
        self,
    ) -> None:
        refused: dict[str, type[DomainError]] = {}
        for name in _official_examples():
            try:
                validate(example(name))
            except DomainError as error:
                refused[name] = type(error)
        assert refused == _REFUSED_EXAMPLES

    def test_the_r4_evidence_example_validates_although_r4b_reshaped_evidence(self) -> None:
        validate(example("Evidence-example.json"))
        validate(example("EvidenceVariable-example.json"))

    def test_an_extension_value_with_its_own_extensions_validates(self) -> None:
        # R4B's Extension model has no _valueString; R4 JSON allows it.
        validate(example("CodeSystem-v2-0003.json"))

    def test_r4b_models_know_every_r4_element_of_the_types_they_validate(self) -> None:
        differing = []
        for resource_type in sorted(resource_type_set()):
            model = _model(resource_type)
            if model is None:
                continue
            fields = {f.alias or n for n, f in model.model_fields.items()}
            for element in structure.elements(resource_type):
                stem = element.name
                if stem in fields:
                    continue
                if not any(
                    f.startswith(stem) and f[len(stem) : len(stem) + 1].isupper() for f in fields
                ):
                    differing.append(f"{resource_type}.{stem}")
        assert differing == []
