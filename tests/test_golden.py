"""Golden outputs: ``genmodel.report.estimate_dict`` of fixed cases, compared with a relative tolerance.

The file tests/golden/estimates.json changes only on purpose: rerun with ``pytest --regen-golden``
after a deliberate model change and review the diff.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import genmodel

GOLDEN = Path(__file__).parent / "golden" / "estimates.json"
REL = 1e-6

CASES: dict[str, dict[str, Any]] = {
    "dense-a100-llama2-70b-tp4": {
        "model": "llama-2-70b",
        "hardware": "a100-sxm-80gb",
        "tp": 4,
        "batch": 16,
        "input_tokens": 2048,
        "output_tokens": 128,
        "weight_dtype": "fp16",
    },
    "dense-h100-llama31-70b-fp8-tp2-max": {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "tp": 2,
        "batch": "max",
        "input_tokens": 1000,
        "output_tokens": 1000,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "kv_dtype": "fp8",
    },
    "dense-h200-llama31-8b-bf16": {
        "model": "llama-3.1-8b",
        "hardware": "h200-sxm",
        "batch": 64,
        "input_tokens": 1000,
        "output_tokens": 1000,
    },
    "edge-jetson-agx-orin-llama31-8b-int4": {
        "model": "llama-3.1-8b",
        "hardware": "jetson-agx-orin-64gb",
        "batch": 1,
        "input_tokens": 512,
        "output_tokens": 128,
        "weight_dtype": "int4",
    },
    "pp2-h100-llama31-70b-tp4": {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "tp": 4,
        "pp": 2,
        "batch": 32,
        "input_tokens": 2048,
        "output_tokens": 256,
    },
    "moe-h200-qwen3-235b-fp8-tp4": {
        "model": "qwen3-235b-a22b",
        "hardware": "h200-sxm",
        "tp": 4,
        "batch": 16,
        "input_tokens": 1000,
        "output_tokens": 500,
        "weight_dtype": "fp8",
    },
    "moe-mla-h200-deepseek-v3-fp8-tp8": {
        "model": "deepseek-v3",
        "hardware": "h200-sxm",
        "tp": 8,
        "batch": 8,
        "input_tokens": 1000,
        "output_tokens": 500,
        "weight_dtype": "fp8",
    },
}


#: keys left out of the comparison: the intervals follow the residual table (tools/fit_intervals.py),
#: which is refitted whenever the validation cases or the efficiency data change; tests/test_intervals.py
#: checks them
INTERVAL_KEYS = (
    *(f"{m}_interval" for m in genmodel.HEADLINE_METRICS),
    "interval_coverage",
    "interval_evidence",
    "interval_basis",
)


def _run(case: dict[str, Any]) -> dict[str, Any]:
    args = dict(case)
    d = genmodel.report.estimate_dict(genmodel.estimate(args.pop("model"), args.pop("hardware"), **args))
    return {k: v for k, v in d.items() if k not in INTERVAL_KEYS}


def _compare(actual: Any, expected: Any, where: str) -> list[str]:
    """Differences between two JSON trees: numbers within REL, everything else equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return [
                f"{where}: keys {sorted(actual) if isinstance(actual, dict) else actual}"
                f" != {sorted(expected)}"
            ]
        return [d for k in expected for d in _compare(actual[k], expected[k], f"{where}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {actual!r} is not a list of {len(expected)}"]
        return [
            d
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for d in _compare(a, e, f"{where}[{i}]")
        ]
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return [] if actual == expected else [f"{where}: {actual!r} != {expected!r}"]
    if isinstance(expected, int | float):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return [f"{where}: {actual!r} is not a number"]
        if math.isclose(actual, expected, rel_tol=REL, abs_tol=1e-15):
            return []
        return [f"{where}: {actual!r} != {expected!r} (rel tol {REL})"]
    return [f"{where}: unexpected type {type(expected).__name__}"]


@pytest.fixture(scope="module")
def golden(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The golden data; with --regen-golden, first rewritten from the current code."""
    if request.config.getoption("--regen-golden"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        data = {name: _run(case) for name, case in CASES.items()}
        GOLDEN.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert GOLDEN.is_file(), "run pytest --regen-golden once to create tests/golden/estimates.json"
    loaded: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return loaded


def test_golden_file_has_exactly_the_cases(golden: dict[str, Any]) -> None:
    assert set(golden) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_estimate_matches_golden(name: str, golden: dict[str, Any]) -> None:
    diffs = _compare(_run(CASES[name]), golden[name], name)
    assert not diffs, "\n".join(diffs)


def test_compare_detects_a_drift() -> None:
    # the comparison itself can fail: a change beyond the tolerance, a flipped bool, a lost key
    assert _compare({"a": 1.0}, {"a": 1.0 + 1e-9}, "x") == []
    assert _compare({"a": 1.0}, {"a": 1.001}, "x")
    assert _compare({"fits": False}, {"fits": True}, "x")
    assert _compare({"a": 1.0}, {"a": 1.0, "b": 2.0}, "x")
