"""Build notebooks/platform_requirements.ipynb from the cells below and execute it in place.

Usage: .venv/bin/python tools/make_platform_requirements_notebook.py
(tests/test_notebooks.py executes the notebook again and checks that its cells are these).
"""

from __future__ import annotations

from _notebook import Study

STUDY = Study("platform_requirements.ipynb")
NOTEBOOK = STUDY.path
md, code, build = STUDY.md, STUDY.code, STUDY.build


md("""
# Platform requirements for today's models and a 1T-parameter MoE

**Question.** What FLOP/s, memory bandwidth, memory capacity and scale-up (NVLink-class) bandwidth must
each device of an 8-device node have so that Llama-3.1-70B, Llama-3.1-405B, DeepSeek-V3 and a
1-trillion-parameter MoE (Moonshot's Kimi K2) meet interactive latency targets? Which resource binds,
and how does the answer move with the batch and the target?

**Method.** The inverse problem of GenZ (Bambhaniya et al., *Demystifying Platform Requirements for
Diverse LLM Inference Use Cases*, arXiv:2406.01698): `genmodel.requirements` varies one resource at a
time (the others kept at the platform's figures), solves for the least amount that meets the target on
the SymPy form of the same step-time formulas, and checks the answer on `genmodel.estimate`.
`System.scaled` gives the sensitivity curves. The reference platform is a DGX H100 node as it is. Two
of the models do not fit its memory at all; for a deployment that does not fit, `requirements` first
solves the least memory capacity at which it fits and then every other figure on the node with that
much memory (`Requirements.memory_capacity_assumed_factor`). Each answer is therefore "an H100-class
device, except for this one figure (and, for a model that does not fit, its memory)".

**Workload.** The `chat` scenario of `workloads/scenarios/` (median prompt 1,020 and output 129 tokens
of the Azure conversation trace in Splitwise; MLPerf Inference v5.0 interactive targets, TTFT ≤ 450 ms
and TPOT ≤ 40 ms), plus the `code` scenario's TTFT target (1,500-token prompt, TTFT ≤ 125 ms) for
the prefill side. TPOT is a decode step of 64 concurrent sequences (8 per device); TTFT is the
prefill of one request. fp8 weights and activations, bf16 KV cache. Dense models run tensor-parallel
over the 8 devices (tp=8); the MoE models run attention data-parallel with 8-way expert parallelism
(dp=8, ep=8), as DeepSeek deploys them.

Every number below is a model prediction (the efficiencies are those of `hardware_db/`, fitted on the
public validation cases), not a measurement. The cells `assert` the conclusions, so the test suite
fails if one stops holding.
""")

code("""
import dataclasses
import math

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

import genmodel

pio.renderers.default = "plotly_mimetype"  # figure JSON only: small notebooks, rendered by Jupyter
pd.set_option("display.precision", 3)
pd.set_option("display.max_colwidth", 300)
GB, TB, PFLOPS = 1e9, 1e12, 1e15
""")

md("""
## The 1T model: Kimi K2 from its published configuration

Kimi K2 uses DeepSeek-V3's architecture (MLA attention, routed + shared experts) at a larger scale.
The figures below are from Moonshot's model summary (github.com/MoonshotAI/Kimi-K2, README at commit
11062d1: 61 layers of which 1 dense, hidden size 7168, 64 attention heads with MLA, 384 experts with 8
selected per token plus 1 shared expert, expert hidden size 2048, vocabulary 160K, context 128K, 1T
total and 32B activated parameters) and from the `config.json` of the Kimi K2 checkpoints on
huggingface.co/moonshotai as quoted in public code (a config summary of Kimi-K2-Instruct-0905 and the
`text_config` of later K2 releases, which keep the same backbone): `n_routed_experts` 384,
`num_experts_per_tok` 8, `n_shared_experts` 1, `first_k_dense_replace` 1, `num_attention_heads` and
`num_key_value_heads` 64, `vocab_size` 163840, `kv_lora_rank` 512, `q_lora_rank` 1536,
`qk_nope_head_dim` 128, `qk_rope_head_dim` 64, `v_head_dim` 128, `moe_intermediate_size` 2048,
`intermediate_size` 18432, `num_nextn_predict_layers` 0. Every other field equals DeepSeek-V3's, so
the spec is DeepSeek-V3's `ModelSpec` with those fields replaced.
""")

code("""
deepseek = genmodel.load_model("deepseek-v3")
kimi_k2 = dataclasses.replace(
    deepseek,
    id="kimi-k2",
    name="Kimi K2 (1T MoE, MLA)",
    attention=dataclasses.replace(deepseek.attention, num_attention_heads=64),
    vocab_size=163_840,
    max_position_embeddings=131_072,
    num_mtp_layers=0,
    moe=dataclasses.replace(deepseek.moe, num_experts=384, num_dense_layers=1),
    source="github.com/MoonshotAI/Kimi-K2 README @11062d1; Kimi K2 config.json (huggingface.co/moonshotai)",
)
MODELS = {
    "llama-3.1-70b": (genmodel.load_model("llama-3.1-70b"), {"tp": 8}),
    "llama-3.1-405b": (genmodel.load_model("llama-3.1-405b"), {"tp": 8}),
    "deepseek-v3": (deepseek, {"dp": 8, "ep": 8}),
    "kimi-k2": (kimi_k2, {"dp": 8, "ep": 8}),
}
fp8 = genmodel.Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")


def active_params(model):
    p = genmodel.count_params(model)
    if model.moe is None:
        return p["total"] - p["embedding"]
    routed_share = model.moe.num_experts_per_tok / model.moe.num_experts
    return p["total"] - p["embedding"] - p["experts"] * (1 - routed_share)


sizes = pd.DataFrame(
    {
        "model": name,
        "total params (B)": genmodel.count_params(m)["total"] / 1e9,
        "active params per token (B)": active_params(m) / 1e9,
        "KV cache per token (kB, bf16)": genmodel.kv_bytes_per_token(m, fp8) / 1e3,
        "plan": ", ".join(f"{k}={v}" for k, v in plan.items()),
    }
    for name, (m, plan) in MODELS.items()
)
k2_total = genmodel.count_params(kimi_k2)["total"]
# the spec reproduces Moonshot's summary: about 1T parameters in all, about 32B active per token
assert 1.0e12 < k2_total < 1.1e12 and 30e9 < active_params(kimi_k2) < 34e9
sizes
""")

md("""
## 1. What each device needs for the chat targets

For each model, three inverse problems on the reference node: the decode step of 64 sequences within
TPOT ≤ 40 ms, the prefill of one 1,020-token chat prompt within TTFT ≤ 450 ms, and the prefill of one
1,500-token code prompt within TTFT ≤ 125 ms. Memory capacity is solved once, for the decode batch
(weights, the 64 sequences' KV cache and activations). A resource marked *unreachable* cannot meet the
target alone at any amount: the other terms of the step (named in the reason) are already over it.
DeepSeek-V3 and Kimi K2 do not fit eight H100s even for one sequence, so their latency requirements
are solved with the memory capacity each needs (printed above the table).
""")

code("""
reference = genmodel.load_system("dgx-h100")
h100 = genmodel.load_device("h100-sxm")
chat, code_sc = genmodel.load_scenario("chat"), genmodel.load_scenario("code")
BATCH = 64
LATENCY = ("flops", "memory_bandwidth", "scale_up_bandwidth")
PROBLEMS = {  # name: (scenario, batch, target)
    "decode (TPOT)": (chat, BATCH, {"tpot_slo_s": chat.tpot_slo_s}),
    "chat prefill (TTFT)": (chat, 1, {"ttft_slo_s": chat.ttft_slo_s}),
    "code prefill (TTFT)": (code_sc, 1, {"ttft_slo_s": code_sc.ttft_slo_s}),
}
results, asked = {}, {}
for name, (model, plan) in MODELS.items():
    for problem, (sc, batch, target) in PROBLEMS.items():
        resources = (*LATENCY, "memory_capacity") if problem.startswith("decode") else LATENCY
        asked[problem] = resources  # a model that does not fit also gets its capacity for that batch
        results[name, problem] = genmodel.requirements(
            model, reference, batch=batch, input_tokens=sc.input_tokens, output_tokens=sc.output_tokens,
            weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", resources=resources, **target, **plan,
        )

UNITS = {"flops": ("PFLOP/s", PFLOPS), "memory_bandwidth": ("TB/s", TB),
         "memory_capacity": ("GB", GB), "scale_up_bandwidth": ("GB/s", GB)}
rows = []
for (name, problem), req in results.items():
    for r in (r for r in req.resources if r.resource in asked[problem]):
        unit, scale = UNITS[r.resource]
        rows.append({"model": name, "problem": problem, "resource": r.resource,
                     "required": r.required_value / scale, "unit": unit,
                     "x H100": r.factor, "status": r.status, "reason": r.reason or ""})
needs = pd.DataFrame(rows)
needs["column"] = needs.problem + ": " + needs.resource.str.replace("_", " ") + " (" + needs.unit + ")"
table = needs.pivot(index="model", columns="column", values="required").reindex(index=list(MODELS))
table = table[needs.column.unique()].replace(math.inf, float("nan"))
decode = {name: results[name, "decode (TPOT)"] for name in MODELS}
# 671B and 1T parameters in fp8 do not fit 8 x 80 GiB: solved with the memory each needs at 64 sequences
assumed = {name: req.memory_capacity_assumed_factor for name, req in decode.items()}
assert [n for n, f in assumed.items() if f > 1] == ["deepseek-v3", "kimi-k2"]
for name, req in decode.items():
    assert req.estimate.memory.fits and req.to_dict()["fits"] == (assumed[name] == 1)
print("memory capacity assumed (x H100's):", {n: f"{f:.2f}" for n, f in assumed.items()})
table.T  # NaN: this resource alone cannot meet the target (the reasons are listed below)
""")

md("""
What binds where. In decode every model is memory-bound at 8 sequences per device, and memory
bandwidth is the only lever that can meet TPOT for the MoE models: with unlimited FLOP/s or link
bandwidth the step still reads the weights of every expert the batch touches. The prefill of one
prompt is the opposite for the dense models: FLOP/s binds. For the MoE models even a single 1K-token
prompt touches almost every expert of every layer, so it reads the whole model and bandwidth matters
for TTFT too.
""")

code("""
for name, req in decode.items():
    est = req.estimate
    assert est.decode.bound == "memory", name
    bw = req.resource("memory_bandwidth")
    others = [req.resource(r).factor for r in ("flops", "scale_up_bandwidth")]
    # HBM bandwidth is reachable and is the resource needed in the largest proportion of the H100's
    assert bw.status in ("met", "binding") and all(bw.factor > f for f in others if math.isfinite(f)), name
for name, (model, plan) in MODELS.items():
    prefill = results[name, "chat prefill (TTFT)"]
    if model.moe is None:
        assert prefill.estimate.prefill.bound == "compute", name
    else:  # one 1,020-token prompt touches (almost) every routed expert of every layer
        touched = genmodel.expected_experts_touched(
            model.moe.num_experts, model.moe.num_experts_per_tok, chat.input_tokens)
        assert touched > 0.99 * model.moe.num_experts, name
        # ... so bandwidth alone cannot bring the 125 ms code-completion TTFT within reach
        code_bw = results[name, "code prefill (TTFT)"].resource("memory_bandwidth")
        assert code_bw.status == "unreachable", name
    # an H100's FLOP/s meets the chat TTFT for every model; the code TTFT only for the 70B model
    assert prefill.resource("flops").factor < 1, name
    code_flops = results[name, "code prefill (TTFT)"].resource("flops").factor
    assert (code_flops < 1) == (name == "llama-3.1-70b"), name
bw_need = {name: req.resource("memory_bandwidth").required_value / TB for name, req in decode.items()}
print("HBM bandwidth for TPOT 40 ms:", {name: f"{v:.2f} TB/s" for name, v in bw_need.items()})
needs[needs.status == "unreachable"][["model", "problem", "resource", "reason"]]
""")

md("""
The same requirements as multiples of the H100's figures (log scale; above 1 the H100 falls short).
""")

code("""
fig = go.Figure()
bars = [("decode (TPOT)", "memory_bandwidth", "HBM bandwidth for TPOT 40 ms"),
        ("decode (TPOT)", "memory_capacity", "memory capacity, 64 sequences"),
        ("chat prefill (TTFT)", "flops", "FLOP/s for chat TTFT 450 ms"),
        ("code prefill (TTFT)", "flops", "FLOP/s for code TTFT 125 ms"),
        ("code prefill (TTFT)", "memory_bandwidth", "HBM bandwidth for code TTFT 125 ms")]
for problem, resource, label in bars:
    sel = needs[(needs.problem == problem) & (needs.resource == resource)]
    fig.add_trace(go.Bar(name=label, x=sel.model, y=sel["x H100"].replace(math.inf, float("nan"))))
fig.add_hline(y=1, line_dash="dot", annotation_text="H100 figure")
fig.update_layout(barmode="group", yaxis_type="log", template="plotly_white",
                  yaxis_title="required / H100 (missing bar: unreachable alone)",
                  title="Per-device requirements on an 8-device node (fp8)")
fig.show()
""")

md("""
Capacity grows with the total parameter count (the 64 sequences' KV cache adds little), so the
ordering of the models by memory needed per device is their ordering by size. Checked on the real
8-device platforms: the model fits exactly where the device holds the required capacity.
""")

code("""
capacity = {name: req.resource("memory_capacity").required_value for name, req in decode.items()}
by_size = sorted(MODELS, key=lambda n: genmodel.count_params(MODELS[n][0])["total"])
assert sorted(MODELS, key=capacity.__getitem__) == by_size

PLATFORMS = ("dgx-h100", "dgx-h200", "dgx-b200", "mi300x-platform")
rows = []
for system_id in PLATFORMS:
    system = genmodel.load_system(system_id)
    for name, (model, plan) in MODELS.items():
        try:
            est = genmodel.estimate(model, system, batch=BATCH, input_tokens=chat.input_tokens,
                                    output_tokens=chat.output_tokens, weight_dtype="fp8", **plan)
            fits = est.memory.fits
        except genmodel.InfeasibleError:  # not even one sequence fits
            est, fits = None, False
        assert fits == (system.device.memory_capacity_bytes >= capacity[name]), (system_id, name)
        rows.append({"platform": system_id, "model": name, "fits": fits,
                     "TPOT ms": est.tpot_s * 1e3 if fits else float("nan"),
                     "meets TPOT 40 ms": fits and est.tpot_s <= chat.tpot_slo_s,
                     "device GB": system.device.memory_capacity_bytes / GB,
                     "device TB/s": system.device.memory_bandwidth_bytes_per_s / TB})
platforms = pd.DataFrame(rows)
platforms.pivot_table(index="model", columns="platform", values=["fits", "TPOT ms"], aggfunc="first")
""")

md("""
## 2. Sensitivity: how far does each resource go?

TPOT (decode, 64 sequences) against the HBM bandwidth, and the chat TTFT against the FLOP/s, each
scaled alone from a quarter to eight times the H100's figure (`System.scaled`), on the node with the
memory each model needs at 64 sequences (the H100's own for the Llama models). The curves flatten
where the other terms take over: collectives and the fixed per-step overhead in decode, the
memory-bound operators and collectives in prefill.
""")

code("""
FACTORS = [0.25, 0.35, 0.5, 0.7, 1, 1.4, 2, 2.8, 4, 5.6, 8]
rows = []
for name, (model, plan) in MODELS.items():
    for f in FACTORS:
        dec = genmodel.estimate(model, reference.scaled(memory_capacity=assumed[name], memory_bandwidth=f),
                                batch=BATCH, input_tokens=chat.input_tokens, output_tokens=chat.output_tokens,
                                weight_dtype="fp8", **plan)
        pre = genmodel.estimate(model, reference.scaled(memory_capacity=assumed[name], flops=f), batch=1,
                                input_tokens=chat.input_tokens, output_tokens=chat.output_tokens,
                                weight_dtype="fp8", **plan)
        rows.append({"model": name, "factor": f, "TPOT ms": dec.tpot_s * 1e3, "TTFT ms": pre.ttft_s * 1e3})
sens = pd.DataFrame(rows)

fig = make_subplots(rows=1, cols=2, subplot_titles=("decode: TPOT vs HBM bandwidth",
                                                    "prefill: TTFT vs FLOP/s"))
for name in MODELS:
    s = sens[sens.model == name]
    fig.add_trace(go.Scatter(x=s.factor * h100.memory_bandwidth_bytes_per_s / TB, y=s["TPOT ms"],
                             name=name, legendgroup=name), row=1, col=1)
    fig.add_trace(go.Scatter(x=s.factor * h100.peak_for("fp8") / PFLOPS, y=s["TTFT ms"],
                             name=name, legendgroup=name, showlegend=False), row=1, col=2)
fig.add_hline(y=chat.tpot_slo_s * 1e3, line_dash="dot", row=1, col=1, annotation_text="TPOT target")
fig.add_hline(y=chat.ttft_slo_s * 1e3, line_dash="dot", row=1, col=2, annotation_text="TTFT target")
fig.update_xaxes(type="log", title_text="HBM TB/s per device", row=1, col=1)
fig.update_xaxes(type="log", title_text="dense fp8 PFLOP/s per device", row=1, col=2)
fig.update_yaxes(type="log", title_text="ms")
fig.update_layout(template="plotly_white", title="Sensitivity on the reference node (others at H100 figures)")
fig.show()

for name in MODELS:
    s = sens[sens.model == name]
    # more of a resource never slows anything down, and its returns diminish
    assert s["TPOT ms"].diff().dropna().le(1e-9).all() and s["TTFT ms"].diff().dropna().le(1e-9).all()
    tpot = s.set_index("factor")["TPOT ms"]
    assert tpot[1] - tpot[2] > tpot[4] - tpot[8], name
    # the curve crosses the TPOT target where the requirement says
    need = decode[name].resource("memory_bandwidth").factor
    assert (tpot[FACTORS[0]] > chat.tpot_slo_s * 1e3) == (need > FACTORS[0]), name
""")

md("""
## 3. The 1T model: bandwidth against batch and target

More sequences per step read more of the KV cache and touch more experts, but the weights are read
once per step for all of them: per device, the HBM bandwidth needed grows much more slowly than the
tokens/s it buys. Below, Kimi K2's decode step over the HBM bandwidth for 8 to 512 sequences on the
node (1 to 64 per device), with the 40 ms chat target and a tighter 20 ms target, on the node with
the memory 512 sequences need (capacity changes no latency here: there is no offload tier).
""")

code("""
k2_plan = MODELS["kimi-k2"][1]
BATCHES = [8, 32, 64, 128, 256, 512]
k2_memory = genmodel.requirements(kimi_k2, reference, batch=max(BATCHES), input_tokens=chat.input_tokens,
                                  output_tokens=chat.output_tokens, weight_dtype="fp8",
                                  resources=("memory_capacity",), **k2_plan).resource("memory_capacity")
BW_FACTORS = [0.25 * 1.25**i for i in range(25)]  # 0.25x .. 53x the H100
rows = []
for batch in BATCHES:
    for f in BW_FACTORS:
        node = reference.scaled(memory_capacity=k2_memory.factor, memory_bandwidth=f)
        est = genmodel.estimate(kimi_k2, node, batch=batch,
                                input_tokens=chat.input_tokens, output_tokens=chat.output_tokens,
                                weight_dtype="fp8", **k2_plan)
        assert est.memory.fits  # the node holds 512 sequences, so every batch of the grid
        rows.append({"batch": batch, "TB/s": f * h100.memory_bandwidth_bytes_per_s / TB,
                     "TPOT ms": est.tpot_s * 1e3, "tok/s per device": est.decode_tokens_per_s_per_device})
k2_grid = pd.DataFrame(rows)

fig = go.Figure()
for batch in BATCHES:
    s = k2_grid[k2_grid.batch == batch]
    fig.add_trace(go.Scatter(x=s["TB/s"], y=s["TPOT ms"], name=f"{batch} sequences ({batch // 8}/device)"))
for target in (40, 20):
    fig.add_hline(y=target, line_dash="dot", annotation_text=f"TPOT {target} ms")
fig.add_vline(x=h100.memory_bandwidth_bytes_per_s / TB, line_dash="dash", annotation_text="H100")
fig.update_layout(xaxis_type="log", yaxis_type="log", template="plotly_white",
                  xaxis_title="HBM TB/s per device", yaxis_title="TPOT ms",
                  title="Kimi K2 decode on 8 devices (dp=8, ep=8, fp8): TPOT vs HBM bandwidth")
fig.show()

for batch in BATCHES:  # more bandwidth never hurts; at a given bandwidth more sequences never speed a step
    s = k2_grid[k2_grid.batch == batch]
    assert s["TPOT ms"].diff().dropna().le(1e-9).all()
by_bw = k2_grid.pivot(index="TB/s", columns="batch", values="TPOT ms")
assert (by_bw.diff(axis=1).iloc[:, 1:] >= -1e-9).all().all()
""")

md("""
The exact requirements at each batch (`genmodel.requirements`, HBM bandwidth only), and the decode
tokens/s per device they buy. At 20 ms the largest batch needs several H100s' worth of bandwidth per
device: the step's other terms (expert GEMMs of a few tokens each, padded to the small-M kernels' token
tile, plus the all-to-all and the fixed overhead) leave little of the 20 ms for reading the weights and
the KV cache. A batch marked *unreachable* could not meet the target with any bandwidth.
""")

code("""
rows = []
for target in (chat.tpot_slo_s, 0.020):
    for batch in (8, BATCH, 512):
        if (target, batch) == (chat.tpot_slo_s, BATCH):
            req = decode["kimi-k2"]  # solved in section 1
        else:
            req = genmodel.requirements(kimi_k2, reference, batch=batch, input_tokens=chat.input_tokens,
                                        output_tokens=chat.output_tokens, weight_dtype="fp8",
                                        tpot_slo_s=target, resources=("memory_bandwidth",), **k2_plan)
        r = req.resource("memory_bandwidth")
        rate = batch / target / 8 if r.status != "unreachable" else float("nan")
        rows.append({"TPOT target ms": target * 1e3, "batch": batch, "HBM TB/s needed": r.required_value / TB,
                     "status": r.status, "tok/s per device at the target": rate, "reason": r.reason or ""})
k2_needs = pd.DataFrame(rows)
for target, grp in k2_needs.groupby("TPOT target ms"):
    finite = grp[grp.status != "unreachable"]
    # more sequences need more bandwidth, but less than in proportion: tokens/s per TB/s rises
    assert finite["HBM TB/s needed"].is_monotonic_increasing
    assert (finite["tok/s per device at the target"] / finite["HBM TB/s needed"]).is_monotonic_increasing
    # once unreachable, unreachable at every larger batch; the grid's curve agrees (its floor is above)
    reach = (grp.status != "unreachable").tolist()
    assert reach == sorted(reach, reverse=True)
    for batch, status in zip(grp.batch, grp.status):
        floor = k2_grid[k2_grid.batch == batch]["TPOT ms"].min()
        assert (status == "unreachable") <= (floor > target)
tight = k2_needs[(k2_needs["TPOT target ms"] == 20) & (k2_needs.batch == 512)]
three_h100s = 3 * h100.memory_bandwidth_bytes_per_s / TB
assert (tight.status == "unreachable").all() or (tight["HBM TB/s needed"] > three_h100s).all()
k2_needs
""")

md("""
## 4. What a node for the 1T model needs

The headline answer, with the check on real 8-device platforms (same plan, 64 sequences, fp8).
""")

code("""
k2 = decode["kimi-k2"]
need_bw = k2.resource("memory_bandwidth").required_value
need_cap = k2.resource("memory_capacity").required_value
print(f"TPOT {chat.tpot_slo_s * 1e3:.0f} ms at {BATCH} sequences for Kimi K2 on 8 devices needs "
      f">= {need_bw / TB:.2f} TB/s of HBM bandwidth and >= {need_cap / GB:.0f} GB of memory per device "
      f"(H100: {h100.memory_bandwidth_bytes_per_s / TB:.2f} TB/s, {h100.memory_capacity_bytes / GB:.0f} GB)")
k2_on = platforms[platforms.model == "kimi-k2"].set_index("platform")
# the H100 falls short on both; a platform that has both meets the target
assert need_bw > h100.memory_bandwidth_bytes_per_s and need_cap > h100.memory_capacity_bytes
for system_id, row in k2_on.iterrows():
    enough = row["device TB/s"] * TB >= need_bw and row["device GB"] * GB >= need_cap
    if enough:
        assert row["meets TPOT 40 ms"], system_id
# and the 1T model needs more of both than DeepSeek-V3 (671B) on the same plan
assert need_bw > decode["deepseek-v3"].resource("memory_bandwidth").required_value
assert need_cap > decode["deepseek-v3"].resource("memory_capacity").required_value
k2_on
""")

md("""
**Reading.** For interactive chat the decode step sets the platform. At 8 sequences per device every
model's decode is memory-bound, and for the MoE models HBM bandwidth is the only single resource that
can meet TPOT: with unlimited FLOP/s or link bandwidth the step still reads the weights of every expert
the batch touches. Kimi K2 needs more HBM bandwidth per device than an H100 has and more memory per
device than an H100 (and, at 64 sequences in fp8, an H200) holds; B200- and MI300X-class devices have
both, and meet the target. DeepSeek-V3 sits at the H100's bandwidth. Memory capacity follows the
total parameter count, bandwidth the bytes a step touches. Prefill needs FLOP/s: a 450 ms chat TTFT
is within an H100's reach for every model, a 125 ms code-completion TTFT is not for the 405B and the
MoE models, and for the MoE models even one prompt reads every expert, so bandwidth alone cannot
reach it either. Along the batch, bandwidth buys tokens/s with increasing returns, until a tight
target meets the compute floor of small expert GEMMs: beyond it no amount of bandwidth helps.
""")


if __name__ == "__main__":
    STUDY.write()
