"""Benchmark of ``genmodel.requirements`` under load: the simulated solve and the closed form.

    python tools/bench_requirements.py        # three runs of each, the best

Cases (all five resources, in-process, ids resolved in each call):

- Llama-3.1-8B on one H100, 16 clients of 1,000 prompt and 200 output tokens, TTFT p99 <= 350 ms
  and mean TPOT <= 9.5 ms (the platform: 377 ms and 9.8 ms), on vLLM's simulated scheduler (the
  default) and on the closed form (a mean TTFT target: the closed form takes no percentile);
- Llama-3.1-70B on four H100s (tp4), 64 clients of 2,000 in and 500 out, TTFT p99 <= 6 s and TPOT
  p90 <= 35 ms (the platform: 8.4 s and 41 ms), simulated.

Prints the wall time of each call and how many simulations the solve ran.
"""

from __future__ import annotations

import time
from typing import Any

import genmodel
from genmodel._servingmodel import Simulated

RUNS = 3
CASES: dict[str, dict[str, Any]] = {
    "llama-3.1-8b x1, 16 clients, simulated": {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "concurrency": 16,
        "input_tokens": 1000,
        "output_tokens": 200,
        "ttft_slo_s": 0.35,
        "ttft_quantile": 0.99,
        "tpot_slo_s": 9.5e-3,
    },
    "llama-3.1-8b x1, 16 clients, closed form": {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "concurrency": 16,
        "input_tokens": 1000,
        "output_tokens": 200,
        "ttft_slo_s": 0.35,
        "tpot_slo_s": 9.5e-3,
        "serving": "closed-form",
    },
    "llama-3.1-70b tp4, 64 clients, simulated": {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "tp": 4,
        "concurrency": 64,
        "input_tokens": 2000,
        "output_tokens": 500,
        "ttft_slo_s": 6.0,
        "ttft_quantile": 0.99,
        "tpot_slo_s": 35e-3,
        "tpot_quantile": 0.9,
    },
}


def main() -> None:
    runs = [0]
    simulate = Simulated.simulate

    def counted(self: Simulated, *args: Any, **kwargs: Any) -> Any:
        runs[0] += 1
        return simulate(self, *args, **kwargs)

    Simulated.simulate = counted  # type: ignore[method-assign]
    genmodel.requirements(
        "llama-3.2-1b", "h100-sxm", batch=1, input_tokens=100, output_tokens=10, tpot_slo_s=1
    )
    for name, case in CASES.items():
        kwargs = dict(case)
        model, hardware = kwargs.pop("model"), kwargs.pop("hardware")
        times = []
        for _ in range(RUNS):
            runs[0] = 0
            start = time.perf_counter()
            genmodel.requirements(model, hardware, **kwargs)
            times.append(time.perf_counter() - start)
        print(f"{name}: {min(times):.2f} s (best of {RUNS}), {runs[0]} simulations")


if __name__ == "__main__":
    main()
