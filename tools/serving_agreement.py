"""How far the closed form is from the serving simulation, with and without its wave term.

    python tools/serving_agreement.py                          # the synthetic grid
    python tools/serving_agreement.py simulated.json closed.json   # and the bundled cases

The grid: Llama-3.1-8B on one H100 with 100x its memory (no KV limit), bf16, 256 output tokens,
prompts of 128, 512, 2048 and 8192 tokens, 1, 4, 16, 64, 256 and 512 clients, against vLLM, SGLang
and TensorRT-LLM (72 deployments), the simulation's benchmark client (12 requests per client, 2 a
warm-up). For each of TTFT, TPOT and output tokens/s: the median and mean |log(closed form /
simulation)| and the share within 25 %, for the steady state alone and with the wave term
(docs/prefill-decode-and-serving.md, "The wave of clients started together").

With the two JSON files of ``genmodel validate --format json`` (simulated) and ``genmodel validate
--serving closed-form --format json``, also the median |log ratio| between the two serving models
on the bundled serving cases. Takes a few minutes (the simulations).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import sys
from typing import Any

from genmodel import Plan
from genmodel._serving import estimate_serving
from genmodel._servingmodel import Simulated, serving_model
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

ENGINES = ("vllm", "sglang", "trtllm")
PROMPTS = (128, 512, 2048, 8192)
CLIENTS = (1, 4, 16, 64, 256, 512)
OUTPUT_TOKENS = 256


def grid() -> list[dict[str, Any]]:
    """One row per deployment: the simulated, steady-state and wave figures."""
    model = load_model("llama-3.1-8b")
    hw = load_hardware("h100-sxm")
    hw = hw.with_device(
        dataclasses.replace(hw.device, memory_capacity_bytes=hw.device.memory_capacity_bytes * 100)
    )
    rows = []
    for engine in ENGINES:
        sim = serving_model("simulated", engine=engine, device=hw.device)
        assert isinstance(sim, Simulated)
        for isl in PROMPTS:
            for n in CLIENTS:
                kw: dict[str, Any] = {"concurrency": n, "input_tokens": isl, "output_tokens": OUTPUT_TOKENS}
                figures = {
                    "simulated": sim.estimate(model, hw, Plan(), Precision(), **kw),
                    "steady": estimate_serving(model, hw, Plan(), Precision(), **kw),
                    "wave": estimate_serving(model, hw, Plan(), Precision(), wave=sim.wave, **kw),
                }
                row: dict[str, Any] = {"engine": engine, "input_tokens": isl, "clients": n}
                for name, est in figures.items():
                    row[name] = {
                        "ttft_s": est.ttft_s,
                        "tpot_s": est.tpot_s,
                        "tokens_per_s": est.output_tokens_per_s,
                    }
                rows.append(row)
    return rows


def _agreement(logs: list[float]) -> str:
    within = sum(v <= math.log(1.25) for v in logs)
    return f"{statistics.median(logs):.3f} | {statistics.fmean(logs):.3f} | {within}/{len(logs)}"


def grid_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per metric, the steady state's and the wave's agreement with the simulation."""
    out = [
        "| metric | steady: median \\|log ratio\\| | mean | within 25 % "
        "| with wave: median | mean | within 25 % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for metric in ("ttft_s", "tpot_s", "tokens_per_s"):
        cells = []
        for model in ("steady", "wave"):
            logs = [abs(math.log(r[model][metric] / r["simulated"][metric])) for r in rows]
            cells.append(_agreement(logs))
        out.append(f"| {metric} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def cases_table(simulated: dict[str, Any], closed: dict[str, Any]) -> str:
    """Markdown: the closed form against the simulation on the bundled serving cases."""
    sim = {c["id"]: c for c in simulated["cases"]}
    out = ["| metric | cases | median \\|log(closed form / simulation)\\| | mean |", "|---|---:|---:|---:|"]
    for metric in ("ttft_s", "tpot_s"):
        logs = [
            abs(math.log(c["predicted"] / sim[c["id"]]["predicted"]))
            for c in closed["cases"]
            if c["metric"] == metric and c["category"].startswith("serving") and c["predicted"]
        ]
        out.append(
            f"| {metric} | {len(logs)} | {statistics.median(logs):.3f} | {statistics.fmean(logs):.3f} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> None:
    print(grid_table(grid()))
    if len(argv) == 2:
        with open(argv[0], encoding="utf-8") as f, open(argv[1], encoding="utf-8") as g:
            print()
            print(cases_table(json.load(f), json.load(g)))


if __name__ == "__main__":
    main(sys.argv[1:])
