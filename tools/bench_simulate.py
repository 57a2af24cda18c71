"""Benchmark of the serving simulation: 512 closed-loop clients x 4 requests of 1,000 output tokens.

    python tools/bench_simulate.py        # five runs, the best of each figure

Llama-3.1-8B in fp8 on one H200, 1,000 prompt tokens, vLLM's preset (about 4,400 steps, with
preemptions as the KV pool fills). Prints the step-cost table's build time (once per deployment),
the simulation with that table (``genmodel._simulate.simulate_serving(..., table=...)``), and a whole
``genmodel.simulate`` call (which builds the table, resolves ids and checks the deployment).

Then the plan re-check's largest simulation: DeepSeek-V3 in int8 on 384 Ascend 910C (tp1, ep192,
dp384: attention-DP ranks in lockstep), 12,040 closed-loop clients x 3 requests of 4,096 in and
1,024 out, the first of each a warm-up, without the ITL percentiles (as the re-check runs it):
with the replicas that repeat another's schedule stepped once (:mod:`genmodel._symmetry`), and,
for comparison, with every replica stepped.

Then a KV-short SGLang run, where the clients wait behind a full pool while SGLang's admission
ratio decays: Llama-3.1-70B in fp8 on two H100s (a pool of about 246k tokens), 256 closed-loop
clients x 12 requests (2 of them warm-up, as ``estimate`` sends them) of 1,024 in and 16,384 out,
about 2 M engine steps, nearly all in runs of decode steps (docs/serving-simulation.md, "Runs of
decode steps"; stepping each alone, ``genmodel._scheduler.DECODE_RUNS = False``, takes 10-20x
longer).

Last, vLLM at its KV limit (preemption and recomputation all along, about 90k plans for 1.3 M
steps): Qwen3-32B fp8 on one H200, 1,024 clients x 12 requests of 1,024 in and 8,192 out with
AIConfigurator's harness configuration, one run.
"""

from __future__ import annotations

import time

import genmodel
from genmodel._arrivals import Arrivals, Lengths
from genmodel._enginepresets import engine_preset
from genmodel._forwardpass import StepSpecs
from genmodel._simulate import simulate_serving
from genmodel._stepcost import StepCostTable
from genmodel.io import load_hardware, load_model

RUNS = 5


def main() -> None:
    model, system = load_model("llama-3.1-8b"), load_hardware("h200-sxm")
    plan, precision = genmodel.Plan(), genmodel.default_precision("fp8")
    engine = engine_preset("vllm", system.device)
    arrivals = Arrivals(kind="closed", clients=512, requests_per_client=4)
    lengths = {"input_tokens": Lengths(mean=1000), "output_tokens": Lengths(mean=1000)}
    builds, sims, calls = [], [], []
    result = None
    for _ in range(RUNS):
        start = time.perf_counter()
        tokens_max = max(engine.max_batched_tokens, 1000) + 512
        specs = StepSpecs(model=model, hardware=system, plan=plan, precision=precision)
        table = StepCostTable.build(specs, tokens_max=tokens_max)
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = simulate_serving(
            model, system, plan, precision, engine=engine, arrivals=arrivals, table=table, **lengths
        )
        sims.append(time.perf_counter() - start)
        start = time.perf_counter()
        genmodel.simulate(
            "llama-3.1-8b",
            "h200-sxm",
            weight_dtype="fp8",
            concurrency=512,
            requests_per_client=4,
            input_tokens=1000,
            output_tokens=1000,
        )
        calls.append(time.perf_counter() - start)
    assert result is not None
    print(
        f"512 clients x 4 requests x 1000 output tokens: {result.steps} steps, "
        f"{result.preemptions} preemptions, {result.simulated_s:.1f} s simulated"
    )
    print(f"step-cost table build: {min(builds) * 1e3:.1f} ms (once per deployment)")
    print(f"simulation with the table: {min(sims) * 1e3:.1f} ms")
    print(f"genmodel.simulate(...) whole call: {min(calls) * 1e3:.1f} ms")
    lockstep()
    kv_short()
    kv_limit_vllm()


def kv_limit_vllm() -> None:
    """vLLM at its KV limit, preempting and recomputing all along (the slowest points of a sweep of
    validation-like rows): Qwen3-32B fp8 on one H200, 1,024 closed-loop clients x 12 requests (2
    of them warm-up) of 1,024 in and 8,192 out, AIConfigurator's harness configuration; one run."""
    from genmodel._harness import harness_engine

    device = load_hardware("h200-sxm").device
    engine = harness_engine(
        engine_preset("vllm", device), "aiconfigurator", concurrency=1024, input_tokens=1024, tp=1
    )
    start = time.perf_counter()
    result = genmodel.simulate(
        "qwen3-32b",
        "h200-sxm",
        weight_dtype="fp8",
        engine=engine,
        concurrency=1024,
        requests_per_client=12,
        warmup_requests=2,
        input_tokens=1024,
        output_tokens=8192,
    )
    print(
        f"vLLM at the KV limit, Qwen3-32B on 1 x H200, 1,024 clients x 12 x 8,192 out "
        f"({result.steps} steps, {result.preemptions} preemptions): "
        f"{(time.perf_counter() - start) * 1e3:.0f} ms"
    )


def kv_short() -> None:
    """The KV-short SGLang simulation: best of two."""
    best, result = [], None
    for _ in range(2):
        start = time.perf_counter()
        result = genmodel.simulate(
            "llama-3.1-70b",
            "h100-sxm",
            tp=2,
            weight_dtype="fp8",
            engine="sglang",
            concurrency=256,
            requests_per_client=12,
            warmup_requests=2,
            input_tokens=1024,
            output_tokens=16384,
        )
        best.append(time.perf_counter() - start)
    assert result is not None
    print(
        f"KV-short SGLang, Llama-3.1-70B on 2 x H100, 256 clients x 12 x 16,384 out "
        f"({result.steps} steps, {result.preemptions} retractions): {min(best) * 1e3:.0f} ms"
    )


def lockstep() -> None:
    """The DeepSeek-V3 re-check simulation on CloudMatrix384, by classes and every replica stepped."""
    from genmodel import _simulate

    model, system = load_model("deepseek-v3"), load_hardware("ascend-910c")
    plan, precision = genmodel.Plan(tp=1, ep=192, dp=384), genmodel.default_precision("int8")
    engine = engine_preset("vllm", system.device)
    arrivals = Arrivals(kind="closed", clients=12040, requests_per_client=3, warmup_requests=1)
    lengths = {"input_tokens": Lengths(mean=4096), "output_tokens": Lengths(mean=1024)}
    table = StepCostTable.build(
        StepSpecs(model=model, hardware=system, plan=plan, precision=precision),
        tokens_max=max(engine.max_batched_tokens, 4096) + 64,
    )
    times = {}
    classes = _simulate.replica_classes
    try:
        for name, runs in (("by classes", RUNS), ("every replica", 2)):
            best = []
            for _ in range(runs):
                start = time.perf_counter()
                result = simulate_serving(
                    model,
                    system,
                    plan,
                    precision,
                    engine=engine,
                    arrivals=arrivals,
                    table=table,
                    itl=False,
                    **lengths,
                )
                best.append(time.perf_counter() - start)
            times[name] = (min(best), result.steps)
            _simulate.replica_classes = lambda *a: None  # type: ignore[assignment]
    finally:
        _simulate.replica_classes = classes
    for name, (t, steps) in times.items():
        print(
            f"DeepSeek-V3, 384 x 910C in lockstep, 12,040 clients x 3 ({steps} steps), "
            f"{name}: {t * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
