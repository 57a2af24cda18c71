"""The closed form's decode phase: the prompts it shares its steps with, and padded CUDA graphs.

Laws checked (genmodel._interleave): at a fixed number of clients the closed form's TPOT rises with
the prompt length as the simulation's does, and stays near it where a lone prefill per request did
not (many short prompts, long prompts in mixed steps); a mixed step saves at most what its two
parts cost apart, nothing where no other request decodes, and an engine that does not mix saves
nothing; a graphed decode batch costs the captured size it is padded to (GEMMs over the padded rows,
attention over the real sequences), never less than the batch itself. A plan search's savings, each
operator's made once for the layouts that share it, and its padded grids are the same bits as
each layout's own.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genmodel import Plan
from genmodel._enginepresets import engine_preset
from genmodel._evaluate import StepCache, reusing_steps
from genmodel._interleave import (
    MixedSteps,
    decode_steps,
    group_terms,
    interleaved_prefill_s,
    mixed_saving_s,
    prompt_ops,
)
from genmodel._options import RunOptions
from genmodel._phases import decode_pass, mean_decode_context, prefill_pass
from genmodel._serving import estimate_serving
from genmodel._servingmodel import REQUESTS_PER_CLIENT, WARMUP_REQUESTS, serving_model
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

#: the simulation's default benchmark client
CLIENT = BenchmarkClient(requests_per_client=REQUESTS_PER_CLIENT, warmup_requests=WARMUP_REQUESTS)
MODEL = load_model("llama-3.1-8b")
H100 = load_hardware("h100-sxm")
#: the agreement grid's deployment: an H100 with 100x its memory (no KV limit)
UNLIMITED = H100.with_device(
    dataclasses.replace(H100.device, memory_capacity_bytes=H100.device.memory_capacity_bytes * 100)
)


def _tpots(engine: str, clients: int, prompts: tuple[int, ...]) -> tuple[list[float], list[float]]:
    """(simulated, closed-form) mean TPOT at ``clients`` clients for each prompt length."""
    sim = serving_model("simulated", engine=engine_preset(engine, UNLIMITED.device))
    closed = serving_model("closed-form", engine=engine_preset(engine, UNLIMITED.device))
    simulated, closed_form = [], []
    for isl in prompts:
        kw = {"concurrency": clients, "input_tokens": isl, "output_tokens": 256}
        simulated.append(sim.estimate(MODEL, UNLIMITED, Plan(), Precision(), **kw).tpot_s)
        closed_form.append(closed.estimate(MODEL, UNLIMITED, Plan(), Precision(), **kw).tpot_s)
    return simulated, closed_form


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_tpot_rises_with_the_prompt_as_the_simulations_does(engine: str) -> None:
    """64 clients, prompts of 128 to 8192 tokens: the simulation's TPOT rises with the prompt (the
    decode phase shares more prefill work), and so does the closed form's, within 15 % of it. A lone
    prefill per request in the decode's time line (the closed form before the term) was 1.15x at
    128 tokens (three engines) and 1.25x at 8192 (vLLM)."""
    prompts = (128, 512, 2048, 8192)
    simulated, closed_form = _tpots(engine, 64, prompts)
    assert np.all(np.diff(simulated) > 0), simulated
    assert np.all(np.diff(closed_form) > 0), closed_form
    ratios = np.array(closed_form) / np.array(simulated)
    assert np.all((ratios > 0.9) & (ratios < 1.15)), ratios


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_many_short_prompts_share_their_steps(engine: str) -> None:
    """256 clients of 128-token prompts: the prompts come back in groups a step holds (and, mixed,
    ride in decode steps), so each costs the decode phase a fraction of a lone prefill; the closed
    form's TPOT is within 5 % of the simulation's (1.31-1.43x with a lone prefill each)."""
    simulated, closed_form = _tpots(engine, 256, (128,))
    assert closed_form[0] == pytest.approx(simulated[0], rel=0.05)


def _lone(batch: float, input_tokens: int) -> tuple[Wave, float, float, tuple]:
    """vLLM's wave, one prompt's prefill, the step of m prompts and the mixed-step inputs at ``batch``."""
    wave = Wave.of(engine_preset("vllm", H100.device), CLIENT)
    p = float(
        prefill_pass(MODEL, H100, Plan(), Precision(), num_seqs=1.0, input_tokens=input_tokens)[0].time_s
    )
    m, group = group_terms(MODEL, H100, Plan(), Precision(), wave, input_tokens, RunOptions())
    decode = decode_pass(
        MODEL, H100, Plan(), Precision(), num_seqs=batch, past_tokens=mean_decode_context(input_tokens, 256)
    )
    full = p if m == 1 else float(group.time_s)
    return wave, p, full, (decode, prompt_ops(group, m), None)


@pytest.mark.parametrize(("batch", "input_tokens"), [(32.0, 512), (200.0, 128), (60.0, 8192), (400.0, 2048)])
def test_a_mixed_step_saves_at_most_what_its_parts_cost_apart(batch: float, input_tokens: int) -> None:
    wave, p, full, mixed = _lone(batch, input_tokens)
    decode = mixed[0]
    g = min(batch, wave.prompts_per_step(input_tokens))
    saved = float(mixed_saving_s(decode, mixed[1], g)[0])
    group_s = float(group_terms(MODEL, H100, Plan(), Precision(), wave, input_tokens, RunOptions())[1].time_s)
    group_s = group_s * g / wave.prompts_per_step(input_tokens)  # (g of the m prompts' compute)
    assert 0 < saved <= min(float(decode.time_s), max(group_s, p)) + 1e-12
    shared = interleaved_prefill_s(wave, batch, input_tokens, p, full, mixed)
    apart = interleaved_prefill_s(wave, batch, input_tokens, p, full, None)
    assert 0 <= shared < apart <= p  # a group's step costs each prompt at most a lone prefill
    # an engine that does not mix runs the group's prefill step between decode steps: no saving
    prefill_first = dataclasses.replace(wave, mixed=False)
    assert interleaved_prefill_s(prefill_first, batch, input_tokens, p, full, mixed) == apart


def test_a_lone_group_finds_no_one_decoding() -> None:
    """N <= m: the clients' prompts are one group, which decodes, finishes and comes back together,
    so its step holds no other request's decode: nothing saved, a step of the group per request."""
    wave, p, full, mixed = _lone(8.0, 512)  # m = 16 prompts of 512 tokens in vLLM's budget
    assert wave.prompts_per_step(512) >= 8
    assert interleaved_prefill_s(wave, 8.0, 512, p, full, mixed) == interleaved_prefill_s(
        wave, 8.0, 512, p, full, None
    )


def _step_at(seqs: object, scale: object) -> object:
    return decode_pass(MODEL, H100, Plan(), Precision(), num_seqs=seqs, past_tokens=1000.0 * scale)


def test_a_graphed_decode_batch_costs_the_captured_size_it_is_padded_to() -> None:
    pads = (1, 2, 4, 8, 16, 24, 32)
    time_s, _ = decode_steps(_step_at, 9.0, pads)
    padded = float(
        decode_pass(MODEL, H100, Plan(), Precision(), num_seqs=16.0, past_tokens=1000.0 * 9 / 16).time_s
    )
    plain = float(decode_pass(MODEL, H100, Plan(), Precision(), num_seqs=9.0, past_tokens=1000.0).time_s)
    assert float(time_s) == pytest.approx(padded, rel=1e-12)
    assert float(time_s) > plain  # the padded rows' GEMMs and LM head, the real sequences' attention
    # a captured size, and a batch beyond the largest, run as they are; no padding, no change
    for batch in (16.0, 40.0):
        t, _ = decode_steps(_step_at, batch, pads)
        assert float(t) == pytest.approx(float(_step_at(batch, 1.0).time_s), rel=1e-12)
    assert float(decode_steps(_step_at, 9.0, ())[0]) == pytest.approx(plain, rel=1e-12)
    # a mean batch between two whole ones: the line between their padded steps
    t_mid, _ = decode_steps(_step_at, 15.5, pads)
    t_15, _ = decode_steps(_step_at, 15.0, pads)
    t_16, _ = decode_steps(_step_at, 16.0, pads)
    assert float(t_mid) == pytest.approx((float(t_15) + float(t_16)) / 2, rel=1e-12)
    # arrays: each point as alone
    grid = np.array([1.0, 3.0, 9.0, 16.0, 33.0])
    times, _ = decode_steps(_step_at, grid, pads)
    alone = [float(decode_steps(_step_at, b, pads)[0]) for b in grid]
    np.testing.assert_allclose(times, alone, rtol=1e-12)


def test_the_closed_form_pads_a_graphed_decode_batch() -> None:
    """vLLM pads a graphed decode batch to a captured size; the same engine without the padding
    runs the batch as it is: the closed form's bare decode step (TPOT at one client is the step)
    rises to the padded batch's cost, and the padding-free engine's is the plain step."""
    engine = engine_preset("vllm", H100.device)
    flat = dataclasses.replace(engine, graph_pad_sizes=())
    kw = {"concurrency": 3, "input_tokens": 512, "output_tokens": 64}
    waves = [Wave.of(e, CLIENT) for e in (engine, flat)]
    padded, plain = (estimate_serving(MODEL, H100, Plan(), Precision(), wave=w, **kw) for w in waves)
    assert padded.tpot_s > plain.tpot_s


def test_a_search_s_mixed_steps_are_each_layout_s_own_bits() -> None:
    """The layouts of one tp share their decode step's operators but the routed experts: the
    search's MixedSteps makes each operator's saving once (the experts per layout) and gives D
    equal to the bit to the plain computation of each layout (over the whole grid and over some
    of its points, as the search takes them for layouts that differ in ep), and the padded steps
    of a shared read-only grid are those of a fresh copy of it."""
    model, hw = load_model("deepseek-v3"), load_hardware("h200-sxm")  # (11 operators shared: summed pairwise)
    wave = Wave.of(engine_preset("vllm", hw.device), CLIENT)
    isl, cache, steps = 4096, StepCache(), MixedSteps()
    grid = np.arange(1.0, 1025.0)
    grid.flags.writeable = False  # (a search's shared grid)
    past = mean_decode_context(isl, 256)
    pads = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    at = np.flatnonzero(grid % 7 != 0)
    for plan in (Plan(tp=8, ep=8), Plan(tp=8, ep=16, dp=2), Plan(tp=8, ep=32, dp=4)):

        def step_at(seqs: object, scale: object, plan: Plan = plan) -> object:
            return decode_pass(model, hw, plan, Precision(), num_seqs=seqs, past_tokens=past * scale)

        with reusing_steps(cache):
            step_s, decode = decode_steps(step_at, grid, pads)
            m, group = group_terms(model, hw, plan, Precision(), wave, isl, RunOptions())
            prompt = prompt_ops(group, m, steps.seen)
        fresh_s, _ = decode_steps(step_at, grid.copy(), pads)
        assert step_s.tobytes() == fresh_s.tobytes()
        alone = prompt_ops(group, m)  # (the prefill operators' figures made again)
        assert prompt[0] == alone[0]
        assert all(a.tobytes() == b.tobytes() for a, b in zip(prompt[1:], alone[1:], strict=True))
        p, full = 0.5 * float(group.time_s) / m, float(group.time_s)
        for points in (None, at):
            batch = grid if points is None else grid[points]
            plain = interleaved_prefill_s(wave, batch, isl, p, full, (decode, prompt, points))
            shared = interleaved_prefill_s(wave, batch, isl, p, full, (decode, prompt, points), steps)
            assert shared.tobytes() == plain.tobytes()
            over = batch > m  # (where the saving counts: g = m)
            g = np.minimum(np.maximum(batch, 1.0), m)
            saved = steps.saving_s(decode, prompt, m, points)[over]
            assert saved.tobytes() == mixed_saving_s(decode, prompt, g, points)[over].tobytes()
            assert np.any(batch > m) and np.any(shared < interleaved_prefill_s(wave, batch, isl, p, full))


def test_a_decode_step_s_shape_is_read_from_its_terms() -> None:
    """The shape MixedSteps reads from a step's terms is that of the step's time (arrays of the
    batch grid, plain numbers, and a mix of both with one array of another shape)."""
    from genmodel._interleave import _time_shape

    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    for seqs in (np.arange(1.0, 9.0), 4.0, np.array([3.0])):
        terms = decode_pass(model, hw, Plan(tp=2), Precision(), num_seqs=seqs, past_tokens=900.0)
        assert _time_shape(terms) == np.shape(terms.time_s)
    odd = dataclasses.replace(terms, comm_s=np.zeros((2, 1)))  # (broadcast with the others: time_s's shape)
    assert _time_shape(odd) == np.shape(odd.time_s) == (2, 1)
