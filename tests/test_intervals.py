"""Intervals (genmodel/_intervals.py, _intervalfit.py, tools/fit_intervals.py): the bundled table is
what the tool fits on the bundled cases; held-out coverage is near nominal; thinner evidence widens;
every estimate, validation case and plan carries them; ``--risk`` checks targets on the bound."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel._interval_table import TABLE
from genmodel._intervalfit import (
    Residual,
    fit_widening,
    held_out_coverage,
    residuals,
)
from genmodel._intervals import (
    BUNDLED,
    IntervalTable,
    evidence,
    interval,
    log_bounds,
    parse_risk,
    pessimistic_factors,
)

ROOT = Path(__file__).resolve().parents[1]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fit_intervals", ROOT / "tools" / "fit_intervals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fit_intervals"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fitted() -> tuple[list[Residual], dict[str, Any]]:
    """The log-ratios of the bundled cases and the table the tool fits on them (one validate run
    of each serving model, and the static cases refitted leave-one-source-out on the efficiency
    grid: about 20 s of CPU)."""
    tool = _tool()
    res, n = tool.collect(None)
    return res, tool.fit_table(res, source=tool.source(), cases=n)


def test_bundled_table_is_what_the_tool_fits(fitted: tuple[list[Residual], dict[str, Any]]) -> None:
    tool = _tool()
    _, data = fitted
    assert tool.same(data, TABLE), "genmodel/_interval_table.py is out of date: run tools/fit_intervals.py"
    assert not tool.same({**data, "widening": {**data["widening"], "static/calibrated": 9.0}}, TABLE)


def test_held_out_coverage_is_near_nominal(fitted: tuple[list[Residual], dict[str, Any]]) -> None:
    # leave one measurement out (its TTFT and TPOT rows together): not in-sample
    res, data = fitted
    w = data["widening"]
    for mode, low, high in (("serving", 0.72, 0.9), ("static", 0.65, 1.0)):
        cases = [i for i, r in enumerate(res) if (r.serving_model == "static") == (mode == "static")]
        frac, n = held_out_coverage(res, lambda r: r.unit, cases=cases, widening=w[f"{mode}/calibrated"])
        assert n == len(cases) and n >= 19
        assert low <= frac <= high, (mode, frac, n)
    # in the table as fitted, per family of the serving cases too
    fam = data["held_out"]["by_family"]
    assert 0.72 <= fam["serving/nvidia-hopper"] <= 0.9
    assert 0.72 <= fam["serving/nvidia-blackwell"] <= 0.9


def test_validate_reports_interval_coverage_of_every_case() -> None:
    d = genmodel.validate(serving="closed-form").to_dict()
    assert all(len(c["predicted_interval"]) == 2 for c in d["cases"])
    assert all(c["predicted_interval"][0] < c["predicted_interval"][1] for c in d["cases"])
    inside = [c["predicted_interval"][0] <= c["measured"] <= c["predicted_interval"][1] for c in d["cases"]]
    cov = d["interval_coverage"]
    assert cov["nominal"] == 0.8
    assert cov["inside"] == pytest.approx(sum(inside) / len(inside))
    assert 0.7 <= cov["inside"] <= 0.95


def test_static_predictions_are_held_out_by_source() -> None:
    # two sources; a grid of two memory fractions: each source is predicted with the fraction that
    # fits the other source best, never with the one that fits itself
    tool = _tool()
    rows = [r for r in genmodel.read_cases(genmodel.public_cases_path()) if r["id"] in ("P01", "P03", "P14")]
    assert {r["source_id"] for r in rows} == {rows[0]["source_id"], rows[2]["source_id"]}
    grid = {"memory_frac": (0.5, 0.9)}
    held_out = tool.static_predictions(rows, grid)
    assert set(held_out) == {"P01", "P03", "P14"}
    for r in rows:
        others = [o for o in rows if o["source_id"] != r["source_id"]]

        def error(frac: float, cases: list[dict[str, str]]) -> float:
            return sum(
                abs(tool.predict_case(c, hardware=_with_memory_frac(c, frac)) / float(c["measured"]) - 1)
                for c in cases
            )

        best = min(grid["memory_frac"], key=lambda f: error(f, others))
        assert held_out[r["id"]] == pytest.approx(tool.predict_case(r, hardware=_with_memory_frac(r, best)))


def _with_memory_frac(row: dict[str, str], frac: float) -> genmodel.Device:
    d = genmodel.load_device(row["hardware"])
    return dataclasses.replace(d, efficiency=dataclasses.replace(d.efficiency, memory_frac=frac))


def test_conformal_bounds() -> None:
    r = [float(x) for x in range(19)]  # k = floor(20 * 0.1) = 2: the 2nd smallest and largest
    assert log_bounds(r, 0.8) == (1.0, 17.0)
    assert log_bounds(r, 0.8, 2.0) == (-7.0, 25.0)  # about the median, 9
    with pytest.raises(genmodel.SpecError, match=r"coverage=0\.8 needs at least 9 cases, not 8"):
        log_bounds(r[:8], 0.8)


def test_evidence_levels() -> None:
    assert evidence("h100-sxm", "static") == "calibrated"
    assert evidence("h800-sxm", "static") == "transferred"  # Hopper, measured on H100 and H200
    assert evidence("mi300x", "static") == "calibrated"  # the held-out MI300X cases P22-P26
    assert evidence("mi325x", "static") == "transferred"  # CDNA3, measured on MI300X
    assert evidence("mi355x", "static") == "datasheet"  # no CDNA4 case
    assert evidence("jetson-agx-orin-64gb-30w", "static") == "transferred"  # a power mode
    assert evidence("b200", "simulated", "vllm") == "calibrated"
    assert evidence("h100-sxm", "simulated", "sglang") == "transferred"  # another engine
    assert evidence("h100-sxm", "closed-form") == "calibrated"
    assert evidence("b300", "static") == "transferred"  # Blackwell, measured on GB200 (P30, P31)
    assert evidence("l40s", "static") == "datasheet"  # no Ada case


def test_thinner_evidence_widens() -> None:
    for model in ("static", "simulated", "closed-form"):
        widths = []
        for level in genmodel.EVIDENCE_LEVELS:
            iv = interval(1.0, "tpot_s", serving_model=model, evidence_level=level)
            widths.append(iv.hi / iv.lo)
        assert widths == sorted(widths), (model, widths)
        assert widths[-1] > widths[0], (model, widths)
    # on real estimates: the same workload on H100 (calibrated), H800 (transferred), MI355X
    work = {"batch": 8, "input_tokens": 1000, "output_tokens": 200}
    ratio = {}
    for hw in ("h100-sxm", "h800-sxm", "mi355x"):
        d = genmodel.report.estimate_dict(genmodel.estimate("llama-3.1-8b", hw, **work))
        lo, hi = d["tpot_s_interval"]
        ratio[d["interval_evidence"]] = hi / lo
    assert (
        ratio["calibrated"] < ratio["transferred"] <= ratio["datasheet"] * (1 + 1e-12)
    )  # equal widening: rounding


def test_widening_is_fitted_from_held_out_devices() -> None:
    # two families of two devices; each device has its own bias, so intervals built without the
    # device undercover it unless widened; one measurement per case
    res = []
    for dev, bias in (("h100-sxm", -0.3), ("h200-sxm", 0.3), ("a100-sxm-40gb", -0.1), ("a100-sxm-80gb", 0.1)):
        for i in range(12):
            noise = (i - 5.5) / 55
            res.append(
                Residual(
                    serving_model="static",
                    metric="tpot_s",
                    log_ratio=bias + noise,
                    hardware=dev,
                    engine=None,
                    unit=f"{dev}/{i}",
                )
            )
    w = fit_widening(res)
    assert w["static/calibrated"] == 1.0
    assert w["static/transferred"] > 1.2
    assert w["static/datasheet"] >= w["static/transferred"]


def test_serving_throughput_log_ratio_from_ttft_and_tpot() -> None:
    base = {"hardware": "h200-sxm", "mode": "concurrency", "output_tokens": "101", "batch": "8"}
    rows = {
        "a": {**base, "id": "a", "metric": "ttft_s", "measured": "0.2"},
        "b": {**base, "id": "b", "metric": "tpot_s", "measured": "0.01"},
    }
    res = residuals(rows, {"a": (0.1, "simulated", "vllm"), "b": (0.02, "simulated", "vllm")})
    by = {r.metric: r.log_ratio for r in res}
    assert by["ttft_s"] == pytest.approx(math.log(2))
    assert by["tpot_s"] == pytest.approx(math.log(0.5))
    # throughput = clients x output / e2e: measured e2e 0.2 + 100 x 0.01 = 1.2, predicted 2.1
    assert by["output_tokens_per_s"] == pytest.approx(math.log(2.1 / 1.2))


def test_estimate_json_and_table_carry_intervals() -> None:
    args = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "8"]
    args += ["--input-tokens", "1000", "--output-tokens", "200"]
    d = json.loads(cli_ok(["estimate", *args, "--format", "json"]))
    for m in genmodel.HEADLINE_METRICS:
        lo, hi = d[f"{m}_interval"]
        assert 0 < lo < hi
    assert d["interval_coverage"] == 0.8 and d["interval_evidence"] == "calibrated"
    assert d["interval_basis"]["ttft_s"]["cases"] >= 10
    table = cli_ok(["estimate", *args], columns=200)
    assert "80% of measurements, calibrated" in table
    assert "ms (" in table and "–" in table


def test_coverage_is_a_parameter() -> None:
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", batch=8, input_tokens=1000, output_tokens=200)
    narrow = genmodel.estimate_intervals(est, coverage=0.5)["tpot_s"]
    wide = genmodel.estimate_intervals(est, coverage=0.9)["tpot_s"]
    assert wide.lo <= narrow.lo and narrow.hi <= wide.hi and wide.hi / wide.lo > narrow.hi / narrow.lo
    with pytest.raises(genmodel.SpecError, match=r"coverage=1\.5 must be a fraction"):
        genmodel.estimate_intervals(est, coverage=1.5)


def test_risk_checks_the_targets_on_the_pessimistic_bound() -> None:
    work = {"devices": 2, "input_tokens": 1000, "output_tokens": 200, "tpot_slo_s": 0.02}
    plain = genmodel.plan("llama-3.1-8b", "h100-sxm", **work)
    risky = genmodel.plan("llama-3.1-8b", "h100-sxm", **work, risk="p80")
    assert plain.best is not None and risky.best is not None
    factor = pessimistic_factors("h100-sxm", "p80", serving_model="simulated", engine="vllm")["tpot_s"]
    assert factor > 1
    # the plain best meets the target only on its prediction; the risky one on its upper bound
    assert plain.best.tpot_s * factor > 0.02
    assert risky.best.tpot_s * factor <= 0.02 * (1 + 1e-9)
    assert risky.best.batch < plain.best.batch
    assert risky.to_dict()["risk"]["tpot_s"] == pytest.approx(factor)
    assert plain.to_dict()["risk"] is None


def test_risk_on_the_command_line() -> None:
    args = ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "2"]
    args += ["--input-tokens", "1000", "--output-tokens", "200", "--tpot-slo", "20ms"]
    d = json.loads(cli_ok([*args, "--risk", "p80", "--format", "json"]))
    assert d["risk"]["risk"] == "p80"
    assert d["best"]["tpot_s"] * d["risk"]["tpot_s"] <= 0.02 * (1 + 1e-9)
    assert "tpot_s_interval" in d["best"]
    assert "risk='p99' must be p50 to p95" in cli_bad([*args, "--risk", "p99"])
    assert parse_risk("P90") == 0.9


def test_table_round_trips() -> None:
    t = IntervalTable.from_dict(TABLE)
    assert t == BUNDLED
    assert all(list(v) == sorted(v) for v in t.residuals.values())
    assert t.cases == 133
