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


def test_fp4_weight_rows_describe_fp4_activations() -> None:
    """NVFP4 GEMMs run W4A4 in every engine the rows name (vLLM's and SGLang's ModelOpt NVFP4 linear
    and MoE methods and TensorRT-LLM's NVFP4LinearMethod quantise their inputs to FP4 before an
    FP4 x FP4 GEMM; docs/validation.md, "NVFP4 activations"), so an fp4-weight row says fp4
    activations unless its notes name a W4A8 or W4A16 recipe."""
    rows = [r for r in genmodel.read_cases(genmodel.public_cases_path()) if r["weight_dtype"] == "fp4"]
    assert len(rows) >= 30
    odd = {
        r["id"]: r["act_dtype"]
        for r in rows
        if r["act_dtype"] != "fp4" and not re.search(r"W4A(8|16)", r["notes"])
    }
    assert not odd, odd
