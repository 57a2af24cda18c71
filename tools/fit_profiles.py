"""Fit the shipped efficiency profiles (hardware_db/profiles/) on the public validation cases.

Each non-default profile is a device and an engine: its rows are the public cases of that device
whose ``engine`` column names that engine (static rows carry the engine that ran the measurement),
restricted to the metrics the efficiencies describe (``--metrics``; TTFT under load is left out by
default: its error is dominated by time outside the forward steps, which no efficiency holds). The
fit starts from the ``default`` profile and is ``genmodel calibrate``'s (bounded least squares on
log-error, only the parameters the rows pin down, each within its physically sane range).

The error that counts is leave-one-source-out (LOSO): each source (the ``source_id`` column) is
predicted by the fit on the other sources. A profile is written only when it has rows from at least
two sources and its LOSO error is at least ``MIN_LOSO_GAIN`` (1) point below the ``default``
profile's error on the same rows, and no fitted parameter ends at the edge of its sane range
(``BOUND_TOLERANCE``: a fit pinned there is compensating for something the parameter does not
describe); otherwise the device keeps the default and the table says why. The ``default``
profile itself is not rewritten (its numbers are the shared ones the golden files hold); its LOSO
error is reported by refitting its four fitted parameters across every static case, one source
left out at a time. ``mla_decode_frac`` is never fitted here (:data:`SOURCED`): it is the device
file's published kernel timing (hardware_db/EFFICIENCY.md), and fitted on a platform's end-to-end
rows it would take up whatever else they miss (the GB200 decode rows' real-router imbalance).

Two parameters are properties of the engine's software, not of the device, and are fitted apart,
after the device fits above, one value per engine on every serving case of that engine (all
devices), each case predicted with its device's profile of this run:

- ``expert_memory_frac`` (the routed experts' share of ``memory_frac``: grouped/fused MoE GEMMs
  over thin expert slices and few tokens each) on the TPOT of MoE models, by bounded least
  squares on log-error within ``genmodel.fit_bounds``;
- then ``request_overhead_s`` (the time a request spends in the serving frontend: HTTP,
  tokenisation, detokenisation, streaming) on TTFT: with it, TTFT is exactly the prediction
  without it plus the overhead, and the overhead is the one minimising the MAPE within its bounds
  (a weighted median, :func:`fit_constant`; least squares on log-error is dominated by the cases
  whose TTFT is queue-bound, 10-80 times the prediction, which no per-request constant explains).

Every bundled serving case comes from one source (AIConfigurator's silicon_sample.csv), so their
held-out error is **leave-one-model-out** (``--hold-out model``, the default; ``hardware`` holds
out one device at a time; the table shows both): each model's cases are predicted by the value
fitted on the other models. A value is written into the profile of every device of that engine
that has cases in its fit when it differs from the neutral one (1, or at least 1 ms), lies
inside its bounds, and its held-out MAPE is at least ``MIN_LOSO_GAIN`` below the error without
it on the same cases; otherwise the table says why and the engine keeps the default.

Run: python tools/fit_profiles.py [--check] [--only ID ...] [--cases CSV] [--metrics M ...]
Prints markdown tables (the README's and hardware_db/EFFICIENCY.md's) and, without --check,
rewrites the profile files. One command, no randomness: the lead reruns it after a model change.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import genmodel
from genmodel._calibrate import fit_profile
from genmodel._calibration import Calibration
from genmodel._profiles import Profile, fit_bounds
from genmodel._simestimate import StepTables
from genmodel._validate import _estimate_case
from genmodel.io import load_hardware, load_profile, profile_to_yaml
from genmodel.io._profiles import yaml_key

PROFILES_DIR = Path(__file__).resolve().parent.parent / "hardware_db" / "profiles"

#: (profile id, device id, engine, title): the platforms the public cases can fit
SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("h100-trtllm", "h100-sxm", "trtllm", "H100 SXM with TensorRT-LLM"),
    ("h100-vllm", "h100-sxm", "vllm", "H100 SXM with vLLM"),
    ("h100-sglang", "h100-sxm", "sglang", "H100 SXM with SGLang"),
    ("h200-trtllm", "h200-sxm", "trtllm", "H200 SXM with TensorRT-LLM"),
    ("h200-vllm", "h200-sxm", "vllm", "H200 SXM with vLLM"),
    ("h200-sglang", "h200-sxm", "sglang", "H200 SXM with SGLang"),
    ("b200-trtllm", "b200", "trtllm", "B200 with TensorRT-LLM"),
    ("b200-vllm", "b200", "vllm", "B200 with vLLM"),
    ("b200-sglang", "b200", "sglang", "B200 with SGLang"),
    ("gb200-sglang", "gb200", "sglang", "GB200 with SGLang"),
    ("mi300x-vllm", "mi300x", "vllm", "MI300X with vLLM"),
    ("orin-llamacpp", "jetson-agx-orin-64gb", "llamacpp", "Jetson AGX Orin with llama.cpp"),
    ("orin-mlc", "jetson-agx-orin-64gb", "mlc", "Jetson AGX Orin with MLC LLM"),
)
#: metrics fitted by default: every static metric, and TPOT under load
DEFAULT_METRICS = ("static", "tpot_s")
#: the least drop of the MAPE (percentage points), leave-one-source-out against the default on the
#: same rows, for which a profile is shipped (smaller gains are within the noise of a few sources)
MIN_LOSO_GAIN = 1.0
#: a fitted value within this share of its range's width from either end is at the bound: the fit
#: wanted to go further, so the miss is not one this parameter describes (no profile is written)
BOUND_TOLERANCE = 0.01
#: the parameters of the default profile that tools/fit_efficiency.py fitted
DEFAULT_FITTED = ("gemm_frac", "gemm_low_precision_frac", "memory_frac", "step_overhead_s")
#: the engine-wide parameters: the request overhead (fitted on TTFT under load) and the routed
#: experts' share of memory_frac (on the TPOT of MoE models under load), fitted in this order
OVERHEAD = "request_overhead_s"
EXPERT = "expert_memory_frac"
ENGINE_WIDE = (EXPERT, OVERHEAD)
#: parameters the device files give from published kernel timings, never fitted to a platform's rows
SOURCED = ("mla_decode_frac",)
#: what one case is held out with in the overhead's cross-validation (a column of the cases)
HOLD_OUT = ("model", "hardware")
#: the least overhead worth writing (below it the fit says "none")
MIN_OVERHEAD_S = 1e-3
#: what is published about each engine's frontend, written beside its fitted value: none of these
#: gives a per-request time, so the value is fitted, and these say why it is not zero
FRONTEND_NOTES = {
    "vllm": "vLLM v0.6.0 performance update (vLLM blog, 2024-09-05): on Llama-3-8B/1xH100 the HTTP API "
    "server took 33 % and scheduling 29 % of v0.5.3's execution time; v0.6 moved the API server to its "
    "own process, so tokenisation and detokenisation overlap the GPU and remain on each request's path",
    "sglang": "SGLang runtime design (sglang srt/entrypoints/engine.py): the HTTP server and "
    "TokenizerManager run in the main process, the scheduler and DetokenizerManager in subprocesses "
    "linked by ZeroMQ, so each request crosses tokenisation, two IPC hops and detokenisation",
    "trtllm": "trtllm-serve (TensorRT-LLM docs, commands/trtllm-serve): an OpenAI-compatible HTTP server "
    "in front of the executor, with the tokenizer (--tokenizer) in its Python frontend",
}


#: what is published about routed-expert kernels at few tokens per expert (no engine publishes the
#: bandwidth its MoE kernels reach at decode, so the value is fitted; these say why it is below 1)
_MOE_KERNELS = (
    "grouped expert GEMMs at few tokens stream thin weight slices with little parallel work per "
    "expert and add permutation, activation quantisation and combine kernels; Morph-Decode "
    "(morphllm.com/blog/morph-decode, 2026-04-09) profiled TensorRT-LLM's CUTLASS MoE path in batch-1 "
    "decode of Qwen3-Next-80B-A3B (NVFP4) on an RTX PRO 6000 Blackwell and found 29 % of MoE-layer time "
    "in the GEMMs, 71 % in the other kernels (another GPU and engine: it says why, not how much)"
)
EXPERT_NOTES = {
    "vllm": "vLLM fused_moe (Triton) kernels, " + _MOE_KERNELS,
    "sglang": "SGLang fused MoE kernels, " + _MOE_KERNELS,
    "trtllm": "TensorRT-LLM MoE kernels, " + _MOE_KERNELS,
}


#: serving cases kept out of every fit here: held-out checks added after the fits, to be predicted,
#: never fitted (docs/validation.md, "Held-out serving cases from other harnesses"); they lie on a
#: device and engine of SPECS (H100 with vLLM), so without this a rerun would fit on them
HELD_OUT_CASES = frozenset({"PS151", "PS152", *(f"PS{i}" for i in range(153, 171))})


def fit_cases(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """``rows`` without the held-out cases (:data:`HELD_OUT_CASES`)."""
    return [r for r in rows if r["id"] not in HELD_OUT_CASES]


def _source(row: Mapping[str, str]) -> str:
    return row.get("source_id") or row["id"]


def _mape(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured * 100


def rows_for(
    rows: Sequence[dict[str, str]], device: str, engine: str, metrics: Sequence[str]
) -> list[dict[str, str]]:
    """The rows of ``device`` measured with ``engine``, of the metrics asked for (never a
    rate-driven row: those are held out)."""
    out = []
    for r in rows:
        if (r.get("engine") or "").strip() != engine or r["mode"] == "rate":
            continue  # (rate-driven rows are held out: no fit uses them)
        wanted = r["metric"] in metrics or ("static" in metrics and r["mode"] == "static")
        if not wanted:
            continue
        if load_hardware(r["hardware"]).device.id == device:
            out.append(r)
    return out


def held_errors(fit: Calibration) -> tuple[int, float, float]:
    """(rows predicted out of source, the default's MAPE on them, the LOSO MAPE on them)."""
    held = [c for c in fit.cases if c.held_out is not None]
    before = _mape([_ape(c.before, c.measured) for c in held])
    return len(held), before, _mape([_ape(c.held_out, c.measured) for c in held if c.held_out is not None])


def _verdict(fit: Calibration | None, sources: int, reason: str) -> tuple[bool, str]:
    if fit is None:
        return False, reason
    n, before, loso = held_errors(fit)
    if sources < 2 or n == 0:
        return False, f"rows from {sources} source(s): no out-of-source check"
    if n < len(fit.cases) / 2:
        return False, f"only {n} of {len(fit.cases)} rows can be predicted out of source"
    if loso > before - MIN_LOSO_GAIN:
        return False, (
            f"LOSO {loso:.1f} % is not {MIN_LOSO_GAIN:.0f} point better than the default's {before:.1f} % "
            "on the same rows"
        )
    pinned = at_bound(fit)
    if pinned:
        return False, (
            f"{pinned} fitted to the end of its sane range: the rows ask for more than the parameter "
            "can give (a structural miss, not an efficiency)"
        )
    return True, "written"


def at_bound(fit: Calibration) -> str:
    """The first fitted parameter whose value ends within ``BOUND_TOLERANCE`` of its range, with the
    value ('' when none does)."""
    for p in fit.parameters:
        if p.status != "fitted" or p.bounds is None:
            continue
        lo, hi = p.bounds
        span = hi - lo
        if min(p.value - lo, hi - p.value) <= BOUND_TOLERANCE * span:
            return f"{p.name} = {p.value:.3g}"
    return ""


def fit_one(
    spec: tuple[str, str, str, str], rows: Sequence[dict[str, str]], metrics: Sequence[str]
) -> tuple[dict[str, object], Calibration | None]:
    """Fit one profile; its table row and the calibration (None when it cannot be fitted)."""
    profile_id, device, engine, title = spec
    mine = rows_for(rows, device, engine, metrics)
    sources = len({_source(r) for r in mine})
    fit: Calibration | None = None
    reason = ""
    try:
        fit = fit_profile(
            mine,
            base=load_profile("default"),
            hardware=device,
            profile_id=profile_id,
            group=_source,
            exclude=ENGINE_WIDE + SOURCED,  # the engine-wide ones fitted per engine below
        )
    except genmodel.GenModelError as exc:
        reason = str(exc).split(";")[0]
    ok, why = _verdict(fit, sources, reason)
    row: dict[str, object] = {"profile": profile_id, "rows": len(mine), "sources": sources, "written": ok}
    if fit is not None:
        n, before, loso = held_errors(fit)
        row |= {
            "fitted": ", ".join(fit.fitted),
            "default": fit.mape_before,
            "in_sample": fit.mape_after,
            "held": n,
            "default_held": before,
            "loso": loso,
        }
    row["note"] = why
    if fit is not None:
        fit = dataclasses.replace(
            fit,
            profile=dataclasses.replace(
                fit.profile,
                name=title,
                engines=(engine,),
                source=f"tools/fit_profiles.py: {len(mine)} public cases from {sources} sources, "
                f"metrics {', '.join(metrics)}; base profile default",
            ),
        )
    return row, fit


def default_loso(rows: Sequence[dict[str, str]]) -> dict[str, float]:
    """The default profile's static error in sample and leave-one-source-out (its fitted four refit)."""
    static = [r for r in rows if r["mode"] == "static"]
    fit = fit_profile(
        static,
        base=load_profile("default"),
        hardware="all devices",
        parameters=DEFAULT_FITTED,
        group=_source,
    )
    n, before, loso = held_errors(fit)
    return {
        "rows": len(fit.cases),
        "in_sample": fit.mape_before,
        "held": n,
        "default_held": before,
        "loso": loso,
    }


class EngineFit(NamedTuple):
    """One engine-wide parameter: its cases, the predictions without it, and the fits."""

    parameter: str
    engine: str
    hold_out: str
    rows: tuple[dict[str, str], ...]
    measured: tuple[float, ...]
    #: each case with its device's profile and the parameter at its neutral value
    base: tuple[float, ...]
    #: fitted on every case (SI units)
    value: float
    #: each case with the value fitted on every case
    after: tuple[float, ...]
    #: each case predicted with the value fitted on the other groups (None: no fit possible)
    held: tuple[float | None, ...]
    #: the value fitted without each group
    fold_values: tuple[float, ...]

    def mape(self, predicted: Sequence[float | None]) -> float:
        """MAPE of ``predicted`` on the cases it predicts."""
        return _mape([_ape(p, m) for p, m in zip(predicted, self.measured, strict=True) if p is not None])

    def median(self, predicted: Sequence[float | None]) -> float:
        """Median APE of ``predicted``."""
        ape = [_ape(p, m) for p, m in zip(predicted, self.measured, strict=True) if p is not None]
        return statistics.median(ape) if ape else float("nan")

    @property
    def base_held(self) -> tuple[float | None, ...]:
        """The predictions without the parameter, on the cases the held-out fit predicts."""
        return tuple(b if h is not None else None for b, h in zip(self.base, self.held, strict=True))

    def devices(self) -> list[str]:
        """The devices of its cases."""
        return sorted({load_hardware(r["hardware"]).device.id for r in self.rows})


def fit_constant(base: Sequence[float], measured: Sequence[float], bounds: tuple[float, float]) -> float:
    """The constant c in ``bounds`` minimising the mean absolute % error of ``base + c``.

    sum |base_i + c - m_i| / m_i is piecewise linear and convex in c; its minimum is the weighted
    median of the gaps m_i - base_i with weights 1 / m_i (the lower one where two tie), clipped
    to ``bounds``: exact and deterministic. (Least squares on log-error, as the device fits use,
    is dominated here by the cases whose TTFT is queue-bound, 10-80 times the prediction, which
    no per-request constant explains.)
    """
    pairs = sorted((m - b, 1.0 / m) for b, m in zip(base, measured, strict=True))
    half = sum(w for _, w in pairs) / 2
    total = 0.0
    for gap, weight in pairs:
        total += weight
        if total >= half:
            return min(max(gap, bounds[0]), bounds[1])
    raise ValueError("no cases")


def _groups(rows: Sequence[Mapping[str, str]], hold_out: str) -> list[tuple[list[int], list[int]]]:
    """(inside, left out) case indices, one pair per value of the ``hold_out`` column."""
    keys = [r[hold_out] for r in rows]
    out = []
    for key in dict.fromkeys(keys):
        inside = [i for i, k in enumerate(keys) if k != key]
        if inside:
            out.append((inside, [i for i, k in enumerate(keys) if k == key]))
    return out


def fit_overhead(
    engine: str,
    rows: Sequence[dict[str, str]],
    base: Sequence[float],
    hold_out: str = HOLD_OUT[0],
) -> EngineFit:
    """Fit the request overhead of ``engine`` on its TTFT ``rows`` (predicted ``base`` without it;
    with it, TTFT is exactly ``base + overhead``), and hold out each value of ``hold_out``."""
    bounds = fit_bounds(OVERHEAD)
    assert bounds is not None
    measured = [float(r["measured"]) for r in rows]
    held: list[float | None] = [None] * len(rows)
    folds = []
    for inside, left in _groups(rows, hold_out):
        value = fit_constant([base[i] for i in inside], [measured[i] for i in inside], bounds)
        folds.append(value)
        for i in left:
            held[i] = base[i] + value
    value = fit_constant(base, measured, bounds)
    return EngineFit(
        parameter=OVERHEAD,
        engine=engine,
        hold_out=hold_out,
        rows=tuple(rows),
        measured=tuple(measured),
        base=tuple(base),
        value=value,
        after=tuple(b + value for b in base),
        held=tuple(held),
        fold_values=tuple(folds),
    )


class _Predictor:
    """Each case as validate predicts it, with its device's profile and ``parameter`` set (memoised)."""

    def __init__(
        self, parameter: str, rows: Sequence[dict[str, str]], profiles: Mapping[tuple[str, str], Profile]
    ) -> None:
        default = load_profile("default")
        self.parameter, self.rows = parameter, rows
        self.profiles = [
            profiles.get((load_hardware(r["hardware"]).device.id, r["engine"].strip()), default) for r in rows
        ]
        self.tables = StepTables()
        self.done: dict[tuple[int, float], float] = {}

    def __call__(self, value: float, index: Sequence[int]) -> list[float]:
        out = []
        for i in index:
            key = (i, value)
            if key not in self.done:
                row = self.rows[i]
                profile = self.profiles[i].with_values({self.parameter: value}, how="fitted")
                est = _estimate_case(
                    dict(row), "simulated", row["engine"].strip(), self.tables, profile=profile
                )
                self.done[key] = float(getattr(est, row["metric"]))
            out.append(self.done[key])
        return out


def _least_squares(predict: _Predictor, measured: Sequence[float], index: Sequence[int]) -> float:
    """The value of the predictor's parameter within its bounds minimising the squared log-error of
    the cases ``index`` (bounded least squares, trust-region reflective, from the neutral value)."""
    import numpy as np
    from scipy.optimize import least_squares

    lo, hi = fit_bounds(predict.parameter) or (0.0, 1.0)
    m = np.asarray([measured[i] for i in index])

    def residuals(u: Any) -> Any:
        value = round(lo + float(np.clip(u[0], 0.0, 1.0)) * (hi - lo), 6)
        return np.log(np.asarray(predict(value, index)) / m)

    result = least_squares(residuals, [1.0], bounds=(0.0, 1.0), diff_step=0.02, max_nfev=60)
    return round(lo + float(result.x[0]) * (hi - lo), 6)


def fit_expert(
    engine: str,
    rows: Sequence[dict[str, str]],
    profiles: Mapping[tuple[str, str], Profile],
    hold_out: str = HOLD_OUT[0],
) -> EngineFit:
    """Fit ``expert_memory_frac`` of ``engine`` on its MoE TPOT ``rows`` (bounded least squares on
    log-error), and hold out each value of ``hold_out``."""
    predict = _Predictor(EXPERT, rows, profiles)
    measured = [float(r["measured"]) for r in rows]
    every = range(len(rows))
    held: list[float | None] = [None] * len(rows)
    folds = []
    for inside, left in _groups(rows, hold_out):
        value = _least_squares(predict, measured, inside)
        folds.append(value)
        for i, p in zip(left, predict(value, left), strict=True):
            held[i] = p
    value = _least_squares(predict, measured, every)
    return EngineFit(
        parameter=EXPERT,
        engine=engine,
        hold_out=hold_out,
        rows=tuple(rows),
        measured=tuple(measured),
        base=tuple(predict(1.0, every)),
        value=value,
        after=tuple(predict(value, every)),
        held=tuple(held),
        fold_values=tuple(folds),
    )


def engine_verdict(fit: EngineFit) -> tuple[bool, str]:
    """Whether an engine-wide value is written, and why (or why not)."""
    lo, hi = fit_bounds(fit.parameter) or (0.0, 1.0)
    groups = len({r[fit.hold_out] for r in fit.rows})
    if groups < 2:
        return False, f"cases of {groups} {fit.hold_out}(s): no held-out check"
    neutral = (fit.value < MIN_OVERHEAD_S) if fit.parameter == OVERHEAD else (fit.value >= 0.99)
    if neutral:
        return False, f"fits {_show(fit.parameter, fit.value)}: no change from the default"
    if fit.value >= hi * 0.999 or (fit.parameter != OVERHEAD and fit.value <= lo * 1.001):
        return False, f"fits the bound {_show(fit.parameter, fit.value)}: not pinned down"
    before, after = fit.mape(fit.base_held), fit.mape(fit.held)
    if after > before - MIN_LOSO_GAIN:
        return False, f"held out {after:.1f} % is not {MIN_LOSO_GAIN:.0f} point better than {before:.1f} %"
    return True, "written"


def _pct(x: float) -> str:
    return f"{x:.1f} %" if x == x else "-"


def _show(parameter: str, value: float) -> str:
    return f"{value * 1e3:.0f} ms" if parameter.endswith("_s") else f"{value:.2f}"


#: the harness whose runs the engine-wide values are fitted on: one frontend and one client for
#: every case (AIConfigurator's generated servers behind NVIDIA Dynamo's frontend, genai-perf);
#: serving cases of other clients are held out, and a value fitted here names it (engine_configs)
HARNESS = "aiconfigurator"


def engine_rows(rows: Sequence[dict[str, str]], engine: str, parameter: str) -> list[dict[str, str]]:
    """The serving cases of ``engine`` under :data:`HARNESS` on the devices of :data:`SPECS` that
    show ``parameter``: TTFT for the request overhead, TPOT of MoE models for ``expert_memory_frac``."""
    devices = {s[1] for s in SPECS if s[2] == engine}
    metric = "ttft_s" if parameter == OVERHEAD else "tpot_s"
    return [
        r
        for r in rows
        if (r.get("engine") or "").strip() == engine
        and (r.get("engine_config") or "").strip() == HARNESS
        and r["mode"] == "concurrency"
        and r["metric"] == metric
        and load_hardware(r["hardware"]).device.id in devices
        and (parameter == OVERHEAD or genmodel.load_model(r["model"]).moe is not None)
    ]


def ttft_rows(rows: Sequence[dict[str, str]], engine: str) -> list[dict[str, str]]:
    """The TTFT serving cases of ``engine`` on the devices of :data:`SPECS`."""
    return engine_rows(rows, engine, OVERHEAD)


def base_ttft(rows: Sequence[dict[str, str]], profiles: Mapping[tuple[str, str], Profile]) -> list[float]:
    """Each TTFT case as validate predicts it, with its device's profile of this run (``profiles``
    by (device, engine); default where none) and no request overhead."""
    return _Predictor(OVERHEAD, rows, profiles)(0.0, range(len(rows)))


def _engine_entry(fit: EngineFit) -> dict[str, object]:
    before, after = fit.mape(fit.base_held), fit.mape(fit.held)
    method = (
        "least absolute % error (bounded weighted median) of TTFT = prediction + overhead"
        if fit.parameter == OVERHEAD
        else "bounded least squares on log-error of TPOT"
    )
    notes = FRONTEND_NOTES if fit.parameter == OVERHEAD else EXPERT_NOTES
    return {
        "how": "fitted",
        "cases": [r["id"] for r in fit.rows],
        "source": (
            f"tools/fit_profiles.py: one value for {fit.engine} on its {len(fit.rows)} "
            f"{'TTFT' if fit.parameter == OVERHEAD else 'MoE TPOT'} serving cases (all devices), {method}; "
            f"held out by {fit.hold_out}: MAPE {before:.1f} % -> {after:.1f} %. "
            f"Published: {notes[fit.engine]}"
        ),
    }


def _engine_table(fits: Sequence[EngineFit], hold_out: str = HOLD_OUT[0]) -> str:
    lines = [
        "| parameter | engine | cases | devices | fitted | MAPE without | fitted, in sample "
        "| median without -> fitted | held out by | values across folds "
        "| held-out MAPE without -> with | shipped |",
        "|---|---|---:|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for f in fits:
        ok, why = engine_verdict(f)
        folds = (
            f"{_show(f.parameter, min(f.fold_values))} - {_show(f.parameter, max(f.fold_values))}"
            if f.fold_values
            else "-"
        )
        lines.append(
            f"| {yaml_key(f.parameter)} | {f.engine} | {len(f.rows)} | {', '.join(f.devices())} | "
            f"{_show(f.parameter, f.value)} | {f.mape(f.base):.1f} % | {f.mape(f.after):.1f} % | "
            f"{f.median(f.base):.0f} % -> {f.median(f.after):.0f} % | {f.hold_out} | {folds} | "
            f"{_pct(f.mape(f.base_held))} -> {_pct(f.mape(f.held))} | "
            f"{'' if f.hold_out == hold_out else 'check only, would be: '}{'yes' if ok else 'no: ' + why} |"
        )
    return "\n".join(lines)


def _entries(fit: Calibration) -> dict[str, dict[str, object]]:
    ids = [c.id for c in fit.cases]
    return {
        name: {
            "how": "fitted",
            "cases": list(ids),  # a list each (no YAML anchors)
            "source": "tools/fit_profiles.py (bounded least squares on log-error)",
        }
        for name in fit.fitted
    }


def _table(results: Sequence[dict[str, object]], default: Mapping[str, float] | None) -> str:
    lines = [
        "| profile | rows | sources | fitted | default MAPE | fitted, in sample | LOSO rows "
        "| default on them | LOSO MAPE | shipped |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    if default is not None:
        lines.append(
            f"| default (static cases, all devices) | {default['rows']:.0f} | | "
            f"{', '.join(DEFAULT_FITTED)} | "
            f"{default['in_sample']:.1f} % | {default['in_sample']:.1f} % | {default['held']:.0f} | "
            f"{default['default_held']:.1f} % | {default['loso']:.1f} % | yes |"
        )

    def pct(x: object) -> str:
        return f"{x:.1f} %" if isinstance(x, float) and x == x else "-"

    for r in results:
        lines.append(
            f"| {r['profile']} | {r['rows']} | {r['sources']} | {r.get('fitted', '-') or '-'} | "
            f"{pct(r.get('default'))} | {pct(r.get('in_sample'))} | {r.get('held', '-')} | "
            f"{pct(r.get('default_held'))} | {pct(r.get('loso'))} | "
            f"{'yes' if r['written'] else 'no: ' + str(r['note'])} |"
        )
    return "\n".join(lines)


def fit_engines(
    rows: Sequence[dict[str, str]],
    engines: Sequence[str],
    profiles: Mapping[tuple[str, str], Profile],
    hold_outs: Sequence[str],
    parameters: Sequence[str] = ENGINE_WIDE,
) -> list[EngineFit]:
    """The engine-wide parameters of each engine with cases, held out by each of ``hold_outs``:
    ``expert_memory_frac`` first, then the request overhead over the profiles with the expert
    value the first hold-out ships (``profiles`` by (device, engine): each case's base)."""
    fits: list[EngineFit] = []
    for engine in engines:
        mine = dict(profiles)
        for parameter in (p for p in ENGINE_WIDE if p in parameters):
            cases = engine_rows(rows, engine, parameter)
            if not cases:
                continue
            if parameter == OVERHEAD:
                base = base_ttft(cases, mine)
                now = [fit_overhead(engine, cases, base, h) for h in hold_outs]
            else:
                now = [fit_expert(engine, cases, mine, h) for h in hold_outs]
            fits += now
            if engine_verdict(now[0])[0]:
                mine = _with_engine_fit(mine, now[0])
    return fits


def _with_engine_fit(
    profiles: Mapping[tuple[str, str], Profile], fit: EngineFit
) -> dict[tuple[str, str], Profile]:
    """``profiles`` with the fitted value in those of the engine's devices that have cases in it."""
    default = load_profile("default")
    out = dict(profiles)
    for device in fit.devices():
        key = (device, fit.engine)
        out[key] = out.get(key, default).with_values({fit.parameter: fit.value}, how="fitted")
    return out


def _shipped(profile_id: str) -> Profile | None:
    """The shipped profile ``profile_id``, or None."""
    try:
        return load_profile(profile_id)
    except genmodel.UnknownEntryError:
        return None


def _write(
    spec: tuple[str, str, str, str],
    row: Mapping[str, object],
    fit: Calibration | None,
    engine_fits: Sequence[EngineFit],
    out: Path,
) -> None:
    """Write (or remove) one profile file: its device fit if it ships, and each engine-wide value
    that ships and has cases on the device."""
    profile_id, device, engine, title = spec
    target = out / f"{profile_id}.yaml"
    ships = [f for f in engine_fits if f.engine == engine and device in f.devices() and engine_verdict(f)[0]]
    if row["written"] and fit is not None:
        profile, entries = fit.profile, _entries(fit)
    elif ships:  # the default's values, each recorded as kept from it
        default = load_profile("default")
        profile = Profile(
            id=profile_id,
            name=title,
            values=dict(default.values),
            provenance={
                k: f"base: profile {default.id}, {v}" if k in default.values else v
                for k, v in default.provenance.items()
            },
            hardware=(device,),
            engines=(engine,),
            source="tools/fit_profiles.py: base profile default",
        )
        entries = {}
    else:
        if target.exists():
            target.unlink()
        return
    # an engine-wide value fitted on a harness's runs only (AIConfigurator's, behind Dynamo's
    # frontend) is the default under that harness only
    configs = {(r.get("engine_config") or "").strip() for f in ships for r in f.rows}
    if ships and "" not in configs:
        profile = dataclasses.replace(profile, engine_configs=tuple(sorted(configs)))
    for f in ships:
        profile = profile.with_values({f.parameter: f.value}, how="fitted")
        entries[f.parameter] = _engine_entry(f)
        profile = dataclasses.replace(
            profile,
            source=(profile.source + "; " if profile.source else "")
            + f"tools/fit_profiles.py: {yaml_key(f.parameter)} fitted for {engine} on its serving cases",
        )
    target.write_text(profile_to_yaml(profile, entries=entries))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=str(genmodel.public_cases_path()))
    parser.add_argument("--only", nargs="*", help="profile ids to fit (default: all)")
    parser.add_argument("--metrics", nargs="*", default=list(DEFAULT_METRICS))
    parser.add_argument("--check", action="store_true", help="print only; write no profile file")
    parser.add_argument("--no-default", action="store_true", help="skip the default profile's LOSO")
    parser.add_argument("--no-engine-wide", action="store_true", help="skip the engine-wide fits")
    parser.add_argument(
        "--hold-out", choices=HOLD_OUT, default=HOLD_OUT[0], help="the engine-wide fits' held-out groups"
    )
    parser.add_argument("--out", type=Path, default=PROFILES_DIR, help="folder the profiles are written to")
    args = parser.parse_args(argv)
    rows = fit_cases(genmodel.read_cases(args.cases))
    if Path(args.cases).resolve() == genmodel.public_cases_path().resolve():  # as validate runs them
        options = genmodel.read_case_options(genmodel.public_options_path())
        rows = [{**r, **options.get(r["id"], {})} for r in rows]
    specs = [s for s in SPECS if not args.only or s[0] in args.only]
    results, fits = [], []
    for spec in specs:
        row, fit = fit_one(spec, rows, args.metrics)
        results.append(row)
        fits.append(fit)
        print(_table([row], None).splitlines()[-1], file=sys.stderr, flush=True)  # progress
    # each case's base: its device's profile as this run leaves it (files for the specs not run)
    default = load_profile("default")
    profiles = {
        (s[1], s[2]): f.profile if r["written"] and f is not None else default
        for s, r, f in zip(specs, results, fits, strict=True)
    }
    for s in SPECS:
        if (s[1], s[2]) not in profiles:
            profiles[(s[1], s[2])] = _shipped(s[0]) or default
    engines = list(dict.fromkeys(s[2] for s in specs))
    hold_outs = [args.hold_out, *[h for h in HOLD_OUT if h != args.hold_out]]
    wide = [] if args.no_engine_wide else fit_engines(rows, engines, profiles, hold_outs)
    chosen = [f for f in wide if f.hold_out == args.hold_out]
    if not args.check:
        for spec, row, fit in zip(specs, results, fits, strict=True):
            _write(spec, row, fit, chosen, args.out)
    table = _table(results, None if args.no_default else default_loso(rows))
    print(table if args.no_engine_wide else table + "\n\n" + _engine_table(wide, args.hold_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
