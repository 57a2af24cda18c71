"""Build notebooks/jetson_edge.ipynb from the cells below and execute it in place.

Usage: .venv/bin/python tools/make_jetson_edge_notebook.py
(tests/test_notebooks.py executes the notebook again and checks that its cells are these).
"""

from __future__ import annotations

from _notebook import Study

STUDY = Study("jetson_edge.ipynb")
NOTEBOOK = STUDY.path
md, code, build = STUDY.md, STUDY.code, STUDY.build


md("""
# LLMs at the edge: Jetson Orin modules and a Jetson cluster

**Question.** Which small LLMs fit the unified memory of NVIDIA's Jetson Orin modules (AGX Orin 64GB,
Orin Nano 8GB and the Orin Nano Super 8GB), at which precision; how many tokens/s and joules per token
do they give a single user, in each power mode; and can a cluster of AGX Orin developer kits on
10 GbE serve a 70B model?

**Method.** `genmodel.estimate` at batch 1 (one user, the edge case), `genmodel.max_concurrency` for
the users whose KV cache fits next to the weights, power modes as device ids (the GPU clock of a mode
scales the peak FLOP/s, its memory clock the bandwidth, its power budget the energy), the
`jetson-agx-orin-cluster` system for tensor and pipeline parallelism over Ethernet, and
`genmodel.validate` for the published Jetson measurements in `validation/` (Jetson AI Lab MLC
benchmarks: Llama-3.2-1B on AGX Orin, 163.9 tokens/s; Llama-3.2-3B on Orin Nano, 27.7 tokens/s).

**Assumptions.** Weights in int4 (with fp16 activations, as MLC's q4f16 runs them), int8 or fp16;
fp16 KV cache; the OS keeps the reserve given in each device file (unified memory is shared with the
CPU). Energy per token is at the mode's power budget (TDP), an upper bound. The Jetson efficiencies
are the shared defaults of `hardware_db/` (not fitted to Jetson). Everything computed is a model
prediction.
""")

code("""
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

import genmodel

pio.renderers.default = "plotly_mimetype"  # figure JSON only: small notebooks, rendered by Jupyter
pd.set_option("display.precision", 3)
GB, GIB = 1e9, 2**30
MODULES = ["jetson-agx-orin-64gb", "jetson-orin-nano-super-8gb", "jetson-orin-nano-8gb"]
MODES = [m for base in MODULES for m in [base, *sorted(
    (p for p in genmodel.list_ids("power mode") if p.startswith(base + "-")),
    key=lambda p: -genmodel.load_device(p).tdp_w)]]
MODELS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b"]
DTYPES = {"int4": "fp16", "int8": "int8", "fp16": "fp16"}  # weights: activations
WORK = {"input_tokens": 512, "output_tokens": 128, "kv_dtype": "fp16"}

rows = []
for mode in MODES:
    d = genmodel.load_device(mode)
    rows.append({"device (power mode)": mode, "power W": d.tdp_w, "fp16 TFLOP/s": d.peak_for("fp16") / 1e12,
                 "int8 TOP/s": d.peak_for("int8") / 1e12, "LPDDR5 GB/s": d.memory_bandwidth_bytes_per_s / GB,
                 "memory GiB": d.memory_capacity_bytes / GIB, "OS reserve GiB": d.os_reserve_bytes / GIB})
pd.DataFrame(rows).set_index("device (power mode)")
""")

md("""
## 1. What fits the unified memory

For each module (in its default mode), model and weight precision: the weights per device and how many
users with a 4K-token context fit next to them (0: not even one).
""")

code("""
rows = []
for device in MODULES:
    for model in MODELS:
        for w, a in DTYPES.items():
            users = genmodel.max_concurrency(model, device, context_tokens=4096, output_tokens=128,
                                             weight_dtype=w, act_dtype=a, kv_dtype="fp16")
            weights = genmodel.weight_bytes_per_device(
                genmodel.load_model(model), genmodel.default_precision(w, a, "fp16"), genmodel.Plan())
            rows.append({"device": device, "model": model, "weights": w, "weights GB": weights / GB,
                         "users at 4K": users})
fit = pd.DataFrame(rows)
heat = fit.pivot(index=["model", "weights"], columns="device", values="users at 4K")[MODULES]
fig = px.imshow(heat.values, x=heat.columns, y=[f"{m} {w}" for m, w in heat.index], text_auto=True,
                color_continuous_scale="Blues", aspect="auto",
                title="Users with a 4K-token context that fit (0: the model does not fit)")
fig.show()

for (model, device), grp in fit.groupby(["model", "device"]):
    users = grp.set_index("weights")["users at 4K"]
    # narrower weights leave more room for KV cache: never fewer users
    assert users["int4"] >= users["int8"] >= users["fp16"], (model, device)
# every model fits the 64 GB AGX Orin at every precision; on the 8 GB modules an 8B model needs int4
assert (fit[fit.device == "jetson-agx-orin-64gb"]["users at 4K"] > 0).all()
nano = fit[fit.device == "jetson-orin-nano-8gb"].set_index(["model", "weights"])["users at 4K"]
assert nano["llama-3.1-8b", "int4"] > 0 and nano["llama-3.1-8b", "int8"] == 0
heat
""")

md("""
## 2. Tokens/s and energy per token for one user

Batch-1 decode streams every weight once per token, so it is bound by the LPDDR5 bandwidth: the
tokens/s can never exceed bandwidth / weight bytes. Each point: one model at one precision on one
module in its default (highest) power mode; 512-token prompt, 128 output tokens.
""")

code("""
rows = []
for device in MODULES:
    bandwidth = genmodel.load_device(device).memory_bandwidth_bytes_per_s
    for model in MODELS:
        for w, a in DTYPES.items():
            try:
                est = genmodel.estimate(model, device, batch=1, weight_dtype=w, act_dtype=a, **WORK)
            except genmodel.InfeasibleError:
                continue  # does not fit (section 1)
            rate = est.decode_tokens_per_s_per_device
            assert est.decode.bound == "memory"
            assert rate * est.memory.weights_bytes_per_device <= bandwidth  # the roofline ceiling
            rows.append({"device": device, "model": model, "weights": w, "tok/s": rate,
                         "J/token": est.joules_per_output_token, "TTFT s": est.ttft_s,
                         "share of ceiling": rate * est.memory.weights_bytes_per_device / bandwidth})
speed = pd.DataFrame(rows)
fig = px.scatter(speed, x="tok/s", y="J/token", color="device", symbol="weights", hover_data=["model"],
                 log_x=True, log_y=True, template="plotly_white",
                 title="Batch-1 decode on Jetson Orin: speed vs energy per token (at TDP)")
fig.show()

by = speed.set_index(["model", "weights", "device"])["tok/s"]
for (model, w), grp in speed.groupby(["model", "weights"]):
    rates = grp.set_index("device")["tok/s"]
    # the module with more memory bandwidth is faster for the same model and precision
    order = sorted(rates.index, key=lambda d: -genmodel.load_device(d).memory_bandwidth_bytes_per_s)
    assert list(rates[order]) == sorted(rates, reverse=True), (model, w)
for (model, device), grp in speed.groupby(["model", "device"]):
    rates = grp.set_index("weights")["tok/s"]
    # fewer bytes per weight, more tokens/s: int4 close to twice int8
    assert all(rates.get(a, 0) >= rates.get(b, 0) for a, b in (("int4", "int8"), ("int8", "fp16")))
    if "int8" in rates:
        assert rates["int4"] > 1.5 * rates["int8"], (model, device)
# the Orin Nano Super is the Nano with more memory bandwidth: its decode is faster by about that ratio
slow, fast = (genmodel.load_device(d) for d in ("jetson-orin-nano-8gb", "jetson-orin-nano-super-8gb"))
bw_ratio = fast.memory_bandwidth_bytes_per_s / slow.memory_bandwidth_bytes_per_s
speedup = by.xs("jetson-orin-nano-super-8gb", level="device") / by.xs("jetson-orin-nano-8gb", level="device")
assert ((speedup / bw_ratio - 1).abs() < 0.1).all()
speed.pivot_table(index=["model", "weights"], columns="device", values=["tok/s", "J/token"]).round(2)
""")

md("""
## 3. Power modes

The same model (Llama-3.2-3B, int4) in every power mode of each module. A mode that keeps the memory
clock keeps the decode speed (memory-bound) while its lower power budget cuts the energy per token;
the prefill is compute-bound and slows with the GPU clock.
""")

code("""
rows = []
for mode in MODES:
    d = genmodel.load_device(mode)
    est = genmodel.estimate("llama-3.2-3b", mode, batch=1, weight_dtype="int4", act_dtype="fp16", **WORK)
    module = next(m for m in MODULES if mode.startswith(m))
    rows.append({"module": module, "mode": mode, "power W": d.tdp_w,
                 "LPDDR5 GB/s": d.memory_bandwidth_bytes_per_s / GB,
                 "fp16 TFLOP/s": d.peak_for("fp16") / 1e12,
                 "tok/s": est.decode_tokens_per_s_per_device, "TTFT s": est.ttft_s,
                 "J/token": est.joules_per_output_token, "decode bound": est.decode.bound})
modes = pd.DataFrame(rows)
fig = go.Figure()
for module, grp in modes.groupby("module"):
    fig.add_trace(go.Scatter(x=grp["power W"], y=grp["tok/s"], mode="lines+markers+text", name=module,
                             text=[f"{j:.2f} J/tok" for j in grp["J/token"]], textposition="top center"))
fig.update_layout(template="plotly_white", xaxis_title="power mode (W)", yaxis_title="decode tokens/s",
                  title="Llama-3.2-3B int4, one user: decode speed and energy per token by power mode")
fig.show()

for module, grp in modes.groupby("module"):
    grp = grp.sort_values("fp16 TFLOP/s")
    # prefill is compute-bound: a slower GPU clock never shortens it
    assert grp["TTFT s"].is_monotonic_decreasing
    # the most energy-efficient mode is not the fastest one
    assert grp.loc[grp["J/token"].idxmin(), "power W"] < grp["power W"].max()
agx = modes[modes.module == "jetson-agx-orin-64gb"].set_index("power W")
# AGX Orin at 50 W keeps MAXN's memory clock: the same decode speed for less energy
assert agx.loc[50, "LPDDR5 GB/s"] == agx.loc[60, "LPDDR5 GB/s"]
assert agx.loc[50, "tok/s"] >= 0.99 * agx.loc[60, "tok/s"] and agx.loc[50, "J/token"] < agx.loc[60, "J/token"]
modes.drop(columns="module").set_index("mode")
""")

md("""
## 4. Against the published Jetson measurements

The two Jetson cases of `validation/validation_public.csv` (MLC LLM 0.1.2, int4, 16-token prompt, 128
output tokens), predicted by `genmodel.validate` with the same code path as everything above.
""")

code("""
report = genmodel.validate()
edge = pd.DataFrame([{"case": c.id, "measured tok/s": c.measured, "predicted tok/s": c.predicted,
                      "error": c.predicted / c.measured - 1} for c in report.cases if c.category == "edge"])
cases = {r["id"]: r for r in genmodel.read_cases(genmodel.public_cases_path())}
edge["setup"] = [f"{cases[i]['model']} {cases[i]['weight_dtype']} on {cases[i]['hardware']}"
                 for i in edge.case]
assert len(edge) >= 2 and (edge["error"].abs() < 0.15).all()
edge
""")

md("""
## 5. A 70B model on a cluster of AGX Orins

Llama-3.1-70B on the `jetson-agx-orin-cluster` (AGX Orin 64GB developer kits, 10 GbE through one
switch), one user. Tensor parallelism splits every layer and all-reduces each token's hidden state
twice per layer over Ethernet; pipeline parallelism passes one activation per stage boundary but
keeps one user's decode sequential (it raises throughput with several users in flight, not speed).
""")

code("""
cluster = genmodel.load_system("jetson-agx-orin-cluster")
rows = []
for w, a in DTYPES.items():
    for tp in (1, 2, 4, 8):
        try:
            est = genmodel.estimate("llama-3.1-70b", cluster, tp=tp, batch=1, weight_dtype=w, act_dtype=a,
                                    **WORK)
        except genmodel.InfeasibleError:
            rows.append({"weights": w, "boards": tp, "plan": f"tp={tp}", "fits": False})
            continue
        rows.append({"weights": w, "boards": tp, "plan": f"tp={tp}", "fits": est.memory.fits,
                     "TPOT ms": est.tpot_s * 1e3, "tok/s (cluster)": est.output_tokens_per_s,
                     "TTFT s": est.ttft_s, "comm share of TPOT": est.decode.comm_s / est.decode.time_s,
                     "J/token (cluster)": est.joules_per_output_token})
for pp in (2, 4):  # one user per pipeline stage in flight
    est = genmodel.estimate("llama-3.1-70b", cluster, pp=pp, batch=pp, overlap_microbatches=pp,
                            weight_dtype="int4", act_dtype="fp16", **WORK)
    rows.append({"weights": "int4", "boards": pp, "plan": f"pp={pp}, {pp} users", "fits": est.memory.fits,
                 "TPOT ms": est.tpot_s * 1e3, "tok/s (cluster)": est.output_tokens_per_s,
                 "TTFT s": est.ttft_s,
                 "comm share of TPOT": est.decode.comm_s / est.decode.time_s,
                 "J/token (cluster)": est.joules_per_output_token})
edge70 = pd.DataFrame(rows)

tp_rows = edge70[edge70.plan.str.startswith("tp") & edge70.fits]
fig = px.line(tp_rows, x="boards", y="TPOT ms", color="weights", markers=True, log_x=True,
              hover_data=["comm share of TPOT"], template="plotly_white",
              title="Llama-3.1-70B, one user, on AGX Orin boards over 10 GbE (tensor parallel)")
fig.show()

fits = edge70.set_index(["weights", "boards", "plan"])["fits"]
# int4 (about 35 GB of weights) fits one 64 GB board; fp16 (about 141 GB) needs four
assert fits["int4", 1, "tp=1"] and not fits["fp16", 2, "tp=2"] and fits["fp16", 4, "tp=4"]
int4 = tp_rows[tp_rows.weights == "int4"].set_index("boards")
# each doubling of boards adds all-reduces: the communication share only grows ...
assert int4["comm share of TPOT"].is_monotonic_increasing
# ... until it outweighs the bandwidth gained: eight boards are slower than four for one user
assert int4["TPOT ms"].idxmin() in (2, 4) and int4.loc[8, "TPOT ms"] > int4.loc[4, "TPOT ms"]
# the prefill all-reduces whole prompts over 10 GbE: every board added makes it slower
assert int4["TTFT s"].is_monotonic_increasing
pp4 = edge70[edge70.plan == "pp=4, 4 users"].iloc[0]
assert pp4["tok/s (cluster)"] > int4.loc[4, "tok/s (cluster)"]  # pipelining several users: more throughput
edge70
""")

md("""
**Reading.** On Jetson the unified memory decides what runs and the LPDDR5 bandwidth how fast: one
user's decode is memory-bound on every module, so int4 weights are both what lets an 8B model into the
8 GB Orin Nano and what makes every model nearly twice as fast as in int8. The Orin Nano Super's MAXN
mode raises the Nano's memory bandwidth from 68 to 102 GB/s, and its decode speeds up by about that
ratio. Power modes that keep the memory clock keep the decode speed and cut the energy per token;
prefill, compute-bound, pays for every lower GPU clock. The two published MLC measurements are within
a few percent. A 70B model in int4 fits one AGX Orin 64GB; spreading it over boards on 10 GbE speeds a
single user's decode up to four boards, after which the latency of the per-layer all-reduces outweighs
the bandwidth gained (and every board added slows the prefill, which all-reduces whole prompts over
Ethernet); pipelining over the boards instead serves several users at one board's speed
each.
""")


if __name__ == "__main__":
    STUDY.write()
