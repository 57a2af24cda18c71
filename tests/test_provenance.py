"""Every bundled static measurement names its provenance row.

validation/README.md: the ``P*`` rows of validation_public.csv come from the sources in
measurements_public.csv, and each row's ``notes`` starts with the id of its provenance row (``M...``).
A static row whose id is missing there, or an id given twice in either file, would leave a case
without its source, locator and caveats.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import genmodel

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = ROOT / "validation" / "measurements_public.csv"


def _measurements() -> list[dict[str, str]]:
    with MEASUREMENTS.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_ids_are_unique_in_both_files() -> None:
    cases = [r["id"] for r in genmodel.read_cases(genmodel.public_cases_path())]
    measurements = [r["id"] for r in _measurements()]
    assert len(cases) == len(set(cases))
    assert len(measurements) == len(set(measurements))


def test_every_static_case_names_an_existing_provenance_row() -> None:
    known = {r["id"] for r in _measurements()}
    static = [r for r in genmodel.read_cases(genmodel.public_cases_path()) if r["mode"] == "static"]
    assert len(static) >= 50
    missing = {}
    for row in static:
        found = re.match(r"(M\d{3})\b", row["notes"])
        if found is None or found.group(1) not in known:
            missing[row["id"]] = row["notes"][:40]
    assert not missing, missing


def test_every_provenance_row_has_a_source_a_locator_and_a_value() -> None:
    for row in _measurements():
        assert row["source"].strip() and row["source_locator"].strip() and row["value"].strip(), row["id"]
