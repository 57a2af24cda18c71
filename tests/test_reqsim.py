"""Requirements under load on the serving simulation (genmodel/_reqsim.py): a solved resource meets
its target (a mean or a percentile) in a direct ``genmodel.simulate`` of the scaled platform, and
0.9 times it misses; the JSON names the serving model and the engine; refusals are one line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _cli import cli_bad, cli_ok

import genmodel

# Llama-3.2-1B on one H100, 8 clients of 500-token prompts; a step budget of 1024 tokens takes two
# prompts a step, so the clients' first tokens spread out (p99 TTFT ~3x the mean): a percentile
# target asks more than the mean does
MODEL, HARDWARE = "llama-3.2-1b", "h100-sxm"
SHAPE: dict[str, Any] = {"input_tokens": 500, "output_tokens": 50, "concurrency": 8}
KNOBS: dict[str, Any] = {"max_batched_tokens": 1024}
QUANTILES = {"mean": None, "p50": 0.5, "p90": 0.9, "p99": 0.99}
CLI = [
    "requirements",
    "--model",
    MODEL,
    "--hardware",
    HARDWARE,
    "--concurrency",
    "8",
    "--input-tokens",
    "500",
    "--output-tokens",
    "50",
]


def _figure(resource: str, factor: float, metric: str, statistic: str) -> float:
    """``metric`` at ``statistic`` in a direct simulation of the platform scaled by ``factor``."""
    system = genmodel.load_hardware(HARDWARE).scaled(**{resource: factor})
    result = genmodel.simulate(MODEL, system, **SHAPE, **KNOBS)
    return float(getattr(getattr(result, metric), statistic))


@pytest.mark.parametrize(
    ("metric", "statistic", "resource"),
    [("ttft_s", "p99", "flops"), ("tpot_s", "p90", "memory_bandwidth"), ("ttft_s", "mean", "flops")],
)
def test_a_simulated_requirement_meets_its_target_in_a_direct_simulation(
    metric: str, statistic: str, resource: str
) -> None:
    target = 0.8 * _figure(resource, 1.0, metric, statistic)
    name = metric.removesuffix("_s")
    r = genmodel.requirements(
        MODEL,
        HARDWARE,
        resources=(resource,),
        **{f"{name}_slo_s": target, f"{name}_quantile": QUANTILES[statistic]},
        **SHAPE,
        **KNOBS,
    )
    req = r.resource(resource)
    assert (req.status, req.set_by) == ("binding", metric)
    assert _figure(resource, req.factor, metric, statistic) <= target
    # the bisection's resolution is 1 %: 0.9 times the answer misses (the figures do not grow
    # with the resource, up to the scheduler's steps)
    assert _figure(resource, 0.9 * req.factor, metric, statistic) > target
    assert r.to_dict()[f"{name}_at_statistic_s"] == pytest.approx(_figure(resource, 1.0, metric, statistic))


def test_a_percentile_asks_more_than_the_mean_of_the_same_seconds() -> None:
    target = 0.8 * _figure("flops", 1.0, "ttft_s", "p99")
    kwargs: dict[str, Any] = {"ttft_slo_s": target, "resources": ("flops",), **SHAPE, **KNOBS}
    p99 = genmodel.requirements(MODEL, HARDWARE, ttft_quantile=0.99, **kwargs).resource("flops")
    mean = genmodel.requirements(MODEL, HARDWARE, **kwargs).resource("flops")
    assert mean.factor < 1 < p99.factor  # the mean TTFT is within the target on the platform


def test_the_simulated_solve_is_deterministic() -> None:
    """Fixed lengths and closed-loop clients: no random draw, so no seed, and the same answer."""
    kwargs: dict[str, Any] = {"tpot_slo_s": 2.5e-3, "tpot_quantile": 0.99, **SHAPE, **KNOBS}
    first = genmodel.requirements(MODEL, HARDWARE, **kwargs).to_dict()
    assert genmodel.requirements(MODEL, HARDWARE, **kwargs).to_dict() == first


def test_the_engine_knobs_reach_the_simulation() -> None:
    """A cap of 3 running sequences queues 5 of the 8 clients' prompts: a TTFT target asks more."""
    kwargs: dict[str, Any] = {"ttft_slo_s": 0.05, "resources": ("flops",), **SHAPE}
    free = genmodel.requirements(MODEL, HARDWARE, **kwargs).resource("flops")
    capped = genmodel.requirements(MODEL, HARDWARE, max_num_seqs=3, **kwargs).resource("flops")
    assert capped.factor > 2 * free.factor


def test_json_names_the_serving_model_and_the_engine() -> None:
    args = [*CLI, "--ttft-slo", "p99:15ms", "--resource", "flops", "--format", "json"]
    d = json.loads(cli_ok([*args, "--engine", "sglang", "--max-batched-tokens", "1024"]))
    assert (d["serving"]["serving_model"], d["serving"]["engine"]) == ("simulated", "sglang")
    assert (d["engine"]["name"], d["engine"]["max_batched_tokens"]) == ("sglang", 1024)
    assert d["ttft_statistic"] == "p99"
    mean = json.loads(cli_ok([*CLI, "--ttft-slo", "15ms", "--format", "json", "--serving", "closed-form"]))
    assert (mean["serving"]["serving_model"], mean["serving"]["engine"], mean["engine"]) == (
        "closed-form",
        None,
        None,
    )
    static = json.loads(
        cli_ok(["requirements", *CLI[1:5], "--batch", "8", *CLI[7:], "--ttft-slo", "1s", "--format", "json"])
    )
    assert (static["serving"], static["engine"]) == (None, None)


def test_the_table_says_what_was_simulated() -> None:
    text = " ".join(cli_ok([*CLI, "--tpot-slo", "p90:2ms", "--resource", "flops"], columns=400).split())
    assert "8 clients (simulated vllm)" in text
    assert "TPOT p90 <= 2.00 ms (now TTFT " in text and ", TPOT p90 2.6" in text


def test_a_resource_a_plan_does_not_use_is_unused_and_a_target_below_the_overhead_unreachable() -> None:
    r = genmodel.requirements(MODEL, HARDWARE, tpot_slo_s=1e-3, **SHAPE)
    up = r.resource("scale_up_bandwidth")
    assert (up.status, up.factor) == ("unused", 0.0)
    assert up.reason is not None and "does not enter" in up.reason
    flops = r.resource("flops")
    assert (flops.status, flops.set_by) == ("unreachable", "tpot_s")
    assert (
        flops.reason is not None and "with unlimited flops the simulated mean tpot_s is still" in flops.reason
    )


def test_a_plan_the_simulation_does_not_cover_falls_back_for_a_mean_and_refuses_a_percentile() -> None:
    kwargs: dict[str, Any] = {"pp": 2, "resources": ("memory_bandwidth",), **SHAPE}
    fell = genmodel.requirements(MODEL, HARDWARE, tpot_slo_s=2e-3, **kwargs)
    closed = genmodel.requirements(MODEL, HARDWARE, tpot_slo_s=2e-3, serving="closed-form", **kwargs)
    assert fell.resource("memory_bandwidth").factor == closed.resource("memory_bandwidth").factor
    notes = fell.to_dict()["serving"]["notes"]
    assert "fell back to the closed-form steady state" in notes and fell.engine is None
    with pytest.raises(genmodel.SpecError, match=r"tpot_slo=p99 under load needs the serving simulation"):
        genmodel.requirements(MODEL, HARDWARE, tpot_slo_s=2e-3, tpot_quantile=0.99, **kwargs)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--ttft-slo", "p90:20ms", "--serving", "closed-form"],
            "ttft_quantile=0.9 (p90) with concurrency=8 and serving='closed-form': the closed form predicts "
            "means only",
        ),
        (["--ttft-slo", "p90:20ms", "--pp", "2"], "ttft_slo=p90 under load needs the serving simulation"),
        (
            ["--ttft-slo", "20ms", "--serving", "exact"],
            "serving='exact' must be one of simulated, closed-form",
        ),
        (["--ttft-slo", "20ms", "--engine", "tgi"], "tgi"),
        (["--ttft-slo", "20ms", "--admission", "later"], "admission='later' must be one of"),
        (["--ttft-slo", "20ms", "--max-num-seqs", "many"], "max_num_seqs='many' must be an integer"),
    ],
)
def test_cli_refusals_are_one_red_line(extra: list[str], message: str) -> None:
    assert message in cli_bad([*CLI, *extra])


def test_the_figure_at_a_statistic_is_the_simulations_own() -> None:
    """The solve's figures are those ``simulate`` reports (mean, p50, p90, p99); p95 lies between."""
    from genmodel._reqsim import statistic_figure

    sim = genmodel.simulate(MODEL, HARDWARE, records=True, **SHAPE, **KNOBS)
    for metric in ("ttft_s", "tpot_s"):
        stats = getattr(sim, metric)
        for name in ("mean", "p50", "p90", "p99"):
            assert statistic_figure(sim, metric, QUANTILES[name]) == pytest.approx(
                getattr(stats, name), rel=1e-12
            )
        assert stats.p90 <= statistic_figure(sim, metric, 0.95) <= stats.p99
    assert sim.ttft_s.p99 > 2 * sim.ttft_s.mean  # (the spread the percentile tests rely on)


def test_the_benchmark_client_options_reach_the_simulation() -> None:
    """--requests-per-client, --warmup-requests and --no-warmup-restart are the API's client
    arguments: the CLI's figure equals the API's with them, and differs from the default client's."""
    client: dict[str, Any] = {"requests_per_client": 3, "warmup_requests": 0, "warmup_restart": False}
    flags = ["--requests-per-client", "3", "--warmup-requests", "0", "--no-warmup-restart"]
    common = [
        "--ttft-slo",
        "p90:15ms",
        "--resource",
        "flops",
        "--max-batched-tokens",
        "1024",
        "--format",
        "json",
    ]
    cli = json.loads(cli_ok([*CLI, *common, *flags]))["resources"][0]["factor"]
    default = json.loads(cli_ok([*CLI, *common]))["resources"][0]["factor"]
    api = genmodel.requirements(
        MODEL, HARDWARE, resources=("flops",), ttft_slo_s=0.015, ttft_quantile=0.9, **SHAPE, **KNOBS, **client
    )
    assert cli == pytest.approx(api.to_dict()["resources"][0]["factor"], rel=1e-12)
    assert cli != pytest.approx(default, rel=1e-3)
    assert "warmup_requests=3 must be below" in cli_bad(
        [*CLI, "--ttft-slo", "1s", "--requests-per-client", "3", "--warmup-requests", "3"]
    )
