"""Fitting the interval table: log-ratios of validation cases, held-out coverage, widening factors.

Modelling assumptions:

- A case's log-ratio is ln(measured / predicted) of its headline metric (:data:`METRIC_KIND`:
  the reciprocal metrics change sign). A serving measurement that gives both TTFT and TPOT also
  gives its throughput log-ratio: in a closed loop of N clients, throughput = N x output / e2e with
  e2e = TTFT + (output - 1) x TPOT (Little's law), for the measurement and the prediction alike,
  so the log-ratio of throughput is ln(e2e_predicted / e2e_measured).
- Cases are held out by *unit*: one measurement (the TTFT and TPOT rows of one run go together),
  one device (all its cases), or one architecture family. The widening factor of an evidence level
  is the least w >= 0.5 (in steps of 0.05) whose intervals, built without the held-out unit, hold
  at least the nominal coverage of the held-out cases. A factor below 1 is allowed: the serving
  groups (of a kind, or of a family) hold 20 to 40 log-ratios per metric, where the conformal
  bounds (k = 2 to 4) cover 1 - 2k/(n + 1), up to 85 %, not 80 %; the held-out fit scales them to
  the nominal share.
- A log-ratio's groups (:func:`group_keys`) are those of its serving model, metric, family and
  kind of model (dense or MoE, as :func:`genmodel._intervals.kind_of` tells an estimate's); the
  table stores the narrowest, the wider ones are their unions.
  Held out: calibrated <- one measurement out, transferred
  <- one device out (devices with a measured sibling in their family), datasheet <- one family out.
  A level with no such held-out case takes the factor of the level above; each level's factor is
  at least the one above it, so thinner evidence never narrows an interval; and each mode's factor
  is at least the one fitted on the static and serving cases together (:func:`fit_widening`).

No I/O: the tool tools/fit_intervals.py runs :func:`genmodel.validate` and writes the table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genmodel._errors import SpecError
from genmodel._intervals import (
    COVERAGE,
    EVIDENCE,
    HEADLINE,
    KINDS,
    METRIC_KIND,
    MIN_FAMILY_CASES,
    IntervalTable,
    family,
    family_group,
    log_bounds,
    residual_group,
)

#: the widening factors tried, 0.50 to 8.00
_GRID = tuple(0.5 + 0.05 * i for i in range(151))


@dataclass(frozen=True, slots=True, kw_only=True)
class Residual:
    """One log-ratio ln(measured / predicted) of a headline metric, with what it is held out by."""

    serving_model: str
    metric: str
    log_ratio: float
    hardware: str
    engine: str | None
    #: the measurement it belongs to (cases of one run share it)
    unit: str
    #: the kind of model measured (:data:`~genmodel._intervals.KINDS`; "" if not known)
    kind: str = ""


def residuals(
    rows: Mapping[str, Mapping[str, str]],
    predicted: Mapping[str, tuple[float, str, str | None]],
    kinds: Mapping[str, str] | None = None,
) -> list[Residual]:
    """The log-ratios of validation cases, in the orientation of their headline metric.

    Args:
        rows: validation CSV rows by case id (columns of validation/validation_public.csv).
        predicted: case id -> (predicted value, serving model, engine) for the cases predicted.
        kinds: model (the rows' ``model`` column) -> its kind (:data:`~genmodel._intervals.KINDS`);
            a model not in it has no kind ("").

    Returns:
        One :class:`Residual` per predicted case whose metric has a headline metric, and one
        ``output_tokens_per_s`` residual per serving measurement with both TTFT and TPOT.
    """
    out: list[Residual] = []
    pairs: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    first: dict[str, tuple[Residual, float]] = {}
    for case_id, (value, model, engine) in predicted.items():
        row = rows[case_id]
        if row["metric"] not in METRIC_KIND or not (value > 0 and math.isfinite(value)):
            continue
        headline, sign = METRIC_KIND[row["metric"]]
        unit = measurement_unit(row)
        measured = float(row["measured"])
        r = Residual(
            serving_model=model,
            metric=headline,
            log_ratio=sign * math.log(measured / value),
            hardware=row["hardware"],
            engine=engine,
            unit=unit,
            kind=(kinds or {}).get(row.get("model", ""), ""),
        )
        if r.kind not in ("", *KINDS):
            raise SpecError(f"kind {r.kind!r} of model {row.get('model')} must be one of {', '.join(KINDS)}")
        out.append(r)
        if model != "static" and row["metric"] in ("ttft_s", "tpot_s"):
            pairs[unit][row["metric"]] = (measured, value)
            first.setdefault(unit, (r, float(row["output_tokens"])))
    for unit, pair in pairs.items():
        if len(pair) == 2:
            out.append(_throughput(pair, *first[unit]))
    return out


def _throughput(pair: Mapping[str, tuple[float, float]], like: Residual, output_tokens: float) -> Residual:
    """The throughput log-ratio of one serving measurement from its TTFT and TPOT (Little's law)."""
    steps = output_tokens - 1
    e2e_measured = pair["ttft_s"][0] + steps * pair["tpot_s"][0]
    e2e_predicted = pair["ttft_s"][1] + steps * pair["tpot_s"][1]
    return Residual(
        serving_model=like.serving_model,
        metric="output_tokens_per_s",
        log_ratio=math.log(e2e_predicted / e2e_measured),
        hardware=like.hardware,
        engine=like.engine,
        unit=like.unit,
        kind=like.kind,
    )


#: columns that do not tell one measurement from another (validation's shared-estimate key)
_NOT_RUN = ("id", "category", "metric", "measured")


def measurement_unit(row: Mapping[str, str]) -> str:
    """The key of the measurement a case belongs to: its columns but id, category, metric, value."""
    return "|".join(f"{k}={v}" for k, v in sorted(row.items()) if k not in _NOT_RUN)


def group_keys(r: Residual) -> tuple[str, ...]:
    """The groups a log-ratio belongs to, the narrowest (the one the table stores) first:
    ``<model>/<metric>/<family>/<kind>`` and ``<model>/<metric>/<kind>`` (if its kind is known),
    ``<model>/<metric>/<family>``, ``<model>/<metric>``, ``<model>/all`` and ``all``."""
    metric, fam = f"{r.serving_model}/{r.metric}", family_group(r.hardware)
    kinded = (f"{metric}/{fam}/{r.kind}", f"{metric}/{r.kind}") if r.kind else ()
    return (*kinded, f"{metric}/{fam}", metric, f"{r.serving_model}/all", "all")


def groups(res: Iterable[Residual]) -> dict[str, tuple[float, ...]]:
    """Sorted log-ratios per group (:func:`group_keys`)."""
    g: dict[str, list[float]] = defaultdict(list)
    for r in res:
        for key in group_keys(r):
            g[key].append(r.log_ratio)
    return {k: tuple(sorted(v)) for k, v in sorted(g.items())}


def _mode(r: Residual) -> str:
    return "static" if r.serving_model == "static" else "serving"


def _held_out_bounds(
    res: Sequence[Residual],
    unit_of: Callable[[Residual], str],
    cases: Sequence[int],
    coverage: float,
    min_cases: int,
    min_family_cases: int = MIN_FAMILY_CASES,
) -> list[tuple[float, float, float] | None]:
    """For each case index: (median, lo, hi) of its group's log-ratios without its unit, or None
    when too few are left."""
    out: list[tuple[float, float, float] | None] = []
    cache: dict[str, dict[str, tuple[float, ...]]] = {}
    for i in cases:
        r = res[i]
        unit = unit_of(r)
        if unit not in cache:
            cache[unit] = groups(x for x in res if unit_of(x) != unit)
        table = IntervalTable(
            residuals=cache[unit],
            widening={},
            measured={},
            min_cases=min_cases,
            min_family_cases=min_family_cases,
        )
        try:
            key = residual_group(table, r.serving_model, r.metric, coverage, r.hardware, r.kind or None)
        except SpecError:
            out.append(None)
            continue
        g = table.residuals[key]
        lo, hi = log_bounds(g, coverage)
        mid = 0.5 * (g[(len(g) - 1) // 2] + g[len(g) // 2])
        out.append((mid, lo, hi))
    return out


def _inside(r: float, b: tuple[float, float, float], w: float) -> bool:
    mid, lo, hi = b
    return mid + w * (lo - mid) - 1e-12 <= r <= mid + w * (hi - mid) + 1e-12


def held_out_coverage(
    res: Sequence[Residual],
    unit_of: Callable[[Residual], str],
    *,
    cases: Sequence[int] | None = None,
    coverage: float = COVERAGE,
    widening: float = 1.0,
    min_cases: int = 10,
    min_family_cases: int = MIN_FAMILY_CASES,
) -> tuple[float, int]:
    """The fraction of ``cases`` (indices into ``res``; default all) inside their interval built
    without their unit (``unit_of``), and how many cases could be judged."""
    idx = list(range(len(res))) if cases is None else list(cases)
    bounds = _held_out_bounds(res, unit_of, idx, coverage, min_cases, min_family_cases)
    judged = [(res[i].log_ratio, b) for i, b in zip(idx, bounds, strict=True) if b is not None]
    if not judged:
        return math.nan, 0
    return sum(_inside(r, b, widening) for r, b in judged) / len(judged), len(judged)


def _least_widening(
    res: Sequence[Residual],
    unit_of: Callable[[Residual], str],
    cases: Sequence[int],
    coverage: float,
    min_cases: int,
    min_family_cases: int,
) -> float | None:
    """The least factor of :data:`_GRID` whose held-out coverage of ``cases`` reaches ``coverage``."""
    bounds = _held_out_bounds(res, unit_of, cases, coverage, min_cases, min_family_cases)
    judged = [(res[i].log_ratio, b) for i, b in zip(cases, bounds, strict=True) if b is not None]
    if not judged:
        return None
    for w in _GRID:
        if sum(_inside(r, b, w) for r, b in judged) >= coverage * len(judged) - 1e-9:
            return w
    return _GRID[-1]


def _has_sibling(r: Residual, res: Sequence[Residual]) -> bool:
    fam = family(r.hardware)
    return fam is not None and any(
        _mode(x) == _mode(r) and x.hardware != r.hardware and family(x.hardware) == fam for x in res
    )


def _holdouts(
    res: Sequence[Residual],
) -> dict[str, tuple[Callable[[Residual], str], Callable[[Residual], bool]]]:
    """Per evidence level: the unit held out, and which cases are judged."""
    return {
        "calibrated": (lambda r: r.unit, lambda r: True),
        "transferred": (lambda r: r.hardware, lambda r: _has_sibling(r, res)),
        "datasheet": (lambda r: family(r.hardware) or r.hardware, lambda r: True),
    }


def fit_widening(
    res: Sequence[Residual],
    *,
    coverage: float = COVERAGE,
    min_cases: int = 10,
    min_family_cases: int = MIN_FAMILY_CASES,
) -> dict[str, float]:
    """The widening factor per ``<static|serving>/<evidence>`` (module docstring).

    Each level's factor is the larger of the one fitted on the mode's held-out cases and the one
    fitted on both modes' together: the bundled static cases hold four families and 19 cases, too
    few to show alone how far a prediction transfers, so they borrow the serving cases' evidence.
    """
    fitted: dict[str, float | None] = {}
    for level, (unit_of, judged) in _holdouts(res).items():
        for mode in ("static", "serving", "both"):
            cases = [i for i, r in enumerate(res) if mode in (_mode(r), "both") and judged(r)]
            fitted[f"{mode}/{level}"] = (
                _least_widening(res, unit_of, cases, coverage, min_cases, min_family_cases) if cases else None
            )
    out: dict[str, float] = {}
    for mode in ("static", "serving"):
        floor = _GRID[0]
        for level in EVIDENCE:
            for w in (fitted[f"{mode}/{level}"], fitted[f"both/{level}"]):
                floor = max(floor, floor if w is None else w)
            out[f"{mode}/{level}"] = round(floor, 2)
    return out


def coverage_report(
    res: Sequence[Residual],
    widening: Mapping[str, float],
    *,
    coverage: float = COVERAGE,
    min_cases: int = 10,
    min_family_cases: int = MIN_FAMILY_CASES,
) -> dict[str, dict[str, float]]:
    """Held-out coverage with the fitted factors: per ``<mode>/<evidence>`` and, for the calibrated
    level (one measurement out), per ``<mode>/<family>`` and ``<serving model>/<family>`` (the
    serving models apart; ``by_family``) and per ``serving/<family>/<kind>`` and
    ``serving/<family>/<kind>/<metric>`` (``by_kind``); each with the cases judged (``n/...``)."""

    def held_out(unit_of: Callable[[Residual], str], cases: Sequence[int], w: float) -> tuple[float, int]:
        return held_out_coverage(
            res,
            unit_of,
            cases=cases,
            coverage=coverage,
            widening=w,
            min_cases=min_cases,
            min_family_cases=min_family_cases,
        )

    out: dict[str, dict[str, float]] = {}
    for level, (unit_of, judged) in _holdouts(res).items():
        for mode in ("static", "serving"):
            cases = [i for i, r in enumerate(res) if _mode(r) == mode and judged(r)]
            w = widening[f"{mode}/{level}"]
            frac, n = held_out(unit_of, cases, w)
            if not n:  # no case of this mode is held out at this level
                continue
            out.setdefault(level, {})[mode] = round(frac, 4)
            out[level][f"n/{mode}"] = n
            if level != "calibrated":
                continue
            subsets: dict[tuple[str, str], list[int]] = defaultdict(list)
            for i in cases:
                r = res[i]
                fam = family_group(r.hardware)
                subsets["by_family", f"{mode}/{fam}"].append(i)
                if mode == "serving":
                    subsets["by_family", f"{r.serving_model}/{fam}"].append(i)
                if mode == "serving" and r.kind:
                    subsets["by_kind", f"{mode}/{fam}/{r.kind}"].append(i)
                    subsets["by_kind", f"{mode}/{fam}/{r.kind}/{r.metric}"].append(i)
            for (part, key), sub in sorted(subsets.items()):
                frac, n = held_out(unit_of, sub, w)
                out.setdefault(part, {})[key] = round(frac, 4)
                out[part][f"n/{key}"] = n
    return out


def fit_table(
    res: Sequence[Residual],
    *,
    source: str,
    cases: int,
    coverage: float = COVERAGE,
    min_cases: int = 10,
    min_family_cases: int = MIN_FAMILY_CASES,
) -> dict[str, Any]:
    """The data form of an :class:`~genmodel._intervals.IntervalTable` (what
    :mod:`genmodel._interval_table` holds): log-ratios per group to 1e-4, the widening
    factors, the measured devices and engines, and the held-out coverage.

    Args:
        res: the log-ratios (:func:`residuals`).
        source: what they came from (shown in the generated file).
        cases: how many validation cases were predicted.
        coverage: the coverage the widening factors are fitted for.
        min_cases: the fewest log-ratios a group needs before falling back to a wider one.
        min_family_cases: the fewest a family's group needs (else the metric's group over all
            families serves the family).
    """
    limits = {"min_cases": min_cases, "min_family_cases": min_family_cases}
    widening = fit_widening(res, coverage=coverage, **limits)
    static = sorted({r.hardware for r in res if r.serving_model == "static"})
    serving = sorted({f"{r.hardware}/{r.engine}" for r in res if r.serving_model == "simulated" and r.engine})
    return {
        "source": source,
        "cases": cases,
        "coverage": coverage,
        "min_cases": min_cases,
        "min_family_cases": min_family_cases,
        "evidence": list(EVIDENCE),
        "headline": list(HEADLINE),
        "measured": {"static": static, "serving": serving},
        "widening": widening,
        "held_out": coverage_report(res, widening, coverage=coverage, **limits),
        # the narrowest groups only, each as a string of numbers (the wider groups are their unions)
        "residuals": {k: " ".join(f"{x:.4f}" for x in sorted(v)) for k, v in sorted(_narrowest(res).items())},
    }


def _narrowest(res: Iterable[Residual]) -> dict[str, list[float]]:
    """The log-ratios of each narrowest group (the first of :func:`group_keys`)."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in res:
        out[group_keys(r)[0]].append(r.log_ratio)
    return out
