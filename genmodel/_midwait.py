"""Where a request waits for an outgrown KV pool that evicts: before its first token or mid-decode.

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

vLLM V1's on-demand pool preempts the last of its running list (``running.pop()``) and puts it back
at the head of the queue (vllm/v1/core/sched/scheduler.py ``waiting.prepend_request``, "front of
line"); a request it admits again is appended to the running list, and its WAITING loop stops at
the first request that does not fit (FCFS). So the order of first admission never changes: the
running list followed by the preempted ones is one list in that order, of which the pool runs the
longest head that fits (the preempted ones at its tail, the last preempted first), and a new
request is let in only when the whole list fits. A preempted request waits for room, not for a pass
of the queue, and the room comes as the sequences ahead of it complete. In the round of
:func:`~genmodel._instep.in_step_batch` (the pool lets in n_a = min(N, C / I) together, on their
prompts' blocks, and keeps C / (I + g) of them at progress g), one preempted at progress g waits
the O - g steps the kept ones take to complete, and the new requests of the clients they free wait
behind it, before their first token. Over the round's requests that is U - u1 - u1 ln(U / u1) steps
mid-decode, u1 = C / n_a, U = I + O (:func:`round_rest_steps`), and the rest of the wait W comes
before the first token (:func:`head_split`). A token-level replay of the list's rule (unit steps,
no prefill time; tests/test_midwait.py) gives about the same steps (0.80, 0.43, 0.27, 0.15 O at O /
I = 8, 2, 1, 0.5 against 0.73, 0.45, 0.31, 0.19 O), about as many preemptions per request as the
simulation (2.38 against 2.31 for Qwen3-32B 512 / 2,048 on one H100, 64 clients), and a mid-decode
wait that does not grow with the clients, as the simulation's does not (about 45 s at 64 and at 128
clients there): the wait of the clients past a round's is before the first token. It holds where
the clients outnumber what the pool holds at their mean progress (the steady state's queue for
memory). Where the clients fit it on average and only their rounds in step outgrow it
(:func:`~genmodel._instep.pool_wait`) the simulation waits mid-decode as long (Llama-3.1-8B 128 /
8,192 on one H100, 96 clients: 27 s, the preempted requests waiting over the rate, against the
round's 29 s), but on a smaller running batch with faster steps (27.5 ms a token against the closed
form's 31.0 ms at its batch), and the closed form's whole wait there, 8.6 s, is short of it: moving
the round's rest leaves its TTFT at the prefill, or, with the decode at the round's batch, at
0.2-0.6x the simulation's (TPOT within 5 %), so it is left there (an open item). A burst of one
request a client keeps its own drain (:func:`~genmodel._wave.one_shot_itl_s`). Checked against the
simulation on deployments past the pool (tests/test_midwait.py), not fitted.

Checked against the simulation on the rungs of ``tools/serving_agreement.py --random 300 --seed
101`` whose SGLang pool the clients outgrow (tests/test_midwait.py), not fitted: the retractions
per request it gives against the simulated (DeepSeek-V3 128 / 4,096 under AIConfigurator's
harness: 0.94 against 1.03-1.08; Llama-3.1-8B 512 / 4,096: 0.80 against 0.63; Qwen3-32B 8,192 /
2,048: 0.11 against 0.09) and the share of the wait before the first token (0.52 against
0.47-0.49; 0.56 against 0.45; 0.90 against 0.92-0.94).
"""

from __future__ import annotations

from genmodel._instep import in_step_pool_tokens
from genmodel._units import Num, log, maximum, minimum
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


def preempted_to_queue_head(wave: Wave | None) -> bool:
    """Whether ``wave``'s pool preempts the latest admitted sequence to the head of its queue
    (vLLM V1's on-demand pool; module docstring)."""
    return wave is not None and wave.pool.admission == "on-demand" and wave.pool.new_token_ratio is None


def round_rest_steps(clients: Num, pool_tokens: Num, input_tokens: int, output_tokens: int) -> Num:
    """The decode steps a request of a round of ``clients`` (N) against an on-demand pool of
    ``pool_tokens`` (C) waits preempted, at the head of the queue, on average over the round: the
    pool lets in n_a = min(N, C / I) on their prompts, keeps C / (I + g) at progress g, and one
    preempted at g waits the O - g steps the kept ones take, so
    (1 / n_a) int_g1^O (O - g) C / (I + g)^2 dg = U - u1 - u1 ln(U / u1), u1 = C / n_a = I + g1,
    U = I + O; 0 where the pool keeps them all (u1 >= U). Floats or arrays (module docstring)."""
    whole = float(input_tokens + output_tokens)
    first = minimum(maximum(pool_tokens / clients, float(input_tokens)), whole)
    return whole - first - first * log(whole / first)


def head_split(
    wave: Wave, clients: float, pool_tokens: float, lengths: tuple[int, int], wait_s: float, itl_s: float
) -> float:
    """The part of the wait ``wait_s`` (W) that a pool preempting to the head of its queue puts
    mid-decode: :func:`round_rest_steps` at the round's steps, ``itl_s`` each, at most W; 0 for a
    burst of one request a client (module docstring)."""
    if wave.client.requests(clients) == 1:
        return 0.0
    return min(float(round_rest_steps(clients, pool_tokens, *lengths)) * itl_s, wait_s)


def mid_decode_wait(
    wave: Wave | None,
    kv_limited: bool,
    clients: float,
    most: float,
    lengths: tuple[int, int],
    ttft_s: float,
    itl_s: float,
    own_s: float,
    *,
    past_mean: bool = False,
) -> tuple[float, float]:
    """(TTFT, ITL) of a replica whose ``clients`` outgrow (``kv_limited``) the engine's pool of
    ``most`` sequences at what a running one holds (per replica;
    :func:`~genmodel._instep.in_step_pool_tokens`), the wait in ``ttft_s`` beyond ``own_s`` (a
    request's own prefill) divided as :func:`mid_decode_s` gives, or for a pool that preempts to
    the head of its queue, where the clients outnumber what it holds at their mean progress
    (``past_mean``), as :func:`head_split` gives; as they are where the pool does not limit them
    or nothing moves."""
    if not kv_limited or wave is None:
        return ttft_s, itl_s
    pool_tokens = in_step_pool_tokens(wave, most, *lengths)
    if pool_tokens is None:
        return ttft_s, itl_s
    wait_s = max(ttft_s - own_s, 0.0)
    if preempted_to_queue_head(wave):
        if not past_mean:
            return ttft_s, itl_s
        moved: Num | None = head_split(wave, clients, float(pool_tokens), lengths, wait_s, itl_s)
    else:
        moved = mid_decode_s(wave, clients, pool_tokens, lengths, wait_s)
    ttft, itl = split_wait(moved, ttft_s, itl_s, lengths[1])
    return float(ttft), float(itl)
