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
left out at a time.

Run: python tools/fit_profiles.py [--check] [--only ID ...] [--cases CSV] [--metrics M ...]
Prints a markdown table (the README's) and, without --check, rewrites the profile files.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import genmodel
from genmodel._calibrate import Calibration, fit_profile
from genmodel.io import load_hardware, load_profile, profile_to_yaml

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


def _source(row: Mapping[str, str]) -> str:
    return row.get("source_id") or row["id"]


def _mape(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured * 100


def rows_for(
    rows: Sequence[dict[str, str]], device: str, engine: str, metrics: Sequence[str]
) -> list[dict[str, str]]:
    """The rows of ``device`` measured with ``engine``, of the metrics asked for."""
    out = []
    for r in rows:
        if (r.get("engine") or "").strip() != engine:
            continue
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
            mine, base=load_profile("default"), hardware=device, profile_id=profile_id, group=_source
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=str(genmodel.public_cases_path()))
    parser.add_argument("--only", nargs="*", help="profile ids to fit (default: all)")
    parser.add_argument("--metrics", nargs="*", default=list(DEFAULT_METRICS))
    parser.add_argument("--check", action="store_true", help="print only; write no profile file")
    parser.add_argument("--no-default", action="store_true", help="skip the default profile's LOSO")
    parser.add_argument("--out", type=Path, default=PROFILES_DIR, help="folder the profiles are written to")
    args = parser.parse_args(argv)
    rows = genmodel.read_cases(args.cases)
    if Path(args.cases).resolve() == genmodel.public_cases_path().resolve():  # as validate runs them
        options = genmodel.read_case_options(genmodel.public_options_path())
        rows = [{**r, **options.get(r["id"], {})} for r in rows]
    specs = [s for s in SPECS if not args.only or s[0] in args.only]
    results = []
    for spec in specs:
        row, fit = fit_one(spec, rows, args.metrics)
        results.append(row)
        target = args.out / f"{spec[0]}.yaml"
        if args.check:
            continue
        if row["written"] and fit is not None:
            target.write_text(profile_to_yaml(fit.profile, entries=_entries(fit)))
        elif target.exists():
            target.unlink()
        print(_table([row], None).splitlines()[-1], file=sys.stderr, flush=True)  # progress
    default = None if args.no_default else default_loso(rows)
    print(_table(results, default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
