"""The README's serving validation tables, from ``genmodel validate --format json`` run both ways.

    .venv/bin/genmodel validate --format json --output simulated.json
    .venv/bin/genmodel validate --serving closed-form --format json --output closed.json
    .venv/bin/python tools/make_serving_tables.py simulated.json closed.json

prints the summary (TTFT and TPOT MAPE, median and share within 25 % per engine, both serving
models side by side) and the per-case table, in Markdown, to paste into the README's Validation
section. The case details (model, plan, clients, lengths, engine) come from the bundled cases.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import genmodel

_METRICS = {"ttft_s": "TTFT", "tpot_s": "TPOT"}
_ENGINES = ("vllm", "sglang", "trtllm", "all")


def _plan(row: dict[str, str]) -> str:
    parts = [f"tp{row['tp']}"]
    parts += [f"{k}{row[k]}" for k in ("pp", "ep", "dp") if row[k] not in ("", "1")]
    return " ".join([*parts, row["weight_dtype"]])


def _stats(apes: list[float]) -> str:
    within = sum(a <= 25 for a in apes) / len(apes)
    return f"{statistics.fmean(apes):.1f} % | {statistics.median(apes):.1f} % | {within:.0%}"


def summary(sim: dict[str, Any], closed: dict[str, Any], rows: dict[str, dict[str, str]]) -> str:
    """Per engine and metric: cases, then MAPE, median and within 25 % of each serving model."""
    out = [
        "| engine | metric | cases | simulated MAPE | median | within 25 % "
        "| closed-form MAPE | median | within 25 % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    closed_ape = {c["id"]: c["ape"] for c in closed["cases"]}
    for engine in _ENGINES:
        for metric, label in _METRICS.items():
            cases = [
                c
                for c in sim["cases"]
                if rows[c["id"]]["mode"] == "concurrency"
                and c["metric"] == metric
                and engine in ("all", c["engine"])
            ]
            if not cases:
                continue
            s = _stats([c["ape"] for c in cases])
            k = _stats([closed_ape[c["id"]] for c in cases])
            name = "**all**" if engine == "all" else engine
            out.append(f"| {name} | {label} | {len(cases)} | {s} | {k} |")
    return "\n".join(out)


def cases(sim: dict[str, Any], closed: dict[str, Any], rows: dict[str, dict[str, str]]) -> str:
    """One row per serving case: measured, simulated and closed-form predictions and errors."""
    out = [
        "| case | engine | model | hardware | plan | clients | ISL x OSL | metric | measured "
        "| simulated | error | closed form | error |",
        "|---|---|---|---|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    by_id = {c["id"]: c for c in closed["cases"]}
    for c in sim["cases"]:
        r = rows[c["id"]]
        if r["mode"] != "concurrency":
            continue
        k = by_id[c["id"]]
        out.append(
            f"| {c['id']} | {c['engine'] or '-'} | {r['model']} | {r['hardware']} | {_plan(r)} "
            f"| {r['batch']} | {r['input_tokens']}x{r['output_tokens']} | {c['metric']} "
            f"| {c['measured']:.4g} | {c['predicted']:.4g} | {c['ape']:.1f} % "
            f"| {k['predicted']:.4g} | {k['ape']:.1f} % |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sim, closed = (json.loads(Path(a).read_text(encoding="utf-8")) for a in argv)
    rows = {r["id"]: r for r in genmodel.read_cases(genmodel.public_cases_path())}
    print(summary(sim, closed, rows))
    print()
    print(cases(sim, closed, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
