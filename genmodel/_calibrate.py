"""Calibration: fit an efficiency profile to measurements (bounded least squares on log-error).

The measurements are rows of a validation CSV (:func:`genmodel.read_cases`), all of one device.
Each candidate parameter (a field of :class:`~genmodel._hardware.Efficiency` with fit bounds,
:func:`~genmodel._profiles.fit_bounds`) is scaled to [0, 1] over its physically sane range; the
residual of a row is ``log(predicted / measured)``, so a 10 % miss weighs the same on a 30 ms TTFT
as on a 30,000 tok/s throughput.

Which parameters the data pins down is read off the Jacobian of the residuals at the base
profile (central differences, 5 % of each range): a parameter whose full range moves the
predictions by less than :data:`MIN_SENSITIVITY` (RMS of log) is not pinned. Of the others, the
subset fitted is the one that best explains the base's residual in the linearised model among the
subsets whose unit columns are independent (smallest singular value at least
:data:`MIN_INDEPENDENCE`: the rows can tell the parameters apart) and that hold at most
:func:`max_parameters` parameters (two rows per parameter, plus one); a larger subset only when it
lowers the RMS log-error by more than :data:`MIN_GAIN`. Parameters not fitted keep the base
profile's values. The fit is ``scipy.optimize.least_squares`` (trust-region reflective,
bounded); the cross-validated error refits the same parameters leaving out one row (or one group
of rows: a source) at a time and predicts the rows left out.

Modelling assumptions: none of its own; each prediction is :func:`genmodel.estimate` through
:func:`genmodel._validate.predict_case`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genmodel._calibration import Calibration, CaseFit, ParameterFit
from genmodel._enginepresets import ENGINES
from genmodel._errors import GenModelError, SpecError
from genmodel._hardware import Efficiency
from genmodel._phases import Estimate
from genmodel._profiles import PARAMETERS, Profile, check_parameter, fit_bounds
from genmodel._servingmodel import SERVING_MODELS
from genmodel._simestimate import StepTables
from genmodel._validate import _NOT_ESTIMATE, _check_case, _estimate_case, check_row, read_cases
from genmodel.io import ID_PATTERN, device_profile, load_hardware, load_model, load_profile

#: the least RMS change of log(prediction) over a parameter's whole range that pins it (5 %)
MIN_SENSITIVITY = 0.05
#: the least smallest singular value of the unit-norm columns of the parameters fitted together:
#: below it the data cannot tell them apart
MIN_INDEPENDENCE = 0.1
#: the least drop of the RMS log-error (linearised) that justifies fitting one parameter more (1 %)
MIN_GAIN = 0.01
UNIT_SLIP = 100.0  #: times off its prediction a row is in other units (ms as s: 1000x; bundled: < 5x)
#: how far inside its [0, 1] scaled range a parameter starting on a bound starts the fit
START_INSET = 0.02
# central-difference step, in the [0, 1] scaled parameter
_STEP = 0.05

Rows = Sequence[Mapping[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Problem:
    """The rows to fit, how to predict them, and the candidate parameters with their bounds."""

    rows: tuple[Mapping[str, str], ...]
    measured: tuple[float, ...]
    base: Profile
    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    start: tuple[float, ...]
    serving: str
    engine: str
    #: (the values over the base, a row's estimate inputs, its metric) -> the prediction:
    #: every fit starts at the same point with the same finite-difference steps, so the
    #: leave-one-out refits repeat the full fit's first evaluations (and the report repeats the
    #: base's and the fit's), each a simulation of every serving row
    done: dict[tuple[object, ...], float] = field(default_factory=dict)

    def values(self, u: Sequence[float], names: Sequence[str]) -> dict[str, float]:
        """SI values of the parameters ``names`` at scaled point ``u``."""
        out = {}
        for name, x in zip(names, u, strict=True):
            i = self.names.index(name)
            out[name] = self.lower[i] + min(max(float(x), 0.0), 1.0) * (self.upper[i] - self.lower[i])
        return out

    def scaled(self, name: str, value: float) -> float:
        """``value`` of ``name`` on the [0, 1] scale of its bounds."""
        i = self.names.index(name)
        return (value - self.lower[i]) / (self.upper[i] - self.lower[i])

    def predict(self, values: Mapping[str, float], rows: Sequence[int] | None = None) -> list[float]:
        """Predictions of the rows (all, or the indices ``rows``) with ``values`` over the base."""
        point = tuple(sorted(values.items()))
        profile = None
        # step-cost tables are per deployment and profile: none outlives the point (kept, each
        # evaluation's held on to gigabytes)
        tables = StepTables()
        estimates: dict[tuple[tuple[str, str], ...], Estimate] = {}  # rows of one run: one estimate
        out = []
        for i in range(len(self.rows)) if rows is None else rows:
            row = dict(self.rows[i])
            case = tuple(sorted((k, v) for k, v in row.items() if k not in _NOT_ESTIMATE))
            key = (point, case, row["metric"])
            if key not in self.done:
                if case not in estimates:
                    if profile is None:
                        profile = self.base.with_values(values, how="fitted") if values else self.base
                    estimates[case] = _estimate_case(row, self.serving, self.engine, tables, profile=profile)
                self.done[key] = float(getattr(estimates[case], row["metric"]))
            out.append(self.done[key])
        return out

    def residuals(self, values: Mapping[str, float], rows: Sequence[int] | None = None) -> list[float]:
        """log(predicted / measured) of the rows."""
        index = range(len(self.rows)) if rows is None else rows
        return [
            math.log(p / self.measured[i]) for p, i in zip(self.predict(values, index), index, strict=True)
        ]


def _device_rows(rows: Rows, device: str | None, where: str) -> tuple[str, list[Mapping[str, str]]]:
    """The device id the rows are of, and its rows.

    Raises:
        SpecError: rows of several devices and no ``device``, or no row of ``device``.
    """
    ids = [load_hardware(r["hardware"]).device.id for r in rows]
    if device is None:
        found = sorted(set(ids))
        if len(found) > 1:
            raise SpecError(
                f"{where}: rows from several devices ({', '.join(found)}); give device= (--device)"
            )
        return found[0], list(rows)
    wanted = load_hardware(device).device.id
    mine = [r for r, i in zip(rows, ids, strict=True) if i == wanted]
    if not mine:
        raise SpecError(
            f"{where}: device={device!r} has no rows (the rows are of {', '.join(sorted(set(ids)))})"
        )
    return wanted, mine


def _base_profile(base: str | Profile | None, device: str, rows: Rows) -> Profile:
    """The profile to start from: as given, else the device's own for the rows' engine, else default."""
    if isinstance(base, Profile):
        return base
    if base is not None:
        return load_profile(base)
    engines = {(r.get("engine") or "").strip() for r in rows}
    if len(engines) == 1 and "" not in engines:
        own = device_profile(device, engines.pop())
        if own is not None:
            return own
    return load_profile("default")


def _candidates(parameters: Sequence[str] | None, exclude: Sequence[str] = ()) -> list[str]:
    """The parameters to consider: as given (each must have fit bounds), else every one that has
    but those in ``exclude``."""
    if parameters is None:
        return [p for p in PARAMETERS if fit_bounds(p) is not None and p not in exclude]
    for name in parameters:
        if fit_bounds(check_parameter(name)) is None:
            raise SpecError(f"parameter={name!r} is not fitted (an integer or an engine setting)")
    return list(dict.fromkeys(parameters))


def _jacobian(problem: _Problem) -> list[list[float]]:
    """d log(prediction_i) / d u_j at the base (central differences; one-sided at a bound)."""
    columns = []
    for j, name in enumerate(problem.names):
        u0 = problem.scaled(name, problem.start[j])
        lo, hi = max(u0 - _STEP, 0.0), min(u0 + _STEP, 1.0)
        up = problem.residuals(problem.values([hi], [name]))
        down = problem.residuals(problem.values([lo], [name]))
        columns.append([(a - b) / (hi - lo) for a, b in zip(up, down, strict=True)])
    return [list(r) for r in zip(*columns, strict=True)] if columns else []


def max_parameters(rows: int) -> int:
    """The most parameters ``rows`` measurements may fit: two rows per parameter, plus one, so
    that every parameter is fixed by more than one row and the residual keeps a degree of freedom."""
    return max(rows - 1, 0) // 2


def _identify(
    jac: list[list[float]],
    residual: Sequence[float],
    names: Sequence[str],
    forced: Sequence[str] | None = None,
) -> tuple[dict[str, str], list[float], dict[str, float]]:
    """name -> why it is not fitted (absent: fitted), the singular values of the unit columns of the
    sensitive parameters, and name -> sensitivity (RMS change of log(prediction) over its range).

    The parameters fitted are the subset, of at most :func:`max_parameters` sensitive ones whose
    unit columns are independent (smallest singular value at least :data:`MIN_INDEPENDENCE`), that
    best explains the residual at the base in the linearised model; a larger subset is taken only
    when it lowers the RMS log-error by more than :data:`MIN_GAIN`. With ``forced`` (the
    parameters asked for), exactly those, if the rows pin them down together.

    Raises:
        SpecError: fewer than three rows (no parameter is fixed by more than one row); a forced
            parameter the rows do not pin down, or more of them than the rows support.
    """
    import numpy as np

    rows = len(residual)
    if max_parameters(rows) < 1:
        raise SpecError(f"{rows} usable rows support no fit: at least 3 rows (measurements) are needed")
    j = np.asarray(jac, dtype=float).reshape(rows, len(names))
    norms = np.linalg.norm(j, axis=0) / math.sqrt(rows)
    sensitivity = {name: float(norms[k]) for k, name in enumerate(names)}
    why = {
        name: f"the predictions move {norms[k]:.1%} (RMS) over its whole range"
        for k, name in enumerate(names)
        if norms[k] < MIN_SENSITIVITY
    }
    live = [k for k in range(len(names)) if names[k] not in why]
    if not live:
        return why, [], sensitivity
    unit = j / np.maximum(np.linalg.norm(j, axis=0), 1e-300)
    singular = [float(x) for x in np.linalg.svd(unit[:, live], compute_uv=False)]
    if forced is not None:
        chosen = _forced(forced, names, why, unit, rows)
    else:
        chosen = _best_subset(j, unit, np.asarray(residual, dtype=float), live, max_parameters(rows))
    kept = [names[k] for k in chosen]
    for k in live:
        if k in chosen:
            continue
        trial = unit[:, [*chosen, k]]
        if np.linalg.svd(trial, compute_uv=False)[-1] < MIN_INDEPENDENCE:
            why[names[k]] = f"the rows cannot tell it apart from {', '.join(kept)}"
        elif len(chosen) >= max_parameters(rows):
            why[names[k]] = f"{rows} rows support at most {max_parameters(rows)} parameters"
        else:
            why[names[k]] = f"fitting it too lowers the RMS log-error by less than {MIN_GAIN:.0%}"
    return why, singular, sensitivity


def _forced(
    forced: Sequence[str], names: Sequence[str], why: Mapping[str, str], unit: Any, rows: int
) -> list[int]:
    """The columns of the parameters asked for, if the rows pin them down together.

    Raises:
        SpecError: one is not pinned, they cannot be told apart, or there are too many.
    """
    import numpy as np

    for name in forced:
        if name in why:
            raise SpecError(f"parameter={name} is not pinned down by the {rows} rows: {why[name]}")
    if len(forced) > max_parameters(rows):
        raise SpecError(
            f"parameters={','.join(forced)}: {rows} rows support at most {max_parameters(rows)} parameters"
        )
    cols = [names.index(n) for n in forced]
    if np.linalg.svd(unit[:, cols], compute_uv=False)[-1] < MIN_INDEPENDENCE:
        raise SpecError(
            f"parameters={','.join(forced)} are not pinned down: the {rows} rows cannot tell them apart"
        )
    return cols


def _best_subset(j: Any, unit: Any, residual: Any, live: Sequence[int], most: int) -> list[int]:
    """The columns to fit: per size, the independent subset with the least linearised residual;
    the smallest size within :data:`MIN_GAIN` of the best of all sizes."""
    import itertools

    import numpy as np

    best: list[tuple[float, list[int]]] = []
    for size in range(1, min(most, len(live)) + 1):
        scored = []
        for subset in itertools.combinations(live, size):
            cols = list(subset)
            if np.linalg.svd(unit[:, cols], compute_uv=False)[-1] < MIN_INDEPENDENCE:
                continue
            step, *_ = np.linalg.lstsq(j[:, cols], -residual, rcond=None)
            left = residual + j[:, cols] @ step
            scored.append((float(np.sqrt(np.mean(left**2))), cols))
        if scored:
            best.append(min(scored, key=lambda x: x[0]))
    if not best:
        return []
    floor = min(rms for rms, _ in best)
    return next(cols for rms, cols in best if rms <= floor + MIN_GAIN)


def _least_squares(problem: _Problem, names: Sequence[str], rows: Sequence[int] | None) -> dict[str, float]:
    """The fitted values of ``names`` (SI) on the rows (all, or the indices ``rows``)."""
    from scipy.optimize import least_squares

    if not names:
        return {}
    # A start on a bound (a parameter off by default, e.g. gemm_latency_s = 0) is moved just inside:
    # from the bound itself the trust-region solver does not leave it (its scaling shrinks the step
    # with the distance to the bound), so such a parameter could never be fitted.
    u0 = [
        min(max(problem.scaled(n, problem.start[problem.names.index(n)]), START_INSET), 1.0 - START_INSET)
        for n in names
    ]
    result = least_squares(
        lambda u: problem.residuals(problem.values(u, names), rows),
        u0,
        bounds=(0.0, 1.0),
        diff_step=0.02,
        max_nfev=40 * (len(names) + 1),
    )
    return problem.values(result.x, names)


def _problem(
    rows: list[Mapping[str, str]],
    base: Profile,
    device_efficiency: Any,
    names: list[str],
    serving: str,
    engine: str,
) -> _Problem:
    bounds = [fit_bounds(n) for n in names]
    start = [float(base.values.get(n, getattr(device_efficiency, n))) for n in names]
    return _Problem(
        rows=tuple(rows),
        measured=tuple(float(r["measured"]) for r in rows),
        base=base,
        names=tuple(names),
        lower=tuple(b[0] for b in bounds if b is not None),
        upper=tuple(b[1] for b in bounds if b is not None),
        start=tuple(start),
        serving=serving,
        engine=engine,
    )


def _check_entries(row: Mapping[str, str], where: str) -> None:
    """Refuse (naming ``where``) an unknown metric, model or device: a typo, not a row to leave out."""
    try:
        _check_case(dict(row))
        load_model(row["model"])
        load_hardware(row["hardware"])
    except GenModelError as exc:
        exc.args = (f"{where}: {re.sub(r'^case [^:]*: ', '', str(exc))}",)  # ``where`` names the case
        raise


def _check_units(problem: _Problem, residuals: Sequence[float]) -> None:
    """Refuse a row :data:`UNIT_SLIP` times off its base prediction: its units are not the metric's."""
    for row, residual in zip(problem.rows, residuals, strict=True):
        if abs(residual) > math.log(UNIT_SLIP):
            value, ratio = math.exp(residual) * float(row["measured"]), math.exp(-residual)
            raise SpecError(
                f"case {row['id']}: measured={row['measured']!r} is {ratio:.3g}x its {row['metric']} "
                f"prediction, {value:.4g}: in other units? (a metric's unit is in its name: _s seconds)"
            )


def _usable(
    rows: list[Mapping[str, str]], probe: Callable[[Mapping[str, str]], object]
) -> tuple[list[Mapping[str, str]], list[tuple[str, str]]]:
    """The rows the model can predict, and (id, reason) of those it cannot."""
    good, skipped = [], []
    for row in rows:
        try:
            probe(row)
        except GenModelError as exc:
            skipped.append((row["id"], re.sub(r"^case [^:]*: ", "", str(exc))))  # (the id is beside it)
            continue
        good.append(row)
    if skipped and max_parameters(len(good)) < 1:  # why: not only "0 usable rows"
        raise SpecError(f"{len(skipped)} rows cannot be predicted ({skipped[0][0]}: {skipped[0][1]})")
    return good, skipped


def calibrate(
    cases: str | Path | Rows,
    *,
    device: str | None = None,
    base: str | Profile | None = None,
    parameters: Sequence[str] | None = None,
    profile_id: str | None = None,
    serving: str = SERVING_MODELS[0],
    engine: str = ENGINES[0],
    cross_validate: bool = True,
    group: Callable[[Mapping[str, str]], str] | None = None,
) -> Calibration:
    """Fit an efficiency profile to one device's measurements.

    Args:
        cases: a CSV with the columns of :func:`genmodel.validate` (or its rows).
        device: the device whose rows to fit (an id or alias); needed when the rows hold several.
        base: the profile to start from, whose values the parameters not pinned keep (an id, a
            file or a Profile); default: the device's own profile for the rows' engine, else
            ``default``.
        parameters: the parameters to fit; each must be pinned by the data, or the fit is refused
            (default: every fittable parameter the data pins down).
        profile_id: the id of the fitted profile (default ``<device>-calibrated``): lowercase
            letters, digits, '.', '_' and '-', as every id.
        serving, engine: as :func:`genmodel.validate` (concurrency rows).
        cross_validate: also refit leaving out each row (or group) and predict it.
        group: the group of a row left out together (default: the row alone); e.g. its source.

    Returns:
        A :class:`Calibration`.

    Raises:
        SpecError: a profile id of another form, a malformed CSV or row (an unknown metric), rows
            of several devices without ``device``, fewer than three usable rows, a row :data:`UNIT_SLIP`
            times off its prediction, a parameter unknown, not fittable or not pinned down, or more
            parameters than the rows support. UnknownEntryError: an unknown device, model or profile.
    """
    if profile_id is not None and not re.match(ID_PATTERN, profile_id):  # else --profile FILE refuses it
        raise SpecError(
            f"profile_id={profile_id!r} must be an id: lowercase letters, digits, '.', '_' and '-', "
            "from a letter or digit"
        )
    where = str(cases) if isinstance(cases, str | Path) else "cases"
    raw = read_cases(cases) if isinstance(cases, str | Path) else [dict(r) for r in cases]
    for line, row in enumerate(raw, start=2):
        check_row(row, here := f"{where}: line {line} (case {row.get('id')})")
        _check_entries(row, here)
    device_id, rows = _device_rows(raw, device, where)
    return fit_profile(
        rows,
        base=_base_profile(base, device_id, rows),
        hardware=device_id,
        parameters=parameters,
        profile_id=profile_id,
        serving=serving,
        engine=engine,
        cross_validate=cross_validate,
        group=group,
    )


def fit_profile(
    rows: Rows,
    *,
    base: Profile,
    hardware: str,
    parameters: Sequence[str] | None = None,
    profile_id: str | None = None,
    serving: str = SERVING_MODELS[0],
    engine: str = ENGINES[0],
    cross_validate: bool = True,
    group: Callable[[Mapping[str, str]], str] | None = None,
    exclude: Sequence[str] = (),
) -> Calibration:
    """Fit ``base``'s parameters to checked validation rows (of any devices; see :func:`calibrate`).

    Args:
        rows: validation rows, already checked (:func:`genmodel._validate.check_row`).
        base: the profile to start from; parameters it does not set start at the values of
            ``hardware``'s device file (or :class:`Efficiency`'s defaults for a label that is no
            device id).
        hardware: the device id the profile is for (its ``hardware`` list), or a label.
        parameters, profile_id, serving, engine, cross_validate, group: as :func:`calibrate`.
        exclude: parameters not to consider when ``parameters`` is None (they keep the base's).

    Raises:
        SpecError: as :func:`calibrate`.
    """
    names = _candidates(parameters, exclude)
    try:
        efficiency = load_hardware(hardware).device.efficiency
    except GenModelError:
        efficiency = Efficiency()
    usable, skipped = _usable(
        list(rows), lambda r: _estimate_case(dict(r), serving, engine, None, profile=base)
    )
    problem = _problem(usable, base, efficiency, names, serving, engine)
    forced = None if parameters is None else names
    _check_units(problem, residuals := problem.residuals({}))
    why, singular, sensitivity = _identify(_jacobian(problem), residuals, names, forced)
    chosen = [n for n in names if n not in why]
    if not chosen:
        raise SpecError(
            f"the {len(usable)} rows pin down no parameter; " + "; ".join(f"{k}: {v}" for k, v in why.items())
        )
    fitted = _least_squares(problem, chosen, None)
    held = _held_out(problem, chosen, group) if cross_validate else [None] * len(usable)
    fit = _Fit(values=fitted, why=why, sensitivity=sensitivity, singular=tuple(singular), held=tuple(held))
    return _result(problem, fit, hardware, profile_id, skipped, efficiency)


def _held_out(
    problem: _Problem, names: Sequence[str], group: Callable[[Mapping[str, str]], str] | None
) -> list[float | None]:
    """Each row predicted by the fit on the rows outside its group (None where no fit is possible)."""
    keys = [group(r) if group is not None else r["id"] + f"#{i}" for i, r in enumerate(problem.rows)]
    out: list[float | None] = [None] * len(problem.rows)
    for key in dict.fromkeys(keys):
        inside = [i for i, k in enumerate(keys) if k != key]
        if len(inside) < len(names) + 1:
            continue
        values = _least_squares(problem, names, inside)
        left = [i for i, k in enumerate(keys) if k == key]
        for i, p in zip(left, problem.predict(values, left), strict=True):
            out[i] = p
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Fit:
    values: Mapping[str, float]
    why: Mapping[str, str]
    sensitivity: Mapping[str, float]
    singular: tuple[float, ...]
    held: tuple[float | None, ...]


def _result(
    problem: _Problem,
    fit: _Fit,
    device_id: str,
    profile_id: str | None,
    skipped: Sequence[tuple[str, str]],
    efficiency: Any,
) -> Calibration:
    base, fitted, why = problem.base, fit.values, fit.why
    ids = [r["id"] for r in problem.rows]
    profile = Profile(
        id=profile_id or f"{device_id}-calibrated",
        name=f"{device_id} calibrated on {len(ids)} measurements",
        values={**base.values, **fitted},
        provenance={
            **{
                k: f"base: profile {base.id}, {v}" if k in base.values else v
                for k, v in base.provenance.items()
            },
            **{k: f"fitted on {', '.join(ids)}: genmodel calibrate" for k in fitted},
        },
        hardware=(device_id,),
        engines=tuple(sorted({(r.get("engine") or "").strip() for r in problem.rows} - {""})),
        source=f"genmodel calibrate from base profile {base.id} on {len(ids)} measurements",
    )
    params = []
    for name in PARAMETERS:
        start = float(base.values.get(name, getattr(efficiency, name)))
        bounds = fit_bounds(name)
        status = "fitted" if name in fitted else ("not pinned" if name in why else "not fitted")
        params.append(
            ParameterFit(
                name=name,
                base=start,
                value=float(fitted.get(name, start)),
                status=status,
                sensitivity=fit.sensitivity.get(name),
                bounds=bounds,
                note=why.get(name, ""),
            )
        )
    before = problem.predict({})
    after = problem.predict(fitted)
    cases = tuple(
        CaseFit(id=r["id"], metric=r["metric"], measured=m, before=b, after=a, held_out=h)
        for r, m, b, a, h in zip(problem.rows, problem.measured, before, after, fit.held, strict=True)
    )
    return Calibration(
        profile=profile,
        hardware=device_id,
        base=base.id,
        parameters=tuple(params),
        cases=cases,
        singular_values=fit.singular,
        skipped=tuple(skipped),
    )
