"""Serving accuracy: the simulator against the closed form on the bundled concurrency cases.

Runs :func:`genmodel.simulate` (closed-loop clients started together, as the benchmark clients do,
with the engine the row's ``engine`` column names) and :func:`genmodel.estimate` with
``concurrency=`` on every concurrency row of validation/validation_public.csv, and prints each
case and the TTFT and TPOT MAPE per engine for both. No per-case constants: the engine presets,
as the row's engine_config column configures them (the harness's rule), the shared efficiencies.
A TTFT case also shows the simulated TTFT of the first measured round (each client's first
measured request: after the warm-up restart, the wave of clients sent together) and of the rounds
after it, both without the profile's frontend time (``request_overhead_s``), which the mean holds.

    .venv/bin/python tools/serving_errors.py [--requests-per-client K] [--cases FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine
from genmodel._harness import harness_engine
from genmodel.io import load_hardware

ROOT = Path(__file__).resolve().parent.parent


def _plan(row: dict[str, str]) -> dict[str, Any]:
    return {
        "devices": int(row["devices"]),
        "tp": int(row["tp"]),
        "pp": int(row["pp"]),
        "ep": int(row["ep"]),
        "dp": int(row["dp"]),
        "weight_dtype": row["weight_dtype"],
        "act_dtype": row["act_dtype"],
        "kv_dtype": row["kv_dtype"],
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
    }


def _harness(row: dict[str, str], requests_per_client: int | None) -> dict[str, Any]:
    """The closed loop of the row's benchmark client (its columns), unless overridden, and whether
    it replays its warm-up's prompts (genai-perf's does; ATOM's ``vllm bench serve`` does not), and
    the spread of its lengths, as ``genmodel validate`` simulates it."""
    replay = {
        "warmup_replay": (row.get("engine_config") or "").strip() != "atom-oot",
        **{k: float(row[k]) for k in ("input_spread", "output_spread") if (row.get(k) or "").strip()},
    }
    if requests_per_client is not None:
        return {"requests_per_client": requests_per_client, **replay}
    cols = ("requests_per_client", "warmup_requests")
    return {**{k: int(row[k]) for k in cols if (row.get(k) or "").strip()}, **replay}


def _engine(row: dict[str, str], name: str) -> str | Engine:
    """The row's engine, as its ``engine_config`` column (the harness's configuration) sets it."""
    config = (row.get("engine_config") or "").strip()
    if not config:
        return name
    preset = engine_preset(name, load_hardware(row["hardware"]).device)
    return harness_engine(
        preset, config, concurrency=int(row["batch"]), input_tokens=int(row["input_tokens"])
    )


def round_split(records: Any, clients: int) -> tuple[float, float]:
    """Mean TTFT (first token less arrival, without the frontend time) of the first measured round,
    the ``clients`` earliest measured arrivals (one per client when the warm-up restarts them
    together; with the warm-up replay their prompts come from the prefix cache, and the wave of
    fresh prompts is a later round's), and of the measured requests after it (NaN when there are
    none)."""
    measured = records.measured
    arrival = records.arrival_s[measured]
    ttft = (records.first_token_s - records.arrival_s)[measured]
    order = np.argsort(arrival, kind="stable")
    first, later = ttft[order[:clients]], ttft[order[clients:]]
    return float(first.mean()), float(later.mean()) if later.size else math.nan


def predict(row: dict[str, str], requests_per_client: int | None) -> dict[str, Any]:
    """The simulated and closed-form figure of one case."""
    n = int(row["batch"])
    kwargs = _plan(row)
    engine = row.get("engine") or "vllm"
    knobs = _engine(row, engine)
    start = time.perf_counter()
    sim = genmodel.simulate(
        row["model"],
        row["hardware"],
        concurrency=n,
        **_harness(row, requests_per_client),
        engine=knobs,
        records=True,
        **kwargs,
    )
    wall = time.perf_counter() - start
    first_round, later_rounds = round_split(sim.records, n)
    # the closed form's wave is the same engine's and benchmark client's as the simulation's
    est = genmodel.estimate(
        row["model"],
        row["hardware"],
        concurrency=n,
        serving="closed-form",
        engine=knobs,
        **_harness(row, requests_per_client),
        **kwargs,
    )
    metric = row["metric"]
    simulated = sim.ttft_s.mean if metric == "ttft_s" else sim.tpot_s.mean
    closed = est.ttft_s if metric == "ttft_s" else est.tpot_s
    measured = float(row["measured"])
    return {
        "id": row["id"],
        "engine": engine,
        "metric": metric,
        "model": row["model"],
        "hardware": row["hardware"],
        "clients": n,
        "lengths": f"{row['input_tokens']}x{row['output_tokens']}",
        "measured": measured,
        "simulated": simulated,
        "closed_form": closed,
        "sim_ape": abs(simulated - measured) / measured * 100,
        "closed_ape": abs(closed - measured) / measured * 100,
        "preemptions": sim.preemptions,
        "ttft_first_round_s": first_round,
        "ttft_later_rounds_s": later_rounds,
        "wall_s": wall,
    }


def summary(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """MAPE and median APE per engine (and all) and metric, simulated and closed form."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["engine"], r["metric"])].append(r)
        groups[("all", r["metric"])].append(r)
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (engine, metric), rows in sorted(groups.items()):
        out[engine][metric] = {
            "cases": len(rows),
            "sim_mape": statistics.fmean(r["sim_ape"] for r in rows),
            "sim_median_ape": statistics.median(r["sim_ape"] for r in rows),
            "closed_mape": statistics.fmean(r["closed_ape"] for r in rows),
            "closed_median_ape": statistics.median(r["closed_ape"] for r in rows),
        }
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "validation" / "validation_public.csv")
    parser.add_argument(
        "--requests-per-client",
        type=int,
        default=None,
        help="override each row's requests_per_client column (default: the row's, else 4), without warm-up",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the per-case results here")
    args = parser.parse_args(argv)
    rows = [r for r in genmodel.read_cases(args.cases) if r["mode"] == "concurrency"]
    results = []
    for row in rows:
        r = predict(row, args.requests_per_client)
        results.append(r)
        print(
            f"{r['id']:6} {r['engine']:6} {r['model']:16} {r['hardware']:9} c={r['clients']:<4} "
            f"{r['lengths']:10} "
            f"{r['metric']:6} measured {r['measured']:.4g}  sim {r['simulated']:.4g} ({r['sim_ape']:.0f} %)  "
            f"closed {r['closed_form']:.4g} ({r['closed_ape']:.0f} %)  preempt {r['preemptions']}  "
            + (
                f"rounds {r['ttft_first_round_s']:.3g}/{r['ttft_later_rounds_s']:.3g}  "
                if r["metric"] == "ttft_s"
                else ""
            )
            + f"{r['wall_s'] * 1e3:.0f} ms",
            flush=True,
        )
    table = summary(results)
    print("\nengine  metric  cases  sim MAPE  (median)  closed-form MAPE  (median)")
    for engine, metrics in table.items():
        for metric, s in metrics.items():
            print(
                f"{engine:7} {metric:7} {s['cases']:5.0f}  {s['sim_mape']:7.1f} % "
                f"({s['sim_median_ape']:5.1f} %)"
                f"  {s['closed_mape']:7.1f} %        ({s['closed_median_ape']:5.1f} %)"
            )
    if args.json is not None:
        args.json.write_text(json.dumps({"cases": results, "summary": table}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
