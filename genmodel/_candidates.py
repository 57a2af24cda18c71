"""What the plan search works on: latency targets, the layouts it keeps, and its candidates.

Modelling assumptions:
- A candidate is a parallel layout and precision (:class:`Layout`) at one running decode batch per
  replica, in the steady state of a continuously batching server; :class:`Candidates` holds every
  evaluated one as parallel arrays.
- A deployment serving X requests/s covers a rate R with ceil(R / X) copies of it
  (:func:`copies_needed`), counted conservatively at each copy's full-load operating point.
- A candidate's serving figures (:func:`serving_arrays`) are the closed form's at its running
  batch, with the wave and the frontend time, made for groups of layouts at once: elementwise, so
  each candidate's are what its layout alone gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from genmodel._errors import SpecError, did_you_mean
from genmodel._parallel import Plan
from genmodel._units import Num, ceil, maximum
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np

    from genmodel._servingpoint import ServingPoint
    from genmodel._wave import Wave


#: the statistics a latency target may name at the edges (``--ttft-slo p99:2s``), as quantiles
#: (None: the mean)
SLO_STATISTICS: Mapping[str, float | None] = MappingProxyType(
    {"mean": None, "p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
)


def statistic_name(quantile: float | None) -> str:
    """``mean`` for None, else ``p`` and the percentile: 0.99 -> ``p99``, 0.999 -> ``p99.9``."""
    return "mean" if quantile is None else f"p{quantile * 100:.10g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """Latency targets in seconds (None: no target): TTFT and TPOT, each a mean or a quantile
    (``ttft_quantile=0.99``: the p99 TTFT), and the longest inter-token gap (what chunked prefill
    bounds).

    The closed form (the search) judges a TTFT quantile by the M/D/1 tail and a TPOT quantile by
    the mean inter-token latency (its steady state has no spread of TPOT across requests); the
    serving simulation that re-checks the best candidates judges both on its per-request figures.
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    ttft_quantile: float | None = None
    tpot_quantile: float | None = None
    #: the longest gap between two tokens of a running request: a decode step plus the prefill
    #: piece run between two steps (the whole prompt, or its longest chunk with chunked prefill)
    itl_max_s: float | None = None

    def __post_init__(self) -> None:
        for name, keyword in (
            ("ttft_s", "ttft_slo_s"),
            ("tpot_s", "tpot_slo_s"),
            ("itl_max_s", "itl_max_slo_s"),
        ):
            value = getattr(self, name)
            # named by plan's keyword; a string ('50ms', the CLI's spelling) is refused here, not
            # compared with a number deep in the search
            if value is not None and not (
                isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            ):
                raise SpecError(f"{keyword}={value!r} must be a positive number of seconds (50 ms: 0.05)")
        for name in ("ttft_quantile", "tpot_quantile"):
            q = getattr(self, name)
            if q is not None and not 0 < q < 1:
                raise SpecError(f"{name}={q!r} must be in (0, 1), e.g. 0.9 or 0.99 (None: the mean)")


#: candidates the simulation re-checks per weight dtype by default, and the most it may (``plan``;
#: here, below the search, so that the CLI's help reads it without loading the planner)
DEFAULT_RECHECK = 8
MAX_RECHECK = 1_000

#: what ``plan`` optimises (SearchResult.ranking)
OBJECTIVES = ("goodput", "cost", "energy", "latency")


def check_objective(objective: str) -> None:
    """Raise SpecError unless ``objective`` is one of :data:`OBJECTIVES`."""
    if objective not in OBJECTIVES:
        raise SpecError(
            f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}"
            + did_you_mean(objective, OBJECTIVES)
        )


def copies_needed(request_rate_per_s: Num, capacity_per_s: Num) -> Num:
    """Copies of a deployment serving ``capacity_per_s`` requests/s that serve the whole rate:
    ceil(R / X), at least one (a ratio a rounding error above an integer counts as that integer)."""
    return maximum(ceil(request_rate_per_s / capacity_per_s * (1 - 1e-12)), 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidates:
    """Every evaluated candidate that can run, as parallel arrays (one entry per candidate)."""

    layout: np.ndarray[Any, Any]  # index into SearchResult.layouts
    batch: np.ndarray[Any, Any]  # running batch per replica
    concurrency: np.ndarray[Any, Any]  # clients, whole deployment
    devices: np.ndarray[Any, Any]  # devices of the deployment (one instance in traffic mode)
    rate_per_s: np.ndarray[Any, Any]  # requests completed per second, whole deployment
    ttft_s: np.ndarray[Any, Any]
    tpot_s: np.ndarray[Any, Any]
    tokens_per_s_per_device: np.ndarray[Any, Any]
    tokens_per_s_per_user: np.ndarray[Any, Any]
    #: the SLOs hold and the engine's step budget keeps the running batch decoding (``admitted``)
    meets_slo: np.ndarray[Any, Any]
    #: the running batch is one the engine's step budget keeps decoding
    #: (:func:`~genmodel._instep.admitted_batch`); above it the engine queues the other clients, so
    #: the closed form's figures there are not a point it runs at. None: every candidate's is.
    admitted: np.ndarray[Any, Any] | None = None

    @property
    def within_budget(self) -> np.ndarray[Any, Any]:
        """``admitted``, with None read as every candidate."""
        import numpy as np

        return np.ones(len(self.batch), dtype=bool) if self.admitted is None else self.admitted

    @property
    def goodput(self) -> np.ndarray[Any, Any]:
        """Output tokens/s per device where the SLOs hold, else 0."""
        import numpy as np

        return np.where(self.meets_slo, self.tokens_per_s_per_device, 0.0)

    def instances_for(self, request_rate_per_s: float) -> np.ndarray[Any, Any]:
        """Instances (deployments) needed to serve ``request_rate_per_s``: ceil(R / X), or inf
        where the SLOs do not hold."""
        import numpy as np

        with np.errstate(divide="ignore"):
            need = copies_needed(request_rate_per_s, self.rate_per_s)
        return np.where(self.meets_slo & (self.rate_per_s > 0), need, np.inf)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """A parallel layout and precision that can run, with what the search needs to re-evaluate it."""

    plan: Plan
    precision: Precision
    prefill_s: float
    max_batch: int  # whole deployment
    prefill_chunk: int | None = None  # chunked prefill: tokens per chunk (None: one pass)


class Side(NamedTuple):
    """What the serving figures of one layout's candidates need from its steps: the running batches
    per replica and their decode steps, one request's prefill and its longest piece, the wave's
    full step (None without a wave), the replicas and devices, the frontend's time, and with the
    wave the request's prefill at least its eager passes and the host time H of one
    (:func:`~genmodel._serving.eager_prefill`; the prefill and 0 without a host floor), and the
    time D each request's prompt adds to the others' decode steps at each batch
    (:func:`~genmodel._interleave.interleaved_prefill_s`; None: a lone prefill, without a wave),
    and the most sequences a replica's KV pool runs at what each holds (0: not given)."""

    batch: np.ndarray[Any, Any]
    step_s: Any
    prefill_s: float
    piece_s: float
    full_s: float | None
    dp: int
    devices: int
    overhead_s: float
    eager_prefill_s: float | None = None
    host_s: float = 0.0
    interleaved_s: Any = None
    most: float = 0.0


def serving_arrays(
    sides: Sequence[Side], slo: Slo, input_tokens: int, output_tokens: int, wave: Wave | None
) -> dict[str, np.ndarray[Any, Any]]:
    """The serving figures of the candidates of ``sides``, one layout's after another: the
    steady state at each running batch (:func:`~genmodel._servingpoint.serving_at_batch`), the wave
    TTFT adds (``wave``), and the SLOs. Each formula runs once over all of them, a layout's
    numbers repeated over its candidates: the operations are elementwise, so every candidate's
    figures are the ones its layout alone gives (a plan search evaluates layouts a group at a time).
    """
    import numpy as np

    # here, not above: the CLI's help reads DEFAULT_RECHECK without loading the serving model
    from genmodel._instep import admitted_batch
    from genmodel._servingpoint import serving_at_batch, ttft_quantile_s

    counts = [len(s.batch) for s in sides]

    def each(values: list[Any]) -> Any:  # (one side: its own numbers, as they are)
        return values[0] if len(sides) == 1 else np.repeat(np.array(values, dtype=float), counts)

    def joined(arrays: list[Any]) -> Any:
        return arrays[0] if len(sides) == 1 else np.concatenate(arrays)

    def points(value: Any, side: Side) -> Any:  # (a side's figure at each of its batches)
        if type(value) is np.ndarray and value.shape == side.batch.shape:
            return value
        return np.broadcast_to(value, side.batch.shape)

    batch = joined([s.batch for s in sides])
    step_s = joined([points(s.step_s, s) for s in sides])
    prefill_s, piece_s = each([s.prefill_s for s in sides]), each([s.piece_s for s in sides])
    think_s = 0.0 if wave is None else wave.reply_latency_s  # the clients' replies: out of the engine
    shared = None  # D, each prompt's time in the others' decode steps (None: a lone prefill P)
    if sides[0].interleaved_s is not None:
        shared = joined([points(s.interleaved_s, s) for s in sides])
    # a client is out of the decode batch for its prefill's eager floor too (its host launches)
    out_s = think_s + each(_eager_floors(sides))
    point = serving_at_batch(
        prefill_s=prefill_s,
        step_s=step_s,
        decode_batch=batch,
        output_tokens=output_tokens,
        think_s=out_s,
        interleaved_s=shared,
    )
    ttft = point.ttft_s if slo.ttft_quantile is None else ttft_quantile_s(point, prefill_s, slo.ttft_quantile)
    rate, itl = point.rate_per_s, point.itl_s
    if wave is not None:
        ttft, itl, rate = _with_wave(
            wave, sides, each, point, (ttft, step_s, prefill_s), input_tokens, output_tokens
        )
        ttft, itl, rate = _in_step(
            wave, sides, point.clients, (ttft, itl, rate), (shared, prefill_s), input_tokens, output_tokens
        )
    # the serving frontend, once, and the client's reply, whose legs lie before the first token too
    ttft = ttft + each([s.overhead_s for s in sides]) + think_s
    meets = np.ones(len(batch), dtype=bool)
    if slo.ttft_s is not None:
        meets &= ttft <= slo.ttft_s
    if slo.tpot_s is not None:
        meets &= itl <= slo.tpot_s
    if slo.itl_max_s is not None:  # a step, then the longest prefill piece before the next one
        meets &= step_s + piece_s <= slo.itl_max_s
    cap = None if wave is None else admitted_batch(wave, input_tokens, output_tokens)
    # a batch the budget's prompts a step cannot keep decoding
    admitted = np.ones(len(batch), dtype=bool) if cap is None else batch <= cap
    meets &= admitted
    dp = each([s.dp for s in sides])
    per_device = rate * output_tokens * dp / each([s.devices for s in sides])
    return {
        "batch": batch,
        "concurrency": np.asarray(point.clients * dp, dtype=float),
        "ttft_s": np.asarray(ttft, dtype=float),
        "tpot_s": np.asarray(itl, dtype=float),
        "tokens_per_s_per_device": np.asarray(per_device, dtype=float),
        "rate": np.asarray(rate * dp, dtype=float),
        "meets": meets,
        "admitted": admitted,
        "step_s": np.asarray(step_s, dtype=float),
    }


def _eager_floors(sides: Sequence[Side]) -> list[float]:
    """What each layout's eager passes add to a request's own prefill (0 without a host floor)."""
    return [(s.eager_prefill_s or s.prefill_s) - s.prefill_s for s in sides]


def _with_wave(
    wave: Wave,
    sides: Sequence[Side],
    each: Callable[[list[Any]], Any],
    point: ServingPoint,
    figures: tuple[Any, Any, Any],
    input_tokens: int,
    output_tokens: int,
) -> tuple[Any, Any, Any]:
    """(TTFT, ITL, rate) of :func:`serving_arrays`' candidates with the wave: ``figures`` are
    their (TTFT, decode step, prefill) without it; ``each`` repeats a layout's number over its
    candidates. As :func:`~genmodel._serving.estimate_serving` adds it: the request's prefill at
    least its eager passes, the wave term, the release-after-launch wait, the ITL after the wave."""
    from genmodel._servingpoint import after_wave, step_under_way_s
    from genmodel._wave import release_wait_s, wave_extra_s

    ttft, step_s, prefill_s = figures
    # a request's own prefill takes at least its eager passes' host time; the load keeps the GPU's
    floored = any(s.host_s for s in sides)  # (an engine without a host floor: no array work)
    eager = each([s.eager_prefill_s or s.prefill_s for s in sides]) if floored else prefill_s
    steady = point.ttft_s + eager - prefill_s if floored else point.ttft_s
    full = each([s.full_s for s in sides])
    under_way = step_under_way_s(point, point.clients, step_s)
    extra = wave_extra_s(wave, point.clients, input_tokens, eager, full, steady, under_way)
    ttft = ttft + extra
    if floored:
        # the floor, and a burst's first tokens that wait for the next eager step's launch
        release = release_wait_s(wave, point.clients, input_tokens, each([s.host_s for s in sides]))
        ttft = ttft + eager - prefill_s + release
    itl, rate = after_wave(
        point.clients,
        point.rate_per_s,
        steady + extra,
        point.itl_s,
        step_s,
        output_tokens,
        wave.reply_latency_s,
    )
    return ttft, itl, rate


def _in_step(
    wave: Wave,
    sides: Sequence[Side],
    clients: Any,
    figures: tuple[Any, Any, Any],
    prefills: tuple[Any, Any],
    input_tokens: int,
    output_tokens: int,
) -> tuple[Any, Any, Any]:
    """(TTFT, ITL, rate) of :func:`serving_arrays`' candidates, ``figures`` their (TTFT, ITL, rate)
    with the wave: where their ``clients`` started together outgrow the engine's on-demand pool,
    the wait for it and its rate, as :func:`~genmodel._instep.pool_wait` gives the estimate's (the
    rate at the in-step batch, from the decode step and the time D each prompt adds there,
    ``prefills``' D or, None, the prefill, interpolated on each layout's batch grid), the part of
    the wait that retractions put mid-decode in the ITL (:mod:`genmodel._midwait`). Only the
    candidates whose whole sequences overflow the pool are worked on."""
    import numpy as np

    from genmodel._instep import in_step_batch, in_step_pool_tokens
    from genmodel._midwait import mid_decode_s, split_wait

    counts = [len(s.batch) for s in sides]
    most = np.repeat([s.most for s in sides], counts)
    held = in_step_pool_tokens(wave, most, input_tokens, output_tokens)
    clients = np.asarray(clients, dtype=float)
    if held is None or not most.all():
        return figures
    pool_tokens = np.asarray(held, dtype=float)
    over = np.flatnonzero(clients * (input_tokens + output_tokens) > pool_tokens)
    if not len(over):  # (every candidate's clients hold their whole sequences in the pool)
        return figures
    ttft, itl, rate = (np.array(np.broadcast_to(f, clients.shape), dtype=float) for f in figures)
    shared, prefill_s = prefills
    at = clients[over]
    running = in_step_batch(at, pool_tokens[over], input_tokens, output_tokens)
    step_s = np.concatenate([np.broadcast_to(s.step_s, s.batch.shape) for s in sides])
    shared_s = np.broadcast_to(prefill_s if shared is None else shared, step_s.shape)
    step_run, shared_run = _on_grids(sides, over, running, (step_s, shared_s))
    lock_rate = running / ((output_tokens - 1) * step_run + running * shared_run)
    eager = np.repeat([s.eager_prefill_s or s.prefill_s for s in sides], counts)[over]
    prefill = np.broadcast_to(prefill_s, clients.shape)[over]
    decode_s = wave.reply_latency_s + (output_tokens - 1) * itl[over] + prefill - eager
    waited = at / lock_rate - decode_s
    binds = (running < np.minimum(at, most[over])) & (waited > ttft[over])
    lengths = (input_tokens, output_tokens)
    moved = mid_decode_s(wave, at, pool_tokens[over], lengths, np.maximum(waited - eager, 0.0))
    waited, itl_split = split_wait(moved, waited, itl[over], output_tokens)
    ttft[over] = np.where(binds, waited, ttft[over])
    itl[over] = np.where(binds, itl_split, itl[over])
    rate[over] = np.where(binds, lock_rate, rate[over])
    return ttft, itl, rate


def _on_grids(sides: Sequence[Side], which: Any, x: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each of ``values`` (one per candidate, over each layout's ascending batch grid) at the
    batches ``x`` of the candidates ``which`` (indices; on their own layout's grid), linearly
    between the grid points around it (extrapolated past the ends)."""
    import numpy as np

    counts = np.array([len(s.batch) for s in sides])
    ends = np.cumsum(counts)
    starts = ends - counts
    batch = np.concatenate([s.batch for s in sides]).astype(float)
    side = np.repeat(np.arange(len(sides)), counts)
    span = 2.0 * float(batch.max()) + 2.0  # (keys ascending over the layouts, each grid in its band)
    own = side[which]
    pos = np.searchsorted(side * span + batch, own * span + x)
    lo = np.clip(pos - 1, starts[own], np.maximum(ends[own] - 2, starts[own]))
    hi = np.minimum(lo + 1, ends[own] - 1)
    gap = batch[hi] - batch[lo]
    frac = np.divide(x - batch[lo], gap, out=np.zeros_like(gap), where=gap > 0)
    return tuple(v[lo] + frac * (v[hi] - v[lo]) for v in values)
