"""Where the clients of a benchmark outgrow what the steady state gives them: the pool and the budget.

Two limits the closed form's steady state (:mod:`genmodel._serving`) misses where the clients are
those of a benchmark, started together with fixed lengths (:mod:`genmodel._wave`), and the engine's
scheduler is the one the simulation runs (:mod:`genmodel._scheduler`). N closed-loop clients per
replica, I prompt and O output tokens:

- Clients in step against an on-demand KV pool (vLLM's blocks as tokens arrive, SGLang's pool
  that fills with computed tokens; :meth:`~genmodel._engines.KvPool.held_output_tokens` below the
  output): the steady state sizes the pool at each sequence's mean holding, its prompt and half
  its output, as if the clients were spread over their progress. Clients started together with
  fixed lengths grow together: at progress g (tokens generated) N of them hold N (I + g), so a
  pool of C tokens holds them all only up to g1 = C / N - I, and from there the engine runs
  those it has room for, C / (I + g), the others waiting (preempted, or queued for admission).
  Over a round of O steps the mean running batch is
  (g1 N + C ln((I + O) / (I + g1))) / O (:func:`in_step_batch`); where it is below the batch
  the steady state runs, the replica completes requests at that batch's rate (the round's steps
  at their own batches, which cost about what as many steps at their mean batch cost: the
  steady state's B / ((O - 1) t(B) + B D) there), and a request's time
  less its decode at the steady state's ITL is the wait for the pool, before its first token
  (Little's law, as the KV-limited steady state puts it), where that is longer than the wave's
  TTFT. Not for a reserving pool (TensorRT-LLM), which admits whole sequences. Lengths spread by
  +-10 % keep the clients near enough in step over the benchmark's rounds that the simulation
  meets the pool's limit too, so the term stays. The simulation puts part of the wait after the
  first token (a request preempted mid-decode waits in its TPOT): for SGLang, which retracts to
  the end of its queue, the closed form splits it too (:mod:`genmodel._midwait`); for vLLM,
  which preempts to the head of its queue, only where the clients also outnumber what the pool
  holds at their mean progress (:mod:`genmodel._midwait`: here the wait this term gives is
  shorter than the round's rest, though the simulation waits mid-decode as long).
- A budget of few prompts a step (a mixed engine: each step holds the running batch's decode
  tokens and at most m prompts, so at most m requests start, and at steady state finish, a step,
  and a request decodes O - 1 steps): at most m (O - 1) sequences decode; the other clients wait
  in the FCFS queue, as the simulation's scheduler has them (:func:`admitted_batch`). The
  steady state, whose prompts interleave with the decode steps as often as the load asks, would
  otherwise put more prompts between two decode steps than the budget lets into a step: with
  AIConfigurator's harness (a budget of the prompt and 1,500 tokens, one prompt a step) and
  hundreds of clients, a TTFT of prompts spread over every step where the engine queues them.
  There, as where the KV memory caps the batch, the running batch is the cap and TTFT the queue
  (Little's law), but the wave's rounds stay (:func:`~genmodel._wave.wave_extra_s`: the queue
  is their steady state), and ``kv_limited`` False. The plan search leaves out the running
  batches over the cap (a steady state the engine cannot reach).

Source: derived from the scheduler the simulation runs (on-demand allocation and preemption,
FCFS admission under the token budget, SGLang's ``max_prefill_tokens``) for clients started
together; checked against that simulation on the deployments where the two serving models were
furthest apart (tests/test_kv_in_step.py; ``tools/serving_agreement.py --random``), not fitted.
"""

from __future__ import annotations

from collections.abc import Callable

from genmodel._units import Num, log, maximum, minimum
from genmodel._wave import Wave


def in_step_pool_tokens(wave: Wave, most: Num, input_tokens: int, output_tokens: int) -> Num | None:
    """C: the KV tokens a replica's on-demand pool holds, ``most`` running sequences (per replica)
    at the prompt and the output its admission keeps (:meth:`KvPool.held_output_tokens`), where
    that is less than whole sequences; None for a pool that holds whole ones (a reservation)."""
    held = min(wave.pool.held_output_tokens(output_tokens), output_tokens)
    if held >= output_tokens:
        return None
    return most * (input_tokens + held)


def in_step_batch(clients: Num, pool_tokens: Num, input_tokens: int, output_tokens: int) -> Num:
    """The mean running batch over a round of ``clients`` (N) in step against a pool of
    ``pool_tokens`` (C) allocated as tokens arrive (module docstring): all N up to the progress
    g1 = C / N - I (clamped to 0..O) at which N (I + g1) fill the pool, then C / (I + g), so
    (g1 N + C ln((I + O) / (I + g1))) / O; N where the pool holds every whole sequence. Plain
    arithmetic (floats or arrays). Increasing in N (its derivative is g1 / O)."""
    full = minimum(maximum(pool_tokens / clients - input_tokens, 0.0), float(output_tokens))
    held = full * clients + pool_tokens * log((input_tokens + output_tokens) / (input_tokens + full))
    return held / output_tokens


def pool_wait(
    wave: Wave | None,
    clients: float,
    most: float,
    lengths: tuple[int, int],
    decode_s: float,
    wait_s: float,
    rate_at: Callable[[float], float],
) -> tuple[float, float, float] | None:
    """(the wait before the first token, the rate, the mean running batch) of ``clients`` (per
    replica) started together against the engine's on-demand pool of ``most`` sequences (per
    replica) at what a running one holds, where a round of them outgrows it
    (:func:`in_step_batch` below ``most`` and the clients) and the wait is longer than
    ``wait_s`` (the steady state's, the wave's included): the rate ``rate_at`` that batch, and the
    cycle N / X less ``decode_s`` (the rest of a request's cycle: its decode at the steady
    state's ITL, the think time). None otherwise, and without a wave."""
    if wave is None:
        return None
    input_tokens, output_tokens = lengths
    pool_tokens = in_step_pool_tokens(wave, most, input_tokens, output_tokens)
    if pool_tokens is None:
        return None
    running = float(in_step_batch(clients, pool_tokens, input_tokens, output_tokens))
    if running >= min(clients, most):
        return None
    rate = rate_at(running)
    waited = clients / rate - decode_s
    return (waited, rate, running) if waited > wait_s else None


def admitted_batch(wave: Wave, input_tokens: int, output_tokens: int) -> float | None:
    """The most sequences a mixed engine keeps decoding when each step takes at most p(B)
    prompts beside B decode tokens (module docstring): the B = p(B) (O - 1) at which as many
    requests start a step as finish. p(B), as the simulation's scheduler fills a step: the budget
    T less the decode tokens where they count against it (vLLM, SGLang), T' = T - B, over the
    prompt, T' / I where the engine chunks a prompt into what is left, else whole prompts,
    floor(T' / I) (at least one); SGLang's ``max_prefill_tokens`` C takes a further whole prompt
    only within C - B. Chunked without such a cap, B = T (O - 1) / (I + O - 1); otherwise B by
    bisection (p falls as B grows). None for an engine that prefills in steps of their own (no
    decode beside them) or a wave without an engine."""
    engine = wave.engine
    if engine is None or not wave.mixed:
        return None
    decode = engine.budget_counts_decode
    if engine.chunked_prefill and engine.max_prefill_tokens is None:
        counted = input_tokens if decode else 0  # (T - B) / I or T / I prompts a step
        return engine.max_batched_tokens * (output_tokens - 1) / (counted + output_tokens - 1)

    def prompts(batch: float) -> float:
        counted = batch if decode else 0.0
        tokens = max(engine.max_batched_tokens - counted, 0.0)
        if engine.chunked_prefill or tokens < input_tokens:
            step = tokens / input_tokens if engine.chunked_prefill else 1.0
        else:
            step = float(tokens // input_tokens)
        if engine.max_prefill_tokens is not None:  # further prompts only within it, whole
            step = min(step, max(1.0, (engine.max_prefill_tokens - counted) // input_tokens))
        return step

    lo, hi = 0.0, float(engine.max_batched_tokens * (output_tokens - 1))
    for _ in range(48):  # (B - p(B) (O - 1) grows with B)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid < prompts(mid) * (output_tokens - 1) else (lo, mid)
    return lo
