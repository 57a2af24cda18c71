"""Clients started together against an on-demand KV pool (genmodel._instep): the closed
form against the serving simulation, and the plan search that prunes with it.

The cases are those where the two serving models were furthest apart (tools/serving_agreement.py
--random; docs/serving-simulation.md, *The closed form against the simulation*): outputs long
against the pool, which holds every client at its mean progress (prompt and half the output) but
not at its whole length."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genmodel
from genmodel import Plan
from genmodel._engines import engine_preset
from genmodel._instep import in_step_batch
from genmodel._servingmodel import serving_model
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

POOL, ISL, OSL = 456_192.0, 128, 8192  # Llama-3.1-8B bf16 on one H100: 108 sequences of 128 + 4,096


def test_the_in_step_batch_is_the_rounds_mean_of_what_the_pool_holds() -> None:
    # the mean over the round's O steps of min(N, C / (I + g)), summed step by step
    for clients in (40.0, 60.0, 96.0, 300.0):
        g = np.arange(OSL) + 0.5
        summed = np.minimum(clients, POOL / (ISL + g)).mean()
        assert in_step_batch(clients, POOL, ISL, OSL) == pytest.approx(summed, rel=1e-4)
    # a pool that holds every whole sequence runs them all; one that does not, fewer
    whole = POOL / (ISL + OSL)
    assert in_step_batch(whole, POOL, ISL, OSL) == pytest.approx(whole)
    assert in_step_batch(0.9 * whole, POOL, ISL, OSL) == pytest.approx(0.9 * whole)
    assert in_step_batch(1.2 * whole, POOL, ISL, OSL) < 1.2 * whole
    # increasing in the clients, and the same on arrays as on floats (the plan search's)
    clients = np.linspace(10.0, 600.0, 50)
    batches = in_step_batch(clients, POOL, ISL, OSL)
    assert (np.diff(batches) > 0).all()
    assert batches[17] == pytest.approx(in_step_batch(float(clients[17]), POOL, ISL, OSL))


def _both(engine: str, clients: int, **kw: object) -> tuple[genmodel.Estimate, genmodel.Estimate]:
    model = load_model("llama-3.1-8b")
    hw = load_hardware("h100-sxm")
    args = {"concurrency": clients, "input_tokens": ISL, "output_tokens": OSL}
    preset = engine_preset(engine, hw.device)
    sim = serving_model("simulated", engine=preset).estimate(model, hw, Plan(), Precision(), **args)
    closed = serving_model("closed-form", engine=preset).estimate(model, hw, Plan(), Precision(), **args)
    return sim, closed


@pytest.mark.parametrize(("engine", "clients"), [("vllm", 64), ("vllm", 96), ("sglang", 96)])
def test_clients_that_outgrow_the_pool_wait_for_it_in_both_serving_models(engine: str, clients: int) -> None:
    """Llama-3.1-8B bf16 on one H100, 128 in / 8,192 out, the engines' defaults: the pool holds 108
    sequences at their mean progress, 54 whole ones. The closed form took the clients as spread
    over their progress and found no wait for the pool: TTFT 0.19-0.21 s where the simulation, whose
    clients start together and grow together, gives 1.0 s (64 clients) and 7.4 s (vLLM, 96) or
    10 s (SGLang, 96): 5-50x apart. Now within 2x (0.93, 8.4, 8.4 s), both KV-limited."""
    sim, closed = _both(engine, clients)
    assert closed.serving is not None and sim.serving is not None
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(2.0), (closed.ttft_s, sim.ttft_s)
    assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.1), (closed.tpot_s, sim.tpot_s)
    assert closed.serving.kv_limited and sim.serving.kv_limited
    assert closed.serving.decode_batch < clients  # the round's mean running batch


def test_a_pool_that_holds_every_whole_sequence_leaves_the_closed_form_as_it_was() -> None:
    sim, closed = _both("vllm", 48)  # 48 whole sequences fit
    assert closed.serving is not None and not closed.serving.kv_limited
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.25), (closed.ttft_s, sim.ttft_s)


def test_the_plan_search_no_longer_picks_clients_the_pool_makes_wait() -> None:
    """The plan search prunes with the closed form and re-checks its best candidates by simulation.
    Llama-3.1-8B on one H100, 128 in / 8,192 out, TTFT <= 2 s, TPOT <= 50 ms, vLLM: the closed form
    ranked 108 clients first (TTFT 0.21 s), which the simulation gave 9.5 s; the re-check walked
    down through 7 simulations to 62 clients. Now its first candidate, 70 clients, has a closed-form
    TTFT of 1.99 s against 1.88 s simulated, meets the targets, and serves more tokens/s."""
    report = genmodel.plan(
        "llama-3.1-8b",
        "h100-sxm",
        devices=1,
        input_tokens=ISL,
        output_tokens=OSL,
        ttft_slo_s=2.0,
        tpot_slo_s=0.05,
    ).to_dict()
    first = report["rechecked"][0]
    assert first["meets_slo"], first
    assert abs(first["ttft_rel_diff"]) <= 0.25, first
    # the search's vectorised figures are the estimate's (at the candidate's whole clients)
    top = report["top"][0]
    assert first["concurrency"] == round(top["concurrency"])
    assert top["ttft_s"] == pytest.approx(first["closed_form_ttft_s"], rel=0.02)
    assert top["tpot_s"] == pytest.approx(first["closed_form_tpot_s"], rel=0.02)
