"""The overlap scheduler (TensorRT-LLM's PyTorch backend): a step's batch is chosen while the step
before it runs, so an arrival waits for the step under way as well (Engine.overlap_scheduler).

Laws checked, each with the mechanism alone (the same engine with and without it): a request
that arrives while another decodes gets its first token one decode step later; a request into an
empty engine is not delayed; the closed form's term is the next group's step when the clients
come back in groups while others run, nothing for a lone group, and what the wave adds grows by
exactly that term, which keeps the closed form with the simulation on a grid where it is off
without it; the TensorRT-LLM preset has it, vLLM's and SGLang's do not.

When a step's tokens leave (Engine.release_after_launch) and the client's reply
(Engine.reply_latency_s): tokens of a step followed by an eager prompt step leave that step's host
launch time late, and the fetch after the launch finds a request that arrived during it; a lone
client is not delayed by the rule; a reply latency is in a lone client's TTFT once and in its
cycle once per request after the first; a reply that misses the fetch waits a step more; both
knobs are keywords of genmodel.simulate and flags of ``genmodel simulate`` (a bad time is one red line);
the closed form's terms for them move TTFT, TPOT and the rate as the simulation does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import Plan
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine, eager_block_kernels
from genmodel._servingmodel import serving_model
from genmodel._wave import BenchmarkClient, Wave, group_step_s, overlap_wait_s, wave_extra_s
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

MODEL, HW = "llama-3.1-8b", "h100-sxm"
ENGINE = engine_preset("trtllm")


def _records(overlap: bool, trace: tuple[tuple[float, int, int], ...]) -> genmodel.SimulationResult:
    return genmodel.simulate(MODEL, HW, trace=trace, engine=ENGINE, overlap_scheduler=overlap, records=True)


def test_an_arrival_during_a_decode_waits_one_more_step() -> None:
    """A decodes alone; B arrives mid-run: with overlap its prompt runs one step later, so its
    TTFT grows by one of A's lone decode steps (and nothing else changes for it)."""
    trace = ((0.0, 512, 400), (0.5, 512, 8))
    plain, overlap = _records(False, trace), _records(True, trace)
    assert plain.records is not None and overlap.records is not None
    ttft = [r.first_token_s[1] - r.arrival_s[1] for r in (plain.records, overlap.records)]
    # A's lone decode step: the gap between its tokens before B came (decode-only steps)
    a = genmodel.simulate(MODEL, HW, trace=trace[:1], engine=ENGINE, overlap_scheduler=False)
    step = a.tpot_s.mean
    assert ttft[1] - ttft[0] == pytest.approx(step, rel=0.05)
    assert plain.records.first_token_s[0] == overlap.records.first_token_s[0]  # A was alone


def test_an_empty_engine_admits_at_once() -> None:
    trace = ((0.0, 1024, 16), (5.0, 1024, 16))  # the second comes long after the first finished
    plain, overlap = _records(False, trace), _records(True, trace)
    assert overlap.ttft_s.mean == pytest.approx(plain.ttft_s.mean, rel=1e-12)
    one = [
        genmodel.simulate(
            MODEL, HW, concurrency=1, input_tokens=1024, output_tokens=64, engine=ENGINE, overlap_scheduler=o
        ).ttft_s.mean
        for o in (False, True)
    ]
    assert one[1] == pytest.approx(one[0], rel=1e-12)


def test_clients_coming_back_in_groups_wait_for_the_step_of_the_group_ahead() -> None:
    client = BenchmarkClient(requests_per_client=12, warmup_requests=2, restart_after_warmup=False)
    wave = Wave(budget_tokens=2048, mixed=True, client=client, overlap=True)
    step = {"input_tokens": 1024, "prefill_s": 0.03, "full_step_s": 0.05}  # m = 2 prompts a step
    assert overlap_wait_s(wave, 2.0, **step) == 0  # a lone group comes back to an empty engine
    # 2 groups: the second waits for the first's step (1 prompt), the first for nothing
    assert overlap_wait_s(wave, 3.0, **step) == pytest.approx(group_step_s(1.0, 0.03, 0.05, 2) / 2)
    # 8 groups of 2: all but the first wait for a step of 2 prompts
    assert overlap_wait_s(wave, 16.0, **step) == pytest.approx(0.05 * 7 / 8)
    # that step is their queue: a steady state that already waits longer adds nothing to it
    assert overlap_wait_s(wave, 16.0, **step, wait_s=0.06) == 0
    assert overlap_wait_s(wave, 16.0, **step, wait_s=0.02, step_wait_s=0.008) == pytest.approx(
        0.05 * 7 / 8 + 0.001 - 0.02
    )
    plain = dataclasses.replace(wave, overlap=False)
    assert overlap_wait_s(plain, 16.0, **step) == 0
    for clients in (1.0, 3.0, 16.0):
        added = wave_extra_s(wave, clients, steady_ttft_s=0.03, **step) - wave_extra_s(
            plain, clients, steady_ttft_s=0.03, **step
        )
        assert added == pytest.approx(overlap_wait_s(wave, clients, **step), abs=1e-15)


def test_the_trtllm_and_sglang_presets_overlap_and_vllms_does_not() -> None:
    assert engine_preset("trtllm").overlap_scheduler
    assert "overlap_scheduler" in engine_preset("trtllm").source
    assert engine_preset("sglang").overlap_scheduler  # event_loop_overlap, on by default in 0.5
    assert "disable_overlap_schedule" in engine_preset("sglang").source
    assert not engine_preset("vllm").overlap_scheduler
    assert Wave.of(engine_preset("trtllm"), BenchmarkClient(requests_per_client=4, warmup_requests=0)).overlap


def test_the_closed_form_follows_the_simulated_overlap() -> None:
    """Llama-3.1-8B on an H100 with 100x its memory, TensorRT-LLM's preset (overlap on), the
    benchmark client: the closed form with the overlap term follows the simulation; the closed
    form without it (the same wave, overlap off) does not."""
    model = load_model("llama-3.1-8b")
    hw = load_hardware("h100-sxm")
    hw = hw.with_device(
        dataclasses.replace(hw.device, memory_capacity_bytes=hw.device.memory_capacity_bytes * 100)
    )
    engine = engine_preset("trtllm", hw.device)
    sim = serving_model("simulated", engine=engine)
    closed = serving_model("closed-form", engine=engine)
    without = serving_model("closed-form", engine=engine.replace(overlap_scheduler=False))
    ratios, without_ratios = [], []
    for isl, clients in ((128, 16), (128, 256), (1024, 64), (2048, 4), (2048, 64), (8192, 16)):
        kw = {"concurrency": clients, "input_tokens": isl, "output_tokens": 128}
        s = sim.estimate(model, hw, Plan(), Precision(), **kw).ttft_s
        ratios.append(closed.estimate(model, hw, Plan(), Precision(), **kw).ttft_s / s)
        without_ratios.append(without.estimate(model, hw, Plan(), Precision(), **kw).ttft_s / s)
    logs, without_logs = np.abs(np.log(ratios)), np.abs(np.log(without_ratios))
    assert np.median(logs) <= 0.15, ratios
    assert np.all(logs <= math.log(1.5)), ratios
    assert np.median(without_logs) > 0.15, without_ratios  # the test can fail


# ---- when a step's tokens leave the engine (Engine.release_after_launch) and the client's reply ----

REL = ENGINE.replace(release_after_launch=True)
NO_REL = ENGINE.replace(release_after_launch=False)


def _eager_host_s(engine: Engine = ENGINE) -> float:
    """The host launch time of one eager step of ``engine`` (its own block count), for the
    deployment ``genmodel.simulate`` builds."""
    from genmodel._hostcost import eager_host_s

    est = genmodel.estimate(MODEL, HW, input_tokens=512, output_tokens=8, batch=1)
    launch_s, blocks = engine.prefill_launch_s, eager_block_kernels(engine)
    return eager_host_s(load_model(MODEL), est.plan, est.precision, launch_s=launch_s, blocks=blocks)


def test_tokens_before_an_eager_step_leave_after_its_launch() -> None:
    """A and B start together in one prompt step; C arrives while the host still launches that
    (eager) step, so the fetch for the next step, which follows the launch, finds it: C's prompt
    runs in the second step, not the third as without the rule. That second step is eager too,
    so A's and B's first tokens leave its host launch time after the first step ended."""
    trace = ((0.0, 512, 64), (0.0, 512, 2), (1e-6, 512, 8))
    on = genmodel.simulate(MODEL, HW, trace=trace, engine=REL, records=True).records
    off = genmodel.simulate(MODEL, HW, trace=trace, engine=NO_REL, records=True).records
    assert on is not None and off is not None
    host = _eager_host_s()
    assert host > 0
    for rid in (0, 1):  # the first step costs the same; only when its tokens leave differs
        assert on.first_token_s[rid] - off.first_token_s[rid] == pytest.approx(host, rel=1e-9)
    assert on.first_token_s[2] < off.first_token_s[2]  # C made the fetch after the launch
    # without eager prompt steps (no host floor) the rule has nothing to delay
    graphed = [
        genmodel.simulate(MODEL, HW, trace=trace, engine=e.replace(prefill_launch_s=0.0)).e2e_s.mean
        for e in (REL, NO_REL)
    ]
    assert graphed[0] == graphed[1]


def test_a_lone_client_is_not_delayed_by_the_release_rule() -> None:
    """One closed-loop client: the step after its last token is its own next prompt, admitted
    once the reply is in, so no token waits for a launch."""
    kw = {"concurrency": 1, "input_tokens": 1024, "output_tokens": 32}
    on, off = (genmodel.simulate(MODEL, HW, engine=e, **kw) for e in (REL, NO_REL))
    assert on.ttft_s.mean == pytest.approx(off.ttft_s.mean, rel=1e-12)
    assert on.e2e_s.mean == pytest.approx(off.e2e_s.mean, rel=1e-12)


@pytest.mark.parametrize("name", ["trtllm", "vllm"])
def test_a_reply_latency_adds_to_a_lone_clients_ttft_and_cycle(name: str) -> None:
    """One client: the reply latency is in its TTFT once and delays each next request by as
    much, so the simulated time grows by it per request after the first; its decode is untouched."""
    kw = {"concurrency": 1, "input_tokens": 1024, "output_tokens": 32, "requests_per_client": 6}
    base = engine_preset(name)
    zero, late = (
        genmodel.simulate(MODEL, HW, engine=base.replace(reply_latency_s=r), **kw) for r in (0.0, 0.01)
    )
    assert late.ttft_s.mean - zero.ttft_s.mean == pytest.approx(0.01, rel=1e-6)
    assert late.tpot_s.mean == pytest.approx(zero.tpot_s.mean, rel=1e-12)
    assert late.simulated_s - zero.simulated_s == pytest.approx(0.01 * 5, rel=1e-6)


def test_a_reply_arriving_after_the_fetch_waits_a_step_more() -> None:
    """Two clients decoding together: with a reply latency the next request misses the fetch it
    made with none, so its TTFT grows by more than the latency itself (a step at least)."""
    kw = {"concurrency": 2, "input_tokens": 256, "output_tokens": 64}
    zero, late = (
        genmodel.simulate(MODEL, HW, engine=REL.replace(reply_latency_s=r), **kw) for r in (0.0, 0.002)
    )
    assert late.ttft_s.mean - zero.ttft_s.mean > 0.002


def test_the_release_and_reply_knobs() -> None:
    assert engine_preset("trtllm").release_after_launch and engine_preset("sglang").release_after_launch
    assert not engine_preset("vllm").release_after_launch
    assert all(engine_preset(n).reply_latency_s == 0 for n in ("vllm", "sglang", "trtllm"))
    assert "_handle_responses" in engine_preset("trtllm").source
    with pytest.raises(genmodel.SpecError):
        ENGINE.replace(reply_latency_s=-0.001)
    with pytest.raises(genmodel.SpecError):
        ENGINE.replace(reply_latency_s=math.inf)


def test_the_release_and_reply_keywords_are_the_engines_knobs() -> None:
    """simulate's release_after_launch= and reply_latency_s= override the preset's knobs, as
    Engine.replace does (the same run), and the JSON's engine says what ran."""
    kw = {"concurrency": 3, "input_tokens": 512, "output_tokens": 16, "requests_per_client": 3}
    by_keyword = genmodel.simulate(
        MODEL, HW, engine="trtllm", release_after_launch=False, reply_latency_s=0.004, **kw
    )
    by_engine = genmodel.simulate(MODEL, HW, engine=NO_REL.replace(reply_latency_s=0.004), **kw)
    assert by_keyword.ttft_s == by_engine.ttft_s and by_keyword.e2e_s == by_engine.e2e_s
    engine = by_keyword.to_dict()["engine"]
    assert (engine["release_after_launch"], engine["reply_latency_s"]) == (False, 0.004)
    preset = genmodel.simulate(MODEL, HW, engine="trtllm", **kw)
    assert preset.ttft_s.mean < by_keyword.ttft_s.mean  # (the keywords changed the run)
    with pytest.raises(genmodel.SpecError, match=re.escape("reply_latency_s=-0.001 must be >= 0 and finite")):
        genmodel.simulate(MODEL, HW, reply_latency_s=-0.001, **kw)


def test_the_release_and_reply_flags_reach_the_simulation() -> None:
    args = ["simulate", "--model", MODEL, "--hardware", HW, "--engine", "trtllm", "--concurrency", "1"]
    args += ["--input-tokens", "1024", "--output-tokens", "32", "--format", "json"]
    zero, late = (json.loads(cli_ok([*args, "--reply-latency", t])) for t in ("0ms", "10ms"))
    assert late["ttft_s"]["mean"] - zero["ttft_s"]["mean"] == pytest.approx(0.01, rel=1e-6)
    assert (zero["engine"]["reply_latency_s"], late["engine"]["reply_latency_s"]) == (0.0, 0.01)
    assert json.loads(cli_ok(args))["engine"]["release_after_launch"]  # the preset's
    off = json.loads(cli_ok([*args, "--no-release-after-launch"]))
    assert not off["engine"]["release_after_launch"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5ms", "reply_latency='-5ms' must be a time between 0 s and 86400 s"),
        ("5", "reply_latency='5' needs a unit: 5ms or 5s?"),
        ("2d", "reply_latency='2d' must be a time such as 50ms or 2s"),
    ],
)
def test_a_bad_reply_latency_is_one_red_line(value: str, message: str) -> None:
    args = ["simulate", "--model", MODEL, "--hardware", HW, "--concurrency", "1"]
    args += ["--input-tokens", "64", "--output-tokens", "8", "--reply-latency", value]
    assert message in cli_bad(args)


# ---- the closed form's terms for the two knobs, against the simulation ----


@pytest.mark.parametrize("name", ["trtllm", "sglang"])
@pytest.mark.parametrize(("clients", "prompt"), [(1, 1024), (8, 1024), (32, 1024), (64, 2048)])
def test_the_closed_form_delays_a_bursts_first_tokens_as_the_simulation(
    name: str, clients: int, prompt: int
) -> None:
    """Release after launch in both serving models: the first tokens of a burst's prompts but those
    of its last step wait for the next (eager) prompt step's launch, in every round of an engine
    that does not mix (SGLang) and in the one synchronised round of one that does (TensorRT-LLM).
    The closed form's TTFT moves as the simulation's: not at all for one client or a burst of one
    step (8 prompts of 1,024 tokens in a budget of 8,192), up by about as much otherwise."""
    base = engine_preset(name, load_hardware(HW).device)
    kw = {"concurrency": clients, "input_tokens": prompt, "output_tokens": 64}

    def delta(serving: str) -> float:
        on, off = (
            genmodel.estimate(MODEL, HW, serving=serving, engine=base.replace(release_after_launch=r), **kw)
            for r in (True, False)
        )
        # the decode is not delayed: the closed form's TPOT is its decode step's; the simulation's
        # runs from the first token, so a first token later by the TTFT's delta shortens it by
        # that over the 63 tokens after it, and no more
        later = (on.ttft_s - off.ttft_s) / (kw["output_tokens"] - 1) if serving == "simulated" else 0.0
        assert on.tpot_s == pytest.approx(off.tpot_s - later, rel=1e-2)
        return on.ttft_s - off.ttft_s

    closed, simulated = delta("closed-form"), delta("simulated")
    assert 0 <= closed <= _eager_host_s(base) * (1 + 1e-9)
    if clients <= 8:
        assert closed == 0 and simulated == pytest.approx(0, abs=1e-12)
    else:
        assert simulated > 0 and closed == pytest.approx(simulated, rel=0.3)


@pytest.mark.parametrize("name", ["trtllm", "sglang", "vllm"])
@pytest.mark.parametrize("clients", [1, 8])
def test_the_closed_form_counts_the_reply_as_the_simulation_does(name: str, clients: int) -> None:
    """The client's reply (reply_latency_s = Z) in both serving models: it is in each TTFT, and the
    clients are out of the engine that long (a think time), so the request rate falls and decoding
    is no slower; a lone client's TTFT grows by Z exactly in both."""
    base = engine_preset(name, load_hardware(HW).device)
    kw = {"concurrency": clients, "input_tokens": 1024, "output_tokens": 64}
    for serving in ("closed-form", "simulated"):
        zero, late = (
            genmodel.estimate(MODEL, HW, serving=serving, engine=base.replace(reply_latency_s=z), **kw)
            for z in (0.0, 0.005)
        )
        assert zero.serving is not None and late.serving is not None
        assert late.ttft_s > zero.ttft_s and late.tpot_s <= zero.tpot_s * (1 + 1e-12)
        assert late.serving.request_rate_per_s < zero.serving.request_rate_per_s
        assert late.serving.request_overhead_s == pytest.approx(zero.serving.request_overhead_s + 0.005)
        if clients == 1:
            assert late.ttft_s - zero.ttft_s == pytest.approx(0.005, rel=1e-6)
