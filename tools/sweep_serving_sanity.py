"""Sweep the serving simulation over the deployments users ask about and check its invariants.

    python tools/sweep_serving_sanity.py --n 500            # 500 deployments, ~10 calls each
    python tools/sweep_serving_sanity.py --n 50 --json /tmp/sweep.json
    python tools/sweep_serving_sanity.py --n 150 --rungs 9 --exotic 0.3   # every concurrency 1-512

(300 deployments take 2-4 minutes on one core; the summary goes to stdout, progress to stderr,
and the exit status is 1 if any call crashed or gave a non-finite figure.)

Each sampled deployment (a catalogue model on h100-sxm, h200-sxm or b200; TP 1-8, EP or
attention DP for MoE; bf16/fp8/fp4 weights, bf16 or fp8 KV; 128-16k input and output tokens;
an engine, configured as AIConfigurator's harness writes it or at the server's defaults) runs a
ladder of concurrencies through ``genmodel.estimate`` (the simulated serving model, the
default), the closed form at each rung, a static single request, and the two other engines at
the top rung and at one client. ``--exotic`` adds, each with that chance, dense data
parallelism, pp 2 (which the simulation refuses and the estimate answers with the closed form),
fp8 activations and lengths spread by +-10 %. Checks, each an anomaly class of the summary:

- ``crash``: an exception that is not a :class:`genmodel.GenModelError` (a deployment that does
  not fit must raise ``InfeasibleError``); ``not-finite``: NaN, inf or a value <= 0;
- ``ttft-drop`` / ``tpot-drop``: the mean TTFT (TPOT) of more clients below that of fewer (more
  than 2 % + 1 ms for TTFT, 10 % for TPOT; the harness's budget grows with the clients, so a
  rung is not the same engine as the one below it);
- ``c1-vs-single``: at one client, the simulated TTFT off the closed form's (one request's
  prefill with the engine's host floor and frontend time) by more than 1.5x, or the simulated
  TPOT off the static single request's by more than 1.25x;
- ``sim-vs-closed``: simulation and closed form more than 3x apart;
- ``ttft-over-60s-fits``: a mean TTFT over 60 s where the KV pool holds every client's whole
  sequence, unless the clients' prompts alone take that long one after the other (a
  prefill-bound closed loop); ``tpot-below-floor``: TPOT below the time to stream the
  non-expert weights of one device at its peak bandwidth;
- ``engines-apart``: two engines on the same deployment more than 2x apart in a request's mean
  time (TTFT + (output - 1) TPOT, the closed loop's cycle, which the engines' knobs split
  differently between TTFT and TPOT) at the top rung, or more than 1.5x apart in TPOT at one
  client;
- ``slow``: a call over 0.5 s of wall time (the distribution is printed).

Runs in process, single-threaded, at nice 10. The summary gives each class's count and a few
examples to reproduce (the estimate's keyword arguments).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import sys
import time
import traceback
from collections import defaultdict
from typing import Any

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._harness import harness_engine
from genmodel.io import load_hardware

MODELS = {  # weight: the models the serving measurements cover come up more often
    "llama-3.1-8b": 3,
    "llama-3.1-70b": 3,
    "llama-3.1-405b": 1,
    "qwen3-32b": 2,
    "qwen3-30b-a3b": 2,
    "qwen3-235b-a22b": 3,
    "deepseek-v3": 3,
    "mixtral-8x7b": 1,
    "llama-3.2-3b": 1,
}
HARDWARE = ("h100-sxm", "h200-sxm", "b200")
ENGINES = ("vllm", "sglang", "trtllm")
LENGTHS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
CLIENTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TTFT_SLACK, TTFT_SLACK_S, TPOT_SLACK = 0.02, 1e-3, 0.10
SLOW_S = 0.5
MOE = ("qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3", "mixtral-8x7b")


def _cycle(e: genmodel.Estimate, case: dict[str, Any]) -> float:
    """A request's mean time, arrival to last token (a closed-loop client's cycle)."""
    return e.ttft_s + (case["output_tokens"] - 1) * e.tpot_s


#: the fewest devices each large model is sampled on (fewer mostly do not fit; a tenth of the
#: deployments ignore it, to check the refusals)
MIN_DEVICES = {"deepseek-v3": 4, "llama-3.1-405b": 4, "qwen3-235b-a22b": 2, "llama-3.1-70b": 2}


def sample(rng: random.Random, rungs: int = 3, exotic: float = 0.0) -> dict[str, Any]:
    """One deployment and its ladder of concurrencies (1 and ``rungs`` more). ``exotic``: the
    chance of each rarer setting (dense data parallelism, pp 2, which falls back to the closed
    form, fp8 activations, lengths spread by 10 %)."""
    model = rng.choices(list(MODELS), weights=list(MODELS.values()))[0]
    moe = model in MOE
    hw = rng.choice(HARDWARE)
    least = MIN_DEVICES.get(model, 1) if rng.random() > 0.1 else 1
    devices = rng.choice([d for d in (1, 2, 4, 8) if d >= least])
    tp, ep, dp, pp = devices, 1, 1, 1
    if moe:
        layout = rng.choice(("tp", "tp-ep", "dp-ep"))
        if layout == "tp-ep":
            ep = devices
        elif layout == "dp-ep":
            tp, dp, ep = 1, devices, devices
    elif devices > 1 and rng.random() < exotic:
        dp = rng.choice([d for d in (2, 4) if d <= devices])
        tp = devices // dp
    if tp > 1 and dp == 1 and ep == 1 and rng.random() < exotic:
        tp, pp = tp // 2, 2
    weight = rng.choice(("bf16", "fp8", "fp4") if hw == "b200" else ("bf16", "fp8", "fp8"))
    ladder = sorted({1, *rng.sample(CLIENTS[1:], min(rungs, len(CLIENTS) - 1))})
    case = {
        "model": model,
        "hardware": hw,
        "tp": tp,
        "ep": ep,
        "dp": dp,
        "weight_dtype": weight,
        "kv_dtype": rng.choice(("fp8", "bf16")),
        "input_tokens": rng.choice(LENGTHS),
        "output_tokens": rng.choice(LENGTHS),
        "engine": rng.choice(ENGINES),
        "harness": rng.choice(("aiconfigurator", "aiconfigurator", "")),
        "ladder": ladder,
    }
    if pp > 1:
        case["pp"] = pp
    if rng.random() < exotic and weight != "bf16":
        case["act_dtype"] = "fp8"
    if rng.random() < exotic:
        case["input_spread"] = case["output_spread"] = 0.1
    return case


class Sweep:
    """Runs the calls, times them, and files the anomalies by class."""

    def __init__(self, examples: int) -> None:
        self.anomalies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.times: list[tuple[float, dict[str, Any]]] = []
        self.refused: dict[str, int] = defaultdict(int)
        self.examples = examples

    def flag(self, kind: str, case: dict[str, Any], **detail: Any) -> None:
        self.counts[kind] += 1
        if len(self.anomalies[kind]) < self.examples:
            self.anomalies[kind].append({**case, **detail})

    def call(self, case: dict[str, Any], **changes: Any) -> genmodel.Estimate | None:
        """One estimate of ``case`` (with ``changes``); None if genmodel refused it cleanly."""
        args = {k: v for k, v in {**case, **changes}.items() if k not in ("ladder", "harness")}
        if "batch" in args:  # (a static batch has one length)
            args.pop("input_spread", None), args.pop("output_spread", None)
        name, clients = args["engine"], args.get("concurrency")
        if clients is not None and case["harness"]:
            device = load_hardware(args["hardware"]).device
            args["engine"] = harness_engine(
                engine_preset(name, device),
                case["harness"],
                concurrency=clients,
                input_tokens=args["input_tokens"],
            )
        start = time.perf_counter()
        try:
            result = genmodel.estimate(args.pop("model"), args.pop("hardware"), **args)
        except genmodel.GenModelError as exc:
            self.refused[f"{type(exc).__name__}: {re.sub(r'[0-9.,]+', 'N', str(exc))[:70]}"] += 1
            return None
        except Exception as exc:  # (a crash is what the sweep looks for)
            self.flag(
                "crash", case, **changes, error=f"{type(exc).__name__}: {exc}", tb=traceback.format_exc()
            )
            return None
        wall = time.perf_counter() - start
        if args.get("serving", "simulated") == "simulated" and clients is not None:
            self.times.append((wall, {**case, **changes}))
            if wall > SLOW_S:
                self.flag("slow", case, **changes, wall_s=round(wall, 3))
        for key in ("ttft_s", "tpot_s"):
            value = getattr(result, key)
            if not (math.isfinite(value) and value > 0):
                self.flag("not-finite", case, **changes, **{key: value})
        return result

    def deployment(self, case: dict[str, Any]) -> None:
        """The checks on one deployment."""
        static = self.call(case, batch=1)
        sims: dict[int, genmodel.Estimate] = {}
        closed_forms: dict[int, genmodel.Estimate] = {}
        for clients in case["ladder"]:
            sim = self.call(case, concurrency=clients)
            closed = self.call(case, concurrency=clients, serving="closed-form")
            if sim is None:
                continue
            sims[clients] = sim
            self.absurd(case, clients, sim, static)
            if closed is not None:
                closed_forms[clients] = closed
                for key in ("ttft_s", "tpot_s"):
                    a, b = getattr(sim, key), getattr(closed, key)
                    if max(a, b) > 3 * min(a, b):
                        self.flag("sim-vs-closed", case, concurrency=clients, metric=key, sim=a, closed=b)
        self.ladder(case, sims)
        if 1 in sims and 1 in closed_forms and static is not None:
            self.single(case, sims[1], closed_forms[1], static)
        if sims:
            self.engines(case, max(sims), sims[max(sims)], sims.get(1))

    def absurd(
        self, case: dict[str, Any], clients: int, sim: genmodel.Estimate, static: genmodel.Estimate | None
    ) -> None:
        mem = sim.memory
        pool = mem.usable_bytes_per_device - mem.weights_bytes_per_device - mem.activation_bytes_per_device
        prompts_s = math.inf if static is None else clients * static.ttft_s / sim.plan.dp
        # a whole sequence's KV: the static request's (a serving estimate's memory holds the mean
        # sequence, prompt and half the output, which the clients started together outgrow)
        whole = math.inf if static is None else static.memory.kv_bytes_per_sequence
        if sim.ttft_s > max(60, 2 * prompts_s) and pool >= clients * whole:
            self.flag("ttft-over-60s-fits", case, concurrency=clients, ttft_s=sim.ttft_s, prompts_s=prompts_s)
        device = load_hardware(case["hardware"]).device
        floor = (
            mem.weights_bytes_per_device - mem.expert_bytes_per_device
        ) / device.memory_bandwidth_bytes_per_s
        if sim.tpot_s < floor:
            self.flag("tpot-below-floor", case, concurrency=clients, tpot_s=sim.tpot_s, floor_s=floor)

    def ladder(self, case: dict[str, Any], sims: dict[int, genmodel.Estimate]) -> None:
        rungs = sorted(sims)
        for few, many in itertools.pairwise(rungs):
            a, b = sims[few], sims[many]
            if b.ttft_s < a.ttft_s * (1 - TTFT_SLACK) - TTFT_SLACK_S:
                self.flag("ttft-drop", case, clients=(few, many), ttft_s=(a.ttft_s, b.ttft_s))
            if b.tpot_s < a.tpot_s * (1 - TPOT_SLACK):
                self.flag("tpot-drop", case, clients=(few, many), tpot_s=(a.tpot_s, b.tpot_s))

    def single(
        self,
        case: dict[str, Any],
        sim: genmodel.Estimate,
        closed: genmodel.Estimate,
        static: genmodel.Estimate,
    ) -> None:
        """One client: the simulation against one request's closed form (TTFT) and static estimate (TPOT).
        The attention-DP ranks of an MoE model are left out: with one client the other ranks idle, which
        the simulation sees (the routed experts get one rank's tokens) and the closed form does not."""
        if sim.plan.dp > 1 and case["model"] in MOE:
            return
        for key, a, b, limit in (
            ("ttft_s", sim.ttft_s, closed.ttft_s, 1.5),
            ("tpot_s", sim.tpot_s, static.tpot_s, 1.25),
        ):
            if max(a, b) > limit * min(a, b):
                self.flag("c1-vs-single", case, metric=key, sim=a, single=b)

    def engines(
        self, case: dict[str, Any], clients: int, top: genmodel.Estimate, one: genmodel.Estimate | None
    ) -> None:
        cycles = {case["engine"]: _cycle(top, case)}
        tpots = {} if one is None else {case["engine"]: one.tpot_s}
        for other in ENGINES:
            if other == case["engine"]:
                continue
            result = self.call({**case, "engine": other}, concurrency=clients)
            if result is not None:
                cycles[other] = _cycle(result, case)
            if (
                one is not None
                and clients != 1
                and (single := self.call({**case, "engine": other}, concurrency=1))
            ):
                tpots[other] = single.tpot_s
        if len(cycles) > 1 and max(cycles.values()) > 2 * min(cycles.values()):
            self.flag("engines-apart", case, concurrency=clients, metric="e2e_s", values=cycles)
        if len(tpots) > 1 and max(tpots.values()) > 1.5 * min(tpots.values()):
            self.flag("engines-apart", case, concurrency=1, metric="tpot_s", values=tpots)

    def summary(self) -> dict[str, Any]:
        walls = sorted(t for t, _ in self.times)

        def q(p: float) -> float:
            return round(walls[min(len(walls) - 1, int(p * len(walls)))], 4) if walls else math.nan

        slowest = sorted(self.times, key=lambda x: -x[0])[:5]
        return {
            "simulated_calls": len(walls),
            "wall_s": {
                "p50": q(0.5),
                "p90": q(0.9),
                "p99": q(0.99),
                "max": q(1.0),
                "over_0.5s": sum(t > SLOW_S for t in walls),
            },
            "slowest": [{"wall_s": round(t, 3), **c} for t, c in slowest],
            "anomalies": dict(self.counts),
            "refused": dict(sorted(self.refused.items(), key=lambda x: -x[1])[:15]),
            "examples": self.anomalies,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="deployments to sample (about 10 calls each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exotic",
        type=float,
        default=0.2,
        help="chance of each rarer setting (dp, pp, fp8 activations, spread lengths)",
    )
    parser.add_argument(
        "--rungs", type=int, default=3, help="concurrencies per deployment besides 1 (9: all of 2-512)"
    )
    parser.add_argument("--examples", type=int, default=5, help="examples kept per anomaly class")
    parser.add_argument("--json", help="write the summary (with every kept example) to this file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sweep = Sweep(args.examples)
    start = time.perf_counter()
    for i in range(args.n):
        sweep.deployment(sample(rng, args.rungs, args.exotic))
        if (i + 1) % 25 == 0:
            print(
                f"{i + 1}/{args.n} deployments, {time.perf_counter() - start:.0f} s, {dict(sweep.counts)}",
                file=sys.stderr,
            )
    out = sweep.summary()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    short = {k: v for k, v in out.items() if k != "examples"}
    print(json.dumps(short, indent=1, default=str))
    for kind, cases in out["examples"].items():
        print(f"\n== {kind} ({out['anomalies'][kind]})")
        for c in cases[:3]:
            print("  ", {k: v for k, v in c.items() if k != "tb"})
    return 1 if out["anomalies"].get("crash") or out["anomalies"].get("not-finite") else 0


if __name__ == "__main__":
    os.nice(10)  # (a shared machine: the sweep runs for minutes)
    raise SystemExit(main())
