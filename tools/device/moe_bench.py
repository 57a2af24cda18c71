"""Routed-expert (MoE) layer timings on one GPU: experts split by tensor parallelism against whole
experts per device (expert parallelism), at decode and prefill token counts.

Run on a machine with a CUDA GPU and PyTorch 2.8 or later (not part of the package):

    python3 tools/device/moe_bench.py OUT_DIR [--quick]

One MoE layer of a device is timed as the engines run it: the token-expert pairs routed to the
device's experts (uniform random routing, top-k, a fixed seed), sorted by expert, a grouped GEMM
for gate and up (`torch._grouped_mm`), SiLU times up, a grouped GEMM for down. "tp N": every device
holds every expert, each a 1/N slice of its intermediate width, and sees every pair; "ep N": a
device holds 1/N of the experts whole and sees the pairs routed to them (device 0's share). The
weights rotate over four layers' copies. Times are GPU time of CUDA-graph replays (CUDA events).
Writes OUT_DIR/moe.jsonl, one JSON object per point. Prepared for the question the TP-split MoE
decode rows raise (docs/serving-simulation.md: TensorRT-LLM issue 5929 measures experts split by
tensor parallelism slower than whole experts); checked on the CPU (`--quick`) only: no GPU was lent
when it was written, so no measurement from it is in the repo yet.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from functools import partial

import torch
import torch.nn.functional as F
from _timing import graph_time  # tools/device/_timing.py (the script's folder is on sys.path)

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
QUICK = "--quick" in sys.argv or not CUDA
OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "."
LAYERS = 4

# config.json of deepseek-ai/DeepSeek-V3 (hidden 7168, moe_intermediate_size 2048, 256 routed
# experts, 8 per token) and Qwen/Qwen3-235B-A22B (hidden 4096, moe_intermediate_size 1536, 128
# experts, 8 per token)
MODELS = {
    "deepseek-v3": dict(hidden=7168, inter=2048, experts=256, top_k=8, splits=["tp8", "ep8"]),
    "qwen3-235b-a22b": dict(
        hidden=4096, inter=1536, experts=128, top_k=8, splits=["tp2", "tp4", "ep4", "ep8"]
    ),
}
TOKENS = [1, 4, 8, 16, 32, 64, 128, 256, 1024, 4096]
if QUICK:
    MODELS = {"tiny": dict(hidden=256, inter=128, experts=16, top_k=2, splits=["tp2", "ep2"])}
    TOKENS = [1, 8]


def emit(record: dict) -> None:
    with open(os.path.join(OUT, "moe.jsonl"), "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def layer(x, offs, weights) -> None:
    for w_gu, w_d in weights:
        h = torch._grouped_mm(x, w_gu, offs=offs)
        gate, up = h.chunk(2, -1)
        torch._grouped_mm((F.silu(gate) * up).contiguous(), w_d, offs=offs)


def run_split(name: str, cfg: dict, split: str, gen: torch.Generator) -> None:
    kind, n = split[:2], int(split[2:])
    d, inter, experts, k = cfg["hidden"], cfg["inter"], cfg["experts"], cfg["top_k"]
    width = inter // n if kind == "tp" else inter
    local = experts if kind == "tp" else experts // n
    # column-major per group (the layout the grouped kernels take)
    weights = [
        (
            (torch.randn(local, 2 * width, d, device=DEV, dtype=torch.bfloat16) * 0.02).transpose(-2, -1),
            (torch.randn(local, d, width, device=DEV, dtype=torch.bfloat16) * 0.02).transpose(-2, -1),
        )
        for _ in range(LAYERS)
    ]
    wbytes = 2 * 3 * d * width  # one expert's slice, bf16
    for tokens in TOKENS:
        try:
            picks = torch.stack([torch.randperm(experts, generator=gen)[:k] for _ in range(tokens)]).flatten()
            mine = picks[picks < local] if kind == "ep" else picks
            counts = torch.bincount(mine, minlength=local)
            rows = int(counts.sum())
            touched = int((counts > 0).sum())
            if rows == 0:
                emit({"model": name, "split": split, "tokens": tokens, "pairs": 0})
                continue
            offs = torch.cumsum(counts, 0).to(torch.int32).to(DEV)
            x = torch.randn(rows, d, device=DEV, dtype=torch.bfloat16)
            t = graph_time(partial(layer, x, offs, weights)) / LAYERS
            emit(
                {
                    "model": name,
                    "split": split,
                    "tokens": tokens,
                    "pairs": rows,
                    "experts_touched": touched,
                    "expert_width": width,
                    "s_per_layer": t,
                    "weight_bytes": touched * wbytes,
                    "weight_tb_per_s": touched * wbytes / t / 1e12,
                    "tflops": 2 * rows * 3 * d * width / t / 1e12,
                }
            )
        except Exception as exc:
            emit(
                {
                    "model": name,
                    "split": split,
                    "tokens": tokens,
                    "error": repr(exc)[:300],
                    "trace": traceback.format_exc()[-1500:],
                }
            )
    del weights
    if CUDA:
        torch.cuda.empty_cache()


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "moe.jsonl")
    if os.path.exists(path):
        os.remove(path)
    emit(
        {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if CUDA else "cpu",
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    gen = torch.Generator().manual_seed(0)
    for name, cfg in MODELS.items():
        for split in cfg["splits"]:
            run_split(name, cfg, split, gen)
    print("ALL DONE", flush=True)
