"""Sweep the serving models over a grid of deployments and flag figures a measurement would call absurd.

    python tools/sweep_serving_plausibility.py --n 40                 # ~3-6 minutes on one core
    python tools/sweep_serving_plausibility.py --n 40 --seed 3 --json /tmp/plaus.json
    python tools/sweep_serving_plausibility.py --n 40 --wider   # gpt-oss too, 32k lengths

Where ``tools/sweep_serving_sanity.py`` looks for crashes and broken invariants on a few rungs, this
sweep runs each deployment (drawn as that sweep draws them: the catalogue's Llama, Qwen3, DeepSeek-V3
and Mixtral models on h100-sxm, h200-sxm and b200, TP/EP/attention DP, bf16/fp8/fp4, 128-16k tokens,
the three engines at the server's defaults or under AIConfigurator's harness; ``--exotic`` adds dense
DP, fp8 activations and lengths spread by 10 %; pp is left out) on the whole ladder 1, 2, 4, ... 1,024
clients through ``genmodel.estimate`` (simulated, then the closed form), with the static estimates of
one request (``batch=1``) and of the largest batch that fits (``batch="max"``) beside it, and the two
other engines at 1 and 64 clients. Each rung is tagged with the mechanisms that let its TTFT grow:
``kv`` (the simulation found the KV pool full: preemptions, a refused prompt or a 95 % peak), ``cap``
(more clients per replica than the engine runs at once) and ``prefill`` (the clients' prompts, one
after another, take a fifth of a request's cycle or more: a prefill-bound closed loop). Checks, each an
anomaly class of the summary:

- ``ttft-below-single``: the mean TTFT at N clients more than 5 % + 1 ms below the simulation's at one
  client (or a third below the static single request's: the benchmark client replays its
  warm-up's prompts after its restart, which an engine that caches prefixes finds cached, two of
  ten measured requests, so a mean a fifth below one prompt's prefill is the client's, not a bug;
  not where an MoE model's attention-DP ranks outnumber the clients, whose idle ranks' experts serve
  the busy ranks' tokens only while the static request loads every rank);
- ``ttft-jump``: TTFT more than 5x that of half the clients with none of the mechanisms at the upper
  rung;
- ``ttft-grows-pool-free``: TTFT more than 3x the one-client TTFT where no mechanism applies, beyond
  what the clients' prompts, one after another, and a decode step take (the bound a free pool leaves);
- ``tpot-below-batch1`` / ``tpot-above-bound``: TPOT below 0.9x the static batch-1 decode step, or
  above 1.5x the static decode step at the running batch (``min(N, cap, batch max)`` per replica) plus
  every running client's prompt spread over its output tokens (what mixed steps can add);
  ``tpot-drop``: TPOT of more clients more than 10 % below that of fewer;
- ``throughput-over-max``: output tokens/s per device more than 1.25x the static largest batch's;
- ``engines-far``: the three engines on the same deployment more than 5x apart in TTFT, TPOT or a
  request's whole time, at 1 or 64 clients (the engines differ by their presets; orders of
  magnitude would be a bug);
- ``sim-vs-closed``: the 20 rungs where simulation and closed form are furthest apart, by |log ratio|
  of TTFT or TPOT, are listed (not counted as anomalies: see docs/serving-simulation.md).

A simulation over ``--call-limit`` seconds (default 20) is abandoned with the rest of its ladder (the
summary counts them). The exit status is 1 if any anomaly was flagged, else 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine, eager_block_kernels
from genmodel._harness import harness_engine
from genmodel._hostcost import eager_launches
from genmodel.io import load_hardware, load_model

sys.path.insert(0, str(Path(__file__).parent))
import sweep_serving_sanity
from sweep_serving_sanity import sample

LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ENGINES = ("vllm", "sglang", "trtllm")
ENGINE_RUNGS = (1, 64)
JUMP, GROWTH, ENGINES_FAR, OVER_MAX = 5.0, 3.0, 5.0, 1.25


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _cycle(e: genmodel.Estimate) -> float:
    return e.ttft_s + (e.output_tokens - 1) * e.tpot_s


class Sweep:
    """Runs the ladders and files the anomalies by class."""

    def __init__(self, examples: int, call_limit: float) -> None:
        self.anomalies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        #: flags a stated mechanism explains, by class and mechanism
        self.explained: dict[str, int] = defaultdict(int)
        self.pairs: list[dict[str, Any]] = []  # every rung's simulated and closed-form figures
        self.examples = examples
        self.call_limit = call_limit
        self.timeouts = 0
        self.refused = 0
        self.calls = 0

    def flag(self, kind: str, case: dict[str, Any], **detail: Any) -> None:
        self.counts[kind] += 1
        if len(self.anomalies[kind]) < self.examples:
            self.anomalies[kind].append({**_short(case), **detail})

    def call(self, case: dict[str, Any], **changes: Any) -> genmodel.Estimate | None:
        """One estimate (None if refused, or abandoned past the call limit)."""
        args = {k: v for k, v in {**case, **changes}.items() if k not in ("ladder", "harness")}
        if "batch" in args:
            args.pop("input_spread", None), args.pop("output_spread", None)
        clients = args.get("concurrency")
        if clients is not None:
            args["engine"] = _engine({**case, **changes}, clients)
        self.calls += 1
        signal.setitimer(signal.ITIMER_REAL, self.call_limit)
        try:
            return genmodel.estimate(args.pop("model"), args.pop("hardware"), **args)
        except genmodel.GenModelError:
            self.refused += 1
            return None
        except _Timeout:
            self.timeouts += 1
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def deployment(self, case: dict[str, Any]) -> None:
        single = self.call(case, batch=1)
        if single is None:
            return
        biggest = self.call(case, batch="max")
        sims: dict[int, genmodel.Estimate] = {}
        tags: dict[int, set[str]] = {}
        for n in LADDER:
            try:
                sim = self.call(case, concurrency=n)
            except _Timeout:
                break
            if sim is None:
                break
            sims[n] = sim
            tags[n] = self.mechanisms(case, n, sim, single)
            closed = self.call(case, concurrency=n, serving="closed-form")
            if closed is not None:
                self.pairs.append(
                    {
                        **_short(case),
                        "concurrency": n,
                        "tags": sorted(tags[n]),
                        "sim": [sim.ttft_s, sim.tpot_s],
                        "closed": [closed.ttft_s, closed.tpot_s],
                    }
                )
            self.tpot_bounds(case, n, sim, single, biggest, tags[n])
        self.ladder(case, sims, tags, single)
        self.engines(case, sims, tags)

    def mechanisms(
        self, case: dict[str, Any], n: int, sim: genmodel.Estimate, single: genmodel.Estimate
    ) -> set[str]:
        """What lets TTFT grow at this rung: a full KV pool, the engine's cap on running sequences, a
        prefill-bound closed loop."""
        state = sim.serving
        assert state is not None
        out = set()
        if state.kv_limited:
            out.add("kv")
        replicas = sim.plan.dp
        if n > replicas * max(1, state.max_running):
            out.add("cap")
        per_replica = math.ceil(n / replicas)
        if per_replica * single.ttft_s >= 0.2 * _cycle(sim):
            out.add("prefill")
        return out

    def tpot_bounds(
        self,
        case: dict[str, Any],
        n: int,
        sim: genmodel.Estimate,
        single: genmodel.Estimate,
        biggest: genmodel.Estimate | None,
        rung_tags: set[str],
    ) -> None:
        if sim.tpot_s < 0.9 * single.tpot_s:
            self.flag(
                "tpot-below-batch1", case, concurrency=n, tpot_s=sim.tpot_s, batch1_tpot_s=single.tpot_s
            )
        state = sim.serving
        assert state is not None
        replicas = sim.plan.dp
        running = min(math.ceil(n / replicas), max(1, state.max_running))
        if biggest is not None:
            running = min(running, max(1, biggest.batch // replicas))
        try:
            step = self.call(case, batch=running * replicas).tpot_s  # type: ignore[union-attr]
        except (_Timeout, AttributeError):
            return
        # every running client's prompt, spread over its output tokens (mixed steps' share); an MoE
        # model's attention-DP ranks step together, so each rank's decode waits for every rank's
        lockstep = replicas if case["model"] in sweep_serving_sanity.MOE and replicas > 1 else 1
        prompts = lockstep * running * single.ttft_s / max(1, case["output_tokens"] - 1)
        bound = 1.5 * (step + prompts)
        eager = _eager_decode(_engine(case, n), sim.plan.tp, running)
        if sim.tpot_s > bound and not state.kv_limited and not eager:
            self.flag(
                "tpot-above-bound",
                case,
                concurrency=n,
                tpot_s=sim.tpot_s,
                step_s=step,
                prompts_s=prompts,
            )
        elif sim.tpot_s > bound:  # (a preempted request's recompute; a decode batch without a graph)
            self.explained["tpot-above-bound: " + ("kv" if state.kv_limited else "eager decode")] += 1
        if biggest is not None:
            over = sim.output_tokens_per_s_per_device / biggest.output_tokens_per_s_per_device
            if over > OVER_MAX and state.decode_batch > 1.05 * biggest.batch:
                # an on-demand pool runs more sequences than fit at their whole length
                self.explained["throughput-over-max: larger running batch"] += 1
            elif over > OVER_MAX and "prefill" in rung_tags and over <= 2:
                # a prefill-bound loop's mixed steps carry the decode tokens in compute-bound
                # prompt steps; the static batch runs its prompts, then its decodes
                self.explained["throughput-over-max: mixed prompt steps"] += 1
            elif over > OVER_MAX:
                self.flag(
                    "throughput-over-max",
                    case,
                    concurrency=n,
                    ratio=round(over, 2),
                    serving=sim.output_tokens_per_s_per_device,
                    batch_max=biggest.output_tokens_per_s_per_device,
                    max_batch=biggest.batch,
                )

    def ladder(
        self,
        case: dict[str, Any],
        sims: dict[int, genmodel.Estimate],
        tags: dict[int, set[str]],
        single: genmodel.Estimate,
    ) -> None:
        if 1 not in sims:
            return
        one = sims[1]
        for n, sim in sims.items():
            # (an MoE model's attention-DP ranks with fewer clients than ranks: the idle ranks'
            # experts serve the busy ranks' tokens only, where the static request loads every rank)
            idle_ranks = case["model"] in sweep_serving_sanity.MOE and n < sim.plan.dp
            below_static = sim.ttft_s < 0.67 * single.ttft_s and not idle_ranks
            if sim.ttft_s < one.ttft_s * 0.95 - 1e-3 or below_static:
                self.flag(
                    "ttft-below-single",
                    case,
                    concurrency=n,
                    ttft_s=sim.ttft_s,
                    c1_ttft_s=one.ttft_s,
                    single_ttft_s=single.ttft_s,
                )
            if not tags[n] and n > 1:
                # a free pool: at worst every client's prompt runs before this one's, beside decodes
                replicas = sim.plan.dp
                bound = GROWTH * (math.ceil(n / replicas) * one.ttft_s + 2 * sim.tpot_s)
                if sim.ttft_s > bound:
                    self.flag(
                        "ttft-grows-pool-free",
                        case,
                        concurrency=n,
                        ttft_s=sim.ttft_s,
                        c1_ttft_s=one.ttft_s,
                        bound_s=bound,
                    )
        for few, many in itertools.pairwise(sorted(sims)):
            a, b = sims[few], sims[many]
            if b.tpot_s < a.tpot_s * 0.9:
                self.flag("tpot-drop", case, clients=(few, many), tpot_s=(a.tpot_s, b.tpot_s))
            if b.ttft_s > JUMP * a.ttft_s and not tags[many]:
                if self.restart_burst(case, many, b):
                    self.explained["ttft-jump: restart burst"] += 1
                    continue
                self.flag(
                    "ttft-jump",
                    case,
                    clients=(few, many),
                    ttft_s=(a.ttft_s, b.ttft_s),
                    tpot_s=(a.tpot_s, b.tpot_s),
                )

    def host_bound(self, case: dict[str, Any], n: int, results: dict[str, genmodel.Estimate]) -> bool:
        """Whether the engines' TTFTs are within 2x once each engine's eager prefill launches
        (``prefill_launch_s``: SGLang and TensorRT-LLM run a step with a prompt outside CUDA graphs)
        are taken off the slower ones: a host-bound prompt on a small model, not a scheduling gap."""
        fastest = min(e.ttft_s for e in results.values())
        for name, est in results.items():
            floor = _host_floor_s(case, est, _engine({**case, "engine": name}, n))
            if est.ttft_s > 2 * (fastest + floor):
                return False
        return True

    def apart_by_restart(self, case: dict[str, Any], n: int, results: dict[str, genmodel.Estimate]) -> bool:
        """Whether the engines' TTFTs come within the threshold without the benchmark's restart
        after its warm-up: the engines that cache prefixes find the replayed warm-up prompts,
        the others (TensorRT-LLM under AIConfigurator's harness: block reuse off) compute every
        client's first measured prompt at once."""
        ttfts = []
        for name in results:
            try:
                steady = self.call({**case, "engine": name}, concurrency=n, warmup_restart=False)
            except _Timeout:
                return False
            if steady is None:
                return False
            ttfts.append(steady.ttft_s)
        return max(ttfts) <= ENGINES_FAR * min(ttfts)

    def restart_burst(self, case: dict[str, Any], n: int, sim: genmodel.Estimate) -> bool:
        """Whether the benchmark's restart after its warm-up makes most of the TTFT at ``n``
        clients: every client's first measured prompt at once, whose KV the prefix cache no longer
        holds where the warm-up outgrew the pool."""
        try:
            steady = self.call(case, concurrency=n, warmup_restart=False)
        except _Timeout:
            return False
        return steady is not None and sim.ttft_s > 2 * steady.ttft_s

    def engines(
        self, case: dict[str, Any], sims: dict[int, genmodel.Estimate], tags: dict[int, set[str]]
    ) -> None:
        for n in ENGINE_RUNGS:
            if n not in sims:
                continue
            results = {case["engine"]: sims[n]}
            for other in ENGINES:
                if other == case["engine"]:
                    continue
                try:
                    r = self.call({**case, "engine": other}, concurrency=n)
                except _Timeout:
                    continue
                if r is not None:
                    results[other] = r
            if len(results) < 2:
                continue
            for metric, get in (
                ("ttft_s", lambda e: e.ttft_s),
                ("tpot_s", lambda e: e.tpot_s),
                ("e2e_s", _cycle),
            ):
                values = {k: get(v) for k, v in results.items()}
                if max(values.values()) > ENGINES_FAR * min(values.values()):
                    if metric == "ttft_s" and self.host_bound(case, n, results):
                        self.explained["engines-far: eager prefill launches"] += 1
                        continue
                    if len({e.serving.kv_limited for e in results.values() if e.serving}) > 1:
                        # the engines size their pools differently (TensorRT-LLM: a share of the
                        # memory free after loading), so one holds every client and another not
                        self.explained["engines-far: KV pools differ"] += 1
                        continue
                    whole = [_cycle(e) for e in results.values()]
                    kv = any(e.serving.kv_limited for e in results.values() if e.serving)
                    if (
                        metric == "ttft_s"
                        and max(whole) <= ENGINES_FAR * min(whole)
                        and (kv or "prefill" in tags.get(n, ()))
                    ):
                        # a full pool's wait before the first token (reserving admission) or partly
                        # mid-decode (preemption), a prefill-bound loop's prompts queued or mixed
                        self.explained["engines-far: TTFT and TPOT split apart"] += 1
                        continue
                    if metric == "ttft_s" and self.apart_by_restart(case, n, results):
                        self.explained["engines-far: restart burst"] += 1
                        continue
                    self.flag(
                        "engines-far",
                        case,
                        concurrency=n,
                        metric=metric,
                        values=values,
                        kv_limited={k: v.serving.kv_limited for k, v in results.items() if v.serving},
                    )

    def worst_pairs(self, count: int = 20) -> list[dict[str, Any]]:
        def far(p: dict[str, Any]) -> float:
            return max(abs(math.log(c / s)) for s, c in zip(p["sim"], p["closed"], strict=True))

        return [
            {**p, "log_ratio": round(far(p), 2)} for p in sorted(self.pairs, key=far, reverse=True)[:count]
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "refused": self.refused,
            "abandoned_ladders": self.timeouts,
            "rungs": len(self.pairs),
            "anomalies": dict(self.counts),
            "explained": dict(sorted(self.explained.items())),
            "examples": self.anomalies,
            "sim_vs_closed_worst": self.worst_pairs(),
        }


def _engine(case: dict[str, Any], clients: int) -> Engine:
    """The engine of ``case`` at ``clients`` clients: its preset, as the harness configures it."""
    engine = engine_preset(case["engine"], load_hardware(case["hardware"]).device)
    if case["harness"]:
        engine = harness_engine(
            engine, case["harness"], concurrency=clients, input_tokens=case["input_tokens"]
        )
    return engine


def _eager_decode(engine: Engine, tp: int, batch: int) -> bool:
    """Whether a decode step of ``batch`` sequences runs outside a CUDA graph on ``engine``."""
    limit, sizes, pads = engine.cuda_graphs(tp)
    if limit is not None and batch > limit:
        return True
    return bool(sizes) and not pads and batch not in sizes


def _host_floor_s(case: dict[str, Any], est: genmodel.Estimate, engine: Engine) -> float:
    """The host's launches of one eager prefill forward on ``engine`` (``prefill_launch_s``)."""
    kernels = eager_launches(load_model(case["model"]), est.plan, est.precision, eager_block_kernels(engine))
    return engine.prefill_launch_s * kernels


def _short(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "ladder"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="deployments (each a ladder of 11 rungs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exotic", type=float, default=0.1, help="chance of dense dp, fp8 activations, spread"
    )
    parser.add_argument(
        "--call-limit", type=float, default=20.0, help="seconds before a simulation is abandoned"
    )
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--json", help="write the summary (every kept example) to this file")
    parser.add_argument(
        "--wider",
        action="store_true",
        help="add gpt-oss-120b and gpt-oss-20b to the models and 32,768 to the lengths",
    )
    args = parser.parse_args(argv)
    if args.wider:  # (the sampler reads its module's tables when it draws)
        sweep_serving_sanity.MODELS = {**sweep_serving_sanity.MODELS, "gpt-oss-120b": 2, "gpt-oss-20b": 1}
        sweep_serving_sanity.MOE = (*sweep_serving_sanity.MOE, "gpt-oss-120b", "gpt-oss-20b")
        sweep_serving_sanity.LENGTHS = (*sweep_serving_sanity.LENGTHS, 32768)
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(args.seed)
    sweep = Sweep(args.examples, args.call_limit)
    start = time.perf_counter()
    done = 0
    while done < args.n:
        case = sample(rng, 0, args.exotic)
        if case.get("pp", 1) > 1:
            continue
        done += 1
        sweep.deployment(case)
        print(
            f"{done}/{args.n} {time.perf_counter() - start:.0f} s {dict(sweep.counts)}",
            file=sys.stderr,
        )
    out = sweep.summary()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    print(
        json.dumps({k: v for k, v in out.items() if k not in ("examples", "sim_vs_closed_worst")}, indent=1)
    )
    for kind, cases in out["examples"].items():
        print(f"\n== {kind} ({out['anomalies'][kind]})")
        for c in cases[:3]:
            print("  ", c)
    print("\n== simulation vs closed form, furthest rungs")
    for p in out["sim_vs_closed_worst"]:
        print("  ", p)
    return 1 if out["anomalies"] else 0


if __name__ == "__main__":
    os.nice(10)
    raise SystemExit(main())
