"""Plan search: every parallel layout, precision and running batch of a deployment, against SLOs.

Modelling assumptions:
- A candidate is a parallel layout (tp x pp x dp with ep dividing tp*dp; cp = 1), a precision and
  a running decode batch B per replica (the server's ``max_num_seqs``), served in the steady state
  of :func:`~genmodel._phases.serving_point`: the clients N that keep it there, the request rate,
  mean TTFT and inter-token latency. Layouts use exactly the device budget (dp makes replicas).
- Evaluation is vectorised: for each layout and precision, one prefill (scalar) and one decode
  step over the whole array of batch sizes run through the same formulas as ``estimate``
  (:func:`~genmodel._phases.decode_pass` with NumPy arrays); the loop runs over layouts (tens to
  hundreds), never over candidates.
- Feasibility: divisibility (heads, KV heads, experts, layers), tensor parallelism inside the
  scale-up domain, memory (B at most the sequences whose KV fits); each failure is a named reason.
- SLOs: mean TTFT and TPOT, or a TTFT quantile (M/D/1 tail, :func:`~genmodel._phases.ttft_quantile_s`).
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
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._evaluate import StepCache, reusing_steps
from genmodel._hardware import System
from genmodel._memory import max_batch
from genmodel._model import ModelSpec
from genmodel._parallel import Plan, plan_violations
from genmodel._phases import (
    RunOptions,
    decode_pass,
    exposed_transfer_s,
    kv_transfer_time,
    prefill_pass,
    prepare,
)
from genmodel._serving import md1_wait_quantile_s, md1_wait_s, serving_at_batch, ttft_quantile_s
from genmodel._units import HOUR, Num, ceil, maximum
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np

_DEFAULT_OPTIONS = RunOptions()
#: running batch sizes evaluated per replica: every integer up to this, then a geometric tail
DENSE_BATCHES = 1024
_TAIL_POINTS = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """Latency targets in seconds (None: no target): TTFT (a mean or a quantile), TPOT (the mean
    inter-token latency) and the longest inter-token gap (what chunked prefill bounds)."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    ttft_quantile: float | None = None
    #: the longest gap between two tokens of a running request: a decode step plus the prefill
    #: piece run between two steps (the whole prompt, or its longest chunk with chunked prefill)
    itl_max_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "itl_max_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SpecError(f"{name}={value!r} must be > 0 seconds")
        q = self.ttft_quantile
        if q is not None and not 0 < q < 1:
            raise SpecError(f"ttft_quantile={q!r} must be in (0, 1), e.g. 0.9 or 0.99")


#: what ``plan`` optimises (SearchResult.ranking)
OBJECTIVES = ("goodput", "cost", "energy", "latency")


def check_objective(objective: str) -> None:
    """Raise SpecError unless ``objective`` is one of :data:`OBJECTIVES`."""
    if objective not in OBJECTIVES:
        raise SpecError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")


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


def copies_needed(request_rate_per_s: Num, capacity_per_s: Num) -> Num:
    """Copies of a deployment serving ``capacity_per_s`` requests/s that serve the whole rate:
    ceil(R / X), at least one (a ratio a rounding error above an integer counts as that integer)."""
    return maximum(ceil(request_rate_per_s / capacity_per_s * (1 - 1e-12)), 1.0)


def instance_sizes(devices: int, system: System) -> list[int]:
    """Instance sizes considered for a request rate: the divisors of ``devices``, powers of two
    and whole scale-up domains (nodes) up to it."""
    domain = (system.fabric[0].num_domain_devices if len(system.fabric) > 1 else None) or devices
    sizes = set(_divisors(devices)) | {2**i for i in range(devices.bit_length()) if 2**i <= devices}
    sizes |= set(range(domain, devices + 1, domain))
    return sorted(sizes)


def batch_grid(most: float) -> np.ndarray[Any, Any]:
    """Running batch sizes per replica: 1, 2, ... up to DENSE_BATCHES, then geometric up to ``most``."""
    import numpy as np

    top = math.floor(most)
    dense = np.arange(1, min(top, DENSE_BATCHES) + 1, dtype=float)
    if top <= DENSE_BATCHES:
        return dense
    tail = np.unique(np.round(np.geomspace(DENSE_BATCHES, top, _TAIL_POINTS + 1)[1:]))
    return np.concatenate([dense, tail])


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
    meets_slo: np.ndarray[Any, Any]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Disaggregated:
    """The best disaggregated deployment: prefill and decode instances and their pool sizes."""

    prefill: Layout
    decode: Layout
    prefill_instances: int
    decode_instances: int
    decode_batch: float  # per decode instance
    request_rate_per_s: float  # served (traffic mode: the pools' capacity, >= the rate asked)
    ttft_s: float
    tpot_s: float
    kv_transfer_exposed_s: float
    tokens_per_s_per_device: float

    @property
    def devices(self) -> int:
        """Devices of both pools."""
        return (
            self.prefill_instances * self.prefill.plan.num_devices
            + self.decode_instances * self.decode.plan.num_devices
        )


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

    def ranking(self, objective: str = "goodput") -> np.ndarray[Any, Any]:
        """Candidate indices, best first, those that meet the SLOs before the rest.

        ``goodput`` (and ``cost``, ``energy``: on one platform the price and power per device are
        constants, so they rank as goodput does): the most output tokens/s per device, ties to the
        lower TPOT; for a request rate, the fewest devices in all first. ``latency``: the lowest
        TPOT (the most tokens/s per user), ties to goodput, or to the fewest devices for a rate.
        """
        import numpy as np

        c = self.candidates
        check_objective(objective)
        miss = ~c.meets_slo
        if self.request_rate_per_s is None:
            if objective == "latency":
                return np.lexsort((-c.goodput, c.tpot_s, miss))
            return np.lexsort((c.tpot_s, -c.goodput, miss))
        total = c.instances_for(self.request_rate_per_s) * c.devices
        if objective == "latency":
            return np.lexsort((-c.goodput, total, c.tpot_s, miss))
        return np.lexsort((c.tpot_s, -c.goodput, total, miss))

    def best_index(self) -> int | None:
        """The first candidate of :meth:`ranking`, or None if none meets the SLOs."""
        if not self.candidates.meets_slo.any():
            return None
        return int(self.ranking()[0])

    def pareto_indices(self) -> list[int]:
        """Candidates no other beats on both tokens/s per device and per user (by tokens/s per user)."""
        import numpy as np

        c = self.candidates
        if not len(c.batch):
            return []
        per_device, per_user = c.tokens_per_s_per_device, c.tokens_per_s_per_user
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


def search(
    model: ModelSpec,
    system: System,
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    slo: Slo = Slo(),
    precisions: Sequence[Precision],
    options: RunOptions = _DEFAULT_OPTIONS,
    disaggregated: bool = False,
    request_rate_per_s: float | None = None,
    prefill_chunks: Sequence[int | None] = (None,),
) -> SearchResult:
    """Evaluate every layout x precision x running batch of ``devices`` devices (module docstring).

    Args:
        devices: the deployment's devices; with ``request_rate_per_s``, the largest instance.
        request_rate_per_s: traffic to serve (requests/s): instances of every size in
            :func:`instance_sizes` compete on the devices they need in all.
        prefill_chunks: chunked-prefill sizes to search (tokens per chunk; None: one pass). Only
            a longest-gap target (``slo.itl_max_s``) can favour chunking: it adds weight reads to
            the prefill, and bounds the gap a running request sees to a step plus one chunk.

    Raises:
        SpecError: bad sizes. InfeasibleError: no layout can run at all (the reasons, counted).
    """
    import numpy as np

    require_ints(devices=devices, input_tokens=input_tokens, output_tokens=output_tokens)
    if output_tokens < 2:
        raise SpecError(f"output_tokens={output_tokens} must be >= 2 to plan a serving deployment")
    if not precisions:
        raise SpecError("precisions is empty: give at least one")
    traffic = request_rate_per_s is not None
    chunks = list(dict.fromkeys(prefill_chunks))
    if not chunks:
        raise SpecError("prefill_chunks is empty: give at least one (None: one pass)")
    for c in chunks:
        if c is not None:
            require_ints(prefill_chunk=c)
    if request_rate_per_s is not None and not request_rate_per_s > 0:
        raise SpecError(f"request_rate_per_s={request_rate_per_s!r} must be > 0 requests per second")
    start = time.perf_counter()
    violations: collections.Counter[str] = collections.Counter()
    found: list[Layout] = []
    parts: list[dict[str, np.ndarray[Any, Any]]] = []
    evaluated = 0
    if traffic:
        sizes = instance_sizes(devices, system)
    else:
        sizes = sorted(_divisors(devices)) if disaggregated else [devices]
    pool: dict[int, list[tuple[Layout, np.ndarray[Any, Any], np.ndarray[Any, Any]]]] = {}
    grids: dict[int, np.ndarray[Any, Any]] = {}
    cache = StepCache()
    sizes_of: list[float] = []  # devices of each found layout
    for size in sizes:
        for plan, why in layouts(model, system, size):
            for precision, chunk in itertools.product(precisions, chunks):
                if why:
                    evaluated += 1
                    for w in why:
                        violations[_reason(w)] += 1
                    continue
                run = options if chunk == options.prefill_chunk else replace(options, prefill_chunk=chunk)
                layout, arrays = _evaluate(
                    model,
                    system,
                    plan,
                    precision,
                    input_tokens,
                    output_tokens,
                    slo,
                    run,
                    violations,
                    grids=grids,
                    cache=cache,
                )
                if layout is None:
                    evaluated += 1
                    continue
                evaluated += len(arrays["batch"])
                if traffic or size == devices:
                    found.append(layout)
                    sizes_of.append(float(size))
                    parts.append(arrays)
                pool.setdefault(size, []).append((layout, arrays["batch"], arrays["step_s"]))
    if not found and not pool:
        raise InfeasibleError([f"{n} x {reason}" for reason, n in violations.most_common()])
    keys = ("batch", "concurrency", "ttft_s", "tpot_s", "tokens_per_s_per_device", "rate", "meets")
    cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}
    counts = np.array([len(p["batch"]) for p in parts], dtype=int)
    candidates = Candidates(
        layout=np.repeat(np.arange(len(parts)), counts),
        batch=cat["batch"],
        concurrency=cat["concurrency"],
        devices=np.repeat(np.array(sizes_of, dtype=float), counts),
        rate_per_s=cat["rate"],
        ttft_s=cat["ttft_s"],
        tpot_s=cat["tpot_s"],
        tokens_per_s_per_device=cat["tokens_per_s_per_device"],
        tokens_per_s_per_user=1 / cat["tpot_s"],
        meets_slo=cat["meets"].astype(bool, copy=False),
    )
    disagg = None
    if disaggregated:
        disagg = _disaggregate(
            model, system, pool, devices, input_tokens, output_tokens, slo, request_rate_per_s
        )
    return SearchResult(
        evaluated=evaluated,
        feasible=len(candidates.batch),
        elapsed_s=time.perf_counter() - start,
        layouts=tuple(found),
        candidates=candidates,
        violations=dict(violations),
        disaggregated=disagg,
        request_rate_per_s=request_rate_per_s,
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
    grids: dict[int, np.ndarray[Any, Any]] | None = None,
    cache: StepCache | None = None,
) -> tuple[Layout | None, dict[str, np.ndarray[Any, Any]]]:
    """One layout and precision over its whole batch grid (arrays through the estimate's formulas),
    or over the given running ``batches`` per replica. One search's caches: ``grids`` keeps the
    grids made so far by their largest batch (shared, never written), ``cache`` the prefills'
    steps (:class:`~genmodel._evaluate.StepCache`)."""
    import numpy as np

    run_system, extras = prepare(
        model,
        system,
        plan,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ideal=False,
        options=options,
    )
    try:
        most = max_batch(
            model,
            run_system.device,
            plan,
            precision,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            extras=extras,
        )
    except InfeasibleError:
        violations["memory: one sequence per replica does not fit"] += 1
        return None, {}
    with reusing_steps(cache):  # layouts with the same tp share most of the prefill's operators
        prefill, piece = prefill_pass(
            model,
            run_system,
            plan,
            precision,
            num_seqs=1.0,
            input_tokens=input_tokens,
            options=options,
        )
    prefill_s = float(prefill.time_s)
    if batches is not None:
        batch = batches
    elif grids is None:
        batch = batch_grid(most / plan.dp)
    else:  # layouts with as many sequences per replica share one grid
        top = math.floor(most / plan.dp)
        if top not in grids:
            grids[top] = batch_grid(most / plan.dp)
            grids[top].flags.writeable = False  # shared by every layout with this grid
        batch = grids[top]
    past = input_tokens + (output_tokens - 2) / 2
    step_s = decode_pass(
        model, run_system, plan, precision, num_seqs=batch, past_tokens=past, options=options
    ).time_s
    point = serving_at_batch(
        prefill_s=prefill_s, step_s=step_s, decode_batch=batch, output_tokens=output_tokens
    )
    ttft = point.ttft_s if slo.ttft_quantile is None else ttft_quantile_s(point, prefill_s, slo.ttft_quantile)
    meets = np.ones(len(batch), dtype=bool)
    if slo.ttft_s is not None:
        meets &= ttft <= slo.ttft_s
    if slo.tpot_s is not None:
        meets &= point.itl_s <= slo.tpot_s
    if slo.itl_max_s is not None:  # a step, then the longest prefill piece before the next one
        meets &= step_s + float(piece.time_s) <= slo.itl_max_s
    per_device = point.rate_per_s * output_tokens * plan.dp / plan.num_devices
    layout = Layout(
        plan=plan,
        precision=precision,
        prefill_s=prefill_s,
        max_batch=most,
        prefill_chunk=options.prefill_chunk,
    )
    return layout, {
        "batch": batch,
        "concurrency": np.asarray(point.clients * plan.dp, dtype=float),
        "ttft_s": np.asarray(ttft, dtype=float),
        "tpot_s": np.asarray(point.itl_s, dtype=float),
        "tokens_per_s_per_device": np.asarray(per_device, dtype=float),
        "rate": np.asarray(point.rate_per_s * plan.dp, dtype=float),
        "meets": meets,
        "step_s": np.asarray(step_s, dtype=float),
    }


def _disaggregate(
    model: ModelSpec,
    system: System,
    pool: dict[int, list[tuple[Layout, np.ndarray[Any, Any], np.ndarray[Any, Any]]]],
    devices: int,
    input_tokens: int,
    output_tokens: int,
    slo: Slo,
    request_rate_per_s: float | None = None,
) -> Disaggregated | None:
    """Best prefill instance, best decode instance, and the pool sizes that balance them within
    the budget, or (for a request rate) that serve it with the fewest devices."""
    import numpy as np

    q = slo.ttft_quantile

    def cost(size: int, rate: float) -> tuple[float, float]:
        # devices an instance pool needs: per request/s within a budget, or in all for a rate
        # (the two pools' devices add up, so each is chosen on its own)
        per_rate = size / rate
        if request_rate_per_s is None:
            return (per_rate, 0.0)
        return (size * float(copies_needed(request_rate_per_s, rate)), per_rate)

    best_p: tuple[tuple[float, float], Layout, float, float] | None = None  # (cost, layout, rate, exposed)
    best_d: tuple[tuple[float, float], Layout, float, float, float] | None = None  # (+ batch, step)
    for size, instances in pool.items():
        if request_rate_per_s is None and 2 * size > devices:
            continue  # a prefill and a decode instance must fit the budget together
        for layout, batch, step in instances:
            plan, p_s = layout.plan, layout.prefill_s
            transfer = kv_transfer_time(
                model, system, plan, layout.precision, seqs_per_replica=1.0, input_tokens=input_tokens
            )
            exposed = float(exposed_transfer_s(transfer, p_s, model.num_layers))
            rate = _prefill_capacity(p_s, exposed, slo.ttft_s, q) * plan.dp
            if rate > 0 and (best_p is None or cost(plan.num_devices, rate) < best_p[0]):
                best_p = (cost(plan.num_devices, rate), layout, rate, exposed)
            # a decode instance steps its batch with no prefill in between
            ok = np.ones(len(batch), dtype=bool) if slo.tpot_s is None else step <= slo.tpot_s
            if ok.any():
                rates = np.where(ok, batch / ((output_tokens - 1) * step), 0.0) * plan.dp
                i = int(np.argmax(rates))
                if best_d is None or cost(plan.num_devices, rates[i]) < best_d[0]:
                    best_d = (
                        cost(plan.num_devices, rates[i]),
                        layout,
                        float(rates[i]),
                        float(batch[i]),
                        float(step[i]),
                    )
    if best_p is None or best_d is None:
        return None
    _, pre, p_rate, exposed = best_p
    _, dec, d_rate, d_batch, d_step = best_d
    dp_, dd = pre.plan.num_devices, dec.plan.num_devices
    if request_rate_per_s is not None:
        n_p = int(copies_needed(request_rate_per_s, p_rate))
        n_d = int(copies_needed(request_rate_per_s, d_rate))
        best: tuple[float, int, int] | None = (request_rate_per_s, n_p, n_d)
    else:
        # integer pools within the budget: the balance of the two rates decides the served rate
        best = None
        for n_p in range(1, devices // dp_ + 1):
            n_d = (devices - n_p * dp_) // dd
            if n_d < 1:
                break
            served = min(n_p * p_rate, n_d * d_rate)
            if best is None or served > best[0]:
                best = (served, n_p, n_d)
    if best is None:
        return None
    served, n_p, n_d = best
    p_s = pre.prefill_s
    rho = served / (n_p * pre.plan.dp) * p_s  # each prefill replica's load, within its SLO limit
    ttft = float(p_s + md1_wait_s(rho, p_s) + exposed)
    used = n_p * dp_ + n_d * dd
    return Disaggregated(
        prefill=pre,
        decode=dec,
        prefill_instances=n_p,
        decode_instances=n_d,
        decode_batch=d_batch,
        request_rate_per_s=served,
        ttft_s=ttft,
        tpot_s=d_step,
        kv_transfer_exposed_s=exposed,
        tokens_per_s_per_device=served * output_tokens / used,
    )


def _prefill_capacity(
    prefill_s: float, exposed_s: float, ttft_slo_s: float | None, quantile: float | None
) -> float:
    """Requests/s one prefill replica serves with its M/D/1 TTFT within the SLO (0 if even an idle
    one misses it); the load rho is found by bisection when a quantile is the target."""
    if ttft_slo_s is None:
        return 0.95 / prefill_s  # keep a margin below saturation
    slack = ttft_slo_s - prefill_s - exposed_s
    if slack <= 0:
        return 0.0
    if quantile is None:
        # P + md1_wait_s(rho, P) + exposed <= S  <=>  rho <= 2 slack / (2 slack + P)
        return min(2 * slack / (2 * slack + prefill_s), 0.95) / prefill_s
    lo, hi = 0.0, 0.95
    for _ in range(60):
        rho = (lo + hi) / 2
        if md1_wait_quantile_s(rho, prefill_s, quantile) <= slack:
            lo = rho
        else:
            hi = rho
    return lo / prefill_s


def cost_per_million_tokens(system: System, tokens_per_s_per_device: float) -> float | None:
    """USD per million output tokens at the device's hourly price (None without a price)."""
    usd = system.device.usd_per_hour
    if usd is None or tokens_per_s_per_device <= 0:
        return None
    return usd / HOUR / tokens_per_s_per_device * 1e6


def joules_per_token(system: System, tokens_per_s_per_device: float) -> float | None:
    """Energy per output token at TDP (None without a TDP)."""
    tdp = system.device.tdp_w
    if tdp is None or tokens_per_s_per_device <= 0:
        return None
    return tdp / tokens_per_s_per_device
