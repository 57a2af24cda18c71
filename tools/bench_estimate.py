"""Benchmark of one estimate: in-process time, and the shell command's wall time (README figures).

    python tools/bench_estimate.py

In process: Llama-3.1-70B fp8 on two H100s, batch 64, 1000 in / 1000 out (target: well under a
millisecond); the same deployment under 64 clients (``concurrency=64``), simulated (the default:
12 requests per client, 2 of them warm-up, the step-cost table built each time) and in closed form;
and the same as ``genmodel estimate ... --format json`` from the shell, with
``genmodel --help`` (target: well under a second each). Speed is measured here, never asserted in
the tests, where a busy machine would make it flake.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import genmodel

KWARGS = {"tp": 2, "batch": 64, "input_tokens": 1000, "output_tokens": 1000, "weight_dtype": "fp8"}
SHELL = [
    "estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "2", "--batch", "64",
    "--input-tokens", "1000", "--output-tokens", "1000", "--weight-dtype", "fp8", "--format", "json",
]  # fmt: skip


def in_process_s(runs: int = 200) -> float:
    """Mean seconds of one in-process estimate, best of three rounds of ``runs``."""
    genmodel.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)  # type: ignore[arg-type]  # warm caches
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(runs):
            genmodel.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)  # type: ignore[arg-type]
        best = min(best, (time.perf_counter() - start) / runs)
    return best


SERVING = {"tp": 2, "concurrency": 64, "input_tokens": 1000, "output_tokens": 1000, "weight_dtype": "fp8"}


def serving_s(serving: str, runs: int = 5) -> float:
    """Best CPU seconds of one serving estimate (``serving`` model) over ``runs`` calls."""
    genmodel.estimate("llama-3.1-70b", "h100-sxm", serving=serving, **SERVING)  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        genmodel.estimate("llama-3.1-70b", "h100-sxm", serving=serving, **SERVING)  # type: ignore[arg-type]
        best = min(best, time.process_time() - start)
    return best


def shell_s(args: list[str]) -> float:
    """Best wall time of three runs of the installed ``genmodel`` command."""
    exe = Path(sys.executable).parent / "genmodel"
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([str(exe), *args], capture_output=True, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"estimate in process: {in_process_s() * 1e6:.0f} µs")
    print(f"serving estimate, 64 clients, simulated (CPU time): {serving_s('simulated') * 1e3:.1f} ms")
    print(f"serving estimate, 64 clients, closed form (CPU time): {serving_s('closed-form') * 1e6:.0f} µs")
    print(f"genmodel --help: {shell_s(['--help']):.2f} s")
    print(f"genmodel estimate (shell, JSON): {shell_s(SHELL):.2f} s")


if __name__ == "__main__":
    main()
