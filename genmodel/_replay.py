"""The warm-up's prompts a benchmark client replays: the closed form's term for the rounds they run.

Modelling assumptions (N closed-loop clients per replica started together, as
:mod:`genmodel._wave` has them; fixed lengths, but for the last item):
- A client that restarts after its warm-up and walks its input data from the start again
  (:attr:`~genmodel._wave.BenchmarkClient.replays_warmup_prompts`: perf_analyzer under genai-perf)
  sends in its first W measured rounds (W its warm-up requests) the prompts of its warm-up. An
  engine that caches prefixes (``Engine.prefix_caching``: vLLM V1, SGLang's radix cache) finds
  their whole KV blocks within all but the last token cached, while the KV it has filled since it
  started is within its pool (:func:`~genmodel._wave.replay_rounds`), and computes only the tail.
- A replayed round is a round of the wave (:func:`~genmodel._wave.round_ttfts_s`) for that tail:
  its prefill (the prompt's attention over the cached part included) at least an eager step's
  launches, T // tail prompts a step, and the steady state's wait at the same running batch with
  that prefill. The restart's burst is a replayed round; where one step holds every replayed
  prompt the clients stay synchronised through the replayed rounds, and the first round of fresh
  prompts after them is a burst too (:func:`~genmodel._wave.replayed_mean_s`).
- The mean TTFT is the mean over the measured rounds; ITL stays what the wave of fresh prompts
  gives, and the rate follows the shorter cycle (Little's law, in :mod:`genmodel._serving`).
- With spread lengths (:attr:`~genmodel._wave.Wave.in_step` False) the clients fall out of step
  after the restart's burst: the replayed rounds after it, and the first fresh one, are later
  rounds.
- Not modelled: the replayed rounds' lighter prefill load on the steady state's decode batch.

Source: the client's replay and the engine's cache as the simulation runs them
(:func:`~genmodel._simfigures.replay_warmup_prompts`, whose sources are perf_analyzer's
load_manager.cc and infer_context.h), applied to the rounds of :mod:`genmodel._wave`; not fitted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from genmodel._memory import MemoryUse
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import prefill_chunking, prefill_pass
from genmodel._system import System
from genmodel._units import Num
from genmodel._wave import (
    Wave,
    release_rounds_s,
    replay_hit_tokens,
    replay_rounds,
    replayed_mean_s,
    round_ttfts_s,
)
from genmodel._workload import Precision


def replayed_ttft_s(
    deployment: tuple[ModelSpec, System, Plan, Precision, RunOptions, MemoryUse],
    wave: Wave,
    *,
    clients: float,
    lengths: tuple[int, int],
    capacity_tokens: float,
    fresh: tuple[float, float, float, float],
    steady_ttft_s: Callable[[float], tuple[float, float]],
    host_s: tuple[float, float],
) -> tuple[float, float] | None:
    """(mean TTFT, mean release wait) over the measured rounds of a client that replays its
    warm-up's prompts to an engine that caches prefixes (module docstring); None where no round
    replays (:func:`~genmodel._wave.replay_rounds`) or the run's own prefix hit is as large.

    Args:
        deployment: (model, system, plan, precision, options, memory) of the estimate.
        wave: the engine's admission and the benchmark client.
        clients: N, clients per replica.
        lengths: (prompt, output) tokens per request.
        capacity_tokens: the replica's KV pool, in tokens.
        fresh: (prefill, full step, steady TTFT, its wait for the step under way) of a fresh
            prompt, as the wave takes them (:func:`~genmodel._wave.round_ttfts_s`).
        steady_ttft_s: the steady state's mean TTFT and its wait for the step under way, at the
            running batch of the estimate, for a prefill of the given seconds.
        host_s: (the host launch time of an eager step, the per-step overhead); (0, .) where the
            engine's prompt steps have no host floor.
    """
    model, system, plan, precision, options, mem = deployment
    input_tokens, output_tokens = lengths
    rounds = replay_rounds(wave, clients, input_tokens, output_tokens, capacity_tokens)
    hit = replay_hit_tokens(wave, input_tokens)
    cached, _ = prefill_chunking(input_tokens, options)
    if not rounds or hit <= cached:
        return None
    replay_options = dataclasses.replace(options, prefix_hit_rate=hit / input_tokens)
    tail = input_tokens - hit
    per_step = wave.prompts_per_step(tail)  # the budget counts the tokens to compute

    def prefill(seqs: int) -> float:
        terms, _ = prefill_pass(
            model,
            system,
            plan,
            precision,
            num_seqs=float(seqs),
            input_tokens=input_tokens,
            options=replay_options,
            memory=mem,
            need_longest=False,
        )
        return float(terms.time_s)

    launch_s, overhead_s = host_s
    eager_step_s = launch_s + overhead_s if launch_s else 0.0  # one eager step, at least
    replay_prefill_s = prefill(1)
    eager_s = max(replay_prefill_s, eager_step_s)
    full_s = max(prefill(per_step), eager_step_s) if per_step > 1 else eager_s
    steady_s, step_wait_s = steady_ttft_s(replay_prefill_s)
    steady_s += eager_s - replay_prefill_s
    replayed = round_ttfts_s(wave, clients, tail, eager_s, full_s, steady_s, step_wait_s)
    together = clients <= per_step and wave.in_step  # (spread lengths: out of step after the burst)
    fresh_rounds = _after_groups(clients, per_step, lambda n: round_ttfts_s(wave, n, input_tokens, *fresh))
    fresh_release = _after_groups(
        clients, per_step, lambda n: release_rounds_s(wave, n, input_tokens, launch_s)
    )
    if not wave.in_step:  # the first fresh round is a later one too
        fresh_rounds, fresh_release = (fresh_rounds[1],) * 2, (fresh_release[1],) * 2
    ttft = replayed_mean_s(wave, clients, rounds, together, fresh_rounds, replayed)
    release = replayed_mean_s(
        wave, clients, rounds, together, fresh_release, release_rounds_s(wave, clients, tail, launch_s)
    )
    return float(ttft), float(release)


def _after_groups(
    clients: float, per_step: int, rounds_of: Callable[[float], tuple[Num, Num]]
) -> tuple[Num, Num]:
    """(the first fresh round's mean, a later fresh round's) of ``clients`` clients whose last
    replayed prompts ran ``per_step`` a step: they finish and come back in those groups, so the
    first round of fresh prompts is a burst of each group (``rounds_of(n)``: the (burst, later)
    rounds of n clients), the clients' mean over the groups; one burst of all where one step held
    every replayed prompt. (Counting it as a later round instead, as before, dropped the burst
    once the clients outnumbered one step's replayed prompts: a mean TTFT that fell from 43 to
    19 ms with 130 -> 140 clients where the simulation gave 46 -> 48 ms.)"""
    later = rounds_of(clients)[1]
    if clients <= per_step:
        return rounds_of(clients)[0], later
    full, rest = divmod(clients, per_step)
    burst = full * per_step * rounds_of(float(per_step))[0]
    if rest:
        burst = burst + rest * rounds_of(rest)[0]
    return burst / clients, later
