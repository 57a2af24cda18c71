"""Where a request waits for an outgrown KV pool that retracts: before its first token or mid-decode.

The closed form (:mod:`genmodel._serving`, :mod:`genmodel._instep`) gets a request's whole wait
for the KV pool from the rate (Little's law): a client's cycle N / X less its decode. Which part
of that wait comes before the first token is a matter of the engine's admission and preemption,
which :mod:`genmodel._scheduler` runs:

- A reserving pool (TensorRT-LLM's GUARANTEED_NO_EVICT: the whole sequence at admission) never
  evicts: a request waits only before it is admitted, so before its first token.
- SGLang admits a request when its prompt and its expected output fit beside ``new_token_ratio``
  x the running sequences' output to go, and the pool then fills with computed tokens; when the
  next decode step does not fit it retracts the sequences with the fewest output tokens, the
  latest admitted (``ScheduleBatch.retract_decode``), which lose their KV and join the end of the
  queue (``Scheduler._add_request_to_queue`` appends): a retracted request has had its first
  token and waits again, mid-decode, for a pass of the same FCFS queue.

Per replica, N clients, I prompt and O output tokens, a pool of C tokens (at the KV limit,
N (I + O) > C). The engine lets in at once as many as its admission takes: its ratio holds back
about what a running sequence holds on average, a = :meth:`~genmodel._engines.KvPool.held_output_tokens`
(half the output), so n_a = min(N, C / (I + a)). These grow together, a token each per step, and
the pool holds w = C / (I + O) of them to completion (:func:`~genmodel._instep.in_step_batch`'s
round: N (I + g) tokens at progress g); the others are retracted on the way and admitted again
later, as members of a later group with the same odds. A request is admitted n_a / w times on
average (a geometric number of tries of success w / n_a), so retracted k = n_a / w - 1 times, and
before each admission it waits one pass of the queue: the wait W splits 1 : k between before the
first token and mid-decode, W k / (1 + k) of it in the decode (:func:`mid_decode_s`), whose
steps it lengthens, so a request's whole time, and the rate, stay as the closed form has them.

vLLM's on-demand pool preempts the same way (the last of its running list, ``running.pop()``),
and its preemptions per request follow the same n_a / w - 1 with n_a = min(N, C / I) (it admits
on the prompt's blocks), but it puts a preempted request back at the head of the queue
(vllm/v1/core/sched/scheduler.py ``waiting.prepend_request``, "front of line"), so a preempted
request waits for room, not for a pass of the queue. The split above is left out for it: on the
21 vLLM rungs of the agreement check it moved, it brought TPOT nearer the simulation (mean
|log ratio| 0.127 -> 0.060) but TTFT further (0.50 -> 0.67), since the closed form's wait there
is already short of the simulation's (its round runs more sequences than the simulation's) and
the plan search then ranked first clients the re-check rejected (docs/serving-simulation.md,
"The closed form against the simulation").

Checked against the simulation on the rungs of ``tools/serving_agreement.py --random 300 --seed
101`` whose SGLang pool the clients outgrow (tests/test_midwait.py), not fitted: the retractions
per request it gives against the simulated (DeepSeek-V3 128 / 4,096 under AIConfigurator's
harness: 0.94 against 1.03-1.08; Llama-3.1-8B 512 / 4,096: 0.80 against 0.63; Qwen3-32B 8,192 /
2,048: 0.11 against 0.09) and the share of the wait before the first token (0.52 against
0.47-0.49; 0.56 against 0.45; 0.90 against 0.92-0.94).
"""

from __future__ import annotations

from genmodel._instep import in_step_pool_tokens
from genmodel._units import Num, maximum, minimum
from genmodel._wave import Wave


def retracted_to_queue_end(wave: Wave | None, output_tokens: int) -> int | None:
    """a: the output tokens the engine's admission counts for each sequence it lets into a pool
    that retracts to the end of its queue (SGLang's ``new_token_ratio``: what a running sequence
    holds on average, module docstring); None where the wait is left before the first token (no
    wave, a pool that reserves whole sequences, vLLM's on-demand pool)."""
    if wave is None or wave.pool.new_token_ratio is None:
        return None
    return min(wave.pool.held_output_tokens(output_tokens), output_tokens)


def retractions(admitted: int, clients: Num, pool_tokens: Num, input_tokens: int, output_tokens: int) -> Num:
    """k = n_a / w - 1, the retractions per request of ``clients`` (N) against a pool of
    ``pool_tokens`` (C) tokens, per replica, whose admission counts ``admitted`` (a) output tokens a
    sequence (module docstring): n_a = min(N, C / (I + a)) admitted at once, w = C / (I + O) of them
    kept to completion; 0 where the pool keeps them all. Floats or arrays."""
    first = pool_tokens / (input_tokens + admitted)
    kept = pool_tokens / (input_tokens + output_tokens)
    return maximum(minimum(clients, first) / kept - 1, 0.0)


def mid_decode_s(
    wave: Wave | None, clients: Num, pool_tokens: Num, lengths: tuple[int, int], wait_s: Num
) -> Num | None:
    """The part of a request's wait for an outgrown pool, ``wait_s`` (W), that comes mid-decode,
    W k / (1 + k) (module docstring); ``clients`` N and ``pool_tokens`` C per replica (floats or
    arrays). None where nothing moves (:func:`retracted_to_queue_end`)."""
    admitted = retracted_to_queue_end(wave, lengths[1])
    if admitted is None:
        return None
    k = retractions(admitted, clients, pool_tokens, *lengths)
    return wait_s * k / (1 + k)


def split_wait(moved_s: Num | None, ttft_s: Num, itl_s: Num, output_tokens: int) -> tuple[Num, Num]:
    """(TTFT, ITL) with ``moved_s`` of the wait in ``ttft_s`` moved after the first token, spread
    over the O - 1 decode steps (so TTFT + (O - 1) ITL, and the rate, stay). None: as they are."""
    if moved_s is None:
        return ttft_s, itl_s
    return ttft_s - moved_s, itl_s + moved_s / (output_tokens - 1)


def mid_decode_wait(
    wave: Wave | None,
    kv_limited: bool,
    clients: float,
    most: float,
    lengths: tuple[int, int],
    ttft_s: float,
    itl_s: float,
    own_s: float,
) -> tuple[float, float]:
    """(TTFT, ITL) of a replica whose ``clients`` outgrow (``kv_limited``) the engine's pool of
    ``most`` sequences at what a running one holds (per replica;
    :func:`~genmodel._instep.in_step_pool_tokens`), the wait in ``ttft_s`` beyond ``own_s`` (a
    request's own prefill) divided as :func:`mid_decode_s` gives; as they are where the pool does
    not limit them or nothing moves."""
    if not kv_limited or retracted_to_queue_end(wave, lengths[1]) is None:
        return ttft_s, itl_s
    assert wave is not None
    pool_tokens = in_step_pool_tokens(wave, most, *lengths)
    if pool_tokens is None:
        return ttft_s, itl_s
    moved = mid_decode_s(wave, clients, pool_tokens, lengths, max(ttft_s - own_s, 0.0))
    ttft, itl = split_wait(moved, ttft_s, itl_s, lengths[1])
    return float(ttft), float(itl)
