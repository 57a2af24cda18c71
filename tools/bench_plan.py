"""Benchmark of the plan search: candidate plans evaluated per second (the README's figure).

    python tools/bench_plan.py            # three runs of each case, the best rate of each

Cases: DeepSeek-V3 on 384 Ascend 910C (CloudMatrix384) and on 64 DGX H100 nodes (512 GPUs), and
Llama-3.1-70B on one DGX H200 node, each with TTFT <= 2 s and TPOT <= 50 ms; then DeepSeek-V3 on
Ascend 910C for a traffic of 100 requests/s (instances of every size up to 384 devices compete).
The search time is the search's own (``elapsed_s``); "whole plan" is the whole
``genmodel.plan`` call with its default simulated re-check of the best candidates (the closed form
prunes, the engine's scheduler is simulated on up to ``DEFAULT_RECHECK`` of them), the Pareto
frontier and the report, as the user waits for it; "re-checks" counts the simulations it ran.
CPU time of this process (``time.process_time``), so that other load on a shared machine counts
less; the best of three runs.
"""

from __future__ import annotations

import time
from typing import Any

import genmodel

#: (model, hardware, devices, weight dtype, input tokens, output tokens, request rate or None)
CASES = [
    ("deepseek-v3", "ascend-910c", 384, "int8", 4096, 1024, None),
    ("deepseek-v3", "h100-sxm", 512, "fp8", 4096, 1024, None),
    ("llama-3.1-70b", "h200-sxm", 8, "fp8", 2000, 500, None),
    ("deepseek-v3", "ascend-910c", 384, "int8", 4096, 1024, 100.0),
]


def _timed(
    model: str, hw: str, n: int, dtype: str, isl: int, osl: int, rate: float | None
) -> tuple[Any, float]:
    """One ``genmodel.plan`` call and its CPU time (seconds)."""
    start = time.process_time()
    report = genmodel.plan(
        model,
        hw,
        devices=n,
        input_tokens=isl,
        output_tokens=osl,
        ttft_slo_s=2.0,
        tpot_slo_s=0.05,
        weight_dtype=dtype,
        request_rate_per_s=rate,
    )
    return report, time.process_time() - start


def main() -> None:
    genmodel.plan("llama-3.1-8b", "h100-sxm", devices=1, input_tokens=100, output_tokens=10)  # imports
    print("| model | platform | devices | candidates | search time | plans/s | whole plan | re-checks |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        runs = [_timed(*case) for _ in range(3)]
        best = max((r for r, _ in runs), key=lambda r: r.plans_per_s)
        whole = min(t for _, t in runs)
        model, hw, n, _, _, _, rate = case
        devices = f"{n}" if rate is None else f"up to {n}, {rate:g} req/s"
        print(
            f"| {model} | {hw} | {devices} | {best.evaluated:,} | {best.result.elapsed_s:.2f} s "
            f"| {best.plans_per_s / 1e6:.2f} M | {whole:.2f} s | {len(best.rechecked)} |"
        )


if __name__ == "__main__":
    main()
