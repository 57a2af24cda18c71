"""A replica's steady state at a running batch: the closed loop's rate, prefill share, inter-token
latency and queueing wait (:class:`ServingPoint`), the clients that hold it there, the TTFT
quantiles, and the ITL and rate once TTFT holds a wave. Plain arithmetic on floats or arrays: the
closed form (:mod:`genmodel._serving`) evaluates one point at a time, the plan search whole arrays
of running batches.

Modelling assumptions:
- A replica runs one request's prefill P between decode steps of its running batch B and is never
  idle: it completes X = B / ((O-1) t(B) + B P) requests per second and spends the share rho = X P
  of its time in prefill; a running request's tokens wait for the other clients' prefills,
  ITL = t(B) (1 - rho/N) / (1 - rho); a new request waits for the step under way and for the
  prefills queued before it. The clients that hold B are N = X (Z + TTFT + (O-1) ITL) (Little's
  law; Z each client's think time).
- The prefills queued before a new request are those of a closed loop of N clients, not of an
  open stream: by the arrival theorem (Lavenberg and Reiser 1980) a request finds the queue the
  other N - 1 clients make, which Schweitzer's approximate mean-value analysis (Schweitzer 1979;
  Bard 1979) takes as (1 - 1/N) of the N clients' queue; with deterministic service the prefill
  under way has P/2 left (Reiser's residual for a constant service time). Solving
  W = (1 - 1/N) (Q - rho/2) P with Q = X (W + P) gives the M/D/1 wait at the load (1 - 1/N) rho,
  W = a rho P / (2 (1 - a rho)), a = 1 - 1/N (:func:`closed_wait_s`): bounded for a few clients
  at any load (a lone client never waits), and the M/D/1 (Pollaczek-Khinchine) wait as N grows.
- Quantiles (p90, p99) of TTFT for Poisson arrivals: the M/D/1 wait with an exponential tail
  (Kingman's heavy-traffic approximation), see :func:`md1_wait_quantile_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genmodel._errors import SpecError
from genmodel._units import Num, log, maximum, minimum


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingPoint:
    """Steady state of one replica serving a closed loop (floats, or arrays in a plan search).

    Attributes:
        decode_batch: sequences in each decode step, B.
        rate_per_s: requests completed per second, X.
        prefill_busy_frac: share of the replica's time spent in prefill, rho = X P.
        itl_s: mean inter-token latency a running request sees.
        wait_s: mean time a new request waits before its prefill starts.
        ttft_s: mean time to first token, P + wait.
        clients: clients of the closed loop the state holds, X (Z + TTFT + (O-1) ITL) (Little's
            law; Z the think time between a client's last token and its next request).
    """

    decode_batch: Num
    rate_per_s: Num
    prefill_busy_frac: Num
    itl_s: Num
    wait_s: Num
    ttft_s: Num
    clients: Num


def serving_point(
    *,
    prefill_s: Num,
    step_s: Num,
    decode_batch: Num,
    output_tokens: int,
    clients: Num,
    think_s: Num = 0.0,
    interleaved_s: Num | None = None,
) -> ServingPoint:
    """The steady state of a replica whose decode steps run ``decode_batch`` sequences.

    The replica is never idle: X (O-1) t / B + X P = 1 gives X = B / ((O-1) t + B P), and
    rho = X P. While it prefills, the decoding clients are the others' share (1 - 1/N) of B, so on
    average B (1 - rho/N) clients decode, and Little's law gives their inter-token latency:
    ITL = t (1 - rho/N) / (1 - rho) (t for a lone client, t / (1 - rho) for many). A new request
    waits for the step under way and the prefills queued before it, the other clients':
    (1 - rho) t / 2 (1 - 1/N) and :func:`closed_wait_s` (a lone client finds the replica free).

    Args:
        prefill_s: one request's prefill, P.
        step_s: one decode step of the running batch, t(B) (per output token).
        decode_batch: B, sequences in each decode step.
        output_tokens: O, tokens per request (the first comes from the prefill).
        clients: N, the replica's clients (the others are N - 1).
        think_s: Z, each client's time between its last token and its next request reaching the
            scheduler (out of the engine: in :attr:`ServingPoint.clients`, not in the TTFT here).
        interleaved_s: D, the time one request's prompt adds to the steps the others decode in,
            where it is not a lone prefill P (the engine's groups of prompts and mixed steps:
            :func:`~genmodel._interleave.interleaved_prefill_s`): the rate and rho take D for P,
            a request's own prefill and its M/D/1 wait keep P. None: P.

    Source: interleaving as in Orca (Yu et al., OSDI 2022) and Sarathi-Serve (Agrawal et al., OSDI
    2024, Sec. 2); the closed loop's queue, :func:`closed_wait_s`; Little's law for the closed loop.
    """
    rate, busy, step_part = _loaded(prefill_s, step_s, decode_batch, output_tokens, interleaved_s)
    return _point(prefill_s, decode_batch, output_tokens, clients, rate, busy, step_part, think_s)


def _loaded(
    prefill_s: Num, step_s: Num, decode_batch: Num, output_tokens: int, interleaved_s: Num | None = None
) -> tuple[Num, Num, Num]:
    """The rate X, the prefill share rho and the wait of many clients for the decode step under
    way, (1 - rho) t / 2, at decode batch B (:func:`serving_point`; ``interleaved_s``: D for P in
    X and rho)."""
    b = decode_batch
    shared = prefill_s if interleaved_s is None else interleaved_s
    rate = b / ((output_tokens - 1) * step_s + b * shared)
    busy = rate * shared
    return rate, busy, (1 - busy) * step_s / 2


def _point(
    prefill_s: Num,
    decode_batch: Num,
    output_tokens: int,
    clients: Num,
    rate: Num,
    busy: Num,
    step_part: Num,
    think_s: Num = 0.0,
) -> ServingPoint:
    """:func:`serving_point` from what :func:`_loaded` gives."""
    b = decode_batch
    wait = _wait_s(clients, busy, prefill_s, step_part)
    decoding = b * (1 - busy / clients)  # clients decoding, on average
    ttft = prefill_s + wait
    return ServingPoint(
        decode_batch=b,
        rate_per_s=rate,
        prefill_busy_frac=busy,
        itl_s=decoding / (rate * (output_tokens - 1)),
        wait_s=wait,
        ttft_s=ttft,
        clients=rate * (think_s + ttft) + decoding,
    )


def serving_at_batch(
    *,
    prefill_s: Num,
    step_s: Num,
    decode_batch: Num,
    output_tokens: int,
    think_s: Num = 0.0,
    interleaved_s: Num | None = None,
) -> ServingPoint:
    """The steady state at decode batch B, with the clients N that keep the replica there.

    In :func:`serving_point` N enters through 1 - 1/N: with the open queue's wait W0 (the M/D/1
    wait and the step under way) N = a - c/N, a = X (Z + P + W0) + B and c = X W0 + B rho
    (Z the clients' think time), whose larger root N0 = (a + sqrt(a^2 - 4c)) / 2 holds at least
    the clients the closed loop's shorter queue (:func:`closed_wait_s`) does; from N0 the clients
    the point holds at N, an increasing function of N, fall to the largest N it holds
    (:func:`_clients_at`). Plain arithmetic, so the plan search evaluates whole arrays of B
    (``interleaved_s``: as :func:`serving_point` takes it).
    """
    b = decode_batch
    rate, busy, step_part = _loaded(prefill_s, step_s, b, output_tokens, interleaved_s)
    wait_many = md1_wait_s(busy, prefill_s) + step_part
    a = rate * (think_s + prefill_s + wait_many) + b
    c = rate * wait_many + b * busy
    clients = _clients_at((a + (a * a - 4 * c) ** 0.5) / 2, prefill_s, b, rate, busy, step_part, think_s)
    return _point(prefill_s, b, output_tokens, clients, rate, busy, step_part, think_s)


def _wait_s(clients: Num, busy: Num, prefill_s: Num, step_part: Num) -> Num:
    """A request's wait before its prefill among ``clients`` N: the step under way, for the
    others' share (1 - 1/N) of the prefills, and the closed loop's queue (:func:`closed_wait_s`)."""
    others = maximum(1 - 1 / clients, 0.0)  # share of the prefills that are someone else's
    return others * step_part + closed_wait_s(busy, prefill_s, clients)


def _clients_at(
    start: Num, prefill_s: Num, b: Num, rate: Num, busy: Num, step_part: Num, think_s: Num
) -> Num:
    """The clients N that hold the point (:func:`_point`'s N = X (Z + P + W(N)) + B (1 - rho/N)),
    from ``start`` (one that holds at least as many: the open queue's) down to the largest N the
    point holds below it, to 1e-10 of N (at 1e-14 the plan search spent a third more iterations
    for digits no figure shows).

    The map g(N) on the right is increasing in N, so its plain iterates (:func:`_clients_plain`)
    fall to that fixed point; Newton's steps get there in a third of the iterations. In q = 1/N
    (N >= 1), with a = X (Z + P + s) + B, c = X s + B rho (s the step under way's part,
    ``step_part``) and k = X P rho / 2, N = g(N) reads
    phi(q) = a q - c q^2 + k q (1 - q) / (1 - rho + rho q) - 1 = 0, and phi is concave for rho < 1
    (the last term's second derivative is -2 (1 - rho) k / (1 - rho + rho q)^3): Newton's step
    from a q where phi <= 0 (an N above the fixed point) lands at most at the smallest root above
    q (the tangent lies above phi), so it never passes the fixed point the plain iterates fall to.
    A point below one client, or whose step would leave 1 <= N' <= N (no root at q <= 1: the
    plain iterates fall below one client), or whose slope is not positive, is iterated the plain
    way from ``start`` instead, as before (each point's own choice: its figures whatever the
    array's other points). tests/test_closedqueue.py compares the two."""
    import numpy as np

    n = np.asarray(start, dtype=float)  # (a number as a NumPy one: its comparisons NumPy's bools)
    a = rate * (think_s + prefill_s + step_part) + b
    c = rate * step_part + b * busy
    k = rate * prefill_s * busy / 2
    free = 1 - busy
    done: Any = False  # (each point stops where it has converged: its own numbers, in any array)
    # (the iterates of a point that holds never rise, nor fall below one client: below one at the
    # start, it is one for the plain iterates)
    failed: Any = ~(n >= 1)
    for _ in range(500):
        q = 1 / n
        d = free + busy * q
        phi = (a - c * q + k * (1 - q) / d) * q - 1
        slope = a - 2 * c * q + k * (free - 2 * free * q - busy * q * q) / (d * d)
        nxt = 1 / (q - phi / slope)
        # (a step that holds falls, or stays within 1e-10 of N where rounding has it rise)
        failed = failed | ~((slope > 0) & (nxt >= 1) | done)
        frozen = done | failed
        n, done = np.where(frozen, n, nxt), frozen | (n - nxt <= 1e-10 * n)
        if np.all(done):
            break
    if np.any(failed):  # (the plain iterates, for the points Newton's step does not hold)
        if not np.ndim(n):
            return _clients_plain(start, prefill_s, b, rate, busy, step_part, think_s)
        at = np.flatnonzero(failed)
        values = (start, prefill_s, b, rate, busy, step_part, think_s)
        n[at] = _clients_plain(*(v[at] if np.ndim(v) else v for v in values))  # type: ignore[index]
    return n if np.ndim(n) else float(n)


def _clients_plain(
    start: Num, prefill_s: Num, b: Num, rate: Num, busy: Num, step_part: Num, think_s: Num
) -> Num:
    """:func:`_clients_at` by the plain iterates of its map, from ``start`` down."""
    import numpy as np

    n = start
    done: Any = False
    for _ in range(500):
        nxt = rate * (think_s + prefill_s + _wait_s(n, busy, prefill_s, step_part)) + b * (1 - busy / n)
        n, done = np.where(done, n, nxt), done | (np.abs(nxt - n) <= 1e-10 * np.abs(n))
        if np.all(done):
            break
    return n if np.ndim(n) else float(n)


def slot_held_itl_s(point: ServingPoint, prefill_s: Num, step_s: Num, output_tokens: int) -> Num:
    """The ITL of a replica whose running batch B is the most its KV pool holds (the clients queue
    for memory): a waiting request is admitted when a running one finishes and holds its slot
    (its prompt's KV) from its prefill on, so while it prefills B - 1 others decode, and on average
    B - X P of the B slots decode (X the rate, P the prefill): ITL = (B - X P) / (X (O-1)), at
    least the bare step t(B) and at most the steady state's, which counts B (1 - rho/N) decoding
    (the prefilling client outside B). With one slot (B = 1) the prefills run between the
    requests, none in a running one's decode: ITL = t, where the steady state's
    t + P / (O-1) puts the next prompt's prefill into it. Plain arithmetic (floats or arrays).

    Source: admission as memory frees, the blocks of a prompt allocated when it is scheduled
    (:mod:`genmodel._scheduler`, as vLLM's scheduler allocates them at admission).
    """
    rate = point.rate_per_s
    decoding = point.decode_batch - rate * prefill_s
    return minimum(maximum(decoding / (rate * (output_tokens - 1)), step_s), point.itl_s)


def step_under_way_s(point: ServingPoint, clients: Num, step_s: Num) -> Num:
    """The part of the point's TTFT that waits for the decode step under way, (1 - rho) t / 2
    scaled by the others' share 1 - 1/N (:func:`serving_point`): what a round of the wave that
    starts into an empty engine does not wait (:func:`~genmodel._wave.round_ttfts_s`)."""
    return maximum(1 - 1 / clients, 0.0) * (1 - point.prefill_busy_frac) * step_s / 2


def closed_wait_s(load: Num, service_s: Num, clients: Num) -> Num:
    """Mean wait of a request of a closed loop of ``clients`` N for the prefills queued before it,
    at the prefill share ``load`` rho and service time ``service_s`` P (module docstring): the
    M/D/1 wait at the load (1 - 1/N) rho, a rho P / (2 (1 - a rho)) (Schweitzer's approximate
    mean-value analysis, deterministic service); 0 for one client, M/D/1 as N grows."""
    return md1_wait_s(maximum(1 - 1 / clients, 0.0) * load, service_s)


def md1_wait_s(load: Num, service_s: Num) -> Num:
    """Mean wait of an M/D/1 queue at utilisation ``load`` and service time ``service_s``:
    rho S / (2 (1 - rho)) (Pollaczek-Khinchine; Kleinrock, Queueing Systems vol. 1, Sec. 5.6)."""
    return load * service_s / (2 * (1 - load))


def md1_wait_quantile_s(load: Num, service_s: Num, quantile: float) -> Num:
    """The ``quantile`` of the M/D/1 wait, with an exponential tail: a request waits with
    probability rho, then for an exponential time of mean W / rho (W = :func:`md1_wait_s`), so
    P(wait > t) = rho exp(-t rho / W) (Kingman's heavy-traffic approximation, 1962)."""
    if not 0 < quantile < 1:
        raise SpecError(f"quantile={quantile!r} must be in (0, 1)")
    return md1_wait_s(load, service_s) / load * log(maximum(load / (1 - quantile), 1.0))


def ttft_quantile_s(point: ServingPoint, prefill_s: Num, quantile: float) -> Num:
    """The ``quantile`` of TTFT for Poisson arrivals at the point's rate (p90: 0.9, p99: 0.99):
    the prefill, the decode step under way counted whole, and :func:`md1_wait_quantile_s` at the
    closed loop's load (1 - 1/N) rho (:func:`closed_wait_s`)."""
    others = maximum(1 - 1 / point.clients, 0.0)
    rho = maximum(others * point.prefill_busy_frac, 1e-300)  # (one client: no queue, 0)
    queue_s = md1_wait_s(rho, prefill_s)
    step_part = point.wait_s - queue_s  # the step under way: (1 - rho) t / 2, scaled
    return prefill_s + 2 * step_part + md1_wait_quantile_s(rho, prefill_s, quantile)


def solve_batch(concurrency_at: Callable[[float], float], target: float, hi: float) -> float:
    """The decode batch B in (0, hi] at which ``concurrency_at(B)`` (increasing) equals ``target``.

    Regula falsi with the Illinois modification (Dowell and Jarratt 1971): superlinear, and it
    keeps the root bracketed.
    """
    lo, f_lo = 0.0, -target  # no running batch: no clients in the loop
    f_hi = concurrency_at(hi) - target
    side = 0
    b = hi
    for _ in range(200):
        b = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f = concurrency_at(b) - target
        if abs(f) <= 1e-9 * target or hi - lo <= 1e-12 * hi:
            break
        if (f > 0) == (f_hi > 0):
            hi, f_hi = b, f
            if side == 1:
                f_lo /= 2
            side = 1
        else:
            lo, f_lo = b, f
            if side == -1:
                f_hi /= 2
            side = -1
    return b


def after_wave(
    clients: Num, rate: Num, ttft_s: Num, itl_s: Num, step_s: Num, output_tokens: int, think_s: Num = 0.0
) -> tuple[Num, Num]:
    """(ITL, rate) once TTFT holds the wave: the steady state's cycle N / X less the think time Z
    and TTFT over the O-1 decode steps (the prefills the wave runs before the first tokens no
    longer stall the decode), at least the bare step t(B); where that floor binds, the rate of the
    longer cycle. Plain arithmetic (floats or arrays)."""
    itl = maximum((clients / rate - think_s - ttft_s) / (output_tokens - 1), step_s)
    itl = minimum(itl, itl_s)  # the wave never makes decoding slower than the steady state's
    return itl, clients / (think_s + ttft_s + (output_tokens - 1) * itl)
