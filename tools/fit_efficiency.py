"""Fit the shared efficiency parameters on the public validation cases (a grid search).

One set of numbers for every device — never one per case — chosen to minimise the MAPE over the
static cases genmodel covers. Run: python tools/fit_efficiency.py [CASES.csv]. The result and its
first-principles sanity check are recorded in hardware_db/EFFICIENCY.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import sys

import genmodel
from genmodel import GenModelError


def main() -> None:
    rows = genmodel.read_cases(sys.argv[1] if len(sys.argv) > 1 else genmodel.public_cases_path())
    rows = [r for r in rows if r["mode"] == "static"]
    grid = {
        "memory_frac": [0.6, 0.65, 0.7, 0.75, 0.8, 0.85],
        "gemm_frac": [0.6, 0.65, 0.7, 0.75],
        "gemm_low_precision_frac": [0.4, 0.45, 0.5, 0.55, 0.6, 0.7],
        "step_overhead_s": [0.5e-3, 1e-3, 1.5e-3, 2e-3],
    }
    results = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        apes = []
        for r in rows:
            device = genmodel.load_device(r["hardware"])
            device = dataclasses.replace(device, efficiency=dataclasses.replace(device.efficiency, **params))
            try:
                r2 = dict(r)
                est = genmodel.estimate(
                    r2["model"],
                    device,
                    input_tokens=int(r2["input_tokens"]),
                    output_tokens=int(r2["output_tokens"]),
                    devices=int(r2["devices"]),
                    tp=int(r2["tp"]),
                    pp=int(r2["pp"]),
                    ep=int(r2["ep"]),
                    dp=int(r2["dp"]),
                    batch=r2["batch"] if r2["batch"] == "max" else int(r2["batch"]),
                    weight_dtype=r2["weight_dtype"],
                    act_dtype=r2["act_dtype"],
                    kv_dtype=r2["kv_dtype"],
                )
            except GenModelError:
                continue
            predicted = float(getattr(est, r["metric"]))
            apes.append(abs(predicted - float(r["measured"])) / float(r["measured"]) * 100)
        results.append((statistics.fmean(apes), max(apes), len(apes), params))
    results.sort(key=lambda x: x[0])
    for mape, worst, n, params in results[:10]:
        print(f"MAPE {mape:5.1f}%  worst {worst:5.1f}%  n={n}  {params}")


if __name__ == "__main__":
    main()
