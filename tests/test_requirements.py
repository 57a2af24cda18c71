"""The inverse problem: the symbolic step time equals step_cost, and every requirement, plugged
back into estimate on the scaled platform, meets its target (and 1 % less misses it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sympy
from _cli import cli_bad, cli_ok
from hypothesis import given, settings
from hypothesis import strategies as st

import genmodel
from genmodel import Plan, Precision, RunOptions

# llama-3.1-8b decode on one H100 at batch 8: memory-bound, TPOT 8.4 ms of which 1.5 ms overhead
DECODE: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 200, "batch": 8}


def _evaluate(expr: Any, values: dict[Any, float]) -> float:
    return float(sympy.lambdify(list(values), expr, "math")(*values.values()))


def _scaled_estimate(model: str, hardware: str, resource: str, factor: float, **kwargs: Any) -> Any:
    system = genmodel.load_hardware(hardware).scaled(**{resource: factor})
    return genmodel.estimate(model, system, **kwargs)


@pytest.mark.parametrize(
    ("model", "hardware", "plan", "precision", "links"),
    [
        ("llama-3.1-70b", "h100-sxm", Plan(tp=4), Precision(), {"B_up"}),  # dense, TP over NVLink
        ("llama-3.1-8b", "a100-sxm-80gb", Plan(), Precision(), set()),  # dense, one device
        ("mixtral-8x7b", "h100-sxm", Plan(tp=2), Precision(), {"B_up"}),  # MoE-TP
        # MoE with attention-DP + EP over two DGX nodes: the all-to-alls span NVLink and
        # InfiniBand, max(intra / B_up, inter / B_out), so both bandwidths enter
        (
            "deepseek-v3",
            "dgx-h100",
            Plan(dp=16, ep=16),
            Precision(weight_dtype="fp8", act_dtype="fp8"),
            {"B_up", "B_out"},
        ),
    ],
)
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_symbolic_step_time_equals_step_cost(
    model: str, hardware: str, plan: Plan, precision: Precision, links: set[str], phase: str
) -> None:
    spec, system = genmodel.load_model(model), genmodel.load_hardware(hardware)
    options = RunOptions(comm_overlap_frac=0.0)
    step: dict[str, Any] = {"num_seqs": 16.0, "new_tokens": 1000 if phase == "prefill" else 1}
    step["past_tokens"] = 0 if phase == "prefill" else 1500
    numeric = genmodel.step_cost(spec, system, plan, precision, phase=phase, options=options, **step)
    expr = genmodel.symbolic_step_time(spec, system, plan, precision, phase=phase, options=options, **step)
    values = genmodel.resource_symbols(system, precision)
    assert _evaluate(expr, values) == pytest.approx(numeric.time_s, rel=1e-9)
    assert {s.name for s in expr.free_symbols} == {"F", "B_mem"} | links


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(comm_overlap_frac=0.5),
        RunOptions(overlap_microbatches=2),
        RunOptions(allreduce_algorithm="auto"),
    ],
    ids=["overlap", "microbatches", "auto"],
)
def test_symbolic_step_time_follows_overlap_options(options: RunOptions) -> None:
    spec, system = genmodel.load_model("llama-3.1-70b"), genmodel.load_hardware("h100-sxm")
    step: dict[str, Any] = {"phase": "decode", "num_seqs": 64.0, "new_tokens": 1, "past_tokens": 2000}
    plan, precision = Plan(tp=8), Precision()
    numeric = genmodel.step_cost(spec, system, plan, precision, options=options, **step)
    expr = genmodel.symbolic_step_time(spec, system, plan, precision, options=options, **step)
    assert _evaluate(expr, genmodel.resource_symbols(system, precision)) == pytest.approx(
        numeric.time_s, rel=1e-9
    )


def test_memory_bound_decode_needs_memory_bandwidth_and_round_trips() -> None:
    target = 6e-3
    r = genmodel.requirements("llama-3.1-8b", "h100-sxm", tpot_slo_s=target, **DECODE)
    assert not r.meets_targets_now
    assert r.binding == ("memory_bandwidth",)
    bw = r.resource("memory_bandwidth")
    assert bw.status == "binding"
    assert bw.set_by == "tpot_s"
    assert bw.factor > 1
    assert bw.required_value == pytest.approx(bw.factor * 3.35e12)
    met = _scaled_estimate("llama-3.1-8b", "h100-sxm", "memory_bandwidth", bw.factor, **DECODE)
    assert target * (1 - 1e-6) <= met.tpot_s <= target
    missed = _scaled_estimate("llama-3.1-8b", "h100-sxm", "memory_bandwidth", 0.99 * bw.factor, **DECODE)
    assert missed.tpot_s > target
    # decode at batch 8 is memory-bound: FLOP/s alone cannot get below the memory-bound time
    flops = r.resource("flops")
    assert flops.status == "unreachable"
    assert flops.factor == float("inf")
    assert flops.reason is not None
    assert "memory-bound operators" in flops.reason
    # a one-device plan uses no fabric
    assert r.resource("scale_up_bandwidth").status == "unused"
    # the closed form matches the estimate and names the symbols
    assert r.symbolic_rel_error is not None
    assert r.symbolic_rel_error < 1e-9
    assert r.tpot_expr is not None
    assert "B_mem" in r.tpot_expr
    assert "F" in r.tpot_expr
    readme = (Path(genmodel.__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"memory bandwidth: {bw.factor:.2f}x" in readme, "README requirements example out of date"


def test_long_prompt_ttft_needs_flops() -> None:
    shape: dict[str, Any] = {"input_tokens": 32000, "output_tokens": 16, "batch": 1}
    now = genmodel.estimate("llama-3.1-8b", "h100-sxm", **shape).ttft_s
    target = 0.8 * now
    r = genmodel.requirements("llama-3.1-8b", "h100-sxm", ttft_slo_s=target, **shape)
    assert r.binding == ("flops",)
    flops = r.resource("flops")
    assert flops.set_by == "ttft_s"
    assert flops.factor > 1 / 0.8  # the fixed overhead and memory-bound ops do not scale
    met = _scaled_estimate("llama-3.1-8b", "h100-sxm", "flops", flops.factor, **shape)
    assert target * (1 - 1e-6) <= met.ttft_s <= target
    assert _scaled_estimate("llama-3.1-8b", "h100-sxm", "flops", 0.99 * flops.factor, **shape).ttft_s > target
    assert r.resource("memory_bandwidth").status == "unreachable"


def test_link_bandwidth_requirement_round_trips() -> None:
    shape: dict[str, Any] = {"input_tokens": 2000, "output_tokens": 200, "batch": 16, "tp": 4}
    target = 20e-3
    r = genmodel.requirements(
        "llama-3.1-70b",
        "h100-sxm",
        tpot_slo_s=target,
        resources=("scale_up_bandwidth", "scale_out_bandwidth"),
        **shape,
    )
    up = r.resource("scale_up_bandwidth")
    assert up.status == "binding"
    assert r.resource("scale_out_bandwidth").status == "unused"  # four GPUs stay inside one node
    met = _scaled_estimate("llama-3.1-70b", "h100-sxm", "scale_up_bandwidth", up.factor, **shape)
    assert target * (1 - 1e-6) <= met.tpot_s <= target
    missed = _scaled_estimate("llama-3.1-70b", "h100-sxm", "scale_up_bandwidth", 0.99 * up.factor, **shape)
    assert missed.tpot_s > target


def test_moe_requirements_round_trip_for_both_targets() -> None:
    shape: dict[str, Any] = {"input_tokens": 2000, "output_tokens": 200, "batch": 64, "dp": 4, "ep": 4}
    now = genmodel.estimate("qwen3-30b-a3b", "h100-sxm", **shape)
    targets = {"ttft_s": 1.2 * now.ttft_s, "tpot_s": 0.8 * now.tpot_s}
    r = genmodel.requirements(
        "qwen3-30b-a3b",
        "h100-sxm",
        ttft_slo_s=targets["ttft_s"],
        tpot_slo_s=targets["tpot_s"],
        resources=("flops", "memory_bandwidth", "scale_up_bandwidth"),
        **shape,
    )
    assert r.symbolic_rel_error is not None
    assert r.symbolic_rel_error < 1e-9
    assert r.binding
    for req in r.resources:
        if req.status not in ("met", "binding"):
            continue
        met = _scaled_estimate("qwen3-30b-a3b", "h100-sxm", req.resource, req.factor, **shape)
        assert met.ttft_s <= targets["ttft_s"]
        assert met.tpot_s <= targets["tpot_s"]
        assert req.set_by is not None
        missed = _scaled_estimate("qwen3-30b-a3b", "h100-sxm", req.resource, 0.99 * req.factor, **shape)
        assert getattr(missed, req.set_by) > targets[req.set_by]


def test_serving_mode_requirements_round_trip() -> None:
    shape: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 200, "concurrency": 16}
    target = 0.8 * genmodel.estimate("llama-3.1-8b", "h100-sxm", **shape).tpot_s
    r = genmodel.requirements(
        "llama-3.1-8b", "h100-sxm", tpot_slo_s=target, resources=("memory_bandwidth",), **shape
    )
    assert r.estimate.mode == "concurrency"
    assert r.tpot_expr is None  # no static closed form: solved on estimate alone
    bw = r.resource("memory_bandwidth")
    assert bw.status == "binding"
    met = _scaled_estimate("llama-3.1-8b", "h100-sxm", "memory_bandwidth", bw.factor, **shape)
    assert target * (1 - 1e-6) <= met.tpot_s <= target
    assert (
        _scaled_estimate("llama-3.1-8b", "h100-sxm", "memory_bandwidth", 0.99 * bw.factor, **shape).tpot_s
        > target
    )


def test_target_below_the_fixed_overhead_is_unreachable_not_a_crash() -> None:
    r = genmodel.requirements("llama-3.1-8b", "h100-sxm", tpot_slo_s=1e-3, **DECODE)  # overhead 1.5 ms
    assert not r.meets_targets_now
    assert r.binding == ()
    for name in ("flops", "memory_bandwidth"):
        req = r.resource(name)
        assert req.status == "unreachable"
        assert req.reason is not None
        assert "overhead" in req.reason
    d = json.loads(genmodel.report.to_json(r.to_dict()))
    assert d["resources"][0]["factor"] is None
    assert d["resources"][0]["required_value"] is None


def test_met_targets_name_the_tightest_resource() -> None:
    r = genmodel.requirements("llama-3.1-8b", "h100-sxm", tpot_slo_s=20e-3, ttft_slo_s=1.0, **DECODE)
    assert r.meets_targets_now
    met = [x for x in r.resources if x.status == "met"]
    assert all(x.factor <= 1 for x in met)
    assert r.binding == (max(met, key=lambda x: x.factor).resource,)


@pytest.mark.parametrize(
    ("model", "hardware", "kwargs"),
    [
        ("llama-3.1-70b", "h100-sxm", {"tp": 2, "batch": 64}),  # does not fit: needs more
        ("llama-3.2-3b", "jetson-orin-nano-8gb", {"batch": 4, "weight_dtype": "int4"}),  # OS reserve
    ],
)
def test_memory_capacity_requirement_is_the_fit_boundary(
    model: str, hardware: str, kwargs: dict[str, Any]
) -> None:
    shape = {"input_tokens": 1000, "output_tokens": 1000, **kwargs}
    r = genmodel.requirements(model, hardware, resources=("memory_capacity",), **shape)
    cap = r.resource("memory_capacity")
    assert cap.set_by == "fits"
    assert (cap.status == "binding") == (not r.estimate.memory.fits)
    device = genmodel.load_hardware(hardware).device
    mem = r.estimate.memory
    reserve = device.os_reserve_bytes
    expected = reserve + mem.total_bytes_per_device / device.efficiency.usable_memory_frac
    # MemoryUse.fits allows a relative 1e-9 of slack
    assert cap.required_value == pytest.approx(expected, rel=2e-9)
    assert _scaled_estimate(model, hardware, "memory_capacity", cap.factor, **shape).memory.fits
    below = _scaled_estimate(model, hardware, "memory_capacity", cap.factor * (1 - 1e-6), **shape)
    assert not below.memory.fits


@settings(max_examples=8)
@given(scale=st.floats(min_value=0.3, max_value=3.0))
def test_memory_bandwidth_requirement_always_round_trips(scale: float) -> None:
    target = 2e-3 + scale * 6.9e-3  # above the 1.5 ms overhead and the compute-bound time
    r = genmodel.requirements(
        "llama-3.1-8b", "h100-sxm", tpot_slo_s=target, resources=("memory_bandwidth",), **DECODE
    )
    bw = r.resource("memory_bandwidth")
    met = _scaled_estimate("llama-3.1-8b", "h100-sxm", "memory_bandwidth", bw.factor, **DECODE)
    assert target * (1 - 1e-6) <= met.tpot_s <= target
    assert (bw.status == "binding") == (bw.factor > 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a target"),
        ({"tpot_slo_s": 0.01, "resources": ("hbm",)}, "resources=['hbm']"),
        ({"tpot_slo_s": -1.0}, "tpot_slo_s=-1.0"),
        ({"ttft_slo_s": 0.0}, "ttft_slo_s=0.0"),
    ],
)
def test_bad_arguments_are_spec_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(genmodel.SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        genmodel.requirements("llama-3.1-8b", "h100-sxm", **DECODE, **kwargs)


# ---- CLI ---------------------------------------------------------------------------------------

CLI = [
    "requirements",
    "--model",
    "llama-3.1-8b",
    "--hardware",
    "h100-sxm",
    "--batch",
    "8",
    "--input-tokens",
    "1000",
    "--output-tokens",
    "200",
]


@pytest.mark.parametrize(
    ("slo", "seconds"), [("6ms", 6e-3), ("0.006", 6e-3), ("6000us", 6e-3), ("2s", 2.0), ("500ms", 0.5)]
)
def test_cli_json_parses_times_and_matches_the_api(slo: str, seconds: float) -> None:
    d = json.loads(cli_ok([*CLI, "--tpot-slo", slo, "--resource", "memory_bandwidth", "--format", "json"]))
    assert d["tpot_slo_s"] == pytest.approx(seconds)
    api = genmodel.requirements(
        "llama-3.1-8b", "h100-sxm", tpot_slo_s=seconds, resources=("memory_bandwidth",), **DECODE
    )
    assert [r["resource"] for r in d["resources"]] == ["memory_bandwidth"]
    assert d["resources"][0]["factor"] == pytest.approx(api.resource("memory_bandwidth").factor)


def test_cli_serving_mode() -> None:
    args = [*CLI[:5], "--concurrency", "16", *CLI[7:], "--tpot-slo", "8ms", "--format", "json"]
    d = json.loads(cli_ok(args))
    assert d["mode"] == "concurrency"
    assert d["binding"] == ["memory_bandwidth"]


def test_cli_table_and_csv_show_every_resource() -> None:
    text = cli_ok([*CLI, "--tpot-slo", "6ms", "--ttft-slo", "1s"], columns=160)
    for word in ("memory_bandwidth", "TB/s", "TFLOP/s", "GB/s", "binding", "unreachable", "unused"):
        assert word in text
    rows = list(csv.DictReader(io.StringIO(cli_ok([*CLI, "--tpot-slo", "6ms", "--format", "csv"]))))
    assert [r["resource"] for r in rows] == [
        "flops",
        "memory_bandwidth",
        "memory_capacity",
        "scale_up_bandwidth",
        "scale_out_bandwidth",
    ]
    assert rows[1]["status"] == "binding"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tpot-slo", "fast"], "tpot_slo='fast' must be a time such as 50ms or 2s"),
        (["--ttft-slo", "0ms"], "ttft_slo='0ms'"),
        (["--tpot-slo", "5ms", "--resource", "hbm"], "resources=['hbm']"),
        (["--tpot-slo", "5ms", "--tp", "3"], "tp=3"),
        ([], "needs a target"),
    ],
)
def test_cli_bad_input_is_one_line(extra: list[str], message: str) -> None:
    assert message in cli_bad([*CLI, *extra])
