"""How far the closed form is from the serving simulation, with and without its wave term.

    python tools/serving_agreement.py                          # the synthetic grid
    python tools/serving_agreement.py simulated.json closed.json   # and the bundled cases
    python tools/serving_agreement.py --random 300 [--seed 101] [--json rows.jsonl]

The grid: Llama-3.1-8B on one H100 with 100x its memory (no KV limit), bf16, 256 output tokens,
prompts of 128, 512, 2048 and 8192 tokens, 1, 4, 16, 64, 256 and 512 clients, against vLLM, SGLang
and TensorRT-LLM (72 deployments), the simulation's benchmark client (12 requests per client, 2 a
warm-up). For each of TTFT, TPOT and output tokens/s: the median and mean |log(closed form /
simulation)| and the share within 25 %, for the steady state alone and with the wave term
(docs/prefill-decode-and-serving.md, "The wave of clients started together").

With the two JSON files of ``genmodel validate --format json`` (simulated) and ``genmodel validate
--serving closed-form --format json``, also the median |log ratio| between the two serving models
on the bundled serving cases. Takes a few minutes (the simulations).

``--random N``: N deployments drawn as ``tools/sweep_serving_sanity.py`` draws them (the catalogue's
models on H100, H200 and B200, TP/EP/DP, bf16/fp8/fp4, 128-16k tokens, the three engines at their
defaults or under AIConfigurator's harness, a fifth with lengths spread by 10 %), each at one
client and two more rungs of 2-512 clients; per rung the simulated and the closed-form estimate
(``genmodel.estimate``; pp 2, which the simulation answers with the closed form, and deployments
that do not fit are left out; a simulation over 30 s is skipped). Prints, for TTFT, TPOT and a
request's whole time (TTFT + (O - 1) TPOT), the distribution of |log(closed form / simulation)|
and the count of rungs more than 3x and 10x apart, then the furthest rungs.
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


def _estimate(case: dict[str, Any], clients: int, serving: str) -> Any:
    """One rung of a drawn deployment (the sweep's keyword arguments), or None if genmodel refused
    it or the simulation ran over 30 s."""
    import signal

    import genmodel
    from genmodel._enginepresets import engine_preset
    from genmodel._harness import harness_engine

    args = {k: v for k, v in case.items() if k not in ("ladder", "harness")}
    if case["harness"]:
        device = load_hardware(args["hardware"]).device
        preset = engine_preset(args["engine"], device)
        args["engine"] = harness_engine(
            preset, case["harness"], concurrency=clients, input_tokens=args["input_tokens"]
        )

    def too_slow(*_: Any) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(30)
    try:
        return genmodel.estimate(
            args.pop("model"), args.pop("hardware"), concurrency=clients, serving=serving, **args
        )
    except (genmodel.GenModelError, TimeoutError):
        return None
    finally:
        signal.alarm(0)


def random_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Simulated and closed-form TTFT and TPOT of ``n`` drawn deployments, one row per rung."""
    import random

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from sweep_serving_sanity import sample

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        case = sample(rng, 2, 0.2)
        if case.get("pp", 1) > 1:
            continue
        for clients in case["ladder"]:
            sim = _estimate(case, clients, "simulated")
            closed = None if sim is None else _estimate(case, clients, "closed-form")
            if closed is not None:
                row = {"case": case, "clients": clients}
                for name, est in (("sim", sim), ("closed", closed)):
                    row[name] = {"ttft_s": est.ttft_s, "tpot_s": est.tpot_s}
                    row[name]["e2e_s"] = est.ttft_s + (case["output_tokens"] - 1) * est.tpot_s
                    row[name]["kv_limited"] = bool(est.serving and est.serving.kv_limited)
                rows.append(row)
    return rows


def random_table(rows: list[dict[str, Any]], worst: int = 10) -> str:
    """Markdown: the distribution of |log(closed form / simulation)| per metric, the furthest rungs."""
    out = [
        "| metric | rungs | median | mean | p90 | p99 | max | within 25 % | > 3x | > 10x |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for metric in ("ttft_s", "tpot_s", "e2e_s"):
        logs = sorted(abs(math.log(r["closed"][metric] / r["sim"][metric])) for r in rows)
        at = [logs[min(len(logs) - 1, int(q * len(logs)))] for q in (0.9, 0.99)]
        out.append(
            f"| {metric} | {len(logs)} | {statistics.median(logs):.3f} | {statistics.fmean(logs):.3f} "
            f"| {at[0]:.3f} | {at[1]:.3f} | {logs[-1]:.2f} | {sum(v <= math.log(1.25) for v in logs)} "
            f"| {sum(v > math.log(3) for v in logs)} | {sum(v > math.log(10) for v in logs)} |"
        )
    out.append("\nfurthest TTFT (closed form / simulation):")
    keys = ("model", "hardware", "tp", "ep", "dp", "weight_dtype", "kv_dtype", "input_tokens")
    for r in sorted(rows, key=lambda r: -abs(math.log(r["closed"]["ttft_s"] / r["sim"]["ttft_s"])))[:worst]:
        c = r["case"]
        what = " ".join(str(c[k]) for k in keys)
        out.append(
            f"- {r['closed']['ttft_s'] / r['sim']['ttft_s']:.2f}x: {what} {c['output_tokens']} "
            f"{c['engine']} {c['harness'] or 'defaults'} {'spread ' if 'input_spread' in c else ''}"
            f"N={r['clients']} (simulated {r['sim']['ttft_s']:.3g} s, closed form "
            f"{r['closed']['ttft_s']:.3g} s)"
        )
    return "\n".join(out)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--random":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 101
        rows = random_rows(int(argv[1]), seed)
        if "--json" in argv:
            with open(argv[argv.index("--json") + 1], "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        print(random_table(rows))
        return
    print(grid_table(grid()))
    if len(argv) == 2:
        with open(argv[0], encoding="utf-8") as f, open(argv[1], encoding="utf-8") as g:
            print()
            print(cases_table(json.load(f), json.load(g)))


if __name__ == "__main__":
    main(sys.argv[1:])
