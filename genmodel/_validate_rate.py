"""Validation cases driven by a request rate (``mode`` ``rate``): an open loop of requests arriving
at ``request_rate`` per second, as the serving papers and the engines' ``bench_serving`` clients
measure latency (``--request-rate R --num-prompts M``).

A rate row leaves ``batch`` empty and gives, in optional columns, ``request_rate`` (requests per
second, > 0), ``requests`` (how many the client sends; empty: :data:`DEFAULT_REQUESTS`),
``burstiness_cv`` (empty: Poisson arrivals; else gamma arrivals whose gaps have this coefficient of
variation, as ``bench_serving --burstiness``) and ``input_spread``, ``output_spread`` (empty: 0,
every request the mean lengths; else each length uniform within +-spread of the mean, as a random
dataset's ``--random-range-ratio`` draws them; a concurrency row may give the spreads too,
:data:`SPREAD_COLUMNS`, for its closed-loop clients). Its metric may be a mean (``ttft_s``, ``tpot_s``,
``e2e_s``), one of the figures only the simulation gives (:data:`SIMULATION_METRICS`: ``itl_s``,
the mean gap between two tokens of a request over all tokens, and the percentiles ``ttft_p50_s``
... ``itl_p99_s``) or a rate (``output_tokens_per_s``, ``output_tokens_per_s_per_device``).

Modelling assumptions: none of its own; each case is one :func:`genmodel.simulate` with
``request_rate`` (and ``disaggregated=True`` for a disaggregated row, :mod:`genmodel._validate_disagg`),
seed :data:`SEED`, the row's mean lengths (and spreads). Under ``serving="closed-form"`` an
aggregated rate case is :func:`genmodel._openloop.estimate_open_loop` (the steady state of Poisson
arrivals at the row's mean lengths: the means of TTFT, TPOT, ITL and end-to-end latency, TTFT's
percentiles, the median TPOT and ITL; :data:`CLOSED_FORM_METRICS`); other percentiles, a
disaggregated case, bursty arrivals and a rate above the deployment's capacity are skipped with the
reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from genmodel._api import estimate, profiled
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine, KvPool
from genmodel._errors import GenModelError, SpecError
from genmodel._hardware import Device
from genmodel._harness import OPEN_LOOP_CONFIGS, harness_engine
from genmodel._openloop import OpenLoopPoint, estimate_open_loop
from genmodel._simresult import SimulationResult
from genmodel._simulate_api import DEFAULT_REQUESTS, _specs, simulate

#: the optional columns of a rate case
RATE_COLUMNS = ("request_rate", "requests", "burstiness_cv", "input_spread", "output_spread")
#: the rate columns a concurrency row may give as well: the spread of its clients' lengths (the
#: simulation draws them; the closed form sends the means)
SPREAD_COLUMNS = ("input_spread", "output_spread")
#: the seed of every rate case's arrivals (the same row, the same prediction)
SEED = 0
#: the most requests per second and requests a row may ask for (a typo guard, not a model limit)
MAX_RATE, MAX_REQUESTS = 1.0e6, 1_000_000

_LATENCIES, _QUANTILES = ("ttft", "tpot", "itl", "e2e"), ("p50", "p90", "p99")
#: the metrics only a rate or disaggregated case may name (no estimate gives them): the mean
#: inter-token latency ``itl_s`` and the percentiles ``{ttft,tpot,itl,e2e}_{p50,p90,p99}_s``
SIMULATION_METRICS = ("itl_s", *(f"{n}_{q}_s" for n in _LATENCIES for q in _QUANTILES))


def _latency(name: str, stat: str) -> Callable[[SimulationResult], float]:
    return lambda r: float(getattr(getattr(r, f"{name}_s"), stat))


#: what each metric of a simulated case (rate or disaggregated) reads off the simulation
SIMULATED_METRICS: dict[str, Callable[[SimulationResult], float]] = {
    "ttft_s": _latency("ttft", "mean"),
    "tpot_s": _latency("tpot", "mean"),
    "e2e_s": _latency("e2e", "mean"),
    "itl_s": _latency("itl", "mean"),
    **{f"{n}_{q}_s": _latency(n, q) for n in _LATENCIES for q in _QUANTILES},
    "output_tokens_per_s": lambda r: r.output_tokens_per_s,
    "output_tokens_per_s_per_device": lambda r: r.output_tokens_per_s_per_device,
}


def _ttft_quantile(q: str) -> Callable[[OpenLoopPoint, int], float]:
    return lambda p, n: p.ttft_quantile_s[q]


#: what each metric of a rate case reads off the closed form's open loop (the steady state gives
#: every request one TPOT, its mean and median; the median gap between tokens; TTFT's percentiles
#: from the M/D/1 tail; no tail of TPOT, ITL or end-to-end latency)
CLOSED_FORM_METRICS: dict[str, Callable[[OpenLoopPoint, int], float]] = {
    "ttft_s": lambda p, n: p.ttft_s,
    **{f"ttft_{q}_s": _ttft_quantile(q) for q in _QUANTILES},
    "tpot_s": lambda p, n: p.itl_s,
    "tpot_p50_s": lambda p, n: p.itl_s,
    "itl_s": lambda p, n: p.itl_s,
    "itl_p50_s": lambda p, n: p.itl_p50_s,
    "e2e_s": lambda p, n: p.e2e_s,
    "output_tokens_per_s": lambda p, n: p.request_rate_per_s * n,
}


def is_rate(row: dict[str, str]) -> bool:
    """Whether the row is a rate-driven case (``mode`` ``rate``)."""
    return (row.get("mode") or "").strip() == "rate"


def _positive(row: dict[str, str], name: str, where: str, top: float) -> float | None:
    value = (row.get(name) or "").strip()
    if not value:
        return None
    try:
        got = float(value)
    except ValueError:
        got = math.nan
    if not (math.isfinite(got) and 0 < got <= top):
        raise SpecError(f"{where}: {name}={row.get(name)!r} must be a number > 0 and <= {top:g}")
    return got


def _spread(row: dict[str, str], name: str, where: str) -> float:
    value = (row.get(name) or "").strip()
    try:
        got = float(value) if value else 0.0
    except ValueError:
        got = math.nan
    if not (0 <= got < 1):
        raise SpecError(f"{where}: {name}={row.get(name)!r} must be a number in [0, 1) (+-share of the mean)")
    return got


def check_rate_row(row: dict[str, str], where: str) -> bool:
    """Check a row's rate columns; whether it is a rate case.

    A rate case has ``request_rate`` > 0, ``requests`` empty or an integer, ``burstiness_cv``
    empty or > 0, spreads empty or in [0, 1), and ``batch`` and the closed loop's columns
    (``requests_per_client``, ``warmup_requests``) empty, ``engine_config`` empty or one of
    :data:`~genmodel._harness.OPEN_LOOP_CONFIGS`; a concurrency row may
    give the spreads (:data:`SPREAD_COLUMNS`) but no other rate column; a static row none.

    Raises:
        SpecError: ``where: column=value must be ...`` naming the malformed column.
    """
    if not is_rate(row):
        closed_loop = (row.get("mode") or "").strip() == "concurrency"
        given = [c for c in RATE_COLUMNS if (row.get(c) or "").strip()]
        stray = [c for c in given if not (closed_loop and c in SPREAD_COLUMNS)]
        if stray:
            need = "mode=rate or concurrency" if stray[0] in SPREAD_COLUMNS else "mode=rate"
            raise SpecError(f"{where}: {stray[0]}={row[stray[0]]!r} needs {need}")
        spread_keywords(row, where)
        return False
    if _positive(row, "request_rate", where, MAX_RATE) is None:
        raise SpecError(
            f"{where}: request_rate={row.get('request_rate')!r} must be a number > 0 (requests/s)"
        )
    requests = (row.get("requests") or "").strip()
    if requests and not (requests.isascii() and requests.isdigit() and 1 <= int(requests) <= MAX_REQUESTS):
        raise SpecError(
            f"{where}: requests={row.get('requests')!r} must be an integer between 1 and {MAX_REQUESTS:,}"
        )
    _positive(row, "burstiness_cv", where, 100.0)
    spread_keywords(row, where)
    for name in ("batch", "requests_per_client", "warmup_requests"):
        if (row.get(name) or "").strip():
            raise SpecError(f"{where}: {name}={row[name]!r} must be empty for a rate case (mode=rate)")
    _check_open_loop_config(row, where)
    return True


def _check_open_loop_config(row: dict[str, str], where: str) -> None:
    """A rate case's ``engine_config``: empty or one that needs no client count."""
    config = (row.get("engine_config") or "").strip()
    if config and config not in OPEN_LOOP_CONFIGS:
        raise SpecError(
            f"{where}: engine_config={config!r} must be empty or one of {', '.join(OPEN_LOOP_CONFIGS)} "
            "for a rate case (mode=rate)"
        )


def spread_keywords(row: dict[str, str], where: str = "") -> dict[str, float]:
    """A row's ``input_spread`` and ``output_spread`` (empty: 0), the keywords of
    :func:`genmodel.simulate` and :func:`genmodel.estimate`.

    Raises:
        SpecError: ``where: input_spread=... must be a number in [0, 1) ...``.
    """
    where = where or f"case {row['id']}"
    return {name: _spread(row, name, where) for name in SPREAD_COLUMNS}


def arrival_keywords(row: dict[str, str]) -> dict[str, Any]:
    """The :func:`genmodel.simulate` keywords of a row's arrivals: a checked rate row's
    ``request_rate``, ``requests``, ``burstiness_cv`` and :data:`SEED`; else its ``batch``
    closed-loop clients; the spreads of either's lengths."""
    if not is_rate(row):
        return {"concurrency": int(row["batch"]), **spread_keywords(row)}
    where = f"case {row['id']}"
    requests = (row.get("requests") or "").strip()
    return {
        "request_rate": _positive(row, "request_rate", where, MAX_RATE),
        "requests": int(requests) if requests else DEFAULT_REQUESTS,
        "burstiness_cv": _positive(row, "burstiness_cv", where, 100.0),
        **spread_keywords(row, where),
        "seed": SEED,
    }


def simulated_metric(
    row: dict[str, str],
    *,
    serving: str,
    run: Callable[[], SimulationResult],
    done: dict[tuple[tuple[str, str], ...], SimulationResult | str],
    key: tuple[tuple[str, str], ...],
    kind: str,
) -> float | str:
    """The metric of a simulated case, or why it cannot be predicted.

    Args:
        serving: the serving model asked for; only "simulated" serves these cases.
        run: the simulation of the row.
        done: simulations already run, by ``key`` (the rows of one measurement share one).
        kind: what the case is, for the reasons ("a rate-driven case (mode=rate)", ...).
    """
    metric = row["metric"]
    if serving != "simulated":
        return f"{kind} is predicted by the simulation only (serving='simulated')"
    if metric not in SIMULATED_METRICS:
        return f"metric={metric!r} is not predicted for {kind} (known: {', '.join(SIMULATED_METRICS)})"
    if key not in done:
        try:
            done[key] = run()
        except GenModelError as exc:
            done[key] = str(exc)
    result = done[key]
    return result if isinstance(result, str) else float(SIMULATED_METRICS[metric](result))


def _layout(row: dict[str, str]) -> dict[str, Any]:
    """The deployment and precisions a rate case names, as the estimate's keywords."""
    return {
        "devices": int(row["devices"]),
        **{k: int(row[k]) for k in ("tp", "pp", "ep", "dp")},
        "weight_dtype": row["weight_dtype"],
        "act_dtype": row["act_dtype"] or None,
        "kv_dtype": row["kv_dtype"] or None,
    }


def simulate_rate_case(row: dict[str, str], *, engine: str, options: dict[str, Any]) -> SimulationResult:
    """Simulate an aggregated rate case (a row :func:`check_rate_row` accepted).

    Args:
        row: the case.
        engine: the engine when the row's ``engine`` column is empty; its preset is configured as the
            row's ``engine_config`` says (:func:`~genmodel._harness.harness_engine`).
        options: the row's run options (``system``, ``cp``, :data:`~genmodel.OPTION_SPECS`, profile).
    """
    return simulate(
        row["model"],
        row["hardware"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        **_layout(row),
        engine=_rate_engine(row, engine, options),
        **arrival_keywords(row),
        **{k: v for k, v in options.items() if k != "disaggregated"},
    )


def _rate_engine(row: dict[str, str], engine: str, options: dict[str, Any]) -> str | Engine:
    """A rate case's engine: its ``engine`` column (else ``engine``), as its ``engine_config`` sets it
    (on the row's device: the presets' defaults depend on it)."""
    name = (row.get("engine") or "").strip() or engine
    config = (row.get("engine_config") or "").strip()
    if not config:
        return name
    _, hw = _specs(row["model"], row["hardware"], options.get("system"))
    return harness_engine(engine_preset(name, hw.device), config, tp=int(row["tp"]))


def _pool(row: dict[str, str], name: str, device: Device, options: dict[str, Any]) -> KvPool:
    """The KV pool of a rate case's engine (as its ``engine_config`` sets it): the closed form's
    only view of the engine, which has no step schedule for the overlap or the graph limit."""
    configured = _rate_engine(row, name, options)
    return (configured if isinstance(configured, Engine) else engine_preset(name, device)).kv_pool


def closed_form_metric(
    row: dict[str, str],
    *,
    engine: str,
    options: dict[str, Any],
    done: dict[tuple[tuple[str, str], ...], Any],
    key: tuple[tuple[str, str], ...],
) -> float | str:
    """The metric of an aggregated rate case by the closed form's open loop
    (:func:`genmodel._openloop.estimate_open_loop`), or why it has none.

    Args:
        engine: the engine when the row's ``engine`` column is empty (its profile applies).
        done: closed forms already solved, by ``key``.
    """
    metric = row["metric"]
    if metric not in CLOSED_FORM_METRICS:
        return (
            f"metric={metric!r} of a rate case is the simulation's only: the closed form gives "
            f"{', '.join(CLOSED_FORM_METRICS)}"
        )
    if (row.get("burstiness_cv") or "").strip():
        return (
            "burstiness_cv: the closed form's queue is M/D/1 (Poisson arrivals); "
            "bursty ones are simulated only"
        )
    key = (*key, ("serving", "closed-form"))
    if key not in done:
        try:
            done[key] = _open_loop(row, engine=engine, options=options)
        except GenModelError as exc:
            done[key] = str(exc)
    got = done[key]
    return got if isinstance(got, str) else float(CLOSED_FORM_METRICS[metric](got, int(row["output_tokens"])))


def _open_loop(row: dict[str, str], *, engine: str, options: dict[str, Any]) -> OpenLoopPoint:
    """The closed form of an aggregated rate case: the specs as :func:`genmodel.estimate` builds
    them, the profile its engine's (as the simulation's), then the open loop at the row's rate."""
    prompt, output = int(row["input_tokens"]), int(row["output_tokens"])
    run = {k: v for k, v in options.items() if k != "disaggregated"}
    check = estimate(
        row["model"],
        row["hardware"],
        input_tokens=prompt,
        output_tokens=output,
        batch=1,
        **_layout(row),
        **run,
    )
    model, hw = _specs(row["model"], row["hardware"], run.get("system"))
    name = (row.get("engine") or "").strip() or engine
    hw, options_in_force = profiled(hw, check.options, name)
    rate = arrival_keywords(row)["request_rate"]
    return estimate_open_loop(
        model,
        hw,
        check.plan,
        check.precision,
        request_rate=rate,
        input_tokens=prompt,
        output_tokens=output,
        options=options_in_force,
        pool=_pool(row, name, hw.device, options),  # what the simulation's engine admits
    )
