"""What a calibration found: each parameter's fit, each row's predictions, and the errors.

:class:`Calibration` is what :func:`genmodel.calibrate` returns (the fit itself is
:mod:`genmodel._calibrate`): the fitted profile, what the rows pinned down, the mean absolute %
error of the base profile, of the fit and held out, and the RMS of ``log(predicted / measured)``,
the error the fit minimises, beside it (a fit can raise the MAPE while it lowers the RMS log-error,
where one row is far off: those rows are :attr:`Calibration.outliers`).

Modelling assumptions: none; arithmetic on the predictions only.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any

from genmodel._profiles import Profile

#: the |log(predicted / measured)| of the fitted profile beyond which a row is named a possible
#: outlier: e^1 = 2.7 times off, a miss no efficiency within its sane range is meant to hold
OUTLIER_LOG_ERROR = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterFit:
    """One parameter of a calibration: its base and fitted values (SI units) and why.

    ``status`` is ``fitted``, ``not pinned`` (the data cannot fix it; it keeps the base value) or
    ``not fitted`` (no fit bounds: an integer or an engine setting).
    """

    name: str
    base: float
    value: float
    status: str
    #: RMS change of log(prediction) over the parameter's whole range, at the base (None: not fitted)
    sensitivity: float | None
    bounds: tuple[float, float] | None
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseFit:
    """One measurement: the prediction of the base profile, of the fit, and left out of the fit."""

    id: str
    metric: str
    measured: float
    before: float
    after: float
    #: predicted by the fit on the other rows (None: not cross-validated)
    held_out: float | None = None


def _ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured * 100


def _rms_log(pairs: list[tuple[float, float]]) -> float | None:
    """RMS of log(predicted / measured) over (predicted, measured) pairs (None: no pairs)."""
    if not pairs:
        return None
    return math.sqrt(statistics.fmean(math.log(p / m) ** 2 for p, m in pairs))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _log(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """A fitted profile, what the data pinned down, and the error before, after and held out."""

    profile: Profile
    hardware: str
    base: str
    parameters: tuple[ParameterFit, ...]
    cases: tuple[CaseFit, ...]
    #: singular values of the unit-column Jacobian of the candidate parameters (largest first)
    singular_values: tuple[float, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        """A few lines: the parameters fitted and the errors (a notebook showed every field: ~7,000
        characters); every field stays an attribute, and :meth:`to_dict` gives them all."""
        fitted = ", ".join(
            f"{p.name} {p.base:.4g} -> {p.value:.4g}" for p in self.parameters if p.status == "fitted"
        )
        lines = [
            f"Calibration({self.hardware}: profile {self.profile.id} from {self.base}, {len(self.cases)} "
            f"rows, {len(self.skipped)} skipped",
            f"  fitted: {fitted or 'none'}",
            f"  MAPE {_pct(self.mape_before)} -> {_pct(self.mape_after)} in sample, "
            f"{_pct(self.mape_held_out)} cross-validated",
            f"  RMS log error {_log(self.rms_log_before)} -> {_log(self.rms_log_after)} in sample, "
            f"{_log(self.rms_log_held_out)} cross-validated",
        ]
        if self.outliers:
            lines.append(
                f"  possible outliers (> {math.e:.1f}x off after the fit): {', '.join(self.outliers)}"
            )
        return "\n".join(lines) + ")"

    @property
    def fitted(self) -> tuple[str, ...]:
        """The parameters the data pinned down (fitted)."""
        return tuple(p.name for p in self.parameters if p.status == "fitted")

    @property
    def mape_before(self) -> float:
        """Mean absolute % error of the base profile."""
        return statistics.fmean(_ape(c.before, c.measured) for c in self.cases)

    @property
    def mape_after(self) -> float:
        """Mean absolute % error of the fitted profile, on the rows it was fitted on."""
        return statistics.fmean(_ape(c.after, c.measured) for c in self.cases)

    @property
    def mape_held_out(self) -> float | None:
        """Mean absolute % error of the rows predicted by fits that left them out (None: not run)."""
        held = [_ape(c.held_out, c.measured) for c in self.cases if c.held_out is not None]
        return statistics.fmean(held) if held else None

    @property
    def rms_log_before(self) -> float:
        """RMS of log(predicted / measured) of the base profile: the error the fit minimises."""
        return _rms_log([(c.before, c.measured) for c in self.cases]) or 0.0

    @property
    def rms_log_after(self) -> float:
        """RMS of log(predicted / measured) of the fitted profile, on the rows it was fitted on."""
        return _rms_log([(c.after, c.measured) for c in self.cases]) or 0.0

    @property
    def rms_log_held_out(self) -> float | None:
        """RMS of log(predicted / measured) of the rows predicted by fits that left them out."""
        return _rms_log([(c.held_out, c.measured) for c in self.cases if c.held_out is not None])

    @property
    def outliers(self) -> tuple[str, ...]:
        """Ids of the rows the fitted profile misses by more than :data:`OUTLIER_LOG_ERROR` in
        |log(predicted / measured)| (2.7x): possible outliers (a measurement in other units, a
        setting the row does not say), which pull a least-squares fit towards them."""
        return tuple(c.id for c in self.cases if abs(math.log(c.after / c.measured)) > OUTLIER_LOG_ERROR)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: hardware, base, profile id, parameters, errors and the cases."""
        return {
            "hardware": self.hardware,
            "base": self.base,
            "profile": self.profile.id,
            "rows": len(self.cases),
            "fitted": list(self.fitted),
            "parameters": [
                {**dataclasses.asdict(p), "bounds": None if p.bounds is None else list(p.bounds)}
                for p in self.parameters
            ],
            "singular_values": list(self.singular_values),
            "mape_before": self.mape_before,
            "mape_after": self.mape_after,
            "mape_held_out": self.mape_held_out,
            "rms_log_before": self.rms_log_before,
            "rms_log_after": self.rms_log_after,
            "rms_log_held_out": self.rms_log_held_out,
            "outliers": list(self.outliers),
            "cases": [dataclasses.asdict(c) for c in self.cases],
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped],
        }
