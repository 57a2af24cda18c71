"""Kernel and step timings on one GPU, to check genmodel's efficiencies against real kernels.

Run on a machine with a CUDA GPU and PyTorch (not part of the package; nothing in the tests needs
it):

    python3 tools/device/h200_bench.py OUT_DIR [--quick]

It writes OUT_DIR/results.jsonl, one JSON object per measurement, as it goes (a section that fails
records its error and the run goes on), and OUT_DIR/env.json (GPU, driver, torch, clocks).
Every time is GPU time of CUDA-graph replays measured with CUDA events unless a record says
`"timing": "eager_wall"` (wall clock of eager PyTorch, host launch cost included).

Sections:
- `bandwidth`: HBM copy and read (sum) of 4 GiB.
- `gemm`: bf16 `torch.mm` and fp8 e4m3 `torch._scaled_mm` (per-tensor scales, bf16 out) over token
  counts M and the weight shapes of Llama-3.1-8B (TP1) and Llama-3.1-70B (TP8 shard); the weights
  rotate over copies that together exceed the L2, as a model's layers do.
- `attention`: scaled_dot_product_attention, causal prefill (32 query / 8 KV heads, head 128) and
  decode (one query per sequence over a KV context, 32 layers' caches in rotation).
- `model`: a Llama-3.1-8B-shaped model written here from its published config.json (random
  weights; RMSNorm, RoPE, GQA attention, SwiGLU, lm_head), bf16 and fp8 linears: prefill of one
  prompt and decode steps at several batches and contexts, graph-replayed (GPU time) and eager
  (wall time), with the kernel count of one eager step.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
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
RESULTS = os.path.join(OUT, "results.jsonl")
L2_BYTES = 60e6 if CUDA else 1e6

# Llama-3.1-8B config.json (meta-llama/Llama-3.1-8B): hidden 4096, 32 layers, 32 heads, 8 KV heads,
# intermediate 14336, vocab 128256, rope_theta 500000.
LLAMA_8B = dict(layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256)
if QUICK:
    LLAMA_8B = dict(layers=2, hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, vocab=1000)


def emit(record: dict) -> None:
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def eager_wall(fn, reps: int = 10) -> float:
    for _ in range(2):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps


def section(name):
    def wrap(body):
        def run():
            t0 = time.perf_counter()
            try:
                body()
            except Exception as exc:  # a failed section is recorded, the run goes on
                emit({"section": name, "error": repr(exc), "trace": traceback.format_exc()[-2000:]})
            emit({"section": name, "done_s": round(time.perf_counter() - t0, 2)})
            if CUDA:
                torch.cuda.empty_cache()

        return run

    return wrap


def environment() -> None:
    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": DEV,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": QUICK,
    }
    if CUDA:
        p = torch.cuda.get_device_properties(0)
        env.update(name=p.name, sms=p.multi_processor_count, memory_bytes=p.total_memory)
        for query in ("name,driver_version,power.limit,clocks.max.sm,clocks.max.mem",):
            try:
                env["nvidia_smi"] = subprocess.run(
                    ["nvidia-smi", f"--query-gpu={query}", "--format=csv"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                ).stdout.strip()
            except Exception as exc:
                env["nvidia_smi"] = repr(exc)
    with open(os.path.join(OUT, "env.json"), "w") as fh:
        json.dump(env, fh, indent=1)
    print(env, flush=True)


@section("bandwidth")
def bandwidth() -> None:
    n = (4 << 30) // 2 if not QUICK else 1 << 20
    a = torch.empty(n, dtype=torch.bfloat16, device=DEV).normal_()
    b = torch.empty_like(a)
    t = graph_time(lambda: b.copy_(a), reps=20)
    emit({"section": "bandwidth", "kind": "copy", "bytes": 4 * n, "s": t, "tb_per_s": 4 * n / t / 1e12})
    out = torch.empty((), dtype=torch.float32, device=DEV)
    t = graph_time(lambda: torch.sum(a, 0, dtype=torch.float32, out=out), reps=20)
    emit({"section": "bandwidth", "kind": "read_sum", "bytes": 2 * n, "s": t, "tb_per_s": 2 * n / t / 1e12})


GEMM_SHAPES = {  # name: (N, K) of y[M, N] = x[M, K] @ W[K, N]
    "8b.qkv": (6144, 4096),
    "8b.o": (4096, 4096),
    "8b.gate_up": (28672, 4096),
    "8b.down": (4096, 14336),
    "8b.lm_head": (128256, 4096),
    "70b-tp8.qkv": (1280, 8192),
    "70b-tp8.o": (8192, 1024),
    "70b-tp8.gate_up": (7168, 8192),
    "70b-tp8.down": (8192, 3584),
    "square": (8192, 8192),
}
GEMM_M = [1, 8, 16, 32, 64, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384]


def _gemm_call(dtype: str, m: int, n: int, k: int):
    wbytes = n * k * (1 if dtype == "fp8" else 2)
    copies = max(1, min(16, math.ceil(4 * L2_BYTES / wbytes)))
    x = torch.randn(m, k, device=DEV, dtype=torch.bfloat16)
    if dtype == "bf16":
        ws = [torch.randn(k, n, device=DEV, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]

        def call():
            for w in ws:
                torch.mm(x, w)
    else:
        x8 = x.to(torch.float8_e4m3fn)
        ws = [
            (torch.randn(n, k, device=DEV, dtype=torch.bfloat16) * 0.02).to(torch.float8_e4m3fn).t()
            for _ in range(copies)
        ]
        one = torch.ones((), device=DEV, dtype=torch.float32)

        def call():
            for w in ws:
                torch._scaled_mm(x8, w, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    return call, copies, wbytes


@section("gemm")
def gemm() -> None:
    dtypes = ["bf16", "fp8"]
    shapes = GEMM_SHAPES if not QUICK else {"tiny": (256, 128)}
    ms = GEMM_M if not QUICK else [1, 16, 64]
    for dtype in dtypes:
        for name, (n, k) in shapes.items():
            for m in ms:
                if name == "8b.lm_head" and m > 2048:
                    continue
                try:
                    call, copies, wbytes = _gemm_call(dtype, m, n, k)
                    est = max(2 * m * n * k / 6e14, wbytes / 4e12) * copies + 5e-6 * copies
                    reps = max(3, min(50, int(0.03 / est)))
                    t = graph_time(call, reps=reps) / copies
                    emit(
                        {
                            "section": "gemm",
                            "dtype": dtype,
                            "shape": name,
                            "m": m,
                            "n": n,
                            "k": k,
                            "s": t,
                            "tflops": 2 * m * n * k / t / 1e12,
                            "weight_tb_per_s": wbytes / t / 1e12,
                            "copies": copies,
                        }
                    )
                except Exception as exc:
                    emit({"section": "gemm", "dtype": dtype, "shape": name, "m": m, "error": repr(exc)[:300]})
                finally:
                    call = None
                    if CUDA:
                        torch.cuda.empty_cache()


def _sdpa(q, k, v, causal):
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except Exception:
        rep = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=causal
        )


def _decode_layers(q, caches) -> None:
    for k, v in caches:
        F.scaled_dot_product_attention(q, k, v)


@section("attention")
def attention() -> None:
    hq, hkv, d = (32, 8, 128) if not QUICK else (4, 2, 64)
    for s in [1024, 4096, 16384, 32768] if not QUICK else [64]:
        q = torch.randn(1, hq, s, d, device=DEV, dtype=torch.bfloat16)
        k = torch.randn(1, hkv, s, d, device=DEV, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        t = graph_time(partial(_sdpa, q, k, v, True), reps=5)
        flops = 2 * s * s * hq * d  # causal: half of 4*s^2*h*d
        emit(
            {
                "section": "attention",
                "kind": "prefill_causal",
                "seq": s,
                "heads": hq,
                "kv_heads": hkv,
                "head_dim": d,
                "s": t,
                "tflops": flops / t / 1e12,
            }
        )
    layers = 32 if not QUICK else 2
    for batch, ctx in (
        [(1, 1024), (1, 8192), (8, 4096), (32, 1024), (32, 4096), (128, 1024)] if not QUICK else [(2, 64)]
    ):
        g = hq // hkv
        q = torch.randn(batch, hkv, g, d, device=DEV, dtype=torch.bfloat16)
        caches = [
            (
                torch.randn(batch, hkv, ctx, d, device=DEV, dtype=torch.bfloat16),
                torch.randn(batch, hkv, ctx, d, device=DEV, dtype=torch.bfloat16),
            )
            for _ in range(layers)
        ]

        t = graph_time(partial(_decode_layers, q, caches), reps=10) / layers
        kv_bytes = 2 * batch * hkv * ctx * d * 2
        emit(
            {
                "section": "attention",
                "kind": "decode",
                "batch": batch,
                "context": ctx,
                "s_per_layer": t,
                "kv_tb_per_s": kv_bytes / t / 1e12,
            }
        )
        caches.clear()


class Llama:
    """A Llama-shaped decoder with random weights; linears in bf16 or fp8 (per-tensor scales)."""

    def __init__(self, cfg: dict, dtype: str) -> None:
        self.c, self.dtype = cfg, dtype
        h, d = cfg["hidden"], cfg["head_dim"]
        qkv = (cfg["heads"] + 2 * cfg["kv_heads"]) * d
        self.one = torch.ones((), device=DEV, dtype=torch.float32)
        self.layers = [
            dict(
                n1=torch.ones(h, device=DEV, dtype=torch.bfloat16),
                n2=torch.ones(h, device=DEV, dtype=torch.bfloat16),
                qkv=self._w(h, qkv),
                o=self._w(cfg["heads"] * d, h),
                gu=self._w(h, 2 * cfg["ffn"]),
                down=self._w(cfg["ffn"], h),
            )
            for _ in range(cfg["layers"])
        ]
        self.norm = torch.ones(h, device=DEV, dtype=torch.bfloat16)
        self.lm_head = torch.randn(h, cfg["vocab"], device=DEV, dtype=torch.bfloat16) * 0.02
        self.inv_freq = 1.0 / (500000.0 ** (torch.arange(0, d, 2, device=DEV, dtype=torch.float32) / d))

    def _w(self, k: int, n: int):
        w = torch.randn(k, n, device=DEV, dtype=torch.bfloat16) * 0.02
        if self.dtype == "fp8":
            return w.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major (k, n) for _scaled_mm
        return w

    def linear(self, x, w):
        if self.dtype == "fp8":
            rows = x.shape[0]
            if rows % 16:  # fp8 matmuls want rows in multiples of 16; engines pad the same way
                x = F.pad(x, (0, 0, 0, 16 - rows % 16))
            y = torch._scaled_mm(
                x.to(torch.float8_e4m3fn), w, scale_a=self.one, scale_b=self.one, out_dtype=torch.bfloat16
            )
            return y[:rows]
        return x @ w

    def rope(self, x, pos):  # x (..., tokens, heads, d); pos (tokens,)
        ang = pos.float()[:, None] * self.inv_freq[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :].to(x.dtype)
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :].to(x.dtype)
        x1, x2 = x.chunk(2, -1)
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def mlp(self, x, lw):
        g, u = self.linear(F.rms_norm(x, (x.shape[-1],), lw["n2"]), lw["gu"]).chunk(2, -1)
        return x + self.linear(F.silu(g) * u, lw["down"])

    def prefill(self, x, batch: int, seq: int):
        c = self.c
        hq, hkv, d = c["heads"], c["kv_heads"], c["head_dim"]
        pos = torch.arange(seq, device=DEV)
        for lw in self.layers:
            qkv = self.linear(F.rms_norm(x, (x.shape[-1],), lw["n1"]), lw["qkv"])
            q, k, v = qkv.split([hq * d, hkv * d, hkv * d], -1)
            q = self.rope(q.view(batch, seq, hq, d), pos).transpose(1, 2)
            k = self.rope(k.view(batch, seq, hkv, d), pos).transpose(1, 2)
            v = v.view(batch, seq, hkv, d).transpose(1, 2)
            a = _sdpa(q, k, v, True).transpose(1, 2).reshape(batch * seq, hq * d)
            x = self.mlp(x + self.linear(a, lw["o"]), lw)
        last = F.rms_norm(x.view(batch, seq, -1)[:, -1], (x.shape[-1],), self.norm)
        return last @ self.lm_head

    def decode(self, x, caches, pos):
        c = self.c
        hq, hkv, d = c["heads"], c["kv_heads"], c["head_dim"]
        batch = x.shape[0]
        for lw, (kc, vc) in zip(self.layers, caches, strict=True):
            qkv = self.linear(F.rms_norm(x, (x.shape[-1],), lw["n1"]), lw["qkv"])
            q, k, v = qkv.split([hq * d, hkv * d, hkv * d], -1)
            q = self.rope(q.view(batch, 1, hq, d), pos)
            k = self.rope(k.view(batch, 1, hkv, d), pos)
            kc.index_copy_(2, pos, k.view(batch, hkv, 1, d))
            vc.index_copy_(2, pos, v.view(batch, hkv, 1, d))
            # GQA decode without copying the cache: the group's query heads act as query rows.
            a = F.scaled_dot_product_attention(q.view(batch, hkv, hq // hkv, d), kc, vc)
            x = self.mlp(x + self.linear(a.reshape(batch, hq * d), lw["o"]), lw)
        return F.rms_norm(x, (x.shape[-1],), self.norm) @ self.lm_head


def kernel_count(fn) -> int:
    if not CUDA:
        return -1
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync()
    return sum(1 for e in prof.events() if str(e.device_type).endswith("CUDA"))


def attempt(rec: dict, fn, reps: int, count: bool) -> None:
    """Time fn graph-replayed and eager into rec and emit it; a failure is recorded in rec."""
    try:
        rec["graph_s"] = graph_time(fn, reps=reps)
        rec["eager_wall_s"] = eager_wall(fn, max(3, reps // 2))
        if count:
            rec["kernels"] = kernel_count(fn)
    except Exception as exc:
        rec["error"] = repr(exc)[:300]
    emit(rec)


def _model_runs(dtype: str) -> None:
    cfg = LLAMA_8B
    model = Llama(cfg, dtype)
    h = cfg["hidden"]
    with torch.inference_mode():
        for batch, seq in [(1, 128), (1, 512), (1, 2048), (1, 8192), (8, 1024)] if not QUICK else [(1, 16)]:
            x = torch.randn(batch * seq, h, device=DEV, dtype=torch.bfloat16)
            fn = partial(model.prefill, x, batch, seq)
            rec = {
                "section": "model",
                "model": "llama-3.1-8b-shape",
                "dtype": dtype,
                "phase": "prefill",
                "batch": batch,
                "seq": seq,
            }
            attempt(rec, fn, 5, count=seq in (128, 2048))
        for batch, ctx in (
            [(1, 1024), (8, 1024), (32, 1024), (64, 1024), (128, 1024), (32, 4096), (8, 8192)]
            if not QUICK
            else [(2, 32)]
        ):
            caches = [
                (
                    torch.zeros(
                        batch, cfg["kv_heads"], ctx, cfg["head_dim"], device=DEV, dtype=torch.bfloat16
                    ),
                    torch.zeros(
                        batch, cfg["kv_heads"], ctx, cfg["head_dim"], device=DEV, dtype=torch.bfloat16
                    ),
                )
                for _ in range(cfg["layers"])
            ]
            x = torch.randn(batch, h, device=DEV, dtype=torch.bfloat16)
            pos = torch.tensor([ctx - 1], device=DEV)
            fn = partial(model.decode, x, caches, pos)
            rec = {
                "section": "model",
                "model": "llama-3.1-8b-shape",
                "dtype": dtype,
                "phase": "decode",
                "batch": batch,
                "context": ctx,
            }
            attempt(rec, fn, 20, count=batch in (1, 32) and ctx == 1024)
            caches.clear()
            if CUDA:
                torch.cuda.empty_cache()


@section("model_bf16")
def model_bf16() -> None:
    _model_runs("bf16")


@section("model_fp8")
def model_fp8() -> None:
    _model_runs("fp8")


@section("launch")
def launch() -> None:
    x = torch.zeros(1, device=DEV)
    n = 2000
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        x.add_(1.0)
    sync()
    emit(
        {
            "section": "launch",
            "kind": "eager_tiny_add",
            "timing": "eager_wall",
            "s_per_launch": (time.perf_counter() - t0) / n,
        }
    )

    def many():
        for _ in range(100):
            x.add_(1.0)

    emit({"section": "launch", "kind": "graph_tiny_add", "s_per_kernel": graph_time(many, reps=10) / 100})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    if os.path.exists(RESULTS):
        os.remove(RESULTS)
    torch.manual_seed(0)
    environment()
    for step in (launch, bandwidth, model_bf16, model_fp8, attention, gemm):
        step()
    print("ALL DONE", flush=True)
