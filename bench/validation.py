"""What boundary validation (``records.validation.validate``) costs per resource: over the
official R4 examples of every type the store takes, and over N Observations as a member's
HIS sends them. CPU time of this process (the machine is shared: wall time lies), best of
``--repeat`` runs, after a warm-up that imports the models and reads the definitions.

    .venv/bin/python bench/validation.py [--observations 10000] [--repeat 5]

Every write (single or in a bundle) pays this once per resource, before the database. The
R4 JSON pass (``records.shape``: primitives' JSON types, element names, narrative, local
references, periods) is also timed alone: it is what validation added to the models.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medalliance.config import get_settings
from medalliance.errors import DomainError
from medalliance.records import shape, validation
from medalliance.records.searchparams import resource_type_set

_DEFINITIONS = 1_000_000  # characters: the definition bundles, not clinical examples


def official_examples() -> list[dict[str, Any]]:
    """The package's examples of resource types, valid ones only (a refused example would
    time the error path), without its definition bundles (MBs of StructureDefinitions and
    value sets, seconds each, which would be the whole measure)."""
    types = resource_type_set() - {"StructureDefinition", "SearchParameter", "CodeSystem"}
    types -= {"ValueSet", "ConceptMap", "OperationDefinition"}  # definitions, not data
    found = []
    for path in sorted(Path(get_settings().fhir_package_dir).glob("*-*.json")):
        if path.name.split("-")[0] not in types:
            continue
        text = path.read_text(encoding="utf-8")
        if len(text) > _DEFINITIONS:
            continue
        resource = json.loads(text)
        try:
            validation.validate(resource)
        except DomainError:
            continue
        found.append(resource)
    return found


def observations(count: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/p{i:08d}"},
            "encounter": {"reference": f"Encounter/e{i:08d}"},
            "effectiveDateTime": "2026-10-01T08:05:00+08:00",
            "valueQuantity": {
                "value": 60 + i % 40,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }
        for i in range(count)
    ]


def per_resource(
    resources: list[dict[str, Any]], check: Callable[[Any], Any], repeat: int
) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for resource in resources:
            check(resource)
        best = min(best, time.process_time() - started)
    return best / len(resources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    validation.warm()
    examples = official_examples()
    batch = observations(args.observations)
    for name, resources in (("official examples", examples), ("Observations", batch)):
        cost = per_resource(resources, validation.validate, args.repeat)
        walk = per_resource(resources, shape.check, args.repeat)
        print(
            f"{name}: {len(resources)} resources, {cost * 1e6:.1f} µs CPU each, of which "
            f"the R4 JSON pass (shape.check) {walk * 1e6:.1f} µs ({walk / cost:.0%})"
        )


if __name__ == "__main__":
    main()
