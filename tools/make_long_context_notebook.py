"""Build notebooks/long_context_memory.ipynb from the cells below and execute it in place.

Usage: .venv/bin/python tools/make_long_context_notebook.py
(tests/test_notebooks.py executes the notebook again and checks that its cells are these).
"""

from __future__ import annotations

from _notebook import Study

STUDY = Study("long_context_memory.ipynb")
NOTEBOOK = STUDY.path
md, code, build = STUDY.md, STUDY.code, STUDY.build


md("""
# Long context and the memory hierarchy: a worked study

This notebook answers two capacity-planning questions with genmodel's public API, and checks its own
conclusions with `assert`s (the test suite executes it: `tests/test_notebooks.py`).

1. **A 34B-class GQA model at 50K context on A100s** — the running example of Yao Fu, *Challenges in
   Deploying Long-Context Transformers: A Theoretical Peak Performance Analysis* (arXiv:2405.08944).
   We use Yi-34B-200K (60 layers, 8 KV heads of 128). Prefill time, how many users fit, decode time
   with the KV cache in HBM, partly in host DDR, or in a CXL memory expander, and the cost of a
   context switch.
2. **Llama-3.1-70B at 128K with and without CXL memory** on an 8-GPU H100 node: the capacity gained
   and the tokens/s lost or kept.

Every number comes from the same formulas as `genmodel estimate` / `genmodel memory`; the hardware
figures (A100, H100, host DDR4, Samsung CMM-D, Astera Labs Leo) are in `hardware_db/` with sources.
All results are model predictions, not measurements.
""")

code("""
import dataclasses

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

import genmodel

pio.renderers.default = "plotly_mimetype"  # figure JSON only: small notebooks, rendered by Jupyter
pd.set_option("display.precision", 3)
GB = 1e9


def row(label, est):
    m = est.memory
    return {
        "case": label,
        "users (batch)": est.batch,
        "TTFT s": est.ttft_s,
        "TPOT ms": est.tpot_s * 1e3,
        "decode tok/s (node)": est.batch / est.tpot_s,
        "HBM GB/dev": m.device_bytes_per_device / GB,
        "offloaded GB/dev": m.offloaded_bytes_per_device / GB,
        "decode bound": est.decode.bound,
    }
""")

md("""
## 1. Yi-34B-200K at 50K context on A100-80GB

The four challenges of Fu (2024), each computed. First the KV cache itself: bytes per token for the
whole model, and for one 50K-token user.
""")

code("""
MODEL, HW = "yi-34b-200k", "a100-sxm-80gb"
yi = genmodel.load_model(MODEL)
bf16 = genmodel.Precision()
per_token = genmodel.kv_bytes_per_token(yi, bf16)
per_user = genmodel.kv_bytes_per_sequence(yi, bf16, 50_000)
# 60 layers x 2 (K, V) x 8 KV heads x 128 dims x 2 bytes
assert per_token == 60 * 2 * 8 * 128 * 2
print(f"KV per token {per_token / 1e3:.0f} kB; per 50K-token user {per_user / GB:.2f} GB")
""")

md("""
**Challenge 1 — prefill.** One 50K-token prompt, tensor-parallel over 4 and 8 GPUs of a DGX A100.
Attention FLOPs grow with the square of the prompt, so a long prefill is compute-bound.
""")

code("""
rows = []
for tp in (4, 8):
    est = genmodel.estimate(MODEL, HW, tp=tp, batch=1, input_tokens=50_000, output_tokens=1)
    attn = sum(float(t.compute_s) for t in est.prefill.ops if t.op.kind == "attention")
    rows.append({"tp": tp, "prefill s": est.ttft_s,
                 "attention share of compute": attn / est.prefill.compute_s, "bound": est.prefill.bound})
prefill = pd.DataFrame(rows)
assert (prefill["bound"] == "compute").all()
prefill
""")

md("""
**Challenges 2 and 3 — concurrency bound by HBM, and decode bound by reading the KV cache.** On one
DGX A100 node (tp=8), the most 50K-token users that fit in HBM, and the decode step at that batch.
Then the same node with more users whose KV cache does not fit: it spills to the host's DDR4 (over each
GPU's PCIe 4.0 x16) or to CXL memory expanders (four Samsung CMM-D 128 GB per node, behind the same PCIe).
""")

code("""
common = dict(tp=8, input_tokens=50_000, output_tokens=1_000)
hbm = genmodel.estimate(MODEL, HW, batch="max", **common)
users = hbm.batch
cases = [row("HBM only (max users)", hbm)]
for label, tier in (("host DDR4", "host"), ("4x CXL CMM-D", "cxl-samsung-cmm-d-128gb:4")):
    est = genmodel.estimate(MODEL, HW, batch=2 * users, kv_offload=tier, **common)
    cases.append(row(f"2x users, KV spills to {label}", est))
study1 = pd.DataFrame(cases)
kv_read = sum(float(t.memory_s) for t in hbm.decode.ops if t.op.kind == "attention")
print(f"{users} users fit in HBM; reading their KV is {kv_read / hbm.decode.time_s:.0%} of the decode step")
# doubling the users by spilling KV over PCIe costs far more than it gains
assert (study1["TPOT ms"].iloc[1:] > 5 * study1["TPOT ms"].iloc[0]).all()
assert (study1["decode tok/s (node)"].iloc[1:] < study1["decode tok/s (node)"].iloc[0]).all()
study1
""")

md("""
**Challenge 4 — context switching.** When KV memory overflows, a server can instead keep the KV of
*inactive* users in DDR or CXL and swap a user in when their next turn comes. The swap of one 50K-token
user costs (per GPU, over its share of the link):
""")

code("""
swaps = []
for label, tier in (("host DDR4", "host"), ("1x CXL CMM-D", "cxl-samsung-cmm-d-128gb"),
                    ("4x CXL CMM-D", "cxl-samsung-cmm-d-128gb:4"), ("1x Astera Leo", "cxl-astera-leo-512gb")):
    r = genmodel.memory_report(MODEL, HW, batch=1, kv_offload=tier, **common)
    swaps.append({"KV tier": label, "swap one user s": r["swap_s_per_sequence"],
                  "tier GB/s per GPU": r["tiers"][1]["bandwidth_bytes_per_s"] / GB})
swap = pd.DataFrame(swaps)
# a context switch costs more than a whole decode step of the batch: it must be rare (between turns)
assert (swap["swap one user s"] > hbm.tpot_s).all()
swap
""")

md("""
What lowers the KV read instead of moving it: an fp8 KV cache halves it, and sparse (top-k) attention
that reads a tenth of the cached tokens (Quest, ShadowKV) cuts it further. Both also change how many
users fit (fp8) or not (sparse attention still stores every token).
""")

code("""
variants = [row("bf16 KV", hbm)]
fp8 = genmodel.estimate(MODEL, HW, batch="max", kv_dtype="fp8", **common)
variants.append(row("fp8 KV", fp8))
sparse = genmodel.estimate(MODEL, HW, batch=users, sparse_attention_frac=0.1, **common)
variants.append(row("bf16 KV, top-10% sparse attention", sparse))
kv_variants = pd.DataFrame(variants)
assert fp8.batch > hbm.batch and sparse.tpot_s < hbm.tpot_s
kv_variants
""")

md("""
## 2. Llama-3.1-70B at 128K tokens, with and without CXL memory

One DGX H100 node (8 GPUs, tp=8, bf16 weights and KV cache), 127K-token prompts with 1K output tokens.
Without CXL, the users that fit in HBM; with four CMM-D expanders (512 GB per node) or one Astera Labs
Leo controller (512 GB configured), the users that fit when the KV cache that does not fit lives in
CXL memory and every decode step reads it over PCIe.
""")

code("""
LLAMA, H100 = "llama-3.1-70b", "h100-sxm"
long = dict(tp=8, input_tokens=127_000, output_tokens=1_000)
base = genmodel.estimate(LLAMA, H100, batch="max", **long)
rows = [row("HBM only", base)]
CXL_TIERS = (("4x CXL CMM-D 128 GB", "cxl-samsung-cmm-d-128gb:4"),
             ("1x Astera Leo 512 GB", "cxl-astera-leo-512gb"))
for label, tier in CXL_TIERS:
    est = genmodel.estimate(LLAMA, H100, batch="max", kv_offload=tier, **long)
    rows.append(row(f"spill to {label}", est))
    win = genmodel.estimate(LLAMA, H100, batch=est.batch, kv_offload=tier, sparse_attention_frac=0.1, **long)
    rows.append(row(f"spill to {label} + top-10% sparse attention", win))
study2 = pd.DataFrame(rows)
gain = study2["users (batch)"].iloc[1] / base.batch
print(f"CXL raises the users that fit from {base.batch} to {study2['users (batch)'].iloc[1]} ({gain:.1f}x)")
assert study2["users (batch)"].iloc[1] > base.batch
study2
""")

md("""
How much CXL bandwidth would keep decode throughput? The step reads the spilled KV over the GPU's
PCIe 5.0 x16 (64 GB/s, 80 % achieved) and the expanders' own links; sweep the number of expanders,
with the users fixed at the CXL-enabled maximum.
""")

code("""
users_cxl = int(study2["users (batch)"].iloc[1])
sweep = []
for n in (1, 2, 4, 8, 16, 32):
    try:
        est = genmodel.estimate(LLAMA, H100, batch=users_cxl, kv_offload=f"cxl-samsung-cmm-d-128gb:{n}",
                                **long)
    except genmodel.InfeasibleError:
        continue
    sweep.append({"CMM-D per node": n, "GB/s per GPU": est.memory.tiers[1].bandwidth_bytes_per_s / GB,
                  "TPOT ms": est.tpot_s * 1e3, "decode tok/s (node)": est.batch / est.tpot_s})
bandwidth = pd.DataFrame(sweep)
# more CXL bandwidth never slows decode, and the host link caps it
assert bandwidth["TPOT ms"].is_monotonic_decreasing or bandwidth["TPOT ms"].diff().dropna().le(1e-9).all()
bandwidth
""")

md("""
Both sides in one figure: the sessions a node holds as the context grows (`genmodel.memory_report`'s
capacity-to-concurrency curve), with and without the CXL tiers, and the decode step of the CXL-enabled
maximum against the CXL bandwidth each GPU gets.
""")

code("""
CONTEXTS = (8192, 16384, 32768, 65536, 131072)
fit_rows = []
for label, tier in (("HBM only", None), *CXL_TIERS):
    report = genmodel.memory_report(LLAMA, H100, kv_offload=tier, contexts=CONTEXTS, **long)
    fit_rows += [{"memory": label, **c} for c in report["concurrency"]]
fits = pd.DataFrame(fit_rows)

fig = make_subplots(rows=1, cols=2, subplot_titles=("sessions that fit, by context (DGX H100, tp=8)",
                                                    "decode step with the KV spilled to CMM-D"))
for label, grp in fits.groupby("memory", sort=False):
    fig.add_trace(go.Scatter(x=grp.context_tokens, y=grp.max_concurrency, name=label, mode="lines+markers"),
                  row=1, col=1)
fig.add_trace(go.Scatter(x=bandwidth["GB/s per GPU"], y=bandwidth["TPOT ms"], mode="lines+markers",
                         name=f"{users_cxl} users over CMM-D", text=bandwidth["CMM-D per node"]),
              row=1, col=2)
fig.add_hline(y=base.tpot_s * 1e3, line_dash="dot", row=1, col=2,
              annotation_text=f"HBM only, {base.batch} users")
fig.update_xaxes(type="log", title_text="context tokens per session", row=1, col=1)
fig.update_xaxes(type="log", title_text="CXL GB/s per GPU", row=1, col=2)
fig.update_yaxes(type="log", title_text="sessions", row=1, col=1)
fig.update_yaxes(type="log", title_text="TPOT ms", row=1, col=2)
fig.update_layout(template="plotly_white", title="Llama-3.1-70B: capacity gained vs decode speed lost")
fig.show()

by_context = fits.pivot(index="context_tokens", columns="memory", values="max_concurrency")
# at every context length the four expanders at least double the sessions a node holds
assert (by_context["4x CXL CMM-D 128 GB"] >= 2 * by_context["HBM only"]).all()
by_context
""")

md("""
**Reading.** CXL memory doubles the number of 128K-token sessions a node can *hold*, but a decode
step that must read their spilled KV over PCIe is two orders of magnitude slower than one served from
HBM: four CMM-D expanders give each of the 8 GPUs ~13 GB/s against 3,350 GB/s of HBM3, and even sixteen
of them stop at each GPU's PCIe 5.0 x16 (~51 GB/s achieved). CXL capacity pays off for KV that is not
read every step: inactive sessions swapped in between turns (0.06 to 0.5 s per 50K-token user above),
prefix caches, or a sparse-attention scheme that reads a small fraction of the cached tokens.

## 3. Edge: a Jetson cluster, where link latency dominates

Tensor parallelism over 10 GbE between Jetson AGX Orin boards (`jetson-agx-orin-cluster`): each decode
step all-reduces a few kilobytes per layer, so the per-message latency, not the bandwidth, sets the
communication time.
""")

code("""
cluster = genmodel.load_system("jetson-agx-orin-cluster")

no_latency = dataclasses.replace(
    cluster, fabric=tuple(dataclasses.replace(t, latency_s=0.0) for t in cluster.fabric))
edge = []
for tp in (1, 2, 4):
    est = genmodel.estimate("llama-3.1-8b", cluster, tp=tp, batch=1, input_tokens=512, output_tokens=128,
                            weight_dtype="int4", act_dtype="fp16", kv_dtype="fp16")
    message = 4096 * 2  # one token's hidden state in fp16
    total = float(genmodel.allreduce_time(message, tp, cluster)) if tp > 1 else 0.0
    beta = float(genmodel.allreduce_time(message, tp, no_latency)) if tp > 1 else 0.0
    edge.append({"tp": tp, "TPOT ms": est.tpot_s * 1e3, "all-reduce us": total * 1e6,
                 "of which bandwidth us": beta * 1e6})
edge = pd.DataFrame(edge)
assert (edge["of which bandwidth us"] < 0.5 * edge["all-reduce us"]).iloc[1:].all()
edge
""")


if __name__ == "__main__":
    STUDY.write()
