"""The closed loop's prefill queue: the wait of N clients' requests for the prefills before them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._harness import harness_engine
from genmodel._servingpoint import closed_wait_s, md1_wait_s, serving_at_batch, serving_point
from genmodel.io import load_hardware


def test_a_closed_loops_wait_is_none_for_one_client_and_m_d_1_for_many() -> None:
    assert closed_wait_s(0.9, 2.0, 1.0) == 0.0  # a lone client never waits for another's prefill
    # a few clients: their queue is bounded at any load, where the open stream's grows without end
    assert closed_wait_s(0.999, 2.0, 16.0) < 15 * 2.0 < md1_wait_s(0.999, 2.0)
    # more clients queue longer, and their wait tends to the M/D/1 wait (Pollaczek-Khinchine)
    waits = [closed_wait_s(0.9, 2.0, n) for n in (2.0, 4.0, 16.0, 256.0, 1e6)]
    assert waits == sorted(waits)
    assert waits[-1] == pytest.approx(md1_wait_s(0.9, 2.0), rel=1e-4)
    assert closed_wait_s(0.9, 2.0, math.inf) == md1_wait_s(0.9, 2.0)


def test_the_clients_a_batch_holds_are_the_points_own() -> None:
    """serving_at_batch finds the N whose point (serving_point at N) holds N clients, array-wise."""
    kw = {"prefill_s": 2.0, "step_s": 0.03, "output_tokens": 100, "interleaved_s": 1.5}
    batches = np.array([1.0, 3.0, 10.0, 40.0])
    found = serving_at_batch(decode_batch=batches, **kw)
    for i, b in enumerate(batches):
        again = serving_point(decode_batch=float(b), clients=float(found.clients[i]), **kw)
        assert float(again.clients) == pytest.approx(float(found.clients[i]), rel=1e-9)
        assert float(again.ttft_s) == pytest.approx(float(found.ttft_s[i]), rel=1e-9)


def test_a_few_clients_with_long_prompts_queue_as_a_closed_loop() -> None:
    """16 clients of 32,000-token prompts on Llama-3.1-70B (B200, vLLM under AIConfigurator's
    harness) keep the prefill busy 92 % of the time. The M/D/1 queue of an open stream put the
    closed form's TTFT at 17.6 s, 3.7x the simulation's 4.7 s (and its TPOT 30 % under); the
    queue of the 15 other clients puts it within 3x (and the TPOT within 25 %)."""
    preset = engine_preset("vllm", load_hardware("b200").device)
    engine = harness_engine(preset, "aiconfigurator", concurrency=16, input_tokens=32000)
    kw = {
        "concurrency": 16,
        "input_tokens": 32000,
        "output_tokens": 100,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "kv_dtype": "fp8",
        "engine": engine,
    }
    sim = genmodel.estimate(
        "llama-3.1-70b", "b200", serving="simulated", requests_per_client=12, warmup_requests=2, **kw
    )  # type: ignore[arg-type]
    closed = genmodel.estimate("llama-3.1-70b", "b200", serving="closed-form", **kw)  # type: ignore[arg-type]
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) < math.log(3)
    assert closed.tpot_s == pytest.approx(sim.tpot_s, rel=0.25)


def test_newtons_steps_find_the_plain_iterations_clients() -> None:
    """_clients_at (Newton's steps in 1/N) lands on the fixed point the plain iterates of the
    clients' map fall to, on random points: prefill-bound and decode-bound, one client to
    thousands, points with no fixed point above one client (the plain iterates' own figures,
    taken as they are), and a scalar as an array's point."""
    from genmodel._servingpoint import _clients_at, _clients_plain, _loaded

    rng = np.random.default_rng(7)
    size = 4000
    prefill = 10 ** rng.uniform(-3, 1, size)
    step = 10 ** rng.uniform(-3, -0.5, size)
    batch = np.floor(10 ** rng.uniform(0, 3.5, size))
    shared = prefill * rng.uniform(0.2, 1.5, size)
    think = rng.choice([0.0, 0.01, 0.5], size) * rng.uniform(0, 2, size)
    rate, busy, step_part = _loaded(prefill, step, batch, 200, shared)
    many = md1_wait_s(busy, prefill) + step_part
    a = rate * (think + prefill + many) + batch
    c = rate * many + batch * busy
    start = (a + np.sqrt(np.maximum(a * a - 4 * c, 0.0))) / 2
    args = (start, prefill, batch, rate, busy, step_part, think)
    newton, plain = _clients_at(*args), _clients_plain(*args)
    assert np.allclose(newton, plain, rtol=1e-9, atol=0.0)
    # each point either holds its Newton figure, N = g(N), to the last digits (the plain one to
    # 1e-10), or (no fixed point above one client) takes the plain iterates' figure as it was
    held = serving_point(
        prefill_s=prefill,
        step_s=step,
        decode_batch=batch,
        output_tokens=200,
        clients=newton,
        think_s=think,
        interleaved_s=shared,
    ).clients
    settled = np.abs(held / newton - 1) <= 1e-12
    assert 0.9 < settled.mean() < 1  # (both kinds of point are here)
    assert (newton[~settled] == plain[~settled]).all()
    for i in range(0, size, 397):  # one point alone: the array's figure
        alone = _clients_at(*(float(v[i]) for v in args))
        assert alone == newton[i]
