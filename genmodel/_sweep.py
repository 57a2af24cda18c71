"""Sweeps: one estimate per point of a grid over models x hardware (scaled) x plans x loads x tokens.

Modelling assumptions: none of its own. Every point is :func:`genmodel.estimate` on the system that
:meth:`System.scaled` gives for the point's factors (FLOP/s, memory bandwidth and capacity, scale-up
and scale-out bandwidth), so a sweep answers exactly what the same ``estimate`` calls would. A point
whose plan cannot run, or whose arguments the model rejects, is kept as a row carrying the error
message; nothing is dropped. Arguments that would make every point fail (an unknown id, an unknown
scale factor or option, a malformed value) are rejected before any point is evaluated.

Execution: the grid is cut into chunks of a few hundred points. Small grids run in this process;
large ones on Dask (``distributed``): a ``LocalCluster`` of one single-threaded worker process per
core by default, or the cluster at a scheduler address. Progress is reported per finished chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from genmodel._api import default_precision, estimate, system_of
from genmodel._errors import GenModelError, SpecError, did_you_mean, require_ints
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._options import OPTION_NAMES, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import Estimate
from genmodel._scalars import plain_scalars
from genmodel._system import SCALE_FACTORS, System
from genmodel.io import load_hardware, load_model
from genmodel.report import estimate_dict, flatten

if TYPE_CHECKING:
    import pandas as pd

#: what a sweep's model axis takes: an id, alias or config.json path, or the spec itself
_ModelArg = str | ModelSpec
#: what a sweep's hardware axis takes: a device or system id or alias, or the object itself
_HardwareArg = str | Device | System

#: The factors a sweep may scale, as :meth:`System.scaled` names them; each a column ``scale.NAME``.
#: The plan degrees a sweep's plans may set (each defaults to 1).
PLAN_DEGREES = ("tp", "pp", "ep", "dp", "cp")
#: With ``scheduler=None``, grids of at most this many points run in-process (~0.2-0.5 ms each).
IN_PROCESS_MAX_POINTS = 10_000
#: The largest chunk of points one task evaluates.
CHUNK_POINTS = 250

# estimate's arguments that the grid itself sets, so estimate_options may not
_GRID_ARGS = frozenset(
    {"model", "hardware", "input_tokens", "output_tokens", "batch", "concurrency", "devices", *PLAN_DEGREES}
)
# the estimate's JSON keys that repeat a grid input (the inputs keep the names the caller gave)
_INPUT_KEYS = frozenset({"model", "hardware", "input_tokens", "output_tokens", *PLAN_DEGREES})


class _Point(NamedTuple):
    """One grid point (plain tuples: cheap to pickle to a worker)."""

    model: str
    hardware: str
    scale: tuple[float, ...]  # in the order of SCALE_FACTORS
    plan: tuple[int, ...]  # in the order of PLAN_DEGREES
    load: int | str  # the batch (or "max"), or the concurrency
    input_tokens: int
    output_tokens: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    """What every chunk needs besides its points: the resolved specs and the fixed options."""

    models: Mapping[str, ModelSpec]
    hardware: Mapping[str, System]
    load_name: str  # "batch" or "concurrency"
    options: Mapping[str, Any]


@plain_scalars
def sweep(
    model: _ModelArg | Sequence[_ModelArg] | None = None,
    hardware: _HardwareArg | Sequence[_HardwareArg] | None = None,
    *,
    input_tokens: int | Sequence[int],
    output_tokens: int | Sequence[int],
    tp: int | Sequence[int] | None = None,
    pp: int | Sequence[int] | None = None,
    ep: int | Sequence[int] | None = None,
    dp: int | Sequence[int] | None = None,
    cp: int | Sequence[int] | None = None,
    batch: int | str | Sequence[int | str] | None = None,
    concurrency: int | Sequence[int] | None = None,
    scale: Mapping[str, Sequence[float]] | None = None,
    weight_dtype: str | None = None,
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    options: RunOptions | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    models: Sequence[_ModelArg] | None = None,
    plans: Sequence[Mapping[str, int]] | None = None,
    estimate_options: Mapping[str, Any] | None = None,
    **estimate_args: Any,
) -> pd.DataFrame:
    """Estimate every point of models x hardware x scale factors x plans x loads x token counts.

    The keywords are the ``genmodel sweep`` flags (``model``, ``hardware``, ``tp``, ``batch``,
    ``weight_dtype``, ...); each axis takes one value or a list; ``model`` and ``hardware`` may
    also come first without their names, as in :func:`genmodel.estimate`. ``models=``, ``plans=`` and
    ``estimate_options=`` are the older spellings and still work (``models`` must be a list).

    Args:
        model: model ids or aliases, config.json paths, or :class:`ModelSpec` objects.
        hardware: device or system ids or aliases, or :class:`Device` / :class:`System` objects
            (a Device implies the system its id does, as in :func:`genmodel.estimate`); a column
            value is the id given, or the object's ``id``.
        input_tokens: prompt lengths, tokens per request.
        output_tokens: generated lengths, tokens per request.
        tp, pp, ep, dp, cp: parallel degrees; the plans are their product (each defaults to 1).
        batch: static batches over the whole deployment (int or "max"); default 1.
        concurrency: closed-loop clients (serving mode) instead of ``batch``.
        scale: factors per hardware figure, keyed by a name of :data:`SCALE_FACTORS`
            (``{"memory_bandwidth": [1, 1.5, 2]}``); figures not named keep factor 1.
        weight_dtype, act_dtype, kv_dtype: precisions of every point (as ``estimate``'s).
        options: the run options of every point (:class:`RunOptions`); run options given by
            keyword replace its fields.
        scheduler: None: in-process up to :data:`IN_PROCESS_MAX_POINTS` points (unless ``workers``
            is given), else a local Dask cluster; ``"in-process"``: always in this process;
            ``"local"``: always a local Dask cluster; ``"tcp://host:port"`` (any Dask address):
            the cluster of that scheduler.
        workers: worker processes of a local cluster (default: one per core).
        on_progress: called with (points done, points in all) after each finished chunk.
        models: the older spelling of ``model`` (a list).
        plans: the older spelling of the plan degrees: a list of mappings of some of tp, pp, ep,
            dp, cp (the rest 1), instead of ``tp=``/``pp=``/... lists.
        estimate_options: further keywords of :func:`genmodel.estimate`, as a mapping.
        estimate_args: further keywords of :func:`genmodel.estimate`, the same for every point
            (``ideal=True``, or run options by keyword such as ``prefix_hit_rate=0.5``).

    Returns:
        A pandas DataFrame with one row per grid point, in grid order (models outermost, then
        hardware, scale factors, plans, loads, input and output tokens). Columns: the inputs
        (``model``, ``hardware``, ``scale.<factor>`` for every factor, ``tp``, ``pp``, ``ep``,
        ``dp``, ``cp``, ``batch`` or ``concurrency``, ``input_tokens``, ``output_tokens``), ``error``
        (missing where the point ran, None or NaN: test it with ``isna()``; else the message of
        the InfeasibleError or SpecError the point raised), then the
        estimate's JSON keys flattened with dots (``ttft_s``, ``tpot_s``, ``e2e_s``,
        ``output_tokens_per_s_per_device``, ``memory.fits``, ``prefill.bound``, ``decode.bound``,
        ``joules_per_output_token``, ``usd_per_million_output_tokens``, ...; SI units), with the
        resolved batch as ``batch_resolved``. Error rows have no estimate values.

    Raises:
        SpecError: an empty or malformed grid axis, an unknown scale factor, plan degree or
            estimate option, a malformed scale factor, dtype, scheduler or worker count, an axis
            given in both spellings, or a scheduler that cannot be reached.
        UnknownEntryError: an unknown model or hardware id.
    """
    if hardware is None:
        raise SpecError("hardware= must name at least one device or system (an id, a Device or a System)")
    fixed = {
        **({} if estimate_options is None else estimate_options),
        **{k: v for k, v in _dtypes(weight_dtype, act_dtype, kv_dtype).items()},
        **estimate_args,
        **({} if options is None else {"options": options}),
    }
    context, points = _grid(
        models=_model_axis(model, models),
        hardware=_axis("hardware", hardware),
        input_tokens=_axis("input_tokens", input_tokens),
        output_tokens=_axis("output_tokens", output_tokens),
        plans=_plan_axis(plans, tp=tp, pp=pp, ep=ep, dp=dp, cp=cp),
        batch=None if batch is None else _axis("batch", batch),
        concurrency=None if concurrency is None else _axis("concurrency", concurrency),
        scale={} if scale is None else scale,
        estimate_options=fixed,
    )
    _check_scheduler(scheduler, workers)
    in_process = scheduler == "in-process" or (
        scheduler is None and workers is None and len(points) <= IN_PROCESS_MAX_POINTS
    )
    if in_process:
        chunks = _chunks(points, max(1, min(CHUNK_POINTS, math.ceil(len(points) / 50))))
        results = []
        for done, chunk in _counted(chunks):
            results.append(evaluate_chunk(chunk, context))
            if on_progress is not None:
                on_progress(done, len(points))
    else:
        results = _run_on_dask(points, context, scheduler=scheduler, workers=workers, on_progress=on_progress)
    return _frame([row for chunk in results for row in chunk], context.load_name)


def _dtypes(weight_dtype: str | None, act_dtype: str | None, kv_dtype: str | None) -> dict[str, str]:
    """The dtypes given (None: not given, so ``estimate``'s default or ``estimate_options``')."""
    given = {"weight_dtype": weight_dtype, "act_dtype": act_dtype, "kv_dtype": kv_dtype}
    return {k: v for k, v in given.items() if v is not None}


def _axis(name: str, values: Any) -> list[Any]:
    """One value or a collection of values (a list, tuple, range or array) as a list; a string,
    a spec or a number is one value."""
    if isinstance(values, str | ModelSpec | Device | System | Mapping) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def _model_axis(model: Any, models: Sequence[_ModelArg] | None) -> Sequence[_ModelArg]:
    """The model axis from ``model=`` (one or a list) or the older ``models=`` (a list)."""
    if model is not None and models is not None:
        raise SpecError("give the models as model= (or the older models=), not both")
    if models is not None:
        return models  # a single string here is refused by _non_empty: models= is the list spelling
    if model is None:
        raise SpecError("model= must name at least one model (an id, a config.json path or a ModelSpec)")
    return _axis("model", model)


def _plan_axis(
    plans: Sequence[Mapping[str, int]] | None, **degrees: int | Sequence[int] | None
) -> Sequence[Mapping[str, int]]:
    """The plans: the product of the ``tp=``/``pp=``/... lists, or the older ``plans=`` mappings."""
    given = {name: _axis(name, values) for name, values in degrees.items() if values is not None}
    if plans is not None:
        if given:
            raise SpecError(f"give the plans as {'=, '.join(given)}= lists (or the older plans=), not both")
        return plans
    for name, values in given.items():
        _non_empty(name, values)
        _refuse_repeats(name, values)
    names = list(given)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*given.values())]


def evaluate_chunk(points: Sequence[_Point], context: _Context) -> list[dict[str, Any]]:
    """The rows of ``points``: the task a Dask worker (or this process) runs per chunk."""
    systems: dict[tuple[str, tuple[float, ...]], System] = {}
    rows = []
    for p in points:
        row = _input_columns(p, context.load_name)
        key = (p.hardware, p.scale)
        if key not in systems:
            systems[key] = context.hardware[p.hardware].scaled(
                **dict(zip(SCALE_FACTORS, p.scale, strict=True))
            )
        arguments: dict[str, Any] = {
            **dict(zip(PLAN_DEGREES, p.plan, strict=True)),
            context.load_name: p.load,
            **context.options,
        }
        try:
            est = estimate(
                context.models[p.model],
                systems[key],
                input_tokens=p.input_tokens,
                output_tokens=p.output_tokens,
                **arguments,
            )
        except GenModelError as exc:
            row["error"] = str(exc)
        else:
            row["error"] = None
            row.update(_estimate_columns(est))
        rows.append(row)
    return rows


def _input_columns(p: _Point, load_name: str) -> dict[str, Any]:
    return {
        "model": p.model,
        "hardware": p.hardware,
        **{f"scale.{name}": factor for name, factor in zip(SCALE_FACTORS, p.scale, strict=True)},
        **dict(zip(PLAN_DEGREES, p.plan, strict=True)),
        load_name: p.load,
        "input_tokens": p.input_tokens,
        "output_tokens": p.output_tokens,
    }


def _estimate_columns(est: Estimate) -> dict[str, Any]:
    """The estimate's JSON keys, flattened; lists (the per-tier memory rows) are left out."""
    out: dict[str, Any] = {}
    for key, value in flatten(estimate_dict(est)).items():
        if key in _INPUT_KEYS or isinstance(value, list | tuple):
            continue
        out["batch_resolved" if key == "batch" else key] = value
    return out


def _grid(
    *,
    models: Sequence[_ModelArg],
    hardware: Sequence[_HardwareArg],
    input_tokens: Sequence[int],
    output_tokens: Sequence[int],
    plans: Sequence[Mapping[str, int]],
    batch: Sequence[int | str] | None,
    concurrency: Sequence[int] | None,
    scale: Mapping[str, Sequence[float]],
    estimate_options: Mapping[str, Any],
) -> tuple[_Context, list[_Point]]:
    """Validate every axis (nothing is evaluated yet) and list the grid's points in order."""
    for name, axis in (
        ("model", models),  # (the keyword's name: ``models=`` is the older spelling)
        ("hardware", hardware),
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("plans", plans),
    ):
        _non_empty(name, axis)
    for token in input_tokens:
        require_ints(input_tokens=token)
    for token in output_tokens:
        require_ints(output_tokens=token)
    model_labels, model_specs = _resolved("model", models, _load_model)
    hardware_labels, systems = _resolved("hardware", hardware, _load_system)
    for name, axis in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        _refuse_repeats(name, axis)

    unknown = sorted(set(scale) - set(SCALE_FACTORS))
    if unknown:
        raise SpecError(
            f"scale={unknown[0]!r} is not a scale factor; expected one of {', '.join(SCALE_FACTORS)}"
        )
    factors = []
    probe = next(iter(systems.values()))
    for name in SCALE_FACTORS:
        values = tuple(scale.get(name, (1.0,)))
        _non_empty(f"scale[{name!r}]", values)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise SpecError(f"scale[{name!r}]={v!r} must be a finite number > 0")
            probe.scaled(**{name: v})  # the one check of a factor: System.scaled's own
        factors.append(tuple(float(v) for v in values))
        _refuse_repeats(f"scale[{name!r}]", factors[-1])

    plan_rows = []
    for plan in plans:
        bad = sorted(set(plan) - set(PLAN_DEGREES))
        if bad:
            raise SpecError(
                f"plan {dict(plan)}: {bad[0]!r} is not a degree; expected {', '.join(PLAN_DEGREES)}"
            )
        checked = Plan(**plan)  # integers >= 1; divisibility is per model, so per row
        plan_rows.append(tuple(getattr(checked, d) for d in PLAN_DEGREES))

    _refuse_repeats("plans", [dict(zip(PLAN_DEGREES, row, strict=True)) for row in plan_rows])
    load_name, loads = _loads(batch, concurrency)
    _refuse_repeats(load_name, loads)
    options = _checked_options(estimate_options)

    points = [
        _Point(m, h, s, p, load, i, o)
        for m, h, s, p, load, i, o in itertools.product(
            model_labels,
            hardware_labels,
            itertools.product(*factors),
            plan_rows,
            loads,
            input_tokens,
            output_tokens,
        )
    ]
    context = _Context(models=model_specs, hardware=systems, load_name=load_name, options=options)
    return context, points


def _load_model(item: _ModelArg) -> tuple[str, ModelSpec]:
    if isinstance(item, ModelSpec):
        return item.id, item
    if not isinstance(item, str):
        raise SpecError(f"model={item!r} must be a model id, a config.json path or a ModelSpec")
    return item, load_model(item)


def _load_system(item: _HardwareArg) -> tuple[str, System]:
    if isinstance(item, Device | System):
        return item.id, system_of(item)
    if not isinstance(item, str):
        raise SpecError(f"hardware={item!r} must be a device or system id, a Device or a System")
    return item, load_hardware(item)


def _resolved(
    name: str, items: Sequence[Any], load: Callable[[Any], tuple[str, Any]]
) -> tuple[list[str], dict[str, Any]]:
    """Each item's label (the id given, or the object's id) and the specs by label.

    Two different objects with one id (a what-if copy that kept its id) get distinct labels:
    the second is ``ID#2``, and so on.

    Raises:
        SpecError: an item given twice (its id in any case, or an equal object: every point of
            it would run twice), named ``name``. Two ids of one system (``h100-sxm`` and
            ``dgx-h100``) are two columns the caller asked for, as given.
    """
    labels: list[str] = []
    specs: dict[str, Any] = {}
    for item in items:
        label, spec = load(item)
        if any(k.casefold() == label.casefold() and v == spec for k, v in specs.items()):
            raise SpecError(f"{name}={label!r} is given twice: give each value once")
        base, n = label, 1
        while label in specs and specs[label] != spec:
            n += 1
            label = f"{base}#{n}"
        specs[label] = spec
        labels.append(label)
    return labels, specs


def _checked_options(estimate_options: Mapping[str, Any]) -> dict[str, Any]:
    """The fixed estimate() arguments of every point, their names and dtypes checked."""
    options = dict(estimate_options)
    keywords = [p.name for p in inspect.signature(estimate).parameters.values() if p.kind is p.KEYWORD_ONLY]
    known = {*keywords, *OPTION_NAMES} - _GRID_ARGS
    for key in options:
        if key not in known:
            where = "is set by the grid" if key in _GRID_ARGS else "is not a keyword of sweep or estimate"
            hint = "" if key in _GRID_ARGS else did_you_mean(key, sorted(known | _GRID_ARGS))
            raise SpecError(
                f"{key}={options[key]!r} {where}{hint} (estimate's keywords: {', '.join(sorted(known))})"
            )
    default_precision(
        options.get("weight_dtype", "bf16"), options.get("act_dtype"), options.get("kv_dtype")
    )  # a bad dtype would fail every point
    return options


def _refuse_repeats(name: str, axis: Sequence[Any]) -> None:
    """Refuse a value given twice on an axis: every point of it would run twice.

    Raises:
        SpecError: ``name=value is given twice``.
    """
    seen: list[Any] = []
    for value in axis:
        if value in seen:
            raise SpecError(f"{name}={value!r} is given twice: give each value once")
        seen.append(value)


def _non_empty(name: str, axis: Sequence[Any]) -> None:
    if isinstance(axis, str):
        raise SpecError(f"{name}={axis!r} must be a list of values, not one string")
    if len(axis) == 0:
        raise SpecError(f"{name}=[] must list at least one value")


def _loads(
    batch: Sequence[int | str] | None, concurrency: Sequence[int] | None
) -> tuple[str, tuple[int | str, ...]]:
    """('batch', batches) or ('concurrency', client counts), each value checked."""
    if concurrency is not None:
        if batch is not None:
            raise SpecError("give either batch= (static) or concurrency= (serving), not both")
        _non_empty("concurrency", concurrency)
        for c in concurrency:
            require_ints(concurrency=c)
        return "concurrency", tuple(concurrency)
    loads = (1,) if batch is None else tuple(batch)
    _non_empty("batch", loads)
    for b in loads:
        if b != "max":
            require_ints(batch=b)
    return "batch", loads


def _check_scheduler(scheduler: str | None, workers: int | None) -> None:
    if workers is not None:
        require_ints(workers=workers)
    if scheduler is None or scheduler in ("in-process", "local"):
        if workers is not None and scheduler == "in-process":
            raise SpecError(f"workers={workers} needs a local cluster, not scheduler='in-process'")
        return
    if "://" not in scheduler:
        raise SpecError(
            f"scheduler={scheduler!r} must be 'in-process', 'local' or a Dask address such as tcp://host:8786"
        )
    if workers is not None:
        raise SpecError(f"workers={workers}: the cluster at scheduler={scheduler!r} has its own workers")


def _chunks(points: Sequence[_Point], size: int) -> list[list[_Point]]:
    return [list(points[i : i + size]) for i in range(0, len(points), size)]


def _counted(chunks: Iterable[list[_Point]]) -> Iterable[tuple[int, list[_Point]]]:
    """Each chunk with the number of points done once it is."""
    done = 0
    for chunk in chunks:
        done += len(chunk)
        yield done, chunk


def _run_on_dask(
    points: Sequence[_Point],
    context: _Context,
    *,
    scheduler: str | None,
    workers: int | None,
    on_progress: Callable[[int, int], None] | None,
) -> list[list[dict[str, Any]]]:
    """The chunks' rows, evaluated on a Dask cluster (a local one unless ``scheduler`` is an address)."""
    from distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler is None or scheduler == "local":
            cluster = stack.enter_context(
                # one thread per worker: an estimate is pure Python and holds the GIL
                LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
            )
            client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
        else:
            try:
                client = stack.enter_context(Client(scheduler))  # type: ignore[no-untyped-call]
            except (OSError, ValueError) as exc:
                raise SpecError(f"scheduler={scheduler!r}: cannot connect ({exc})") from None
        num_workers = max(1, len(client.nthreads()))
        # about four chunks per worker keeps them all busy to the end, at most CHUNK_POINTS each
        size = max(1, min(CHUNK_POINTS, math.ceil(len(points) / (4 * num_workers))))
        chunks = _chunks(points, size)
        shared = client.scatter(context, broadcast=True)
        futures = client.map(evaluate_chunk, chunks, context=shared, pure=False)
        position = {f.key: i for i, f in enumerate(futures)}
        results: list[list[dict[str, Any]]] = [[] for _ in chunks]
        done = 0
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            i = position[future.key]
            results[i] = future.result()
            done += len(chunks[i])
            if on_progress is not None:
                on_progress(done, len(points))
        return results


def _frame(rows: list[dict[str, Any]], load_name: str) -> pd.DataFrame:
    """The rows as a DataFrame: input columns, ``error``, then the estimate's in first-seen order."""
    import pandas as pd

    scales = [f"scale.{name}" for name in SCALE_FACTORS]
    columns = [
        "model",
        "hardware",
        *scales,
        *PLAN_DEGREES,
        load_name,
        "input_tokens",
        "output_tokens",
        "error",
    ]
    seen = set(columns)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    frame: pd.DataFrame = pd.DataFrame.from_records(rows, columns=columns)
    if load_name == "batch" and any(isinstance(row["batch"], str) for row in rows):
        frame["batch"] = frame["batch"].astype(str)  # "max" among integers: one type per column
    # error rows leave integer and boolean columns with gaps: nullable dtypes keep their type
    for column in columns:
        kinds = {type(row[column]) for row in rows if row.get(column) is not None}
        if kinds == {int} and frame[column].dtype != "int64":
            frame[column] = frame[column].astype("Int64")
        elif kinds == {bool}:
            frame[column] = frame[column].astype("boolean")
    return frame
