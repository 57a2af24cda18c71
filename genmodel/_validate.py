"""Validation: predict published measurements with :func:`genmodel.estimate` and report the errors.

A validation CSV has the base columns of validation/validation_public.csv (the plan, precisions,
batch or concurrency, the metric and the measured value) and, optionally, option columns
(:data:`OPTION_COLUMNS`: ``system``, ``cp`` and every run option by its keyword), in the file itself
or in a separate options file keyed by case id (validation/case_options.csv for the public cases).

Concurrency rows with ``disaggregated`` true (columns in :mod:`genmodel._validate_disagg`) are
disaggregated serving cases, each one :func:`genmodel.simulate` with ``disaggregated=True``; rows
with ``mode`` rate (columns in :mod:`genmodel._validate_rate`) are an open loop at a request rate,
simulated, or the closed form's open loop.

Modelling assumptions: none of its own; each case is one :func:`genmodel.estimate`. Concurrency
cases use the serving model asked for (default: the simulation, with the engine of the row's
``engine`` column, else the ``engine`` argument); the step-cost tables are shared between cases of
the same deployment.
"""

from __future__ import annotations

import csv
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from genmodel._api import estimate
from genmodel._enginepresets import ENGINES, MEASURED_ENGINES, engine_preset
from genmodel._engines import Engine
from genmodel._errors import GenModelError, SpecError
from genmodel._hardware import Device
from genmodel._harness import ENGINE_CONFIGS, FRESH_AFTER_WARMUP, harness_engine
from genmodel._intervals import COVERAGE, evidence, interval, kind_of, serving_model_of
from genmodel._options import MAX_TOKENS, OPTION_NAMES, OPTION_SPECS
from genmodel._phases import Estimate
from genmodel._profiles import Profile
from genmodel._servingmodel import SERVING_MODELS, serving_model
from genmodel._simestimate import StepTables
from genmodel._validate_disagg import (
    check_disaggregated_row,
    is_disaggregated_serving,
    predict_disaggregated,
)
from genmodel._validate_rate import (
    SIMULATION_METRICS,
    check_rate_row,
    closed_form_metric,
    is_rate,
    simulate_rate_case,
    simulated_metric,
    spread_keywords,
)
from genmodel._validate_report import CaseResult, ValidationReport
from genmodel.io import device_profile, load_hardware, load_profile

#: Metrics a validation case may name: the numeric keys of an estimate.
METRICS = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "prefill_tokens_per_s_per_device",
    "decode_tokens_per_s_per_device",
)


_COLUMN_NAMES = (  # the base columns, in file order
    "id category mode model hardware devices tp pp ep "
    "dp batch input_tokens output_tokens weight_dtype act_dtype kv_dtype metric measured"
)
_COLUMNS = tuple(_COLUMN_NAMES.split())
#: a row's modes: a static batch, N closed-loop clients, an open loop at a request rate
MODES = ("static", "concurrency", "rate")


def _read_csv(path: str | Path) -> tuple[Path, list[dict[str, str]]]:
    """The rows of a CSV file as dicts; a missing or unreadable file is a SpecError naming it."""
    p = Path(path)
    return p, list(_stream_csv(p))


def _stream_csv(p: Path, required: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """The rows of a CSV file as dicts, read one at a time (the file stays open while they are
    used, so a file of any length takes the memory of one row).

    Raises:
        SpecError: the file is missing or unreadable (at any row), or its header lacks a column
            of ``required``.
    """
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark too
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or ())]
            if reader.fieldnames is not None and missing:
                raise SpecError(f"{p}: missing columns {', '.join(missing)}")
            yield from reader
    except FileNotFoundError:
        raise SpecError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SpecError(f"{p}: cannot be read as CSV: {exc}") from None


#: Optional columns of a validation CSV (or of its options file): how the measured run was served,
#: ``system``, ``cp`` and every run option by its keyword (:data:`~genmodel.OPTION_SPECS`). Values
#: are parsed with the type of the estimate() argument; an empty cell keeps the default.
OPTION_COLUMNS: dict[str, Callable[[str], Any]] = {
    "system": str,
    "cp": int,
    **{spec.name: spec.parse for spec in OPTION_SPECS},
}


def public_options_path() -> Path:
    """Path of the bundled run options of the public cases (validation/case_options.csv)."""
    return Path(str(resources.files("genmodel.validation").joinpath("case_options.csv")))


def read_case_options(path: str | Path) -> dict[str, dict[str, str]]:
    """Run options per case id from an options CSV (columns: id, any of OPTION_COLUMNS, source).

    Raises:
        SpecError: a missing id column, an unknown column, or an id given twice (naming both lines).
    """
    p, rows = _read_csv(path)
    if rows and "id" not in rows[0]:
        raise SpecError(f"{p}: missing column id")
    unknown = [c for c in (rows[0] if rows else {}) if c not in OPTION_COLUMNS and c not in ("id", "source")]
    if unknown:
        raise SpecError(f"{p}: unknown columns {', '.join(unknown)}; known: {', '.join(OPTION_COLUMNS)}")
    seen: dict[str, int] = {}
    for line, r in enumerate(rows, start=2):
        if r["id"] in seen:
            raise SpecError(f"{p}: id {r['id']!r} is given twice (lines {seen[r['id']]} and {line})")
        seen[r["id"]] = line
    return {r["id"]: {k: v for k, v in r.items() if k in OPTION_COLUMNS and v} for r in rows}


def public_cases_path() -> Path:
    """Path of the bundled public validation cases (validation/validation_public.csv)."""
    return Path(str(resources.files("genmodel.validation").joinpath("validation_public.csv")))


def read_cases(path: str | Path) -> list[dict[str, str]]:
    """Rows of a validation CSV, checked for the required columns, each row's number of fields and
    ids given once (see :func:`_iter_cases`)."""
    return list(_iter_cases(Path(path)))


#: the key of a row's fields' shape where they do not match the header's (:func:`_iter_cases`)
_SHAPE = "\0fields"


def _iter_cases(p: Path) -> Iterator[dict[str, str]]:
    """The rows of a validation CSV one at a time, the required columns checked before the first.

    A row of more fields than the header (an unquoted comma: 1,000) or fewer comes with its
    fields' shape under :data:`_SHAPE`, for :func:`check_row` to refuse (``--skip-invalid``: skip).

    Raises:
        SpecError: missing columns, no rows at all, a case id given twice (its options and results
            could not be told apart; naming both lines), or an unreadable file.
    """
    lines: dict[str, int] = {}
    for line, row in enumerate(_stream_csv(p, required=_COLUMNS), start=2):  # line 1 is the header
        if None in row or any(row[c] is None for c in _COLUMNS):  # every column after it shifts
            loose: dict[Any, Any] = row  # (csv puts the fields beyond the header's under None)
            fields = sum(isinstance(v, str) for v in row.values()) + len(loose.get(None) or ())
            why = "an unquoted comma, as in 1,000" if None in row else "cut short"
            shape = f"has {fields} fields where the header has {len(row) - (None in row)} columns ({why}?)"
            row = {**{k: v or "" for k, v in row.items() if k is not None}, _SHAPE: shape}
        first = lines.setdefault(row["id"], line)
        if first != line:
            raise SpecError(f"{p}: case id {row['id']!r} is given twice (lines {first} and {line})")
        yield row
    if not lines:
        raise SpecError(f"{p}: no cases")


def _rows_with_options(cases: Path, options: str | Path | None) -> Iterator[dict[str, str]]:
    """The rows of ``cases`` one at a time (a stream), each with its run options from ``options``
    (none if None), read before the first row.

    Raises:
        SpecError: as :func:`read_cases` (a case id given twice, when its second row is reached);
            an id of ``options`` that matches no case (a typo would silently drop its options),
            after the last row; each naming the file and id.
    """
    extra = read_case_options(options) if options is not None else {}
    ids: set[str] = set()
    for row in _iter_cases(cases):
        ids.add(row["id"])
        yield {**row, **extra.get(row["id"], {})}
    unmatched = [case for case in extra if case not in ids]
    if unmatched:
        more = f" (and {len(unmatched) - 1} more)" if len(unmatched) > 1 else ""
        raise SpecError(f"{options}: id {unmatched[0]!r}{more} matches no case of {cases}")


def count_cases(path: str | Path | None = None) -> int:
    """The number of rows of a validation CSV (default: the public cases), read as a stream (for
    a progress bar's total before :func:`validate` runs; no row is checked)."""
    p = public_cases_path() if path is None else Path(path)
    return sum(1 for _ in _stream_csv(p))


def _int(row: dict[str, str], name: str, where: str = "") -> int:
    value = (row.get(name) or "").strip()
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_TOKENS):
        raise SpecError(
            f"{where or 'case ' + row['id']}: {name}={row.get(name)!r} must be an integer "
            f"between 1 and {MAX_TOKENS:,}"
        )
    return int(value)


#: optional columns of concurrency cases: the benchmark client's closed loop (requests per client,
#: warm-up included, and warm-up requests per client), for the simulated serving model
HARNESS_COLUMNS = ("requests_per_client", "warmup_requests")


def _row_engine(row: dict[str, str], engine: str, hw: Device | None = None, where: str = "") -> str | Engine:
    """The engine of a row: its ``engine`` column (else ``engine``), configured as its optional
    ``engine_config`` column says the harness configured it (:data:`ENGINE_CONFIGS`; empty: the
    server's defaults, the preset) for the row's clients and prompt length."""
    name = (row.get("engine") or "").strip() or engine
    config = (row.get("engine_config") or "").strip()
    if config not in ("", *ENGINE_CONFIGS):
        raise SpecError(
            f"{where or 'case ' + row['id']}: engine_config={config!r} must be empty or one of "
            f"{', '.join(ENGINE_CONFIGS)}"
        )
    if not config or row["mode"] != "concurrency" or where:
        return name
    device = load_hardware(row["hardware"]).device if hw is None else hw
    batch, prompt = _int(row, "batch"), _int(row, "input_tokens")
    tp = _int(row, "tp")
    return harness_engine(engine_preset(name, device), config, concurrency=batch, input_tokens=prompt, tp=tp)


def _harness(row: dict[str, str], where: str = "") -> dict[str, int]:
    """The benchmark-harness keywords of :func:`estimate` a row sets (empty cells: the defaults)."""
    out: dict[str, int] = {}
    for name in HARNESS_COLUMNS:
        value = (row.get(name) or "").strip()
        if not value:
            continue
        if not (value.isascii() and value.isdigit() and int(value) <= 1_000):
            raise SpecError(
                f"{where or 'case ' + row['id']}: {name}={row.get(name)!r} must be an integer "
                "between 0 and 1,000"
            )
        out[name] = int(value)
    return out


def check_row(row: dict[str, str], where: str) -> float:
    """Check one validation row's format: the integer columns, mode, option columns and a measured
    value that is a finite positive number (a metric genmodel does not predict is a case it skips).

    Args:
        row: the row, as :func:`read_cases` gives it.
        where: how the message names the row (``row 3 (case a100-x)``).

    Returns:
        The measured value.

    Raises:
        SpecError: ``where: column=value must be ...``, naming the first malformed column.
    """
    if row.get(_SHAPE):
        raise SpecError(f"{where} {row[_SHAPE]}")
    if row["mode"] not in MODES:
        raise SpecError(f"{where}: mode={row['mode']!r} must be one of {', '.join(MODES)}")
    disaggregated = check_disaggregated_row(row, where)
    rate = check_rate_row(row, where)  # (a rate case has no batch)
    for name in ("devices", "tp", "pp", "ep", "dp", "input_tokens", "output_tokens"):
        if disaggregated and name in ("tp", "pp", "ep", "dp") and not (row.get(name) or "").strip():
            continue  # a disaggregated case's plan is per pool
        _int(row, name, where)
    if row["batch"] != "max" and not rate:
        _int(row, "batch", where)
    measured = _measured(row, where)
    try:
        _options(row)
    except SpecError as exc:
        raise SpecError(f"{where}: {str(exc).partition(': ')[2]}") from None
    _harness(row, where)
    _row_engine(row, "", where=where)  # (only checks the engine_config column)
    name = (row.get("engine") or "").strip()  # a static row's: what ran it (a serving row's: a preset)
    if row["mode"] == "static" and name and name not in MEASURED_ENGINES:
        raise SpecError(f"{where}: engine={name!r} must be empty or one of {', '.join(MEASURED_ENGINES)}")
    return measured


def _measured(row: dict[str, str], where: str) -> float:
    """The row's measured value, a finite number > 0 (else a SpecError naming ``where``)."""
    try:
        measured = float(row["measured"])
    except (TypeError, ValueError):
        measured = math.nan
    if not (math.isfinite(measured) and measured > 0):
        raise SpecError(f"{where}: measured={row['measured']!r} must be a finite number > 0")
    return measured


def _case_options(row: dict[str, str], profile: Profile | None) -> dict[str, Any]:
    """A case's run options (its option columns) and its profile: ``profile`` if given, else
    :func:`row_profile`'s (None: the device's profile for the engine the prediction runs)."""
    return {**_options(row), "profile": row_profile(row) if profile is None else profile}


def _options(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, parse in OPTION_COLUMNS.items():
        value = row.get(name) or ""
        if value.strip():
            try:
                out[name] = parse(value.strip())
                if name in OPTION_NAMES:  # its bounds, as a malformed value (else a skip)
                    OPTION_NAMES[name].check(out[name])
            except ValueError as exc:  # (a SpecError is a ValueError too)
                shown = str(exc) if isinstance(exc, SpecError) else f"{name}={value!r} is not a valid value"
                raise SpecError(f"case {row['id']}: {shown}") from None
    return out


def predict_case(
    row: dict[str, str],
    *,
    serving: str = SERVING_MODELS[0],
    engine: str = ENGINES[0],
    step_tables: StepTables | None = None,
    hardware: Device | None = None,
    profile: Profile | None = None,
) -> float:
    """Predict the ``metric`` of one validation row with :func:`estimate` (and its option columns).

    Args:
        row: the case (base columns, option columns, and optionally ``engine``).
        serving: the serving model of a concurrency case ("simulated" or "closed-form").
        engine: the simulated engine when the row's ``engine`` column is empty.
        step_tables: step-cost tables shared between cases.
        hardware: a device to use instead of the row's ``hardware`` id (refitted efficiencies,
            tools/fit_intervals.py); it implies the system its id does.
        profile: the efficiency profile of every case (None: :func:`row_profile`'s).
    """
    if is_disaggregated_serving(row, f"case {row['id']}") or is_rate(row):
        _check_case(row)
        got = _predict_simulated(row, serving, engine, _case_options(row, profile), {}, ())
        if isinstance(got, str):
            raise SpecError(f"case {row['id']}: {got}")
        return got
    return float(getattr(_estimate_case(row, serving, engine, step_tables, hardware, profile), row["metric"]))


def row_profile(row: dict[str, str]) -> Profile | None:
    """The profile of a case: its ``profile`` column, else the database's profile of its device for
    the ``engine`` column (static rows too: the engine that ran the measurement) under its
    ``engine_config`` (the harness's configuration), else None (the device file's values).

    Raises:
        SpecError, UnknownEntryError: an unknown profile or hardware id, a malformed profile.
    """
    named = (row.get("profile") or "").strip()
    if named:
        return load_profile(named)
    engine = (row.get("engine") or "").strip()
    config = (row.get("engine_config") or "").strip() or None
    return device_profile(load_hardware(row["hardware"]).device.id, engine, config) if engine else None


def _estimate_case(
    row: dict[str, str],
    serving: str,
    engine: str,
    step_tables: StepTables | None,
    hardware: Device | None = None,
    profile: Profile | None = None,
) -> Estimate:
    _check_case(row, estimated=True)
    n: int | str = row["batch"] if row["batch"] == "max" else _int(row, "batch")
    kwargs: dict[str, Any] = {"batch": n}
    if row["mode"] != "static":
        replay = (row.get("engine_config") or "").strip() not in FRESH_AFTER_WARMUP
        kwargs = {"concurrency": n, **_harness(row), "warmup_replay": replay, **spread_keywords(row)}
    return estimate(
        row["model"],
        row["hardware"] if hardware is None else hardware,
        input_tokens=_int(row, "input_tokens"),
        output_tokens=_int(row, "output_tokens"),
        devices=_int(row, "devices"),
        tp=_int(row, "tp"),
        pp=_int(row, "pp"),
        ep=_int(row, "ep"),
        dp=_int(row, "dp"),
        weight_dtype=row["weight_dtype"],
        act_dtype=row["act_dtype"],
        kv_dtype=row["kv_dtype"],
        serving=serving,
        # a static row's engine only selects its profile (below): llama.cpp has no serving preset
        engine=_row_engine(row, engine, hardware) if row["mode"] == "concurrency" else engine,
        step_tables=step_tables,
        **kwargs,
        **_case_options(row, profile),
    )


#: the estimates (and step-cost tables) a validation run keeps for cases still to come: a bound
#: on its memory, whatever the file's length
_MEMO_DEPLOYMENTS = 256
#: columns that do not change a case's estimate (cases that differ only in them share one)
_NOT_ESTIMATE = frozenset({"id", "category", "metric", "measured", "source_id", "source", "notes"})


def validate(
    path: str | Path | None = None,
    *,
    options_path: str | Path | None = None,
    serving: str = SERVING_MODELS[0],
    engine: str = ENGINES[0],
    on_case: Callable[[str], None] | None = None,
    skip_invalid: bool = False,
    coverage: float = COVERAGE,
    profile: str | Profile | None = None,
) -> ValidationReport:
    """Predict every case of a validation CSV and report the errors.

    Args:
        path: a CSV with the columns of validation/validation_public.csv (default: that file).
        options_path: a CSV of run options per case id (see :data:`OPTION_COLUMNS`: overlap,
            speculative decoding, ...); default: validation/case_options.csv for the public
            cases, none for another file. Option columns in the cases CSV itself apply too.
        serving: the serving model of concurrency and rate cases: "simulated" (the default; the
            engine of the row's ``engine`` column, else ``engine``) or "closed-form" (the steady
            state; a rate case's open loop, :mod:`genmodel._validate_rate`).
        engine: the simulated engine of rows without an ``engine`` value: vllm (the default),
            sglang or trtllm.
        on_case: called with each case id after it is done (for progress bars).
        skip_invalid: skip a malformed row (with the reason) instead of refusing the file.
        coverage: the fraction of measurements each case's ``predicted_interval`` should hold
            (:mod:`genmodel._intervals`; default 0.8).
        profile: the efficiency profile of every case (an id, a YAML file or a Profile); None:
            each case's own (:func:`row_profile`: its ``profile`` column, else its device's
            profile for its engine, else the device file's values).

    Returns:
        A :class:`ValidationReport`; cases genmodel cannot model yet are skipped with the reason.

    Raises:
        SpecError: a malformed row (:func:`check_row`: an integer column that is none, an unknown
            mode, a measured value that is not a finite number > 0), naming its line
            and column, unless ``skip_invalid``; a case id given twice, or an id of the options
            file that matches no case (after the last case; even with ``skip_invalid``); an
            unknown serving model.
            UnknownEntryError: an unknown ``engine``.
    """
    serving_model(serving, engine=engine)  # check both before the first case
    chosen = load_profile(profile) if isinstance(profile, str) else profile
    if options_path is None and path is None:
        options_path = public_options_path()
    # streamed: a row is read, predicted and dropped; only its CaseResult (or skip reason) stays
    rows = _rows_with_options(public_cases_path() if path is None else Path(path), options_path)
    tables = StepTables()
    done: OrderedDict[frozenset[tuple[str, str]], Estimate | str] = OrderedDict()
    simulations: dict[tuple[tuple[str, str], ...], Any] = {}  # simulations and open-loop closed forms
    results: list[CaseResult] = []
    skipped: list[tuple[str, str]] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        if len(tables.tables) > _MEMO_DEPLOYMENTS:
            tables.tables.clear()  # bounded memory; a later case of a dropped deployment rebuilds it
        key = frozenset(item for item in row.items() if item[0] not in _NOT_ESTIMATE)
        where = f"line {line} (case {row['id']})"
        try:
            if key in done:  # its other columns were checked with the first row of its deployment
                _measured(row, where)
            else:
                check_row(row, where)
        except SpecError as exc:
            if not skip_invalid:
                raise
            skipped.append((row["id"], str(exc)))
            if on_case is not None:
                on_case(row["id"])
            continue
        if is_disaggregated_serving(row, row["id"]) or is_rate(row):
            _simulated_case(row, serving, engine, simulations, results, skipped, chosen)
            if on_case is not None:
                on_case(row["id"])
            continue
        est = _memo_estimate(
            done, key, row, lambda r: _estimate_case(r, serving, engine, tables, profile=chosen)
        )
        if isinstance(est, str):
            skipped.append((row["id"], est))
        else:
            results.append(_result(row, est, coverage))
        if on_case is not None:
            on_case(row["id"])
    return ValidationReport(cases=tuple(results), skipped=tuple(skipped), coverage=coverage)


def _simulated_case(
    row: dict[str, str],
    serving: str,
    engine: str,
    done: dict[tuple[tuple[str, str], ...], Any],
    results: list[CaseResult],
    skipped: list[tuple[str, str]],
    profile: Profile | None = None,
) -> None:
    """Predict a case that one simulation serves (a disaggregated case,
    :mod:`genmodel._validate_disagg`, or a rate case, :mod:`genmodel._validate_rate`, which the
    closed form's open loop also serves) into ``results`` or ``skipped``."""
    try:
        _check_case(row)
        options = _case_options(row, profile)
    except SpecError as exc:
        skipped.append((row["id"], str(exc)))
        return
    key = tuple(sorted((k, v) for k, v in row.items() if k not in _NOT_ESTIMATE))
    got = _predict_simulated(row, serving, engine, options, done, key)
    if isinstance(got, str):
        skipped.append((row["id"], got))
        return
    simulated = serving == "simulated"  # (else a rate case's closed form)
    results.append(
        CaseResult(
            id=row["id"],
            category=row["category"],
            metric=row["metric"],
            measured=float(row["measured"]),
            predicted=got,
            serving_model=serving,
            engine=((row.get("engine") or "").strip() or engine) if simulated else None,
            profile=None if options.get("profile") is None else options["profile"].id,
        )
    )


def _predict_simulated(
    row: dict[str, str],
    serving: str,
    engine: str,
    options: dict[str, Any],
    done: dict[tuple[tuple[str, str], ...], Any],
    key: tuple[tuple[str, str], ...],
) -> float | str:
    """The metric of a disaggregated or rate case (one simulation, or a rate case's closed form),
    or why it cannot be predicted."""
    if is_disaggregated_serving(row, row["id"]):
        return predict_disaggregated(row, serving=serving, engine=engine, options=options, done=done, key=key)
    if serving != "simulated":  # a rate case: the closed form's open loop
        return closed_form_metric(row, engine=engine, options=options, done=done, key=key)
    return simulated_metric(
        row,
        serving=serving,
        run=lambda: simulate_rate_case(row, engine=engine, options=options),
        done=done,
        key=key,
        kind="a rate-driven case (mode=rate)",
    )


def _memo_estimate(
    done: OrderedDict[frozenset[tuple[str, str]], Estimate | str],
    key: frozenset[tuple[str, str]],
    row: dict[str, str],
    run: Callable[[dict[str, str]], Estimate],
) -> Estimate | str:
    """The estimate of a case, or why it cannot be made; cases with one ``key`` (the row without
    the columns of :data:`_NOT_ESTIMATE`: the TTFT and TPOT rows of one measurement) share one,
    while it is among the last :data:`_MEMO_DEPLOYMENTS` used."""
    try:
        _check_case(row, estimated=True)
    except SpecError as exc:
        return str(exc)
    if key in done:
        done.move_to_end(key)
        return done[key]
    try:
        est: Estimate | str = run(row)
    except GenModelError as exc:
        est = str(exc)
    done[key] = est
    if len(done) > _MEMO_DEPLOYMENTS:
        done.popitem(last=False)  # the least recently used: rows of one measurement are adjacent
    return est


def _check_case(row: dict[str, str], estimated: bool = False) -> None:
    """Raise SpecError for a metric or mode that validation does not know (``estimated``: or
    that :func:`estimate` does not give: a rate case, :data:`SIMULATION_METRICS`)."""
    metric = row["metric"]
    if metric not in METRICS + SIMULATION_METRICS:
        raise SpecError(
            f"case {row['id']}: metric={metric!r} must be one of {', '.join(METRICS + SIMULATION_METRICS)}"
        )
    mode = row["mode"]
    if mode not in MODES:
        raise SpecError(f"case {row['id']}: mode={mode!r} must be one of {', '.join(MODES)}")
    if estimated and mode == "rate":
        raise SpecError(f"case {row['id']}: a rate-driven case (mode=rate) is simulated, not estimated")
    if estimated and metric in SIMULATION_METRICS:
        raise SpecError(
            f"case {row['id']}: metric={metric!r} is predicted for rate-driven and disaggregated "
            "serving cases only (a figure of the simulation's); an estimate gives the mean TTFT and TPOT"
        )


def _result(row: dict[str, str], est: Estimate, coverage: float = COVERAGE) -> CaseResult:
    """The case's error and the interval of its prediction, given its estimate."""
    try:
        measured = float(row["measured"])
    except ValueError:
        raise SpecError(f"case {row['id']}: measured={row['measured']!r} must be a number") from None
    state = est.serving
    predicted = float(getattr(est, row["metric"]))
    model = serving_model_of(est)
    level = evidence(est.hardware_id, model, None if state is None else state.engine)
    iv = interval(
        predicted,
        row["metric"],
        serving_model=model,
        evidence_level=level,
        coverage=coverage,
        hardware_id=est.hardware_id,
        kind=kind_of(est),
    )
    return CaseResult(
        id=row["id"],
        category=row["category"],
        metric=row["metric"],
        measured=measured,
        predicted=predicted,
        serving_model=None if state is None else state.serving_model,
        engine=None if state is None else state.engine,
        predicted_interval=(iv.lo, iv.hi),
        evidence=level,
        profile=None if est.options.profile is None else est.options.profile.id,
    )
