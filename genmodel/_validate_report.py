"""The results of a validation run: one :class:`CaseResult` per covered case, and the
:class:`ValidationReport` that summarises them (MAPE, median, within 25 %, per category and metric,
interval coverage, and the skipped cases with their reasons).

Modelling assumptions: none; this module only holds and summarises results.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from genmodel._intervals import COVERAGE


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One validation case: what was measured, what genmodel predicts, the absolute % error."""

    id: str
    category: str
    metric: str
    measured: float
    predicted: float
    #: concurrency cases: the serving model that predicted it ("simulated" or "closed-form"), and
    #: the simulated engine (None for the closed form and for static cases)
    serving_model: str | None = None
    engine: str | None = None
    #: the interval of the prediction ([lo, hi] at the report's coverage) and the evidence behind it
    predicted_interval: tuple[float, float] | None = None
    evidence: str | None = None
    #: the efficiency profile the prediction used (None: the device file's values)
    profile: str | None = None

    @property
    def inside(self) -> bool | None:
        """Whether the measured value lies in the predicted interval (None without one)."""
        iv = self.predicted_interval
        return None if iv is None else iv[0] <= self.measured <= iv[1]

    @property
    def ape(self) -> float:
        """Absolute percentage error, |predicted - measured| / measured * 100."""
        return abs(self.predicted - self.measured) / abs(self.measured) * 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """Per-case errors and their summaries over the covered cases; skipped cases with reasons."""

    #: the keys of each case in :meth:`to_dict`, in order (a CSV's header even with no case)
    CASE_KEYS: ClassVar[tuple[str, ...]] = (
        "id", "category", "metric", "measured", "predicted", "ape", "serving_model", "engine",
        "predicted_interval", "evidence", "profile",
    )  # fmt: skip

    cases: tuple[CaseResult, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())
    #: the coverage each case's ``predicted_interval`` is built for
    coverage: float = COVERAGE

    def __repr__(self) -> str:
        """One line of summaries (a notebook showed every case: ~100,000 characters for the bundled
        ones); the cases stay in ``cases``, and :meth:`to_dict` gives everything."""
        return (
            f"ValidationReport({len(self.cases)} cases, MAPE {self.mape:.1f} %, median "
            f"{self.median_ape:.1f} %, {self.within_25pct:.0%} within 25 %, "
            f"{self.interval_coverage:.0%} inside their {self.coverage:.0%} interval; "
            f"{len(self.skipped)} skipped)"
        )

    @property
    def interval_coverage(self) -> float:
        """Fraction of covered cases whose measured value lies in their predicted interval."""
        inside = [c.inside for c in self.cases if c.inside is not None]
        return sum(inside) / len(inside) if inside else float("nan")

    def _coverage_by(self, key: Callable[[CaseResult], str]) -> dict[str, dict[str, float]]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for c in self.cases:
            if c.inside is not None:
                groups[key(c)].append(c.inside)
        return {k: {"n": len(v), "inside": sum(v) / len(v)} for k, v in sorted(groups.items())}

    @property
    def mape(self) -> float:
        """Mean absolute percentage error over the covered cases."""
        return statistics.fmean(c.ape for c in self.cases) if self.cases else float("nan")

    @property
    def median_ape(self) -> float:
        """Median absolute percentage error."""
        return statistics.median(c.ape for c in self.cases) if self.cases else float("nan")

    @property
    def within_25pct(self) -> float:
        """Fraction of covered cases with an error of at most 25 %."""
        return sum(c.ape <= 25 for c in self.cases) / len(self.cases) if self.cases else float("nan")

    def _grouped(self, key: Callable[[CaseResult], str]) -> dict[str, dict[str, float]]:
        groups: dict[str, list[float]] = defaultdict(list)
        for c in self.cases:
            groups[key(c)].append(c.ape)
        return {k: {"n": len(v), "mape": statistics.fmean(v)} for k, v in sorted(groups.items())}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (docs/cli.md): cases, mape, median_ape, within_25pct, by_*, skipped."""
        return {
            "cases": [
                {  # (the keys of CASE_KEYS)
                    "id": c.id,
                    "category": c.category,
                    "metric": c.metric,
                    "measured": c.measured,
                    "predicted": c.predicted,
                    "ape": c.ape,
                    "serving_model": c.serving_model,
                    "engine": c.engine,
                    "predicted_interval": None
                    if c.predicted_interval is None
                    else list(c.predicted_interval),
                    "evidence": c.evidence,
                    "profile": c.profile,
                }
                for c in self.cases
            ],
            "covered": len(self.cases),
            # None when no case was predicted (every row skipped): JSON has no NaN
            "mape": self.mape if self.cases else None,
            "median_ape": self.median_ape if self.cases else None,
            "within_25pct": self.within_25pct if self.cases else None,
            "by_category": self._grouped(lambda c: c.category),
            "by_metric": self._grouped(lambda c: c.metric),
            # in-sample on the cases the interval table was fitted on (the bundled ones); the
            # held-out coverage of those is in the table (tools/fit_intervals.py)
            "interval_coverage": {
                "nominal": self.coverage,
                # None when no case has an interval (simulated-only cases: rate, disaggregated)
                "inside": None if math.isnan(self.interval_coverage) else self.interval_coverage,
                "by_category": self._coverage_by(lambda c: c.category),
                "by_metric": self._coverage_by(lambda c: c.metric),
            },
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped],
        }
