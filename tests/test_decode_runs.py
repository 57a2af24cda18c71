"""Runs of decode-only steps (genmodel._scheduler: ``Replica.steps_to_event``, ``commit_run``) give
what the simulation gives stepping one engine iteration at a time (``DECODE_RUNS = False``): every
figure, the per-request records, the ITL samples, the step count, preemptions, KV refusals and the
KV peak, on deployments that exercise preemption (recompute with and without the prefix cache's
kept blocks, swap), on-demand, reserved and SGLang's ratio admission, attention-DP ranks in
lockstep, disaggregated pools, closed loops and Poisson and gamma arrivals."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import genmodel
from genmodel import _scheduler
from genmodel._enginepresets import engine_preset
from genmodel._harness import harness_engine
from genmodel._scheduler import Replica
from genmodel._validate import public_cases_path, public_options_path
from genmodel.io import load_hardware

REL = 1e-9
_H100 = load_hardware("h100-sxm").device
# Llama-3.1-70B in fp8 on two H100s: a KV pool of ~246k tokens, ~48 sequences of 5k
_SHORT: dict[str, Any] = {
    "model": "llama-3.1-70b",
    "hardware": "h100-sxm",
    "tp": 2,
    "weight_dtype": "fp8",
    "input_tokens": 1024,
    "output_tokens": 4096,
    "concurrency": 128,
    "requests_per_client": 2,
    "warmup_requests": 0,
}


def _harness(engine: str, config: str) -> Any:
    return harness_engine(engine_preset(engine, _H100), config, concurrency=128, input_tokens=1024, tp=2)


CASES: dict[str, dict[str, Any]] = {
    "vllm-preempt-prefix-cache": {**_SHORT, "engine": "vllm"},
    "vllm-preempt-recompute-spread": {
        **_SHORT,
        "engine": "vllm",
        "prefix_caching": False,
        "output_spread": 0.3,
    },
    "vllm-preempt-swap": {**_SHORT, "engine": "vllm", "preemption": "swap"},
    "vllm-unchunked-prefix-cache": {**_SHORT, "engine": "vllm", "chunked_prefill": False},
    "vllm-prefix-hits-warmup": {
        **_SHORT,
        "engine": "vllm",
        "requests_per_client": 3,
        "warmup_requests": 1,
        "prefix_hit_rate": 0.5,
        "output_spread": 0.3,
    },
    "vllm-async-overlap": {**_SHORT, "engine": _harness("vllm", "atom-oot")},
    # sliding-window layers that free their blocks (vLLM): gpt-oss-120b on one H100, KV-short
    "vllm-preempt-sliding-window": {
        **_SHORT,
        "model": "gpt-oss-120b",
        "tp": 1,
        "weight_dtype": "mxfp4",
        "concurrency": 256,
        "engine": "vllm",
    },
    # SGLang's split pools (the full-layer one larger than a whole-model pool), retracting: the same
    "sglang-ratio-retract-sliding-split": {
        **_SHORT,
        "model": "gpt-oss-120b",
        "tp": 1,
        "weight_dtype": "mxfp4",
        "concurrency": 256,
        "engine": "sglang",
    },
    "trtllm-reserve": {**_SHORT, "engine": "trtllm"},
    "trtllm-partial-reserve": {
        **_SHORT,
        "engine": engine_preset("trtllm", _H100).replace(reserve_output_frac=0.4),
    },
    "sglang-ratio-retract": {**_SHORT, "engine": "sglang"},
    "sglang-0.4-ignore-eos": {**_SHORT, "engine": _harness("sglang", "sglang-0.4")},
    "sglang-release-after-launch": {
        **_SHORT,
        "engine": "sglang",
        "overlap_scheduler": True,
        "release_after_launch": True,
        "concurrency": 96,
        "output_tokens": 3000,
    },
    "sglang-poisson-spread": {
        **_SHORT,
        "engine": "sglang",
        "concurrency": None,
        "requests_per_client": None,
        "warmup_requests": None,
        "request_rate": 2.0,
        "requests": 150,
        "output_tokens": 2048,
        "input_spread": 0.3,
        "output_spread": 0.3,
    },
    "dense-dp2-gamma": {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "dp": 2,
        "weight_dtype": "fp8",
        "request_rate": 30.0,
        "requests": 300,
        "burstiness_cv": 2.0,
        "input_tokens": 1000,
        "output_tokens": 800,
        "output_spread": 0.5,
    },
    "moe-attention-dp-lockstep": {
        "model": "qwen3-30b-a3b",
        "hardware": "h100-sxm",
        "ep": 4,
        "dp": 4,
        "weight_dtype": "fp8",
        "concurrency": 64,
        "input_tokens": 1000,
        "output_tokens": 500,
        "requests_per_client": 3,
        "warmup_requests": 1,
        "engine": "sglang",
        "output_spread": 0.3,
    },
    "disaggregated-preempt": {
        **_SHORT,
        "tp": None,
        "input_tokens": 2000,
        "output_tokens": 3000,
        "concurrency": 96,
        "disaggregated": True,
        "prefill_tp": 2,
        "decode_tp": 2,
        "prefill_workers": 1,
        "decode_workers": 1,
    },
    "disaggregated-poisson-attention-dp": {
        "model": "qwen3-30b-a3b",
        "hardware": "h100-sxm",
        "weight_dtype": "fp8",
        "request_rate": 10.0,
        "requests": 120,
        "input_tokens": 2000,
        "output_tokens": 1000,
        "output_spread": 0.3,
        "disaggregated": True,
        "engine": "sglang",
        "prefill_tp": 1,
        "decode_ep": 4,
        "decode_dp": 4,
        "prefill_workers": 1,
        "decode_workers": 1,
    },
}


def _simulate(kwargs: dict[str, Any], runs: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """The simulation with or without runs, and how many plans it made."""
    plans = 0
    plan = Replica.plan

    def counted(self: Replica, req: Any, now: float) -> None:
        nonlocal plans
        plans += 1
        plan(self, req, now)

    with monkeypatch.context() as m:
        m.setattr(_scheduler, "DECODE_RUNS", runs)
        m.setattr(Replica, "plan", counted)
        args = {k: v for k, v in kwargs.items() if v is not None}
        return genmodel.simulate(args.pop("model"), args.pop("hardware"), records=True, **args), plans


def _flat(x: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(x, list | tuple):
        for i, v in enumerate(x):
            yield from _flat(v, f"{path}[{i}]")
    else:
        yield path, x


def _assert_same(got: Any, want: Any) -> None:
    a, b = got.to_dict(), want.to_dict()
    for d in (a, b):
        d.pop("elapsed_s")
    fa, fb = dict(_flat(a)), dict(_flat(b))
    assert fa.keys() == fb.keys()
    for key, x in fa.items():
        y = fb[key]
        if isinstance(x, float) and not (math.isnan(x) and math.isnan(y)):
            assert x == pytest.approx(y, rel=REL, abs=0.0), key
        elif not isinstance(x, float):
            assert x == y, key
    assert (got.kv_refusals, got.steps, got.preemptions) == (want.kv_refusals, want.steps, want.preemptions)
    for name in ("arrival_s", "scheduled_s", "first_token_s", "finish_s", "prefill_end_s", "kv_arrival_s"):
        x, y = getattr(got.records, name), getattr(want.records, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=REL, atol=0.0, equal_nan=True, err_msg=name)
    for name in ("replica", "preemptions", "decode_replica"):
        x, y = getattr(got.records, name), getattr(want.records, name)
        assert (x is None and y is None) or np.array_equal(x, y, equal_nan=True), name


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_decode_runs_give_the_step_by_step_simulation(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, plans = _simulate(CASES[case], True, monkeypatch)
    steps, every = _simulate(CASES[case], False, monkeypatch)
    _assert_same(runs, steps)
    # the runs skipped plans (each replica plans every step it takes part in, step by step)
    assert plans < every
    if case.startswith(("vllm-preempt", "sglang-ratio", "disaggregated-preempt")):
        assert runs.preemptions > 0  # the deployment is KV-short: the test covers the overflow


def test_a_kv_short_sglang_queue_runs_its_decode_steps_together(monkeypatch: pytest.MonkeyPatch) -> None:
    # clients always wait behind a full pool while SGLang's ratio decays: each step's plan refuses
    # the queue's head; the runs stop only where the falling ratio admits it (they used to take
    # every such step alone)
    kwargs = {**_SHORT, "engine": "sglang", "concurrency": 256, "requests_per_client": 1}
    runs, plans = _simulate(kwargs, True, monkeypatch)
    assert runs.kv_refusals > runs.steps / 2 and plans < runs.steps / 10 and runs.preemptions > 0


def test_a_plan_held_back_after_a_preemption_starts_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # vLLM admits no one in the step after a preemption; where its test would have refused the
    # queue's head anyway, that step begins a run of decode steps (refused_after) rather than
    # taking a plan of its own: fewer plans, the same simulation, to the last bit
    runs, plans = _simulate(CASES["vllm-preempt-prefix-cache"], True, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(_scheduler, "refused_after", lambda *_: False)
        alone, alone_plans = _simulate(CASES["vllm-preempt-prefix-cache"], True, monkeypatch)
    assert runs.preemptions > 100 and plans < alone_plans - runs.preemptions / 2
    _assert_same(runs, alone)
    for name in ("first_token_s", "finish_s"):
        assert np.array_equal(getattr(runs.records, name), getattr(alone.records, name), equal_nan=True)


@pytest.mark.parametrize(("outputs", "capacity"), [(4000, 24_000), (4500, 24_000), (4500, 25_000)])
def test_a_ratio_run_stops_where_a_plan_would_admit(outputs: int, capacity: int) -> None:
    # the vectorised test (refused_for) against the scalar one (sglang_fits) plan by plan; with
    # 4,500-token outputs, four sequences come within the clip (4,096) of completion in the run
    from genmodel._newtokens import refused_for, sglang_fits

    engine = engine_preset("sglang", _H100).replace(release_after_launch=False)  # (no table)
    r = Replica(0, engine, table=None, capacity_tokens=capacity)  # type: ignore[arg-type]
    out = np.array([4000] * 4 + [outputs] * 4 + [4000] * 4)
    req = _scheduler.Requests(np.array([1000] * 12), out, cached_tokens=0)
    for rid in range(8):  # eight sequences decoding, 1,000 tokens in, 200 out so far
        req.past0[rid], req.todo[rid] = 1000, 0
        req.g0[rid] = 0
        r.running += 1
        r.n_dec += 1
        r.past_sum += 1000
        r._started(req, rid, int(req.past0[rid]))
    r.g = 200
    r.past_sum += 8 * 200
    r.waiting.extend([8, 9])
    assert r.sglang is not None
    r.sglang.ratio = 0.7
    r.sglang.advance(req.version, r.g)
    assert not sglang_fits(r, req, 8)
    crossings = sorted(at for at, _, _ in r.sglang.crossing)
    k = refused_for(r, req, 3000)
    assert 1 < k < 3000  # the ratio's fall admits it within the run
    if outputs > 4096 + 200:
        assert crossings and crossings[0] < r.g + k  # (the tokens to go change slope within it)
    for j in range(1, k + 1):  # the plans of a step-by-step loop: refused until the k-th
        r.sglang.decayed(1)
        r.g += 1
        r.past_sum += r.n_dec
        assert sglang_fits(r, req, 8) == (j == k), j


@pytest.mark.parametrize(("capacity", "admitted"), [(31390, 4), (31360, 34), (31300, 94), (28700, 3394)])
def test_an_ignore_eos_run_stops_where_a_plan_would_admit(capacity: int, admitted: int) -> None:
    # SGLang 0.4's fit to completion, vectorised over a run in windows of 32, 256, 2,048, ...
    # steps, against the scalar fit plan by plan: the running sequences' terms grow a token a step
    # before the new request's place in the order, so a refused request comes to fit mid-run
    from genmodel._newtokens import refused_for, sglang_fits

    engine = harness_engine(engine_preset("sglang", _H100), "sglang-0.4", concurrency=8, tp=2)
    engine = engine.replace(release_after_launch=False)  # (no table)
    assert engine.new_token_ratio is not None and engine.new_token_ratio.ignore_eos
    r = Replica(0, engine, table=None, capacity_tokens=capacity)  # type: ignore[arg-type]
    outputs = [3500, 3600, 3700, 3800, 3900, 4000]
    req = _scheduler.Requests(np.array([1000] * 8), np.array([*outputs, 3000, 3000]), cached_tokens=0)
    for rid in range(6):  # six sequences decoding, 100 tokens out so far
        req.past0[rid], req.todo[rid] = 1000, 0
        r.running += 1
        r.n_dec += 1
        r.past_sum += 1100
        r._started(req, rid, int(req.past0[rid]))
    r.g = 100
    r.waiting.extend([6, 7])
    assert r.sglang is not None
    r.sglang.ratio = r.sglang.rule.min_ratio
    assert not sglang_fits(r, req, 6)
    k = refused_for(r, req, 3399)  # (the first completion after 3,399 steps)
    assert k == admitted
    for j in range(1, k + 1):
        r.sglang.decayed(1)
        r.g += 1
        r.past_sum += r.n_dec
        assert sglang_fits(r, req, 6) == (j == k), j


def _kept_head(capacity: int, budget: int = 8, chunked: bool = True) -> tuple[Replica, Any]:
    """vLLM with four sequences decoding and a preempted one waiting whose 2,992 prompt tokens
    are still cached, with ``budget`` tokens a step (4 beside the decodes: its hits set its test)."""
    engine = engine_preset("vllm", _H100).replace(
        max_batched_tokens=budget, prefix_caching=True, chunked_prefill=chunked
    )
    r = Replica(0, engine, table=None, capacity_tokens=capacity)  # type: ignore[arg-type]
    req = _scheduler.Requests(np.array([1000] * 4 + [3000]), np.array([5000] * 5), cached_tokens=0)
    for rid in range(4):
        req.past0[rid], req.todo[rid], req.arrival_s[rid] = 1000, 0, 0.0
        r.running += 1
        r.n_dec += 1
        r.past_sum += 1000
        r._started(req, rid, int(req.past0[rid]))
    req.arrival_s[4] = 0.0
    r.kept[4] = r.kept_sum = 2992
    r.waiting.append(4)
    return r, req


def test_a_run_stops_before_eviction_changes_a_cached_heads_test() -> None:
    # the pool's growth evicts the waiting head's cached blocks, a block (16 tokens) at a time
    # while the pool grows 4 a step: once what is left cached and its 4-token chunk fit, a plan
    # admits it; a run from any refused plan stops before (it used to run on to the next completion)
    r, req = _kept_head(capacity=7032)
    first_admit, stops = None, []
    for step in range(400):
        r.plan(req, float(step))
        if r.chunks:
            first_admit = step
            break
        assert r.refused
        stops.append(step + r.steps_to_event(req))
        r.commit(req, float(step + 1), 1.0, lambda rid, now: None)
    assert first_admit == 3 and stops == [3, 3, 3]  # refused, runs of 3, 2 and 1 steps, admitted
    assert req.done[4] == 2976  # with a block fewer cached: evicted while it waited


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("capacity", [7000, 7032, 7100, 7300])
@pytest.mark.parametrize("budget", [8, 40, 90])
def test_no_run_skips_a_plan_that_would_differ(capacity: int, budget: int, chunked: bool) -> None:
    # step by step, every plan's outcome (admitted, refused by the pool, or left waiting for a
    # chunk); a run from any plan covers only plans with its outcome (unchunked, a head whose hits
    # fall can go from waiting for room in the budget to taking its prompt whole)
    r, req = _kept_head(capacity, budget, chunked)
    outcomes, stops = [], []
    for step in range(300):
        r.plan(req, float(step))
        outcomes.append("admitted" if r.chunks else "refused" if r.refused else "waits")
        if r.chunks:
            break
        stops.append(step + r.steps_to_event(req))
        r.commit(req, float(step + 1), 1.0, lambda rid, now: None)
    for step, stop in enumerate(stops):
        assert set(outcomes[step:stop]) == {outcomes[step]}, (step, stop, outcomes[step : stop + 1])


#: columns that tell apart what a simulated case exercises: its mode (closed loop or Poisson/gamma
#: arrivals), engine (vLLM on-demand, SGLang ratio admission, TensorRT-LLM reservation), the
#: harness's configuration of it, and spread lengths
_KINDS = ("mode", "engine", "engine_config")
#: columns that do not change a case's simulation (cases that differ only in them share one)
_NOT_SIMULATED = ("id", "category", "metric", "measured", "source_id", "notes")


def _representative_cases(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The bundled serving cases of each kind (:data:`_KINDS`, spread or not) at its first and
    its most clients or highest rate (the likeliest to be KV-short), every metric of those deployments, as a
    cases CSV and its run options' CSV in ``tmp_path``."""
    with public_cases_path().open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def deployment(r: dict[str, str]) -> tuple[str, ...]:
        return tuple(v for k, v in r.items() if k not in _NOT_SIMULATED)

    kinds: dict[tuple[object, ...], list[dict[str, str]]] = {}
    for r in rows:
        if r["mode"] != "static":  # (a static batch has no scheduler)
            kind = (*(r[k] for k in _KINDS), bool(r["input_spread"] or r["output_spread"]))
            kinds.setdefault(kind, []).append(r)
    chosen = set()
    for group in kinds.values():
        most = max(group, key=lambda r: float(r["batch"] or r["request_rate"]))  # clients or rate
        chosen |= {deployment(group[0]), deployment(most)}
    picked = [r for r in rows if r["mode"] != "static" and deployment(r) in chosen]
    cases = tmp_path / "cases.csv"
    with cases.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    ids = {r["id"] for r in picked}
    with public_options_path().open(newline="", encoding="utf-8") as f:
        options = list(csv.DictReader(f))
    options_path = tmp_path / "options.csv"
    with options_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(options[0]))
        writer.writeheader()
        writer.writerows(o for o in options if o["id"] in ids)
    return cases, options_path, sorted({"/".join(map(str, k)) for k in kinds})


@pytest.mark.slow
def test_validate_gives_the_step_by_step_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the serving cases of every kind the bundled validation has (9: each engine and harness
    # configuration, closed loop and request rate, with and without spread lengths), at their
    # first and their most clients or highest rate: 34 rows of 16 deployments, about 11 s where
    # the whole report (236 rows, 77 static) took 77 s on the same loaded machine; the report is
    # the same either way (static rows have no scheduler to differ)
    cases, options, kinds = _representative_cases(tmp_path)
    assert len(kinds) >= 9 and any(k.startswith("rate/") for k in kinds), kinds
    plan = Replica.plan
    plans = {True: 0, False: 0}
    reports = {}
    for runs in (True, False):

        def counted(self: Replica, req: Any, now: float, runs: bool = runs) -> None:
            plans[runs] += 1
            plan(self, req, now)

        with monkeypatch.context() as m:
            m.setattr(_scheduler, "DECODE_RUNS", runs)
            m.setattr(Replica, "plan", counted)
            reports[runs] = genmodel.validate(cases, options_path=options).to_dict()
    assert not reports[True]["skipped"] and len(reports[True]["cases"]) >= 20
    assert plans[True] < plans[False]  # the runs did skip plans: the comparison is not of one path
    fa, fb = dict(_flat(reports[True])), dict(_flat(reports[False]))
    assert fa.keys() == fb.keys()
    for key, x in fa.items():
        if isinstance(x, float) and not (math.isnan(x) and math.isnan(fb[key])):
            assert x == pytest.approx(fb[key], rel=REL, abs=0.0), key
        elif not isinstance(x, float):
            assert x == fb[key], key


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("capacity", [7000, 7032, 7100, 7300, 9000])
@pytest.mark.parametrize("budget", [8, 40, 90, 4000])
def test_a_held_back_plan_tests_the_head_as_the_plan_that_tests_it(
    capacity: int, budget: int, chunked: bool
) -> None:
    # the plan after a preemption admits no one; refused_after says whether it would have refused
    # the head: the same pool, the same head, as the plan of an identical replica that tests it
    held, req = _kept_head(capacity, budget, chunked)
    held.preempted = True
    held.plan(req, 0.0)
    free, req_free = _kept_head(capacity, budget, chunked)
    free.plan(req_free, 0.0)
    assert not held.chunks
    assert held.tested == free.refused and held.held_back == (not free.refused)


@pytest.mark.parametrize("chunked", [True, False])
def test_a_cached_heads_run_settled_at_its_ends_as_by_every_plan(
    chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # refused_for answers from plans 1 and steps - 1 where they decide it (_settled), else plan by
    # plan: the same answer as plan by plan, over pools where eviction reaches the head's blocks
    from genmodel import _preemption
    from genmodel._preemption import CacheSeen, refused_for

    answers, settled, tried = set(), 0, 0
    for capacity in range(6900, 7400, 7):
        for budget in (8, 40, 90, 3000):
            r, req = _kept_head(capacity, budget, chunked)
            seen = CacheSeen.of(r, 4, budget)
            for steps in (2, 3, 10, 40, 200):
                got = refused_for(r, req, seen, steps)
                settled += _preemption._settled(r, req, seen, steps) is not None
                tried += 1
                with monkeypatch.context() as m:
                    m.setattr(_preemption, "_settled", lambda *_: None)
                    assert got == refused_for(r, req, seen, steps), (capacity, budget, steps)
                answers.add("first" if got == 1 else "none" if got == steps else "between")
    assert {"first", "none"} <= answers and 0 < settled < tried  # (both ways answered)
    assert chunked or "between" in answers
