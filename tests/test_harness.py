"""The benchmark client's closed loop in a simulated serving estimate: requests per client and the
warm-up left out of the means, drained before every client restarts (``estimate(requests_per_client=,
warmup_requests=)``, the CLI flags, and the ``requests_per_client`` / ``warmup_requests`` columns of
a validation CSV)."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel._servingmodel import ServingSpec
from genmodel._wave import BenchmarkClient

KW = {"tp": 2, "input_tokens": 4000, "output_tokens": 50, "weight_dtype": "fp8"}


def test_the_warm_up_drains_and_every_client_restarts() -> None:
    # 32 clients of 4,000-token prompts start together: the first wave's prefills queue behind one
    # another. perf_analyzer drains the warm-up and restarts every client at once, so the measured
    # phase is a fresh synchronised start of the measured requests; the more requests follow the
    # wave, the lower the mean TTFT (fresh prompts: perf_analyzer would send the warm-up's again,
    # which vLLM finds in its prefix cache, tests/test_simulate_warmup.py)
    cold = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=3, warmup_requests=0, **KW
    )
    warm = genmodel.estimate(
        "llama-3.1-8b",
        "h100-sxm",
        concurrency=32,
        requests_per_client=3,
        warmup_requests=1,
        warmup_replay=False,
        **KW,
    )
    fresh = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=2, warmup_requests=0, **KW
    )
    first = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=1, **KW)
    assert warm.ttft_s == pytest.approx(fresh.ttft_s, rel=1e-9)
    assert cold.ttft_s < warm.ttft_s < first.ttft_s
    # a warm-up that flows straight into the measured requests leaves the first wave out instead
    sim = {"tp": 2, "input_tokens": 4000, "output_tokens": 50, "weight_dtype": "fp8", "concurrency": 32}
    straight = genmodel.simulate(
        "llama-3.1-8b", "h100-sxm", requests_per_client=3, warmup_requests=1, warmup_restart=False, **sim
    )
    assert straight.ttft_s.mean < cold.ttft_s
    # the default is genai-perf's client in AIConfigurator's harness: 12 requests, 2 of them warm-up
    default = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=32, **KW)
    genai_perf = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=12, warmup_requests=2, **KW
    )
    assert default.ttft_s == genai_perf.ttft_s
    assert (genmodel.REQUESTS_PER_CLIENT, genmodel.WARMUP_REQUESTS) == (12, 2)
    # a client of fewer requests keeps one measured request
    two = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=2, **KW)
    explicit = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", concurrency=32, requests_per_client=2, warmup_requests=1, **KW
    )
    assert two.ttft_s == explicit.ttft_s


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests_per_client": 0}, "requests_per_client=0 must be an integer >= 1"),
        ({"requests_per_client": 2, "warmup_requests": 2}, "warmup_requests=2 must be below"),
        ({"warmup_requests": -1}, "warmup_requests=-1 must be an integer >= 0"),
        ({"requests_per_client": 10**30}, "must be at most 1,000"),
    ],
)
def test_bad_harness_arguments_are_refused_by_both_serving_models(
    kwargs: dict[str, int], message: str
) -> None:
    for serving in ("simulated", "closed-form"):
        with pytest.raises(genmodel.SpecError, match=message):
            genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=4, serving=serving, **kwargs, **KW)


def test_cli_flags_reach_the_simulation() -> None:
    args = [
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--tp",
        "2",
        "--concurrency",
        "32",
    ]
    args += ["--input-tokens", "4000", "--output-tokens", "50", "--weight-dtype", "fp8", "--format", "json"]
    cold = json.loads(cli_ok([*args, "--requests-per-client", "3", "--warmup-requests", "0"]))
    warm = json.loads(
        cli_ok([*args, "--requests-per-client", "3", "--warmup-requests", "1", "--no-warmup-replay"])
    )
    replayed = json.loads(cli_ok([*args, "--requests-per-client", "3", "--warmup-requests", "1"]))
    assert replayed["ttft_s"] < warm["ttft_s"]  # the measured prompt is the warm-up's, cached
    fresh = json.loads(cli_ok([*args, "--requests-per-client", "2", "--warmup-requests", "0"]))
    assert warm["ttft_s"] == pytest.approx(fresh["ttft_s"], rel=1e-9) and warm["ttft_s"] != cold["ttft_s"]
    assert "warmup_requests=3 must be below" in cli_bad(
        [*args, "--requests-per-client", "3", "--warmup-requests", "3"]
    )


def _case(tmp_path: Path, **columns: str) -> Path:
    head = "id,category,mode,model,hardware,devices,tp,pp,ep,dp,batch,input_tokens,output_tokens,"
    head += "weight_dtype,act_dtype,kv_dtype,metric,measured,engine"
    row = "X1,serving,concurrency,llama-3.1-8b,h100-sxm,2,2,1,1,1,32,4000,50,fp8,fp8,fp8,ttft_s,0.5,vllm"
    if columns:
        head += "," + ",".join(columns)
        row += "," + ",".join(columns.values())
    p = tmp_path / "cases.csv"
    p.write_text(head + "\n" + row + "\n", encoding="utf-8")
    return p


def test_validate_reads_the_harness_columns(tmp_path: Path) -> None:
    plain = (
        genmodel.validate(_case(tmp_path, requests_per_client="3", warmup_requests="0")).cases[0].predicted
    )
    warm = genmodel.validate(_case(tmp_path, requests_per_client="3", warmup_requests="1")).cases[0].predicted
    direct = genmodel.estimate(
        "llama-3.1-8b",
        "h100-sxm",
        concurrency=32,
        requests_per_client=3,
        warmup_requests=1,
        act_dtype="fp8",
        kv_dtype="fp8",
        **KW,
    )
    assert warm == pytest.approx(direct.ttft_s) and warm != plain
    with pytest.raises(genmodel.SpecError, match="requests_per_client='x' must be an integer"):
        genmodel.validate(_case(tmp_path, requests_per_client="x", warmup_requests=""))


def test_the_public_aiconfigurator_rows_carry_their_harness() -> None:
    rows = genmodel.read_cases(genmodel.public_cases_path())
    aic = [r for r in rows if r["engine_config"] == "aiconfigurator"]
    assert len(aic) == 100
    assert all((r["requests_per_client"], r["warmup_requests"]) == ("12", "2") for r in aic)
    # the cases at a request rate (PS111-PS137) have an open loop instead: no closed-loop client
    rate = [r for r in rows if r["mode"] == "rate"]
    assert rate and all(not (r["requests_per_client"] or r["warmup_requests"]) for r in rate)


def test_the_benchmark_serving_rows_carry_its_closed_loop() -> None:
    """vLLM's benchmark_serving.py (PS151-): --num-prompts N behind a semaphore of --max-concurrency C,
    started together, with no warm-up in the means (its single test prompt runs alone beforehand):
    N / C requests per client and no warm-up requests, never the genai-perf defaults (12 and 2)."""
    rows = genmodel.read_cases(genmodel.public_cases_path())
    bench = [r for r in rows if "benchmark_serving" in r["source_id"]]
    assert len(bench) >= 2
    assert all(r["warmup_requests"] == "0" and r["requests_per_client"] not in ("", "12") for r in bench)
    by_id = {r["id"]: r for r in rows}
    # 100 prompts, 10 clients
    assert (by_id["PS151"]["batch"], by_id["PS151"]["requests_per_client"]) == ("10", "10")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests_per_client": 0}, "requests_per_client=0 must be an integer >= 1"),
        ({"warmup_requests": -1}, "warmup_requests=-1 must be an integer >= 0"),
        ({"engine": 3}, "engine=3 must be one of vllm, sglang, trtllm or an Engine"),
        ({"knobs": (("max_num_seqs", 0),)}, "max_num_seqs=0 must be an integer >= 1"),
        ({"knobs": (("admission", "lazy"),)}, "admission='lazy' must be one of reserve, on-demand"),
        ({"burstiness_cv": 0.0}, "burstiness_cv=0.0 must be > 0 and finite"),
    ],
)
def test_the_serving_spec_refuses_a_bad_option_by_its_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(genmodel.SpecError, match=re.escape(message)):
        ServingSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_spread": 1.0}, "output_spread=1.0 must be in [0, 1)"),
        ({"input_spread": -0.1}, "input_spread=-0.1 must be in [0, 1)"),
        ({"input_spread": math.nan}, "input_spread=nan must be in [0, 1)"),
    ],
)
def test_length_spreads_refuse_a_spread_outside_0_1_by_its_name(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(genmodel.SpecError, match=re.escape(message)):
        genmodel.LengthSpreads(**kwargs)


def test_the_spreads_are_one_value_from_the_keywords_to_the_simulation() -> None:
    """estimate's and simulate's input_spread/output_spread keywords become one LengthSpreads,
    which the serving spec hands to the simulated serving model unchanged."""
    spreads = genmodel.LengthSpreads(input_spread=0.25, output_spread=0.5)
    assert spreads.input_spread == 0.25 and spreads.output_spread == 0.5 and not spreads.fixed
    assert (
        genmodel.LengthSpreads().fixed and genmodel.LengthSpreads(input_spread=0) == genmodel.LengthSpreads()
    )
    simulated = ServingSpec(spreads=spreads).serving_model("simulated")
    assert isinstance(simulated, genmodel.Simulated) and simulated.spreads is spreads
    with pytest.raises(genmodel.SpecError, match=re.escape("spreads=(0.1, 0.1) must be a LengthSpreads")):
        genmodel.Simulated(engine=genmodel.engine_preset("vllm"), spreads=(0.1, 0.1))  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match=re.escape("output_spread=1.5 must be in [0, 1)")):
        genmodel.estimate(
            "llama-3.2-1b", "h100-sxm", concurrency=2, input_tokens=64, output_tokens=8, output_spread=1.5
        )


def test_estimate_simulate_and_requirements_refuse_a_bad_client_alike() -> None:
    """One check for the three: simulate used to send 12 requests a client for requests_per_client=0."""
    load = {"concurrency": 4, "input_tokens": 256, "output_tokens": 16}
    calls = [genmodel.estimate, genmodel.simulate, functools.partial(genmodel.requirements, tpot_slo_s=0.01)]
    for call in calls:
        for bad, message in (
            ({"requests_per_client": 0}, "requests_per_client=0 must be an integer >= 1"),
            ({"warmup_requests": -1}, "warmup_requests=-1 must be an integer >= 0"),
        ):
            with pytest.raises(genmodel.SpecError, match=re.escape(message)):
                call("llama-3.2-1b", "h100-sxm", **load, **bad)
        with pytest.raises(genmodel.UnknownEntryError, match="tgi"):
            call("llama-3.2-1b", "h100-sxm", **load, engine="tgi")


def test_the_serving_spec_resolves_the_engine_on_the_device_and_the_client() -> None:
    device = genmodel.load_hardware("a100-sxm-40gb").device  # under 70 GiB: vLLM's smaller defaults
    spec = ServingSpec(knobs=(("max_num_seqs", 64), ("admission", None)))
    assert spec.engine_on(device) == genmodel.engine_preset("vllm", device).replace(max_num_seqs=64)
    assert spec.engine_on(device) != spec.engine_on(None)
    assert spec.client() == BenchmarkClient(
        requests_per_client=genmodel.REQUESTS_PER_CLIENT,
        warmup_requests=genmodel.WARMUP_REQUESTS,
        restart_after_warmup=True,
        replays_warmup_prompts=True,
    )
    # without the restart nothing is replayed (the clients go straight on to new prompts)
    assert not ServingSpec(warmup_restart=False).client().replays_warmup_prompts
    # the default warm-up leaves each client one measured request, whoever builds the client
    for n, warmup in ((1, 0), (2, 1), (3, 2)):
        assert ServingSpec(requests_per_client=n).client().warmup_requests == warmup
        assert (
            genmodel.Simulated(engine=spec.engine_on(device), requests_per_client=n).warmup_requests == warmup
        )
