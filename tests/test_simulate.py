"""The serving simulation: engine presets, the step-cost table, the scheduler's laws, the API and CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import cli_bad, cli_ok
from _simlaws import assert_every_request_counted, assert_littles_law, two_requests_each
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genmodel
from genmodel._arrivals import Arrivals, Lengths
from genmodel._enginepresets import engine_preset
from genmodel._forwardpass import StepSpecs
from genmodel._serving import estimate_serving
from genmodel._servingmodel import Simulated
from genmodel._simresult import Percentiles
from genmodel._stepcost import StepCostTable
from genmodel.io import load_hardware, load_model
from genmodel.report import estimate_dict

SMALL = {"model": "llama-3.2-1b", "hardware": "h100-sxm"}


def _sim(**kwargs: object) -> genmodel.SimulationResult:
    """A small simulation; closed loops measure every request unless a warm-up is asked for."""
    args: dict[str, object] = {**SMALL, "input_tokens": 300, "output_tokens": 40, "warmup_requests": 0}
    args.update(kwargs)
    return genmodel.simulate(**args)  # type: ignore[arg-type]


# ---- engine presets --------------------------------------------------------------------------


def test_presets_follow_the_gpu_as_the_engines_do() -> None:
    a100 = load_hardware("a100-sxm-80gb").device
    h100 = load_hardware("h100-sxm").device
    b200 = load_hardware("b200").device
    assert (engine_preset("vllm", h100).max_batched_tokens, engine_preset("vllm", h100).max_num_seqs) == (
        8192,
        1024,
    )
    # vLLM keeps the small defaults on an A100 (arg_utils.py: the A100 exception)
    assert (engine_preset("vllm", a100).max_batched_tokens, engine_preset("vllm", a100).max_num_seqs) == (
        2048,
        256,
    )
    assert engine_preset("sglang", h100).max_batched_tokens == 8192
    assert engine_preset("sglang", b200).max_batched_tokens == 16384
    assert not engine_preset("sglang").mixed
    trt = engine_preset("trtllm")
    assert (trt.max_batched_tokens, trt.max_num_seqs, trt.admission, trt.chunked_prefill) == (
        8192,
        2048,
        "reserve",
        False,
    )
    for name in genmodel.ENGINES:
        assert engine_preset(name).source


def test_engine_knobs_are_checked_and_overridable() -> None:
    with pytest.raises(genmodel.UnknownEntryError, match="vllm"):
        engine_preset("tgi")
    with pytest.raises(genmodel.SpecError, match="admission='lazy'"):
        engine_preset("vllm").replace(admission="lazy")
    e = engine_preset("vllm").replace(max_num_seqs=8, max_batched_tokens=None)
    assert e.max_num_seqs == 8 and e.max_batched_tokens == 8192


# ---- the step-cost table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "hardware", "plan"),
    [
        ("llama-3.1-8b", "h100-sxm", genmodel.Plan(tp=2)),
        ("qwen3-30b-a3b", "h200-sxm", genmodel.Plan(tp=1, ep=2, dp=2)),
        ("deepseek-v3", "b200", genmodel.Plan(tp=8)),
    ],
)
def test_cost_table_equals_the_direct_estimate_at_grid_points(
    model_id: str, hardware: str, plan: genmodel.Plan
) -> None:
    model, system = load_model(model_id), load_hardware(hardware)
    precision = genmodel.default_precision("fp8")
    specs = StepSpecs(model=model, hardware=system, plan=plan, precision=precision)
    table = StepCostTable.build(specs, tokens_max=3000)

    def direct(phase: str, seqs: float, new: float, past: float) -> float:
        return float(specs.terms(phase, num_seqs=seqs, new_tokens=new, past_tokens=past).time_s)

    for batch, context in ((1, 10), (7, 1000), (64, 3000), (300, 123), (2999, 50)):
        want = direct("decode", float(batch), 1.0, float(context))
        assert table.step_s(decode_seqs=batch, decode_past_sum=batch * context, chunks=[]) == pytest.approx(
            want, rel=1e-9
        )
        run = table.decode_run_s(decode_seqs=batch, decode_past_sum=batch * context, steps=3)
        assert run[2] == pytest.approx(direct("decode", float(batch), 1.0, float(context + 2)), rel=1e-9)
    for tokens in (1, 100, 1000, 2047, 3000):
        want = direct("prefill", 1.0, float(tokens), 0.0)
        assert table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(tokens, 0)]) == pytest.approx(
            want, rel=1e-9
        )
    # a chunk after a cached past (chunked prefill) is a prefill step at that past
    want = direct("prefill", 1.0, 512.0, 1024.0)
    assert table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(512, 1024)]) == pytest.approx(
        want, rel=1e-9
    )
    with pytest.raises(genmodel.SpecError, match="tokens_max"):
        table.step_s(decode_seqs=3001, decode_past_sum=0, chunks=[])


def test_a_mixed_step_costs_more_than_either_part_and_less_than_both() -> None:
    model, system = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    bf16 = genmodel.default_precision("bf16")
    table = StepCostTable.build(
        StepSpecs(model=model, hardware=system, plan=genmodel.Plan(), precision=bf16), tokens_max=4096
    )
    decode = table.step_s(decode_seqs=32, decode_past_sum=32 * 2000, chunks=[])
    prefill = table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(2000, 0)])
    mixed = table.step_s(decode_seqs=32, decode_past_sum=32 * 2000, chunks=[(2000, 0)])
    assert max(decode, prefill) < mixed < decode + prefill


# ---- the simulation's laws -------------------------------------------------------------------


def test_every_request_completes_and_every_token_is_counted() -> None:
    r = _sim(concurrency=6, requests_per_client=5, input_spread=0.5, output_spread=0.5, records=True, seed=3)
    rec = r.records
    assert rec is not None and r.requests == 30
    assert not np.isnan(rec.finish_s).any()
    assert (rec.arrival_s <= rec.scheduled_s).all() and (rec.scheduled_s <= rec.first_token_s).all()
    assert (rec.first_token_s <= rec.finish_s).all()
    assert r.generated_tokens == int(rec.output_tokens.sum())
    window = rec.finish_s.max() - rec.arrival_s.min()
    assert r.output_tokens_per_s * window == pytest.approx(rec.output_tokens.sum())
    rows = rec.rows()
    assert len(rows) == 30
    assert rows[0]["queue_s"] + rows[0]["prefill_s"] == pytest.approx(rows[0]["ttft_s"])


def test_littles_law_holds_on_the_records() -> None:
    n = 12
    r = _sim(concurrency=n, requests_per_client=30, output_spread=0.5, input_spread=0.5, seed=1, records=True)
    assert_littles_law(r, n, 30)


def test_one_client_reproduces_the_single_request_estimate() -> None:
    kwargs = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "input_tokens": 1000, "output_tokens": 100}
    est = genmodel.estimate(batch=1, **kwargs)  # type: ignore[arg-type]
    # (fresh prompts: the replayed warm-up prompt would come from the prefix cache)
    r = genmodel.simulate(concurrency=1, requests_per_client=3, warmup_replay=False, **kwargs)  # type: ignore[arg-type]
    assert r.ttft_s.mean == pytest.approx(est.ttft_s, rel=1e-9)
    assert r.tpot_s.mean == pytest.approx(est.tpot_s, rel=1e-3)
    assert r.queue_s == 0 and r.mean_running_batch == pytest.approx(1.0)


def test_unlimited_budget_and_memory_approach_the_closed_form() -> None:
    # the closed form interleaves whole prefills between decode steps (one request's prefill at a
    # time): an engine that prefills alone, unchunked, with a budget and cap that never bind.
    # Stated tolerance: TPOT within 10 %, TTFT within 50 % (a steady state against a simulation
    # whose clients start together and drift apart: spread lengths break the waves up, so the
    # steady state alone, without the closed form's wave term for fixed lengths).
    # (both with the default profile: SGLang's own adds its request overhead and expert bandwidth)
    n, kwargs = (
        16,
        {
            "model": "llama-3.1-8b",
            "hardware": "h200-sxm",
            "input_tokens": 1000,
            "output_tokens": 200,
            "profile": "default",
        },
    )
    engine = engine_preset("sglang").replace(
        max_batched_tokens=1000, chunked_prefill=False, max_num_seqs=4096
    )
    sim = genmodel.simulate(
        concurrency=n, requests_per_client=40, engine=engine, output_spread=0.3, seed=2, **kwargs
    )  # type: ignore[arg-type]
    closed = estimate_serving(
        load_model("llama-3.1-8b"),
        load_hardware("h200-sxm"),
        genmodel.Plan(),
        genmodel.default_precision("bf16"),
        concurrency=n,
        input_tokens=1000,
        output_tokens=200,
    )
    assert sim.preemptions == 0
    assert sim.tpot_s.mean == pytest.approx(closed.tpot_s, rel=0.10)
    assert sim.ttft_s.mean == pytest.approx(closed.ttft_s, rel=0.50)


def test_more_clients_never_lower_the_mean_ttft() -> None:
    ttfts = [_sim(concurrency=n, requests_per_client=3).ttft_s.mean for n in (1, 2, 4, 8, 16, 32, 64)]
    assert all(b >= a * (1 - 1e-9) for a, b in itertools.pairwise(ttfts)), ttfts


def test_a_trace_replays_deterministically(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    rows = [(0.0, 200, 30), (0.01, 500, 10), (0.011, 100, 50), (0.5, 300, 20), (0.52, 50, 5)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arrival_s", "input_tokens", "output_tokens", "note"])
        w.writerows([*r, "x"] for r in rows)
    a = genmodel.simulate(**SMALL, trace=str(path), records=True)  # type: ignore[arg-type]
    b = genmodel.simulate(**SMALL, trace=tuple(rows), records=True, seed=99)  # type: ignore[arg-type]
    assert a.records is not None and b.records is not None
    assert a.records.arrival_s.tolist() == [r[0] for r in rows]
    assert a.records.finish_s.tolist() == b.records.finish_s.tolist()
    assert a.records.output_tokens.tolist() == [r[2] for r in rows]


def test_the_same_seed_gives_the_same_result() -> None:
    kwargs = {"request_rate": 20.0, "requests": 60, "input_spread": 0.5, "output_spread": 0.5}
    a, b = _sim(seed=5, **kwargs).to_dict(), _sim(seed=5, **kwargs).to_dict()
    c = _sim(seed=6, **kwargs).to_dict()
    for d in (a, b, c):
        d.pop("elapsed_s")
    assert a == b
    assert a != c


def test_poisson_and_gamma_arrivals_come_at_the_rate() -> None:
    rng = np.random.default_rng(0)
    from genmodel._arrivals import arrival_times

    for cv in (1.0, 3.0):
        t = arrival_times(Arrivals(kind="gamma", rate_per_s=50.0, cv=cv, requests=4000), rng, 4000)
        gaps = np.diff(t)
        assert t[0] == 0 and (gaps >= 0).all()
        assert gaps.mean() == pytest.approx(1 / 50, rel=0.1)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.15)


def test_on_demand_admission_preempts_and_reserve_does_not() -> None:
    # Llama-3.1-8B in bf16 on a 24 GB RTX 4090 keeps ~40k tokens of KV: 48 clients of 2000 tokens
    # overflow it as they decode
    kwargs = {"model": "llama-3.1-8b", "hardware": "rtx-4090", "input_tokens": 1000, "output_tokens": 1000}
    vllm = genmodel.simulate(
        concurrency=48, requests_per_client=2, warmup_requests=0, engine="vllm", **kwargs
    )  # type: ignore[arg-type]
    trt = genmodel.simulate(
        concurrency=48, requests_per_client=2, warmup_requests=0, engine="trtllm", **kwargs
    )  # type: ignore[arg-type]
    assert vllm.preemptions > 0 and vllm.requests == 96
    assert trt.preemptions == 0 and trt.requests == 96
    assert vllm.kv_peak_bytes_per_device <= vllm.kv_capacity_bytes_per_device
    assert trt.kv_peak_bytes_per_device <= trt.kv_capacity_bytes_per_device
    # SGLang reserves 0.7 of the output: it admits more, and retracts when the rest overflows
    sglang = genmodel.simulate(
        concurrency=48, requests_per_client=2, warmup_requests=0, engine="sglang", **kwargs
    )  # type: ignore[arg-type]
    assert sglang.preemptions > 0 and sglang.requests == 96
    assert sglang.kv_peak_bytes_per_device <= sglang.kv_capacity_bytes_per_device


def test_attention_dp_ranks_step_in_lockstep() -> None:
    kwargs = {"model": "qwen3-30b-a3b", "hardware": "h200-sxm", "input_tokens": 500, "output_tokens": 50}
    lock = genmodel.simulate(
        concurrency=8, requests_per_client=2, warmup_requests=0, tp=1, dp=2, ep=2, records=True, **kwargs
    )  # type: ignore[arg-type]
    assert lock.records is not None and sorted(set(lock.records.replica.tolist())) == [0, 1]
    dense = genmodel.simulate(
        "llama-3.1-8b",
        "h200-sxm",
        concurrency=8,
        requests_per_client=2,
        warmup_requests=0,
        dp=2,
        input_tokens=500,
        output_tokens=50,
    )
    assert dense.requests == 16 and lock.requests == 16


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_an_idle_lockstep_rank_admits_its_clients_next_request_at_once(engine: str) -> None:
    """Found by tools/sweep_serving_sanity.py: a closed-loop client whose request completed on an
    attention-DP rank that then had nothing to decode waited, on SGLang and TensorRT-LLM (whose
    completions leave after the next step's launch), for the other ranks' whole run of decode
    steps, up to their next completion: 1.07 s of queue here (mean TTFT 0.36 s against vLLM's
    0.015 s), and more clients then lowered the mean TTFT (DeepSeek-V3 at DP8: 1.09 s with 2
    clients, 0.14 s with 16). The rank plans its next step with the others: one step's wait."""
    r = genmodel.simulate(
        "qwen3-30b-a3b",
        "h200-sxm",
        tp=1,
        ep=2,
        dp=2,
        weight_dtype="fp8",
        input_tokens=1000,
        output_tokens=300,
        output_spread=0.5,  # (the ranks' requests complete at different steps)
        concurrency=2,
        requests_per_client=6,
        warmup_requests=0,
        engine=engine,
        records=True,
    )
    assert r.records is not None
    queue = r.records.scheduled_s - r.records.arrival_s
    assert float(queue.max()) <= 1.5 * r.itl_s.p90  # at most about one decode step


def test_sglang_ranks_chunk_prompts_at_the_chunk_size_over_the_dp_size() -> None:
    """SGLang with DP attention divides --chunked-prefill-size by --dp-size (server_args.py
    _handle_data_parallelism): each of 2 ranks chunks at 4,096 of the H200 preset's 8,192 tokens,
    so an 8,192-token prompt takes two steps there (one step when the size given is doubled)."""
    kw: dict[str, Any] = {
        "tp": 1,
        "ep": 2,
        "dp": 2,
        "weight_dtype": "fp8",
        "input_tokens": 8192,
        "output_tokens": 20,
        "concurrency": 1,
        "requests_per_client": 2,
        "warmup_requests": 0,
    }
    sglang = genmodel.simulate("qwen3-30b-a3b", "h200-sxm", engine="sglang", **kw)
    assert sglang.engine.max_batched_tokens == 4096
    whole = genmodel.simulate("qwen3-30b-a3b", "h200-sxm", engine="sglang", max_batched_tokens=16384, **kw)
    assert whole.engine.max_batched_tokens == 8192
    assert sglang.steps == whole.steps + 2  # (one more prefill step per request)
    assert sglang.ttft_s.mean > whole.ttft_s.mean
    # dense replicas and the other engines keep the size given
    assert (
        genmodel.simulate(
            "llama-3.1-8b", "h200-sxm", engine="sglang", **{**kw, "tp": 1, "ep": 1}
        ).engine.max_batched_tokens
        == 8192
    )
    assert (
        genmodel.simulate("qwen3-30b-a3b", "h200-sxm", engine="vllm", **kw).engine.max_batched_tokens == 8192
    )


def test_fewer_requests_than_clients() -> None:
    r = _sim(concurrency=8, requests=5, records=True)
    assert r.requests == 5 and r.records is not None
    assert r.records.arrival_s.tolist() == [0.0] * 5


def test_warmup_requests_are_left_out() -> None:
    r = _sim(concurrency=4, requests_per_client=3, warmup_requests=1, records=True)
    assert r.requests == 8
    assert r.records is not None and int((~r.records.measured).sum()) == 4
    with pytest.raises(genmodel.SpecError, match="warmup"):
        _sim(concurrency=4, requests_per_client=1, warmup_requests=1)


def test_weighted_percentiles() -> None:
    p = Percentiles.of(np.array([1.0, 2.0]), np.array([9.0, 1.0]))
    assert (p.p50, p.p90, p.p99) == (1.0, 1.0, 2.0)
    assert p.mean == pytest.approx(1.1)
    assert math.isnan(Percentiles.of(np.zeros(0)).mean)


def test_bad_arguments_are_spec_errors() -> None:
    with pytest.raises(genmodel.SpecError, match="exactly one"):
        _sim(concurrency=2, request_rate=1.0)
    with pytest.raises(genmodel.SpecError, match="request_rate=-1"):
        _sim(request_rate=-1.0)
    with pytest.raises(genmodel.SpecError, match="pp=2"):
        _sim(concurrency=2, pp=2, tp=1)
    with pytest.raises(genmodel.SpecError, match="spread"):
        Lengths(mean=10, spread_frac=1.5)
    with pytest.raises(genmodel.InfeasibleError):
        genmodel.simulate("llama-3.1-405b", "h100-sxm", concurrency=2, input_tokens=10, output_tokens=10)


# ---- property tests over random deployments --------------------------------------------------

_DEPLOYMENTS = [
    ("llama-3.2-1b", "h100-sxm", {}),
    ("llama-3.1-8b", "a100-sxm-80gb", {"tp": 2}),
    ("qwen3-30b-a3b", "h200-sxm", {"tp": 2, "ep": 2}),
    ("mixtral-8x7b", "h100-sxm", {"tp": 2, "weight_dtype": "fp8"}),
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deployment=st.sampled_from(_DEPLOYMENTS),
    engine=st.sampled_from(genmodel.ENGINES),
    clients=st.integers(1, 24),
    input_tokens=st.integers(1, 3000),
    output_tokens=st.integers(1, 60),
    seed=st.integers(0, 3),
)
def test_laws_over_random_deployments(
    deployment: tuple[str, str, dict[str, object]],
    engine: str,
    clients: int,
    input_tokens: int,
    output_tokens: int,
    seed: int,
) -> None:
    r = two_requests_each(
        deployment, clients, input_tokens=input_tokens, output_tokens=output_tokens, engine=engine, seed=seed
    )
    assert_every_request_counted(r, clients)
    assert r.ttft_s.mean > 0 and r.e2e_s.mean >= r.ttft_s.mean
    assert 0 < r.mean_running_batch <= clients + 1e-9
    if output_tokens > 1:
        assert r.tpot_s.mean > 0


# ---- the CLI ---------------------------------------------------------------------------------

_CLI = [
    "simulate",
    "--model",
    "llama-3.2-1b",
    "--hardware",
    "h100-sxm",
    "--input-tokens",
    "200",
    "--output-tokens",
    "20",
]


def test_cli_json_keys(tmp_path: Path) -> None:
    import json

    records = tmp_path / "records.csv"
    text = cli_ok([*_CLI, "--concurrency", "4", "--format", "json", "--records", str(records)])
    data = json.loads(text)
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert set(data[key]) == {"mean", "p50", "p90", "p99"}
    for key in (
        "request_rate_per_s",
        "output_tokens_per_s",
        "output_tokens_per_s_per_device",
        "mean_running_batch",
        "preemptions",
        "kv_peak_bytes_per_device",
        "steps",
        "simulated_s",
        "elapsed_s",
    ):
        assert isinstance(data[key], (int, float))
    assert data["engine"]["name"] == "vllm"
    with records.open() as f:
        assert (
            len(list(csv.DictReader(f))) == 4 * genmodel.REQUESTS_PER_CLIENT
        )  # warm-up requests included, flagged
    assert "TTFT" in cli_ok([*_CLI, "--request-rate", "10", "--requests", "20", "--engine", "sglang"])
    assert "ttft_s.p99" in cli_ok([*_CLI, "--concurrency", "2", "--format", "csv"])


def test_cli_table_says_the_request_count_is_the_measured_one() -> None:
    # --requests 24 over 4 clients printed "requests 16": the warm-up requests are left out
    data = json.loads(cli_ok([*_CLI, "--concurrency", "4", "--requests", "24", "--format", "json"]))
    assert data["requests"] < 24
    table = " ".join(cli_ok([*_CLI, "--concurrency", "4", "--requests", "24"], columns=200).split())
    assert f"requests measured (warm-up left out) │ {data['requests']} │" in table


def test_cli_bad_input_is_one_red_line(tmp_path: Path) -> None:
    assert "engine='tgi'" in cli_bad([*_CLI, "--concurrency", "2", "--engine", "tgi"])
    assert "request_rate=-2" in cli_bad([*_CLI, "--request-rate", "-2"])
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,input_tokens\n0,5\n")
    base = ["simulate", "--model", "llama-3.2-1b", "--hardware", "h100-sxm"]
    assert "output_tokens missing" in cli_bad([*base, "--trace", str(bad)])
    assert "cannot be read" in cli_bad([*base, "--trace", str(tmp_path / "none.csv")])
    assert "llama-3.1-405b" in cli_bad(
        [
            "simulate",
            "--model",
            "llama-3.1-405b",
            "--hardware",
            "h100-sxm",
            "--concurrency",
            "2",
            "--input-tokens",
            "9",
            "--output-tokens",
            "9",
        ]
    )


def test_cli_bursty_arrivals_and_length_spread_are_the_apis() -> None:
    """--burstiness-cv, --input-spread and --output-spread reach genmodel.simulate: the CLI's JSON
    is the API's with them, bursts raise the tail of TTFT and spread lengths move the tokens made."""
    flags = ["--request-rate", "40", "--requests", "200", "--seed", "3", "--format", "json"]
    shape = {"input_tokens": 200, "output_tokens": 20, "request_rate": 40.0, "requests": 200, "seed": 3}
    bursty = json.loads(cli_ok([*_CLI, *flags, "--burstiness-cv", "4", "--output-spread", "0.5"]))
    api = genmodel.simulate("llama-3.2-1b", "h100-sxm", burstiness_cv=4.0, output_spread=0.5, **shape)
    assert bursty["ttft_s"]["p99"] == pytest.approx(api.ttft_s.p99, rel=1e-12)
    assert bursty["generated_tokens"] == api.generated_tokens
    poisson = json.loads(cli_ok([*_CLI, *flags]))
    assert bursty["ttft_s"]["p99"] > poisson["ttft_s"]["p99"]
    assert poisson["generated_tokens"] == 200 * 20 != bursty["generated_tokens"]
    assert "burstiness_cv=2.0 shapes request_rate= arrivals only" in cli_bad(
        [*_CLI, "--concurrency", "2", "--burstiness-cv", "2"]
    )
    assert "burstiness_cv=0.0 must be > 0" in cli_bad([*_CLI, "--request-rate", "5", "--burstiness-cv", "0"])
    assert "input_spread=1.5 must be in [0, 1)" in cli_bad(
        [*_CLI, "--concurrency", "2", "--input-spread", "1.5"]
    )


# --- the serving-model interface: estimate(concurrency=) goes through it -------------------------

_DEPLOY: dict[str, object] = {"input_tokens": 1000, "output_tokens": 200, "weight_dtype": "fp8"}


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_simulated_estimate_is_the_simulation_means(engine: str) -> None:
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, concurrency=24, engine=engine, **_DEPLOY)  # type: ignore[arg-type]
    sim = genmodel.simulate("llama-3.1-70b", "h100-sxm", tp=2, concurrency=24, engine=engine, **_DEPLOY)  # type: ignore[arg-type]
    s = est.serving
    assert s is not None and s.serving_model == "simulated" and s.engine == engine and s.notes == ""
    assert est.ttft_s == pytest.approx(sim.ttft_s.mean, rel=1e-12)
    assert est.tpot_s == pytest.approx(sim.tpot_s.mean, rel=1e-12)
    assert s.decode_batch == pytest.approx(sim.mean_running_batch, rel=1e-12)
    assert s.request_rate_per_s == pytest.approx(sim.request_rate_per_s, rel=1e-12)
    assert s.queue_wait_s == pytest.approx(sim.queue_s, rel=1e-12)
    assert 0 < s.prefill_busy_frac < 1
    assert estimate_dict(est)["serving"]["serving_model"] == "simulated"


def test_simulated_estimate_skips_the_itl_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate reads the requests' means only: it asks the simulation to leave out the ITL
    percentiles, a weighted sort of every decode step's gap (seconds for millions of steps: 128
    clients x 12 requests x 16k outputs, one at a time, took 16 s of which 8 s were that sort)."""
    import genmodel._simulate as simulate_module

    asked: list[object] = []
    real = simulate_module.simulate_serving

    def spy(*args: object, **kwargs: object) -> genmodel.SimulationResult:
        asked.append(kwargs.get("itl", True))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(simulate_module, "simulate_serving", spy)
    est = genmodel.estimate("llama-3.2-1b", "h100-sxm", concurrency=4, **_DEPLOY)  # type: ignore[arg-type]
    assert asked == [False]
    sim = genmodel.simulate("llama-3.2-1b", "h100-sxm", concurrency=4, **_DEPLOY)  # type: ignore[arg-type]
    assert math.isfinite(sim.itl_s.mean)  # (genmodel.simulate keeps them)
    assert est.ttft_s == sim.ttft_s.mean and est.tpot_s == sim.tpot_s.mean


def test_shared_step_tables_give_the_same_estimate() -> None:
    tables = genmodel.StepTables()
    kw = {"tp": 2, "engine": "sglang", **_DEPLOY}
    alone = genmodel.estimate("llama-3.1-70b", "h100-sxm", concurrency=8, **kw)  # type: ignore[arg-type]
    # a larger load first: its table covers the smaller one, which then reuses it
    genmodel.estimate("llama-3.1-70b", "h100-sxm", concurrency=64, step_tables=tables, **kw)  # type: ignore[arg-type]
    shared = genmodel.estimate("llama-3.1-70b", "h100-sxm", concurrency=8, step_tables=tables, **kw)  # type: ignore[arg-type]
    assert len(tables.tables) == 1
    assert shared.ttft_s == pytest.approx(alone.ttft_s, rel=1e-12)
    assert shared.tpot_s == pytest.approx(alone.tpot_s, rel=1e-12)


def test_closed_form_estimate_is_the_steady_state_with_the_engines_wave() -> None:
    kw = {"tp": 2, "concurrency": 24, **_DEPLOY}
    est = genmodel.estimate(
        "llama-3.1-70b", "h200-sxm", serving="closed-form", engine="sglang", profile="h200-sglang", **kw
    )  # type: ignore[arg-type]
    # a named profile (h200-sglang, the harness's): the same efficiencies for the formula
    assert est.options.profile is not None and est.options.profile.id == "h200-sglang"
    model = load_model("llama-3.1-70b")
    system = genmodel.apply_profile(load_hardware("h200-sxm"), est.options.profile)
    direct = estimate_serving(
        model,
        system,
        genmodel.Plan(tp=2),
        genmodel.default_precision("fp8"),
        concurrency=24,
        input_tokens=1000,
        output_tokens=200,
        wave=Simulated(engine=engine_preset("sglang", load_hardware("h200-sxm").device)).wave,
    )
    assert estimate_dict(est) == estimate_dict(direct)
    assert (
        est.serving is not None and est.serving.serving_model == "closed-form" and est.serving.engine is None
    )


def test_a_deployment_the_simulation_does_not_cover_falls_back_with_a_note() -> None:
    kw = {"tp": 2, "pp": 2, "concurrency": 16, **_DEPLOY}
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", **kw)  # type: ignore[arg-type]
    closed = genmodel.estimate("llama-3.1-70b", "h100-sxm", serving="closed-form", **kw)  # type: ignore[arg-type]
    s = est.serving
    assert s is not None and s.serving_model == "closed-form" and s.engine is None
    assert "pp=2" in s.notes and "closed-form" in s.notes
    assert (est.ttft_s, est.tpot_s) == (closed.ttft_s, closed.tpot_s)
    assert estimate_dict(est)["serving"]["notes"] == s.notes
    assert closed.serving is not None and closed.serving.notes == ""


def test_unknown_serving_model_or_engine_is_a_spec_error() -> None:
    with pytest.raises(genmodel.SpecError, match="serving='steady'"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=4, serving="steady", **_DEPLOY)  # type: ignore[arg-type]
    with pytest.raises(genmodel.UnknownEntryError, match="tgi"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=4, engine="tgi", **_DEPLOY)  # type: ignore[arg-type]


def test_cli_estimate_takes_engine_and_serving() -> None:
    base = [
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "200",
        "--concurrency",
        "8",
    ]
    d = json.loads(cli_ok([*base, "--engine", "sglang", "--format", "json"]))
    assert d["serving"]["serving_model"] == "simulated" and d["serving"]["engine"] == "sglang"
    sim = genmodel.simulate(
        "llama-3.1-8b", "h100-sxm", concurrency=8, engine="sglang", input_tokens=1000, output_tokens=200
    )
    assert d["ttft_s"] == pytest.approx(sim.ttft_s.mean, rel=1e-9)
    c = json.loads(cli_ok([*base, "--serving", "closed-form", "--format", "json"]))
    assert c["serving"]["serving_model"] == "closed-form"
    assert "engine='foo'" in cli_bad([*base, "--engine", "foo"])
    assert "serving='x'" in cli_bad([*base, "--serving", "x"])


# ---- the timeline and the records' rows (opt-in outputs, as the dashboard's Serving page shows them)


def test_the_timeline_is_the_run_step_by_step() -> None:
    n, cap = 24, 8
    kwargs: dict[str, object] = {"concurrency": n, "requests_per_client": 3, "max_num_seqs": cap, "seed": 2}
    plain, r = _sim(**kwargs), _sim(**kwargs, timeline=True)
    tl = r.timeline
    assert plain.timeline is None and "timeline" not in plain.to_dict() and tl is not None
    # keeping it changes nothing else
    same = {k: v for k, v in r.to_dict().items() if k not in ("elapsed_s", "timeline")}
    assert same == {k: v for k, v in plain.to_dict().items() if k != "elapsed_s"}
    assert tl.t_s[0] == 0 and (np.diff(tl.t_s) > 0).all() and tl.t_s[-1] == r.simulated_s
    # every client sends at once: the cap runs, the rest waits; the run ends empty
    assert (tl.running[0], tl.queued[0]) == (cap, n - cap)
    assert tl.running.max() == cap and (tl.running[-1], tl.queued[-1]) == (0, 0)
    # a step function whose time average is the mean running batch, and whose KV top is the peak
    area = float((tl.running[:-1] * np.diff(tl.t_s)).sum())
    assert area / r.simulated_s == pytest.approx(r.mean_running_batch, rel=1e-9)
    assert tl.kv_used_bytes_per_device.max() == pytest.approx(r.kv_peak_bytes_per_device, rel=1e-12)
    assert r.to_dict()["timeline"]["queued"] == tl.queued.tolist()


def test_the_timeline_sums_independent_replicas() -> None:
    n = 24
    one = _sim(concurrency=n // 2, requests_per_client=2, timeline=True).timeline
    two = _sim(concurrency=n, requests_per_client=2, dp=2, timeline=True).timeline
    assert one is not None and two is not None
    # two identical replicas, each with half the clients: the same times, twice the load
    assert two.t_s.tolist() == one.t_s.tolist()
    assert two.running.tolist() == (2 * one.running).tolist()
    assert two.queued.tolist() == (2 * one.queued).tolist()
    assert two.kv_used_bytes_per_device.tolist() == one.kv_used_bytes_per_device.tolist()


def test_record_rows_carry_each_requests_tpot() -> None:
    r = _sim(concurrency=4, requests_per_client=3, output_spread=0.5, records=True, seed=5)
    assert r.records is not None
    rows = r.records.rows()
    for row in rows:
        assert row["tpot_s"] * (row["output_tokens"] - 1) == pytest.approx(row["decode_s"])
    assert float(np.mean([row["tpot_s"] for row in rows])) == pytest.approx(r.tpot_s.mean)
    one = _sim(concurrency=1, output_tokens=1, records=True)
    assert one.records is not None and one.records.rows()[0]["tpot_s"] is None


def test_lockstep_ranks_share_the_routed_experts_work() -> None:
    # attention-DP ranks in lockstep: a rank's routed experts serve every rank's tokens, so one
    # rank's prompt costs its own attention and dense layers but the experts' time of the group's
    # mean tokens per rank; a uniform load (group = own tokens) is the table's grid point
    model, system = load_model("qwen3-30b-a3b"), load_hardware("h200-sxm")
    plan, precision = genmodel.Plan(tp=1, dp=4, ep=4), genmodel.default_precision("bf16")
    table = StepCostTable.build(
        StepSpecs(model=model, hardware=system, plan=plan, precision=precision), tokens_max=4096
    )
    alone = table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(4096, 0)])
    assert table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(4096, 0)], group_tokens=4096) == alone
    shared = table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(4096, 0)], group_tokens=1024)
    assert shared < alone
    llama = load_model("llama-3.1-8b")
    dense = StepCostTable.build(
        StepSpecs(model=llama, hardware=system, plan=genmodel.Plan(), precision=precision), tokens_max=64
    )
    assert dense.step_s(decode_seqs=64, decode_past_sum=0, chunks=[], group_tokens=8) == dense.step_s(
        decode_seqs=64, decode_past_sum=0, chunks=[]
    )


def test_cli_allows_a_long_context_when_asked() -> None:
    args = ["simulate", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--concurrency", "2"]
    args += ["--input-tokens", "5000", "--output-tokens", "100", "--format", "json"]
    assert "max_position_embeddings=4,096" in cli_bad(args)
    assert cli_ok([*args, "--allow-long-context"]).lstrip().startswith("{")


def test_leaving_out_the_itl_percentiles_changes_nothing_else() -> None:
    from genmodel._simulate import simulate_serving

    model, system = load_model("llama-3.2-1b"), load_hardware("h100-sxm")
    args: dict[str, object] = {
        "engine": engine_preset("vllm", system.device),
        "arrivals": Arrivals(kind="closed", clients=9, requests_per_client=3, warmup_requests=1),
        "input_tokens": Lengths(mean=300, spread_frac=0.5),
        "output_tokens": Lengths(mean=40, spread_frac=0.5),
        "records": True,
    }
    plan, precision = genmodel.Plan(dp=2), genmodel.default_precision("bf16", None, None)
    full = simulate_serving(model, system, plan, precision, **args)  # type: ignore[arg-type]
    lean = simulate_serving(model, system, plan, precision, itl=False, **args)  # type: ignore[arg-type]
    assert math.isnan(lean.itl_s.mean) and not math.isnan(full.itl_s.mean)
    assert lean.generated_tokens == full.generated_tokens
    assert lean.ttft_s == full.ttft_s and lean.tpot_s == full.tpot_s and lean.e2e_s == full.e2e_s
    assert lean.records is not None and full.records is not None
    assert np.array_equal(lean.records.finish_s, full.records.finish_s)


def test_a_simulation_result_shows_itself_in_a_few_lines() -> None:
    # a notebook showed the dataclass's ~5,000 characters (every knob of the engine)
    result = genmodel.simulate("llama-3.2-1b", "h100-sxm", concurrency=4, input_tokens=100, output_tokens=20)
    shown = repr(result)
    assert len(shown.splitlines()) <= 8 and len(shown) < 1000
    assert f"p99 {result.ttft_s.p99 * 1e3:.4g} ms" in shown and "output tokens/s" in shown


def test_a_validation_report_shows_its_summaries_not_every_case(tmp_path: Path) -> None:
    # a notebook showed every CaseResult of the report: about 100,000 characters for the bundled cases
    rows = genmodel.read_cases(genmodel.public_cases_path())[:3]
    path = tmp_path / "cases.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = genmodel.validate(path)
    assert repr(report).startswith(f"ValidationReport({len(report.cases)} cases, MAPE {report.mape:.1f} %")
    assert "CaseResult" not in repr(report)
