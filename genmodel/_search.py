"""Plan search: every parallel layout, precision and running batch of a deployment, against SLOs.

Modelling assumptions:
- A candidate is a parallel layout (tp x pp x dp with ep dividing tp*dp; cp = 1), a precision and
  a running decode batch B per replica (the server's ``max_num_seqs``), served in the steady state
  of :func:`~genmodel._servingpoint.serving_point`: the clients N that keep it there, the request rate,
  mean TTFT and inter-token latency. Layouts use exactly the device budget (dp makes replicas).
- Evaluation is vectorised: for each layout and precision, one prefill (scalar) and one decode
  step over the whole array of batch sizes run through the same formulas as ``estimate``
  (:func:`~genmodel._phases.decode_pass` with NumPy arrays); the loop runs over layouts (tens to
  hundreds), never over candidates, and the serving figures are made for groups of layouts at once
  (:func:`~genmodel._candidates.serving_arrays`: elementwise, so the same numbers).
- Feasibility: divisibility (heads, KV heads, experts, layers), tensor parallelism inside the
  scale-up domain, memory (B at most the sequences whose KV fits); each failure is a named reason.
- ``wave`` (:mod:`genmodel._wave`): TTFT adds the wave of clients started together, as the
  re-check sees it (one full-budget prefill step per layout, then array arithmetic).
- SLOs: mean TTFT and TPOT, or a TTFT quantile (M/D/1 tail plus the mean wave).
  Goodput is output tokens/s per device of a candidate that meets them (0 otherwise).
- Disaggregated (DistServe, Zhong et al. OSDI 2024): prefill and decode instances from the
  layouts of every device count dividing the budget; a prefill instance serves Poisson arrivals
  (M/D/1) up to the load its TTFT SLO allows, plus the exposed KV transfer; a decode instance
  runs batch B with no prefill between its steps. The pools are sized to balance their rates
  within the budget.
- Traffic (a request rate R instead of a fixed deployment): the budget is the largest instance
  considered; instances of every size in :func:`instance_sizes` are evaluated, and a candidate
  whose instance serves X requests/s within the SLOs needs ceil(R / X) instances. The one with
  the fewest devices in all wins. Each instance is judged at its full-load operating point X,
  while R spread over the instances loads each at most that much: the count is conservative.
  Disaggregated pools are then sized as ceil(R / rate) each.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from genmodel._candidates import (
    OBJECTIVES,
    Candidates,
    Layout,
    Side,
    Slo,
    check_objective,
    copies_needed,
    serving_arrays,
)
from genmodel._decodes import DENSE_BATCHES, Decode, EpDecodes, batch_grid, decode_side
from genmodel._disaggregate import Disaggregated, Pool, disaggregate
from genmodel._engines import KvPool
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._evaluate import StepCache, reusing_steps
from genmodel._forwardpass import step_terms
from genmodel._interleave import group_terms, interleaved_prefill_s, mixed_steps, prompt_ops
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan, plan_violations
from genmodel._phases import prefill_pass
from genmodel._serving import eager_decode_steps, full_step_s
from genmodel._system import System
from genmodel._wave import Wave, eager_prefill, engine_chunked, prefill_passes
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DENSE_BATCHES",
    "OBJECTIVES",
    "Candidates",
    "Disaggregated",
    "Layout",
    "SearchResult",
    "Slo",
    "batch_grid",
    "check_objective",
    "copies_needed",
    "instance_sizes",
    "layouts",
    "search",
]

#: the largest device budget a search takes: far beyond any deployment (the CLI's own bound)
MAX_DEVICES = 1_000_000
#: Slo() as a default argument (no targets; frozen, so sharing it is safe)
_NO_SLO = Slo()
#: candidates whose serving figures are made at once (a group of layouts): their arrays stay below
#: glibc's 128 KiB mmap threshold (:data:`genmodel._evaluate._GROUP_BYTES`)
_GROUP_CANDIDATES = 12 * 1024


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layouts(model: ModelSpec, system: System, devices: int) -> Iterator[tuple[Plan, list[str]]]:
    """Every tp x pp x dp (x ep) layout of exactly ``devices`` devices, with why it cannot run."""
    domain = system.fabric[0].num_domain_devices if len(system.fabric) > 1 else None
    below = _divisors(devices)  # every divisor of a divisor of devices is one of these
    for tp in below:
        for pp in [d for d in below if (devices // tp) % d == 0]:
            dp = devices // tp // pp
            eps = [1] if model.moe is None else [d for d in below if (tp * dp) % d == 0]
            for ep in eps:
                plan = Plan(tp=tp, pp=pp, dp=dp, ep=ep)
                why = plan_violations(plan, model, system.device)
                if domain is not None and tp > domain:
                    why.append(f"tp={tp} must fit the scale-up domain of {domain} devices")
                if system.max_devices is not None and devices > system.max_devices:
                    why.append(f"devices={devices} must be <= max_devices={system.max_devices}")
                yield plan, why


def instance_sizes(devices: int, system: System) -> list[int]:
    """Instance sizes considered for a request rate: the divisors of ``devices``, powers of two
    and whole scale-up domains (nodes) up to it."""
    domain = (system.fabric[0].num_domain_devices if len(system.fabric) > 1 else None) or devices
    sizes = set(_divisors(devices)) | {2**i for i in range(devices.bit_length()) if 2**i <= devices}
    sizes |= set(range(domain, devices + 1, domain))
    return sorted(sizes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """What a plan search evaluated, what could run, and why the rest could not."""

    evaluated: int
    feasible: int
    elapsed_s: float
    layouts: tuple[Layout, ...]
    candidates: Candidates
    violations: dict[str, int] = field(default_factory=dict)
    disaggregated: Disaggregated | None = None
    #: the traffic to serve (None: a fixed deployment of the budget)
    request_rate_per_s: float | None = None

    def __repr__(self) -> str:
        """One line: how much was evaluated, could run and met the SLOs, and the main reasons why
        not (the candidates' arrays stay in ``candidates``)."""
        top = sorted(self.violations.items(), key=lambda kv: -kv[1])[:3]
        why = "; ".join(f"{n:,} {reason}" for reason, n in top)
        meets = int(self.candidates.meets_slo.sum())
        return (
            f"SearchResult({self.evaluated:,} candidates over {len(self.layouts):,} layouts in "
            f"{self.elapsed_s:.3g} s: {self.feasible:,} can run, {meets:,} meet the SLOs"
            + (f"; infeasible: {why}" if why else "")
            + ")"
        )

    def ranking(self, objective: str = "goodput", *, meeting_only: bool = False) -> np.ndarray[Any, Any]:
        """Candidate indices, best first, those that meet the SLOs before the rest (with
        ``meeting_only``, only those: the same order, sorting only them).

        ``goodput`` (and ``cost``, ``energy``: on one platform the price and power per device are
        constants, so they rank as goodput does): the most output tokens/s per device, ties to the
        lower TPOT; for a request rate, the fewest devices in all first. ``latency``: the lowest
        TPOT (the most tokens/s per user), ties to goodput, or to the fewest devices for a rate.
        Ties left are in index order (a stable sort).
        """
        import numpy as np

        c = self.candidates
        check_objective(objective)
        some = np.flatnonzero(c.meets_slo) if meeting_only else slice(None)
        # (where the SLOs hold, goodput is the tokens/s per device)
        goodput = c.tokens_per_s_per_device[some] if meeting_only else c.goodput
        tpot = c.tpot_s[some]
        keys: tuple[Any, ...]
        if self.request_rate_per_s is None:
            keys = (-goodput, tpot) if objective == "latency" else (tpot, -goodput)
        else:
            total = (c.instances_for(self.request_rate_per_s) * c.devices)[some]
            keys = (-goodput, total, tpot) if objective == "latency" else (tpot, -goodput, total)
        if meeting_only:  # (a stable sort of a subset keeps its members' relative order)
            return some[np.lexsort(keys)]  # type: ignore[index]
        return np.lexsort((*keys, ~c.meets_slo))

    def best_index(self) -> int | None:
        """The first candidate of :meth:`ranking`, or None if none meets the SLOs."""
        if not self.candidates.meets_slo.any():
            return None
        return int(self.ranking()[0])

    def pareto_indices(self) -> list[int]:
        """Candidates no other beats on both tokens/s per device and per user (by tokens/s per user),
        of those whose running batch the engine's step budget keeps decoding (above it the engine
        runs fewer and queues the other clients: not a point it reaches)."""
        import numpy as np

        c = self.candidates
        if not len(c.batch):
            return []
        per_device, per_user = c.tokens_per_s_per_device, c.tokens_per_s_per_user
        if c.admitted is not None and not c.admitted.all():
            per_device = np.where(c.admitted, per_device, np.nan)  # (NaN is never a new best)
        # By decreasing tokens/s per user (then per device, then index): keep each new best
        # per-device rate (NaN never is one). Of candidates with equal tokens/s per user only the
        # first in that order (the most per device, then the lowest index) can be kept, so an
        # (unstable, fast) sort by tokens/s per user does, each run of equal values reduced to it.
        order = np.argsort(-per_user)  # NaN last, as in lexsort
        key = -per_user[order]
        same = (key[1:] == key[:-1]) | (np.isnan(key[1:]) & np.isnan(key[:-1]))
        firsts = order[np.concatenate([[True], ~same])]
        if same.any():  # runs of equal tokens/s per user: put each run's first in its place
            run = np.cumsum(np.concatenate([[True], ~same])) - 1
            tied = np.flatnonzero(np.concatenate([same, [False]]) | np.concatenate([[False], same]))
            members = order[tied]
            ranked = np.lexsort((members, -per_device[members], run[tied]))
            lead = np.concatenate([[True], run[tied][ranked][1:] != run[tied][ranked][:-1]])
            firsts[run[tied][ranked][lead]] = members[ranked][lead]
        rates = per_device[firsts]
        best_before = np.fmax.accumulate(np.concatenate([[-np.inf], rates[:-1]]))
        return [int(i) for i in firsts[rates > best_before]]


def _reason(text: str) -> str:
    # group violations by kind, not by the numbers in them ("tp=16 must divide ..." -> "tp must divide")
    words = [w.split("=")[0] if "=" in w else w for w in text.split()]
    return " ".join(words)


def _no_layout(
    model: ModelSpec, devices: int, precisions: Sequence[Precision], violations: collections.Counter[str]
) -> InfeasibleError:
    """The error of a search where no layout runs: what was searched, then each reason counted."""
    dtypes = "/".join(dict.fromkeys(p.weight_dtype for p in precisions))
    said = f"no layout of {devices} device{'s' * (devices != 1)} runs {model.id} ({dtypes} weights)"
    counted = [f"{n} layout{'s' * (n != 1)}: {reason}" for reason, n in violations.most_common()]
    return InfeasibleError([": ".join([said, *counted[:1]]), *counted[1:]])


def search(
    model: ModelSpec,
    system: System,
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    slo: Slo = _NO_SLO,
    precisions: Sequence[Precision],
    options: RunOptions = DEFAULT_OPTIONS,
    disaggregated: bool = False,
    request_rate_per_s: float | None = None,
    prefill_chunks: Sequence[int | None] = (None,),
    on_progress: Callable[[int, int], None] | None = None,
    wave: Wave | None = None,
    pool: KvPool | None = None,
) -> SearchResult:
    """Evaluate every layout x precision x running batch of ``devices`` devices (module docstring).

    Args:
        devices: the deployment's devices; with ``request_rate_per_s``, the largest instance.
        request_rate_per_s: traffic to serve (requests/s): instances of every size in
            :func:`instance_sizes` compete on the devices they need in all.
        prefill_chunks: chunked-prefill sizes to search (tokens per chunk; None: one pass). Only
            a longest-gap target (``slo.itl_max_s``) can favour chunking: it adds weight reads to
            the prefill, and bounds the gap a running request sees to a step plus one chunk.
        on_progress: called with (layouts evaluated, layouts in all) before each layout.
        wave: the benchmark client's wave TTFT adds (:mod:`genmodel._wave`; None: steady state).
        pool: the engine's KV pool (``Engine.kv_pool``: what a running sequence holds of it; the
            wave's, when a wave is given; None and no wave: whole sequences).

    Raises:
        SpecError: bad sizes. InfeasibleError: no layout can run at all (the reasons, counted).
    """
    chunks = _check_search(
        devices, input_tokens, output_tokens, precisions, prefill_chunks, request_rate_per_s, slo
    )
    start = time.perf_counter()
    traffic = request_rate_per_s is not None
    tally = _Tally()
    cache = StepCache()
    work = [
        (size, plan, why)
        for size in _sizes(devices, system, traffic=traffic, disaggregated=disaggregated)
        for plan, why in layouts(model, system, size)
    ]
    if wave is not None:
        pool = wave.pool
    decodes = EpDecodes(model, system, work, (input_tokens, output_tokens), cache, pool, wave)
    ranked: dict[int, Wave] = {}  # the wave on each DP size's ranks (as the estimate takes it)
    for done, (size, plan, why) in enumerate(work):
        if on_progress is not None:
            on_progress(done, len(work))
        for precision in precisions:
            if why:
                for _ in chunks:
                    tally.reject(why)
                continue
            on_ranks = None if wave is None else wave.ranked(model.moe is not None, plan.dp, ranked)
            runs = [
                options if c == options.prefill_chunk else replace(options, prefill_chunk=c) for c in chunks
            ]
            # the chunk size changes only the prefill: one decode side, the prefills all together
            decode = decodes.get(done, precision, runs[0])
            prefills: list[tuple[float, float] | None] = [None] * len(runs)
            if decode.most is not None:
                # (a prompt over the engine's budget in its chunks, as _side and the estimate take it)
                chunked = [engine_chunked(on_ranks, input_tokens, run) for run in runs]
                prefills = [*_prefills(model, decode.system, plan, precision, input_tokens, chunked, cache)]
            head = (model, system, plan, precision, input_tokens)
            for run, prefill in zip(runs, prefills, strict=True):
                layout, side = _side(*head, run, tally.violations, decode, prefill, on_ranks, cache)
                tally.add(size, layout, side, candidate=traffic or size == devices, wave=on_ranks)
    if on_progress is not None:
        on_progress(len(work), len(work))
    if not tally.found and not tally.pool:
        raise _no_layout(model, devices, precisions, tally.violations)
    candidates = tally.candidates(slo, input_tokens, output_tokens)
    disagg = None
    if disaggregated:
        disagg = disaggregate(
            model, system, tally.pool, devices, input_tokens, output_tokens, slo, request_rate_per_s
        )
    return SearchResult(
        evaluated=tally.evaluated,
        feasible=len(candidates.batch),
        elapsed_s=time.perf_counter() - start,
        layouts=tuple(tally.found),
        candidates=candidates,
        violations=dict(tally.violations),
        disaggregated=disagg,
        request_rate_per_s=request_rate_per_s,
    )


def _check_search(
    devices: int,
    input_tokens: int,
    output_tokens: int,
    precisions: Sequence[Precision],
    prefill_chunks: Sequence[int | None],
    request_rate_per_s: float | None,
    slo: Slo,
) -> list[int | None]:
    """The chunk sizes to search, without repeats, once the search's arguments are checked.

    Raises:
        SpecError: a non-positive size, devices above MAX_DEVICES, output_tokens < 2, no precision
            or chunk, a rate that is not > 0 and finite, or an infinite latency target.
    """
    for name in ("ttft_s", "tpot_s", "itl_max_s"):  # (Slo refuses one that is not > 0)
        if getattr(slo, name) == math.inf:
            raise SpecError(f"{name}=inf must be a finite number of seconds (None: no target)")
    require_ints(devices=devices, input_tokens=input_tokens, output_tokens=output_tokens)
    if devices > MAX_DEVICES:  # its divisors and layouts would take hours to enumerate
        raise SpecError(f"devices={devices} must be at most {MAX_DEVICES:,}")
    if output_tokens < 2:
        raise SpecError(f"output_tokens={output_tokens} must be >= 2 to plan a serving deployment")
    if not precisions:
        raise SpecError("precisions is empty: give at least one")
    chunks = list(dict.fromkeys(prefill_chunks))
    if not chunks:
        raise SpecError("prefill_chunks is empty: give at least one (None: one pass)")
    for c in chunks:
        if c is not None:
            require_ints(prefill_chunk=c)
    if request_rate_per_s is not None and not 0 < request_rate_per_s < math.inf:
        raise SpecError(
            f"request_rate_per_s={request_rate_per_s!r} must be > 0 and finite (requests per second)"
        )
    return chunks


def _sizes(devices: int, system: System, *, traffic: bool, disaggregated: bool) -> list[int]:
    """Instance sizes to evaluate: every size for a rate, every divisor of the budget for
    disaggregated pools, else the budget itself."""
    if traffic:
        return instance_sizes(devices, system)
    return sorted(_divisors(devices)) if disaggregated else [devices]


@dataclass(slots=True)
class _Tally:
    """What one search has evaluated so far: the layouts that run (with their arrays), the pool of
    instances for disaggregation, and the violations of the rest."""

    violations: collections.Counter[str] = field(default_factory=collections.Counter)
    evaluated: int = 0
    found: list[Layout] = field(default_factory=list)
    parts: list[Side] = field(default_factory=list)
    waves: list[Wave | None] = field(default_factory=list)  # the wave on each part's ranks
    sizes_of: list[float] = field(default_factory=list)  # devices of each found layout
    pool: Pool = field(default_factory=dict)

    def reject(self, why: list[str]) -> None:
        """Count a candidate that cannot run, by the kinds of its violations."""
        self.evaluated += 1
        for w in why:
            self.violations[_reason(w)] += 1

    def add(
        self,
        size: int,
        layout: Layout | None,
        side: Side | None,
        *,
        candidate: bool,
        wave: Wave | None = None,
    ) -> None:
        """Count an evaluated layout (None: it did not fit); keep it for its candidates' serving
        figures when ``candidate``, and in the pool of instances of its size."""
        import numpy as np

        if layout is None or side is None:
            self.evaluated += 1
            return
        self.evaluated += len(side.batch)
        if candidate:
            self.found.append(layout)
            self.sizes_of.append(float(size))
            self.parts.append(side)
            self.waves.append(wave)
        self.pool.setdefault(size, []).append((layout, side.batch, np.asarray(side.step_s, dtype=float)))

    def candidates(self, slo: Slo, input_tokens: int, output_tokens: int) -> Candidates:
        """The kept layouts' candidates, one entry each: their serving figures
        (:func:`~genmodel._candidates.serving_arrays`) over groups of layouts of at most
        :data:`_GROUP_CANDIDATES` candidates (or one layout) that share the wave on their ranks."""
        import numpy as np

        parts, waves, groups, start, size = self.parts, self.waves, [], 0, 0
        for i, side in enumerate(parts):
            if size and (size + len(side.batch) > _GROUP_CANDIDATES or waves[i] is not waves[start]):
                groups.append(serving_arrays(parts[start:i], slo, input_tokens, output_tokens, waves[start]))
                start, size = i, 0
            size += len(side.batch)
        if parts:
            groups.append(serving_arrays(parts[start:], slo, input_tokens, output_tokens, waves[start]))
        figures = ("batch", "concurrency", "ttft_s", "tpot_s", "tokens_per_s_per_device", "rate")
        keys = (*figures, "meets", "admitted")
        cat = {k: np.concatenate([g[k] for g in groups]) if groups else np.zeros(0) for k in keys}
        counts = np.array([len(p.batch) for p in parts], dtype=int)
        return Candidates(
            layout=np.repeat(np.arange(len(parts)), counts),
            batch=cat["batch"],
            concurrency=cat["concurrency"],
            devices=np.repeat(np.array(self.sizes_of, dtype=float), counts),
            rate_per_s=cat["rate"],
            ttft_s=cat["ttft_s"],
            tpot_s=cat["tpot_s"],
            tokens_per_s_per_device=cat["tokens_per_s_per_device"],
            tokens_per_s_per_user=1 / cat["tpot_s"],
            meets_slo=cat["meets"].astype(bool, copy=False),
            admitted=cat["admitted"].astype(bool, copy=False),
        )


def _evaluate(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    input_tokens: int,
    output_tokens: int,
    slo: Slo,
    options: RunOptions,
    violations: collections.Counter[str],
    batches: np.ndarray[Any, Any] | None = None,
    wave: Wave | None = None,
    cache: StepCache | None = None,
) -> tuple[Layout | None, dict[str, np.ndarray[Any, Any]]]:
    """One layout and precision over its whole batch grid (arrays through the estimate's formulas),
    or over the given running ``batches`` per replica, alone: :func:`_side`, then its candidates'
    serving figures (:func:`~genmodel._candidates.serving_arrays`, as the search has them made
    for groups of layouts); ``wave``: the wave term TTFT adds; ``cache``: steps to reuse."""
    args = (input_tokens, output_tokens, options)
    if wave is not None:  # the knobs of the ranks (as the estimate and the search take them)
        wave = wave.on_ranks(moe=model.moe is not None, dp=plan.dp)
    pool = None if wave is None else wave.pool
    decode = decode_side(model, system, plan, precision, *args, None, batches, cache, pool, wave)
    head = (model, system, plan, precision, input_tokens)
    layout, side = _side(*head, options, violations, decode, None, wave, cache)
    if layout is None or side is None:
        return None, {}
    return layout, serving_arrays([side], slo, input_tokens, output_tokens, wave)


def _side(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    input_tokens: int,
    options: RunOptions,
    violations: collections.Counter[str],
    decode: Decode,
    prefill: tuple[float, float] | None,
    wave: Wave | None,
    cache: StepCache | None = None,
) -> tuple[Layout | None, Side | None]:
    """One layout and precision's steps: its decode side (:func:`_decode`), its (prefill, longest
    piece) times (``prefill``, already made by :func:`_prefills`; None: made here) and the wave's
    full step, and with the wave the time D each prompt adds to the others' decode steps
    (:func:`~genmodel._interleave.interleaved_prefill_s`; ``decode``'s steps are padded to the
    engine's CUDA graphs); (None, None) when one sequence per replica does not fit (a violation
    counted). ``cache``: the search's steps (:class:`~genmodel._evaluate.StepCache`)."""
    run_system, most, batch, step_s = decode[:4]
    asked = options.prefill_chunk  # (the layout's: the chunk searched)
    options = engine_chunked(wave, input_tokens, options)  # a prompt over the engine's budget: its chunks
    if most is None or batch is None or step_s is None:
        violations["memory: one sequence per replica does not fit"] += 1
        return None, None
    if prefill is None:
        prefill = _prefills(model, run_system, plan, precision, input_tokens, [options], cache)[0]
    prefill_s, piece_s = prefill
    full = eager_s = shared = None
    host_s = 0.0
    if wave is not None:
        steps = mixed_steps(cache)  # (the search's mixed-step savings so far)
        with reusing_steps(cache):
            mixed = None  # (an engine that mixes: the decode step's operators a prompt's step shares)
            if wave.mixed:  # S(m), and its operators
                m, group = group_terms(model, run_system, plan, precision, wave, input_tokens, options)
                full = prefill_s if m == 1 else float(group.time_s)
                seen = None if steps is None else steps.seen
                mixed = (decode.terms, prompt_ops(group, m, seen), decode.terms_at)
            else:
                full = full_step_s(model, run_system, plan, precision, wave, input_tokens, prefill_s, options)
        step_overhead_s = run_system.device.efficiency.step_overhead_s
        args = (model, plan, precision, wave, input_tokens, options, prefill_s, step_overhead_s)
        host_s, eager_s = eager_prefill(*args)
        step_s = eager_decode_steps(wave, model, plan, batch, step_s, host_s + step_overhead_s)
        # a step with prompt tokens at least an eager one (genmodel._interleave)
        host = (host_s + step_overhead_s if host_s else 0.0, prefill_passes(input_tokens, options), step_s)
        shared = interleaved_prefill_s(wave, batch, input_tokens, prefill_s, full, mixed, steps, host)
        full = max(full, host_s + step_overhead_s)  # one eager step
    layout = Layout(
        plan=plan,
        precision=precision,
        prefill_s=prefill_s,
        max_batch=most,
        prefill_chunk=asked,
    )
    overhead_s = run_system.device.efficiency.request_overhead_s
    sizes = (plan.dp, plan.num_devices, overhead_s)
    return layout, Side(
        batch, step_s, prefill_s, piece_s, full, *sizes, eager_s, host_s, shared, most / plan.dp
    )


#: the time fields of a pass, in the order :attr:`~genmodel._cost.StepTerms.time_s` adds them
_PASS_TIME = ("compute_bound_s", "memory_bound_s", "comm_s", "offload_s", "overhead_s")


def _prefills(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    input_tokens: int,
    runs: Sequence[RunOptions],
    cache: StepCache | None,
) -> list[tuple[float, float]]:
    """Per run options of ``runs`` (which differ at most in ``prefill_chunk``): (prefill time, its
    longest piece's time) of one request's prompt, the figures of
    :func:`~genmodel._phases.prefill_pass`. A prompt in one pass runs through it (the steps of
    layouts with the same tp reused from ``cache``); the pieces of every chunked prompt are
    evaluated together, one array of (new, past) tokens through the same step formulas, and each
    field summed piece after piece as ``prefill_pass`` adds them: the same numbers, in a fraction
    of the time a step per piece takes."""
    import numpy as np

    out: list[tuple[float, float] | None] = []
    new: list[float] = []
    past: list[float] = []
    segments: list[tuple[int, int, int, int]] = []  # (place in out, first piece, pieces, chunk)
    for options in runs:
        cached = min(round(options.prefix_hit_rate * input_tokens), input_tokens - 1)
        chunk = options.prefill_chunk or input_tokens - cached
        starts = range(cached, input_tokens, chunk)
        if len(starts) == 1:
            with reusing_steps(cache):  # layouts with the same tp share most of the prefill's operators
                prefill, piece = prefill_pass(
                    model, system, plan, precision, num_seqs=1.0, input_tokens=input_tokens, options=options
                )
            out.append((float(prefill.time_s), float(piece.time_s)))
            continue
        segments.append((len(out), len(new), len(starts), chunk))
        out.append(None)
        new += [float(min(chunk, input_tokens - s)) for s in starts]
        past += [float(s) for s in starts]
    if segments:
        with reusing_steps(cache):  # the same pieces for every layout: their operators by tp
            terms = step_terms(
                model,
                system,
                plan,
                precision,
                phase="prefill",
                num_seqs=1.0,
                new_tokens=np.array(new),
                past_tokens=np.array(past),
                options=runs[0],  # (the step does not read the chunk size)
            )
        fields = [np.broadcast_to(getattr(terms, name), (len(new),)).tolist() for name in _PASS_TIME]
        for place, first, n, chunk in segments:
            out[place] = _chunked(fields, first, n, new[first + n - 1] < chunk)
    return [o for o in out if o is not None]


def _chunked(fields: list[list[float]], first: int, n: int, remainder: bool) -> tuple[float, float]:
    """(prefill time, longest piece's time) of the ``n`` pieces from ``first`` of ``fields`` (each
    of :data:`_PASS_TIME` per piece); ``remainder``: the last piece is shorter than a chunk."""
    totals = []
    for values in fields:  # (as total.plus(piece) adds them: one piece after another)
        total = values[first]
        for v in values[first + 1 : first + n]:
            total += v
        totals.append(total)
    pieces = [
        a + b + c + d + e for a, b, c, d, e in zip(*(f[first : first + n] for f in fields), strict=True)
    ]
    longest = pieces[-1]  # the last piece, which attends to the most context
    if remainder and pieces[-2] > longest:
        longest = pieces[-2]  # a short remainder after a full chunk
    a, b, c, d, e = totals
    return a + b + c + d + e, longest
