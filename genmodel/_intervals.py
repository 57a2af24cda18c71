"""How far to trust a number: a multiplicative interval around each headline prediction.

Modelling assumptions:

- The error of a prediction is multiplicative: the log-ratio r = ln(measured / predicted) of a
  headline metric (``ttft_s``, ``tpot_s``, ``output_tokens_per_s``) is drawn from the distribution
  of the same log-ratios on the bundled validation cases of the same *group*: the serving model
  ("static" batch, "simulated" or "closed-form" serving), the headline metric and the device's
  architecture family (:data:`FAMILIES`): platform families miss in different directions (the
  serving TTFT of Blackwell is under-predicted more than Hopper's), so an interval pooled over
  families is too wide for one and too narrow for another. The groups are also split by the
  model's *kind* (:data:`KINDS`: dense, or a mixture of experts), which a query shares with the
  measurements as it shares their family: a prediction of a mixture of experts adds expert
  parallelism, all-to-all dispatch and routing imbalance, which the model treats more coarsely
  (the bundled serving TTFT of DeepSeek on B200 is measured up to 25 times its prediction, that of
  dense Llama-3.1-70B on B200 within 0.8 to 2 times), so an interval over both kinds is too wide
  for a dense model and too narrow for a mixture of experts. The groups are tried in order: the
  family's log-ratios of the kind, the kind's over all families, the family's over both kinds
  (each from ``min_family_cases`` log-ratios on: a family with few measurements, or none: a
  ``datasheet`` prediction, falls through), the metric's over all families; a group with fewer
  than ``min_cases`` falls back to all metrics of that serving model, then to every case. The
  kind comes before the family because, in the bundled cases, the two kinds miss by more than
  the two measured serving families do within a kind (docs/intervals.md).
- The interval at coverage c runs between order statistics of the group's log-ratios: the k-th
  smallest and the k-th largest, k = floor((n + 1)(1 - c) / 2) (split-conformal prediction:
  Vovk, Gammerman and Shafer, *Algorithmic Learning in a Random World*, 2005; Lei et al., "Distribution-
  Free Predictive Inference for Regression", JASA 2018, Sec. 2.2). For exchangeable errors each
  tail then holds at most (1 - c)/2 of new cases. The interval need not contain the prediction
  itself: where the model is biased (serving TTFT on B200 is under-predicted), so is the interval.
- The evidence behind a prediction scales the interval about the group's median log-ratio by a
  factor w, larger as the evidence thins (below 1 only for "calibrated", where the held-out
  coverage of the small family groups' conformal bounds is above nominal): "calibrated" (this
  device, and in serving this engine, has bundled measurements), "transferred" (another device
  of the same architecture family has them, this one has none), "datasheet" (no device of the
  family has any). The factors are fitted by
  :mod:`genmodel._intervalfit` from held-out coverage (leave one measurement, one device, one
  family out) and stored with the log-ratios in :mod:`genmodel._interval_table`, which
  ``python tools/fit_intervals.py`` regenerates.
- Derived figures (e2e latency, tokens/s per device, prefill or decode tokens/s) share the
  interval of the headline metric they are a multiple or the reciprocal of (:data:`METRIC_KIND`).

No I/O: the table is Python data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genmodel._errors import SpecError
from genmodel._interval_table import TABLE
from genmodel._model import ModelSpec
from genmodel._phases import Estimate

#: the default coverage of an interval (a fraction of new measurements it should hold)
COVERAGE = 0.8

#: the fewest log-ratios of one family (one serving model and metric) that make its own group: at
#: 20, the 80 % bounds are the 2nd smallest and 2nd largest (k = 2), not the extremes, and each
#: bundled serving family (24 to 27 log-ratios per metric and serving model) has its own
MIN_FAMILY_CASES = 20

#: the kinds of model the log-ratios are grouped by: a dense feed-forward, or a mixture of experts
#: (routed experts)
KINDS = ("dense", "moe")

#: the evidence levels, from the most to the least measured
EVIDENCE = ("calibrated", "transferred", "datasheet")

#: the headline metrics that carry an interval, in the order of the JSON keys
HEADLINE = ("ttft_s", "tpot_s", "output_tokens_per_s")

#: metric -> (the headline metric whose interval it shares, +1 if proportional to it, -1 if to its
#: reciprocal): tokens/s per device is throughput / devices; prefill tokens/s is batch x input /
#: TTFT; decode tokens/s is batch / TPOT; a static e2e is batch x output / throughput
METRIC_KIND: Mapping[str, tuple[str, int]] = {
    "ttft_s": ("ttft_s", 1),
    "prefill_tokens_per_s_per_device": ("ttft_s", -1),
    "tpot_s": ("tpot_s", 1),
    "decode_tokens_per_s_per_device": ("tpot_s", -1),
    "output_tokens_per_s": ("output_tokens_per_s", 1),
    "output_tokens_per_s_per_device": ("output_tokens_per_s", 1),
    "e2e_s": ("output_tokens_per_s", -1),
}

#: architecture family of each device id in hardware_db (a power mode, ``<id>-30w``, is its
#: device's family): a measurement transfers within a family (same vendor, same generation of
#: matrix units and memory system), not across families
FAMILIES: Mapping[str, str] = {
    "a100-sxm-40gb": "nvidia-ampere",
    "a100-sxm-80gb": "nvidia-ampere",
    "h100-sxm": "nvidia-hopper",
    "h800-sxm": "nvidia-hopper",
    "h200-sxm": "nvidia-hopper",
    "h100-pcie": "nvidia-hopper",
    "h100-nvl": "nvidia-hopper",
    "gh200": "nvidia-hopper",
    "h20": "nvidia-hopper",
    "b200": "nvidia-blackwell",
    "b300": "nvidia-blackwell",
    "gb200": "nvidia-blackwell",
    "gb300": "nvidia-blackwell",
    "l40s": "nvidia-ada",
    "rtx-4090": "nvidia-ada",
    "l4": "nvidia-ada",
    # GB202 (sm_120): warp-level mma tensor cores and GDDR7, not datacenter Blackwell's tcgen05 and HBM
    "rtx-5090": "nvidia-blackwell-gddr7",
    "rtx-pro-6000": "nvidia-blackwell-gddr7",
    "jetson-agx-orin-64gb": "nvidia-orin",
    "jetson-orin-nano-8gb": "nvidia-orin",
    "jetson-orin-nano-super-8gb": "nvidia-orin",
    # unified LPDDR5X SoCs of the Blackwell generation: Thor (sm_110, tcgen05) and GB10 (sm_121, mma)
    "jetson-agx-thor": "nvidia-thor",
    "dgx-spark": "nvidia-gb10",
    "mi300x": "amd-cdna3",
    "mi325x": "amd-cdna3",
    "mi355x": "amd-cdna4",
    "ascend-910b": "huawei-ascend",
    "ascend-910c": "huawei-ascend",
    "gaudi3": "intel-gaudi",
    "tpu-v5e": "google-tpu-v5e",
    "tpu-v6e": "google-tpu-v6e",
}


def family(hardware_id: str) -> str | None:
    """The architecture family of a device id (the longest known id it starts with), or None."""
    known = [k for k in FAMILIES if hardware_id == k or hardware_id.startswith(k + "-")]
    return FAMILIES[max(known, key=len)] if known else None


def family_group(hardware_id: str) -> str:
    """What a device's log-ratios are grouped by: its :func:`family`, else its own id."""
    return family(hardware_id) or hardware_id


def model_kind(model: ModelSpec) -> str:
    """The kind of model (:data:`KINDS`): ``moe`` if it has routed experts, else ``dense`` (what the
    fit groups a case's log-ratios by, and a query names)."""
    return "dense" if model.moe is None else "moe"


def kind_of(est: Estimate) -> str:
    """:func:`model_kind` of the model an estimate is of (it holds routed-expert weights)."""
    return "moe" if est.memory.expert_bytes_per_device > 0 else "dense"


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalTable:
    """The data behind the intervals (:mod:`genmodel._interval_table`, from tools/fit_intervals.py).

    ``residuals``: group -> the sorted log-ratios ln(measured / predicted); a group is
    ``<serving model>/<headline metric>/<family>/<kind>`` (:func:`family_group`, :data:`KINDS`),
    ``<serving model>/<headline metric>/<kind>`` (all families), ``<serving model>/<headline
    metric>/<family>`` (both kinds), ``<serving model>/<headline metric>`` (all families),
    ``<serving model>/all`` or ``all``. ``widening``:
    ``<static|serving>/<evidence>`` -> factor (``serving`` for both serving models; non-decreasing
    as the evidence thins).
    ``measured``: ``static`` -> device ids with static cases; ``serving`` -> ``device/engine``
    pairs with serving cases. ``min_cases``: the fewest log-ratios a group needs;
    ``min_family_cases``: the fewest a family's group needs (else the metric's group over all
    families serves it).
    """

    residuals: Mapping[str, tuple[float, ...]]
    widening: Mapping[str, float]
    measured: Mapping[str, tuple[str, ...]]
    min_cases: int = 10
    min_family_cases: int = MIN_FAMILY_CASES
    cases: int = 0
    source: str = ""
    #: held-out coverage per evidence level and per family, as fitted (for the docs and tests)
    held_out: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __repr__(self) -> str:
        """Short: the table is the default of several functions, and ``help()`` or a notebook's
        signature tooltip showed all of its ~20,000 characters of log-ratios."""
        return f"IntervalTable(cases={self.cases}, groups={len(self.residuals)}, source={self.source!r})"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IntervalTable:
        """The table from its data form (:data:`genmodel._interval_table.TABLE`): the log-ratios of
        each ``<serving model>/<metric>/<family>/<kind>`` group (``<serving
        model>/<metric>/<family>`` for cases of no known kind) as a string of numbers; the wider
        groups are their unions."""
        finest = {
            k: [float(x) for x in (v.split() if isinstance(v, str) else v)]
            for k, v in d["residuals"].items()
            if not k.endswith("all")
        }
        out: dict[str, list[float]] = {"all": []}
        for key, values in finest.items():
            model, metric, *rest = key.split("/")
            wider = [f"{model}/{metric}/{rest[0]}", f"{model}/{metric}/{rest[1]}"] if len(rest) == 2 else []
            wider += [f"{model}/{metric}"] if rest else []
            for group in (key, *wider, f"{model}/all", "all"):
                out.setdefault(group, []).extend(values)
        return cls(
            residuals={k: tuple(sorted(v)) for k, v in out.items()},
            widening={k: float(v) for k, v in d["widening"].items()},
            measured={k: tuple(v) for k, v in d["measured"].items()},
            min_cases=int(d["min_cases"]),
            min_family_cases=int(d.get("min_family_cases", d["min_cases"])),
            cases=int(d.get("cases", 0)),
            source=str(d.get("source", "")),
            held_out=dict(d.get("held_out", {})),
        )


#: the bundled table
BUNDLED = IntervalTable.from_dict(TABLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    """A range [lo, hi] that should hold ``coverage`` of measurements of one prediction."""

    lo: float
    hi: float
    coverage: float
    evidence: str
    #: the residual group it came from, how many log-ratios back it, and its widening factor
    group: str
    num_cases: int
    widening: float

    def as_list(self) -> list[float]:
        """[lo, hi] (the JSON form)."""
        return [self.lo, self.hi]

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in [lo, hi]."""
        return self.lo <= value <= self.hi


def _check_coverage(coverage: float) -> None:
    if not (isinstance(coverage, int | float) and 0 < coverage < 1):
        raise SpecError(f"coverage={coverage!r} must be a fraction between 0 and 1 (exclusive), e.g. 0.8")


def order_k(n: int, coverage: float) -> int:
    """The rank k of the split-conformal bounds: the k-th smallest and k-th largest of n log-ratios,
    k = floor((n + 1)(1 - coverage) / 2); 0 means too few cases for that coverage."""
    return math.floor((n + 1) * (1 - coverage) / 2 + 1e-9)


def fewest_cases(coverage: float) -> int:
    """The fewest log-ratios with a conformal interval at ``coverage`` (k >= 1): 9 for 0.8."""
    return math.ceil(2 / (1 - coverage) - 1 - 1e-9)


def log_bounds(residuals: Sequence[float], coverage: float, widening: float = 1.0) -> tuple[float, float]:
    """The interval of log-ratios at ``coverage``: conformal order statistics, widened about the median.

    Args:
        residuals: sorted log-ratios ln(measured / predicted).
        coverage: fraction (0..1) of new cases the interval should hold.
        widening: factor applied to both bounds' distance from the median.

    Returns:
        (lo, hi) in log space.

    Raises:
        SpecError: too few log-ratios for this coverage.
    """
    n = len(residuals)
    k = order_k(n, coverage)
    if k < 1:
        raise SpecError(f"coverage={coverage} needs at least {fewest_cases(coverage)} cases, not {n}")
    mid = 0.5 * (residuals[(n - 1) // 2] + residuals[n // 2])
    return mid + widening * (residuals[k - 1] - mid), mid + widening * (residuals[n - k] - mid)


def serving_model_of(est: Estimate) -> str:
    """``static``, or the serving model of a serving estimate (``simulated``, ``closed-form``)."""
    return "static" if est.serving is None else est.serving.serving_model


def evidence(
    hardware_id: str, serving_model: str, engine: str | None = None, *, table: IntervalTable = BUNDLED
) -> str:
    """How much measurement backs a prediction on this device in this mode (:data:`EVIDENCE`).

    Static: "calibrated" if the device has static cases. Serving: if the device has serving cases
    with this engine (any engine for the closed form, which models none). Else "transferred" if
    another device of its :func:`family` has cases in that mode, else "datasheet".
    """
    mode = "static" if serving_model == "static" else "serving"
    measured = table.measured.get(mode, ())
    devices = {m.split("/")[0] for m in measured}
    if mode == "static" or engine is None:
        if hardware_id in devices:
            return "calibrated"
    elif f"{hardware_id}/{engine}" in measured:
        return "calibrated"
    fam = family(hardware_id)
    if hardware_id in devices or (fam is not None and any(family(d) == fam for d in devices)):
        return "transferred"
    return "datasheet"


def _chain(
    table: IntervalTable, serving_model: str, headline: str, hardware_id: str | None, kind: str | None
) -> list[tuple[str, int]]:
    """The groups a prediction may take its log-ratios from, the narrowest first, each with the
    fewest log-ratios it serves from: the family's of the kind, the kind's, the family's (each
    from ``min_family_cases``), the metric's, the serving model's, all (from ``min_cases``)."""
    sub = max(table.min_cases, table.min_family_cases)
    fam = None if hardware_id is None else family_group(hardware_id)
    chain = []
    if kind and fam is not None:
        chain.append((f"{serving_model}/{headline}/{fam}/{kind}", sub))
    if kind:
        chain.append((f"{serving_model}/{headline}/{kind}", sub))
    if fam is not None and fam not in KINDS:
        chain.append((f"{serving_model}/{headline}/{fam}", sub))
    wide = (f"{serving_model}/{headline}", f"{serving_model}/all", "all")
    return chain + [(key, table.min_cases) for key in wide]


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise SpecError(f"kind={kind!r} must be one of {', '.join(KINDS)} (or None: either)")


def residual_group(
    table: IntervalTable,
    serving_model: str,
    headline: str,
    coverage: float,
    hardware_id: str | None = None,
    kind: str | None = None,
) -> str:
    """The first group with enough log-ratios for ``coverage``: the metric on the family of
    ``hardware_id`` for models of ``kind``, on all families for that kind, on the family for both
    kinds (each from ``min_family_cases``), the metric on all families, the serving model's
    metrics, all."""
    _check_kind(kind)
    need = max(table.min_cases, fewest_cases(coverage))
    for key, floor in _chain(table, serving_model, headline, hardware_id, kind):
        if len(table.residuals.get(key, ())) >= max(need, floor):
            return key
    raise SpecError(
        f"coverage={coverage} needs at least {need} validation cases per group; the interval table has "
        f"{len(table.residuals.get('all', ()))}"
    )


def _narrower(
    table: IntervalTable,
    serving_model: str,
    headline: str,
    hardware_id: str | None,
    key: str,
    kind: str | None = None,
) -> list[tuple[float, ...]]:
    """The log-ratios of the groups :func:`residual_group` passed over for ``key`` that a lower
    coverage would have used (enough cases for a group, too few for this coverage)."""
    out = []
    for group, floor in _chain(table, serving_model, headline, hardware_id, kind):
        if group == key:
            break
        r = table.residuals.get(group, ())
        if len(r) >= floor:
            out.append(r)
    return out


def interval(
    value: float,
    metric: str,
    *,
    serving_model: str,
    evidence_level: str,
    coverage: float = COVERAGE,
    hardware_id: str | None = None,
    kind: str | None = None,
    table: IntervalTable = BUNDLED,
) -> Interval:
    """The interval of one predicted value.

    Args:
        value: the prediction (in the metric's unit: s, tokens/s).
        metric: a key of :data:`METRIC_KIND` (``ttft_s``, ``decode_tokens_per_s_per_device``, ...).
        serving_model: ``static``, ``simulated`` or ``closed-form``.
        evidence_level: one of :data:`EVIDENCE` (:func:`evidence`).
        coverage: fraction of measurements the interval should hold (default 0.8).
        hardware_id: the device predicted on: its family's log-ratios when there are enough
            (None: those of all families).
        kind: the kind of model predicted (:data:`KINDS`, :func:`kind_of`): its log-ratios when
            there are enough (None: those of both kinds).
        table: the residual data (default: the bundled one).

    Returns:
        An :class:`Interval` with lo <= hi (value x exp of the widened log bounds).

    Raises:
        SpecError: an unknown metric, serving model, kind or evidence level; a coverage outside
            (0, 1) or too high for the cases behind it.
    """
    _check_coverage(coverage)
    if metric not in METRIC_KIND:
        raise SpecError(f"metric={metric!r} must be one of {', '.join(METRIC_KIND)}")
    if evidence_level not in EVIDENCE:
        raise SpecError(f"evidence_level={evidence_level!r} must be one of {', '.join(EVIDENCE)}")
    if serving_model not in ("static", "simulated", "closed-form"):
        raise SpecError(f"serving_model={serving_model!r} must be static, simulated or closed-form")
    headline, sign = METRIC_KIND[metric]
    key = residual_group(table, serving_model, headline, coverage, hardware_id, kind)
    mode = "static" if serving_model == "static" else "serving"
    w = table.widening.get(f"{mode}/{evidence_level}", 1.0)
    lo, hi = log_bounds(table.residuals[key], coverage, w)
    for r in _narrower(table, serving_model, headline, hardware_id, key, kind):
        # a coverage too high for a narrower group's order statistics still spans all of its
        # log-ratios: so an interval never narrows as the coverage asked for grows
        mid = 0.5 * (r[(len(r) - 1) // 2] + r[len(r) // 2])
        lo, hi = min(lo, mid + w * (r[0] - mid)), max(hi, mid + w * (r[-1] - mid))
    if sign < 0:  # the reciprocal of an under-prediction is an over-prediction
        lo, hi = -hi, -lo
    return Interval(
        lo=value * math.exp(lo),
        hi=value * math.exp(hi),
        coverage=coverage,
        evidence=evidence_level,
        group=key,
        num_cases=len(table.residuals[key]),
        widening=w,
    )


def estimate_intervals(
    est: Estimate, *, coverage: float = COVERAGE, table: IntervalTable = BUNDLED
) -> dict[str, Interval]:
    """The interval of each headline metric of an estimate (:data:`HEADLINE` -> :class:`Interval`).

    Args:
        est: the estimate.
        coverage: fraction of measurements each interval should hold (default 0.8).
        table: the residual data (default: the bundled one).

    Raises:
        SpecError: a coverage outside (0, 1) or too high for the bundled cases.
    """
    model = serving_model_of(est)
    level = evidence(est.hardware_id, model, None if est.serving is None else est.serving.engine, table=table)
    return {
        m: interval(
            float(getattr(est, m)),
            m,
            serving_model=model,
            evidence_level=level,
            coverage=coverage,
            hardware_id=est.hardware_id,
            kind=kind_of(est),
            table=table,
        )
        for m in HEADLINE
    }


def parse_risk(risk: str) -> float:
    """The coverage a ``--risk`` level names: ``p80`` -> 0.8 (the ends of the 80 % interval).

    Raises:
        SpecError: not ``p`` and a whole percentage from 50 to 95.
    """
    digits = risk[1:] if isinstance(risk, str) and risk[:1].lower() == "p" else ""
    if not (digits.isascii() and digits.isdigit() and 50 <= int(digits) <= 95):
        raise SpecError(f"risk={risk!r} must be p50 to p95 (p80: the ends of the 80 % interval)")
    return int(digits) / 100


def pessimistic_factors(
    hardware_id: str,
    risk: str,
    *,
    serving_model: str = "closed-form",
    engine: str | None = None,
    kind: str | None = None,
    table: IntervalTable = BUNDLED,
) -> dict[str, Any]:
    """What the pessimistic end of each headline interval is, as a multiple of the prediction.

    The upper end for TTFT and TPOT, the lower end for throughput, of the interval at the coverage
    ``risk`` names (:func:`parse_risk`), for a prediction on ``hardware_id`` by ``serving_model``
    of a model of ``kind`` (:data:`KINDS`; None: both kinds' log-ratios).
    On one platform these are constants, so checking a target on the pessimistic end is checking
    the prediction against the target divided by the factor.

    Returns:
        ``{"risk", "coverage", "evidence", "ttft_s", "tpot_s", "output_tokens_per_s"}`` (factors).

    Raises:
        SpecError: a malformed risk level.
    """
    coverage = parse_risk(risk)
    level = evidence(hardware_id, serving_model, engine, table=table)
    ivs = {
        m: interval(
            1.0,
            m,
            serving_model=serving_model,
            evidence_level=level,
            coverage=coverage,
            hardware_id=hardware_id,
            kind=kind,
            table=table,
        )
        for m in HEADLINE
    }
    return {
        "risk": risk,
        "coverage": coverage,
        "evidence": level,
        "ttft_s": ivs["ttft_s"].hi,
        "tpot_s": ivs["tpot_s"].hi,
        "output_tokens_per_s": ivs["output_tokens_per_s"].lo,
    }
