"""Disaggregated serving in the plan search: the best prefill and decode instances and their pools.

Modelling assumptions (DistServe, Zhong et al. OSDI 2024):
- Prefill and decode instances come from the layouts of every device count dividing the budget
  (the search's pool of evaluated layouts).
- A prefill instance serves Poisson arrivals (M/D/1) up to the load its TTFT SLO allows, plus the
  exposed KV transfer (:func:`~genmodel._phases.exposed_transfer_s`); a decode instance runs
  batch B with no prefill between its steps.
- Within a device budget the pools are sized to balance their rates; for a request rate R each
  pool is ceil(R / rate) instances, and the cheapest instance of each kind is chosen on its own
  (the two pools' devices add up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from genmodel._candidates import Layout, Slo, copies_needed
from genmodel._model import ModelSpec
from genmodel._phases import exposed_transfer_s, kv_transfer_time
from genmodel._servingpoint import md1_wait_quantile_s, md1_wait_s
from genmodel._system import System

if TYPE_CHECKING:
    import numpy as np

#: the evaluated layouts by instance size: (layout, running batches per replica, decode step times)
Pool = dict[int, list[tuple[Layout, "np.ndarray[Any, Any]", "np.ndarray[Any, Any]"]]]


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


class _Prefill(NamedTuple):
    """The best prefill instance so far: its cost, layout, requests/s and exposed KV transfer."""

    cost: tuple[float, float]
    layout: Layout
    rate: float
    exposed_s: float


class _Decode(NamedTuple):
    """The best decode instance so far: its cost, layout, requests/s, batch and step time."""

    cost: tuple[float, float]
    layout: Layout
    rate: float
    batch: float
    step_s: float


def disaggregate(
    model: ModelSpec,
    system: System,
    pool: Pool,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    slo: Slo,
    request_rate_per_s: float | None = None,
) -> Disaggregated | None:
    """Best prefill instance, best decode instance, and the pool sizes that balance them within
    the budget, or (for a request rate) that serve it with the fewest devices (module docstring).

    Returns:
        The deployment, or None when no instance of either kind meets the SLOs.
    """
    best_p: _Prefill | None = None
    best_d: _Decode | None = None
    for size, instances in pool.items():
        if request_rate_per_s is None and 2 * size > devices:
            continue  # a prefill and a decode instance must fit the budget together
        for layout, batch, step in instances:
            p = _as_prefill(model, system, layout, input_tokens, slo, request_rate_per_s)
            if p is not None and (best_p is None or p.cost < best_p.cost):
                best_p = p
            d = _as_decode(layout, batch, step, output_tokens, slo, request_rate_per_s)
            if d is not None and (best_d is None or d.cost < best_d.cost):
                best_d = d
    if best_p is None or best_d is None:
        return None
    sizes = _pool_sizes(best_p, best_d, devices, request_rate_per_s)
    if sizes is None:
        return None
    served, n_p, n_d = sizes
    pre, dec = best_p.layout, best_d.layout
    p_s = pre.prefill_s
    rho = served / (n_p * pre.plan.dp) * p_s  # each prefill replica's load, within its SLO limit
    ttft = float(p_s + md1_wait_s(rho, p_s) + best_p.exposed_s)
    used = n_p * pre.plan.num_devices + n_d * dec.plan.num_devices
    return Disaggregated(
        prefill=pre,
        decode=dec,
        prefill_instances=n_p,
        decode_instances=n_d,
        decode_batch=best_d.batch,
        request_rate_per_s=served,
        ttft_s=ttft,
        tpot_s=best_d.step_s,
        kv_transfer_exposed_s=best_p.exposed_s,
        tokens_per_s_per_device=served * output_tokens / used,
    )


def _cost(size: int, rate: float, request_rate_per_s: float | None) -> tuple[float, float]:
    """Devices an instance pool needs: per request/s within a budget, or in all for a rate (the two
    pools' devices add up, so each is chosen on its own)."""
    per_rate = size / rate
    if request_rate_per_s is None:
        return (per_rate, 0.0)
    return (size * float(copies_needed(request_rate_per_s, rate)), per_rate)


def _as_prefill(
    model: ModelSpec,
    system: System,
    layout: Layout,
    input_tokens: int,
    slo: Slo,
    request_rate_per_s: float | None,
) -> _Prefill | None:
    """The layout as a prefill instance (requests/s within the TTFT SLO), or None if it serves none."""
    plan, p_s = layout.plan, layout.prefill_s
    transfer = kv_transfer_time(
        model, system, plan, layout.precision, seqs_per_replica=1.0, input_tokens=input_tokens
    )
    exposed = float(exposed_transfer_s(transfer, p_s, model.num_layers))
    rate = _prefill_capacity(p_s, exposed, slo.ttft_s, slo.ttft_quantile) * plan.dp
    if not rate > 0:
        return None
    return _Prefill(_cost(plan.num_devices, rate, request_rate_per_s), layout, rate, exposed)


def _as_decode(
    layout: Layout,
    batch: np.ndarray[Any, Any],
    step: np.ndarray[Any, Any],
    output_tokens: int,
    slo: Slo,
    request_rate_per_s: float | None,
) -> _Decode | None:
    """The layout as a decode instance at its best batch within the TPOT SLO, or None if none is."""
    import numpy as np

    # a decode instance steps its batch with no prefill in between
    ok = np.ones(len(batch), dtype=bool) if slo.tpot_s is None else step <= slo.tpot_s
    if not ok.any():
        return None
    plan = layout.plan
    rates = np.where(ok, batch / ((output_tokens - 1) * step), 0.0) * plan.dp
    i = int(np.argmax(rates))
    cost = _cost(plan.num_devices, rates[i], request_rate_per_s)
    return _Decode(cost, layout, float(rates[i]), float(batch[i]), float(step[i]))


def _pool_sizes(
    prefill: _Prefill, decode: _Decode, devices: int, request_rate_per_s: float | None
) -> tuple[float, int, int] | None:
    """(requests/s served, prefill instances, decode instances): for a rate, each pool ceil(R / its
    rate); within a budget, the integer pools whose balance serves the most (None if none fit)."""
    if request_rate_per_s is not None:
        n_p = int(copies_needed(request_rate_per_s, prefill.rate))
        n_d = int(copies_needed(request_rate_per_s, decode.rate))
        return (request_rate_per_s, n_p, n_d)
    dp_, dd = prefill.layout.plan.num_devices, decode.layout.plan.num_devices
    best = None
    for n_p in range(1, devices // dp_ + 1):
        n_d = (devices - n_p * dp_) // dd
        if n_d < 1:
            break
        served = min(n_p * prefill.rate, n_d * decode.rate)
        if best is None or served > best[0]:
            best = (served, n_p, n_d)
    return best


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
