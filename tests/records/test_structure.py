"""The official StructureDefinitions: read once at startup (655 files, 39 MB of JSON), for
the search parameters, the summaries and the required codes alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medalliance.records import structure
from medalliance.records.searchparams import all_resource_types, choice_element_names

# A fresh process (the definitions are cached for its life) that starts the app as
# `serve` does and counts the reads of each StructureDefinition file.
_STARTUP = """
import collections, json, pathlib
reads = collections.Counter()
read_text = pathlib.Path.read_text
def counted(self, *args, **kwargs):
    if self.name.startswith("StructureDefinition-"):
        reads[self.name] += 1
    return read_text(self, *args, **kwargs)
pathlib.Path.read_text = counted
from fastapi.testclient import TestClient
from medalliance.app import create_app
with TestClient(create_app()):
    pass
print(json.dumps(reads))
"""


def test_startup_reads_each_structure_definition_once(tmp_path: Path) -> None:
    env = {**os.environ, "MEDALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    run = subprocess.run(
        [sys.executable, "-c", _STARTUP],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    reads: dict[str, int] = json.loads(run.stdout.strip().splitlines()[-1])
    assert "StructureDefinition-Observation.json" in reads
    assert {name: n for name, n in reads.items() if n > 1} == {}


def test_every_resource_type_has_its_elements_and_no_other_type_has() -> None:
    for resource_type in all_resource_types():
        assert structure.snapshot(resource_type), resource_type
    assert structure.snapshot("HumanName") == ()  # a data type, not a resource
    assert structure.snapshot("../secrets") == ()
    assert {"value", "effective", "onset"} <= choice_element_names()
