"""The host time of eager (prefill-carrying) steps: kernel counts, the step floor, the engines' values."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import numpy as np
import pytest

import genmodel
from genmodel._candidates import Slo
from genmodel._eagerkernels import HOST_BOUND_PREFILLS
from genmodel._enginepresets import PREFILL_LAUNCH_S, engine_preset
from genmodel._engines import eager_block_kernels
from genmodel._errors import SpecError
from genmodel._forwardpass import StepSpecs
from genmodel._harness import harness_engine
from genmodel._hostcost import (
    DENSE_MLP_KERNELS,
    GQA_KERNELS,
    HEAD_KERNELS,
    NORM_KERNELS,
    eager_host_s,
    eager_launches,
)
from genmodel._search import _evaluate
from genmodel._serving import estimate_serving
from genmodel._stepcost import StepCostTable
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

BF16 = Precision()
FP8 = genmodel.default_precision("fp8")
LAUNCH_S = 40e-6


def test_launches_grow_with_the_layers() -> None:
    model = load_model("llama-3.1-8b")
    deeper = dataclasses.replace(model, num_layers=2 * model.num_layers)
    one, two = (eager_launches(m, genmodel.Plan(), BF16) for m in (model, deeper))
    # each block launches the same kernels: doubling the blocks doubles all but the head's
    assert two == 2 * one - HEAD_KERNELS
    assert two > one


def test_a_moe_block_launches_more_than_a_dense_one() -> None:
    dense = load_model("qwen3-32b")
    moe = load_model("qwen3-235b-a22b")
    per_block = {m.id: eager_launches(m, genmodel.Plan(tp=8), FP8) / m.num_layers for m in (dense, moe)}
    assert per_block[moe.id] > per_block[dense.id]
    # DeepSeek-V3: latent attention and shared experts on top of routed experts
    ds = load_model("deepseek-v3")
    assert eager_launches(ds, genmodel.Plan(tp=8), FP8) / ds.num_layers > per_block[moe.id]


def test_parallelism_and_narrow_activations_add_kernels() -> None:
    model = load_model("llama-3.1-70b")
    alone = eager_launches(model, genmodel.Plan(), BF16)
    assert eager_launches(model, genmodel.Plan(tp=8), BF16) > alone  # the all-reduces
    assert eager_launches(model, genmodel.Plan(), FP8) > alone  # a quantisation per GEMM


def test_host_time_is_launches_times_the_launch_cost() -> None:
    model, plan = load_model("deepseek-v3"), genmodel.Plan(tp=8)
    assert eager_host_s(model, plan, FP8, launch_s=0.0) == 0.0
    host = eager_host_s(model, plan, FP8, launch_s=LAUNCH_S)
    assert host == pytest.approx(eager_launches(model, plan, FP8) * LAUNCH_S)
    assert 0.01 < host < 1.0  # tens of milliseconds for 61 DeepSeek blocks


def _tables() -> tuple[StepCostTable, StepCostTable]:
    model, system = load_model("deepseek-v3"), load_hardware("b200")
    plan = genmodel.Plan(tp=8)
    specs = StepSpecs(model=model, hardware=system, plan=plan, precision=FP8)
    graphed = StepCostTable.build(specs, tokens_max=9000)
    eager = StepCostTable.build(specs, tokens_max=9000, prefill_launch_s=LAUNCH_S)
    return graphed, eager


def test_a_decode_batch_above_the_graph_limit_runs_eagerly() -> None:
    # SGLang replays decode batches of at most cuda_graph_max_bs sequences as CUDA graphs and runs
    # larger ones eagerly (Engine.graph_max_decode_batch): such a step takes at least the host time
    # of launching its kernels, as a prefill step does; up to the limit the costs are unchanged
    model, system = load_model("llama-3.1-70b"), load_hardware("h200-sxm")
    specs = StepSpecs(model=model, hardware=system, plan=genmodel.Plan(tp=4), precision=BF16)
    table = StepCostTable.build(specs, tokens_max=512, prefill_launch_s=LAUNCH_S)
    eager = table.graphed_up_to(160)
    assert table.graphed_up_to(None) is table and eager is not table
    host = table.prefill_host_s
    for n in (1, 160, 161, 400):
        graphed = table.step_s(decode_seqs=n, decode_past_sum=500.0 * n, chunks=())
        got = eager.step_s(decode_seqs=n, decode_past_sum=500.0 * n, chunks=())
        run = eager.decode_run_s(decode_seqs=n, decode_past_sum=500.0 * n, steps=3)
        if n <= 160:
            assert got == graphed
        else:
            assert graphed - table.overhead_s < host  # a decode step shorter than its launches...
            assert got == pytest.approx(host + table.overhead_s)  # ...takes the launches
        assert run[0] == pytest.approx(got)


def test_decode_only_steps_pay_no_host_floor() -> None:
    graphed, eager = _tables()
    for seqs in (1, 8, 64):
        a = graphed.step_s(decode_seqs=seqs, decode_past_sum=1000.0 * seqs, chunks=())
        b = eager.step_s(decode_seqs=seqs, decode_past_sum=1000.0 * seqs, chunks=())
        assert a == b
    assert eager.prefill_host_s > 0 and graphed.prefill_host_s == 0


def test_a_step_with_prefill_takes_at_least_the_host_time() -> None:
    graphed, eager = _tables()
    small = eager.step_s(decode_seqs=4, decode_past_sum=4000.0, chunks=((16, 0),))
    assert small == pytest.approx(eager.prefill_host_s + eager.overhead_s)
    assert small > graphed.step_s(decode_seqs=4, decode_past_sum=4000.0, chunks=((16, 0),))
    # a prefill whose GPU time exceeds the host time hides the launches (max, not a sum)
    long = graphed.step_s(decode_seqs=0, decode_past_sum=0.0, chunks=((8192, 0),))
    assert long > eager.prefill_host_s + eager.overhead_s
    assert eager.step_s(decode_seqs=0, decode_past_sum=0.0, chunks=((8192, 0),)) == long


def test_engine_presets_and_validation() -> None:
    assert engine_preset("trtllm").prefill_launch_s == PREFILL_LAUNCH_S
    assert engine_preset("sglang").prefill_launch_s == PREFILL_LAUNCH_S
    assert engine_preset("vllm").prefill_launch_s == 0.0
    assert "prefill_launch_s" in engine_preset("trtllm").source
    with pytest.raises(SpecError, match="prefill_launch_s"):
        engine_preset("vllm").replace(prefill_launch_s=-1e-6)
    client = BenchmarkClient(requests_per_client=4, warmup_requests=1)
    assert Wave.of(engine_preset("trtllm"), client).prefill_launch_s == PREFILL_LAUNCH_S


def test_closed_form_ttft_pays_the_host_time_and_tpot_hardly_moves_for_few_clients() -> None:
    model, hw = load_model("deepseek-v3"), load_hardware("b200")
    client = BenchmarkClient(requests_per_client=12, warmup_requests=2)
    kw = {"concurrency": 4, "input_tokens": 1024, "output_tokens": 1024}
    wave = Wave(budget_tokens=8192, mixed=True, client=client)
    graphed = estimate_serving(model, hw, genmodel.Plan(tp=8), FP8, wave=wave, **kw)  # type: ignore[arg-type]
    eager = estimate_serving(
        model,
        hw,
        genmodel.Plan(tp=8),
        FP8,
        wave=dataclasses.replace(wave, prefill_launch_s=LAUNCH_S),
        **kw,  # type: ignore[arg-type]
    )
    host = eager_host_s(model, genmodel.Plan(tp=8), FP8, launch_s=LAUNCH_S)
    assert eager.ttft_s > graphed.ttft_s
    assert eager.ttft_s - graphed.ttft_s <= host + 1e-9  # at most the host time (it hides GPU time)
    # four clients' prompts are a small share of their 1,024 decode steps: the floor their eager
    # steps put into the load (genmodel._interleave) moves the inter-token latency by under 1 %
    assert eager.tpot_s == pytest.approx(graphed.tpot_s, rel=0.01)


def test_simulate_takes_the_knob_and_a_lone_short_prompt_is_host_bound() -> None:
    kw: dict[str, object] = {
        "model": "deepseek-v3",
        "hardware": "b200",
        "tp": 8,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "concurrency": 1,
        "input_tokens": 256,
        "output_tokens": 64,
        "requests_per_client": 3,
        "warmup_requests": 0,
        "engine": "vllm",  # no host floor in its preset
    }
    graphed = genmodel.simulate(**kw)  # type: ignore[arg-type]
    eager = genmodel.simulate(**kw, prefill_launch_s=LAUNCH_S)  # type: ignore[arg-type]
    host = eager_host_s(load_model("deepseek-v3"), genmodel.Plan(tp=8), FP8, launch_s=LAUNCH_S)
    overhead = load_hardware("b200").device.efficiency.step_overhead_s
    assert graphed.ttft_s.mean < host  # 256 tokens on 8 B200s: the GPU part is short
    # one client: its first token is its prompt's step, the host floor plus the step overhead
    assert eager.ttft_s.mean == pytest.approx(host + overhead, rel=1e-6)
    assert eager.tpot_s.mean == pytest.approx(graphed.tpot_s.mean, rel=1e-6)  # decode-only steps


def test_trtllm_llama_takes_its_own_fused_count_and_others_the_generic() -> None:
    blocks = eager_block_kernels(engine_preset("trtllm"))
    llama, plan = load_model("llama-3.1-70b"), genmodel.Plan(tp=8)
    # TensorRT-LLM's Llama block under TP: QKV, attention op, o_proj, two fused all-reduce+norm,
    # gate-up, activation, down (8), plus the down GEMM's input quantisation at fp8
    assert eager_launches(llama, plan, FP8, blocks) == 80 * 9 + HEAD_KERNELS
    assert eager_launches(llama, plan, BF16, blocks) == 80 * 8 + HEAD_KERNELS
    assert eager_launches(llama, plan, FP8, blocks) < eager_launches(llama, plan, FP8)
    # where the engine does not fuse (one GPU; a hidden size of 4096) or no count was read
    # (Qwen3's dense model), the generic count stands; vLLM has no table of its own
    small = load_model("llama-3.1-8b")
    dense_qwen = load_model("qwen3-32b")
    for model, p in ((llama, genmodel.Plan()), (small, plan), (dense_qwen, plan)):
        assert eager_launches(model, p, FP8, blocks) == eager_launches(model, p, FP8)
    assert eager_block_kernels(engine_preset("vllm")) == ()
    assert all(b.source for b in blocks)


def test_trtllm_deepseek_counts_its_dense_and_moe_blocks_apart() -> None:
    blocks = eager_block_kernels(engine_preset("trtllm"))
    ds, tp8 = load_model("deepseek-v3"), genmodel.Plan(tp=8)
    assert (ds.num_dense_layers, ds.num_moe_layers) == (3, 58)
    # MoE block under TP: MLA 9 (q_a/kv_a GEMM, two norms, q_b, latent concat, kv_b, k copy,
    # attention op, o_proj), two fused all-reduce+norm, router GEMM, routing op, fused_moe, shared
    # gate-up, SwiGLU, down, add: 18; a dense block: MLA 9, o_proj's own all-reduce, add+norm,
    # gate-up, SwiGLU, down, fused all-reduce: 15. FP8 block scales quantise 6 GEMM inputs a block.
    assert eager_launches(ds, tp8, BF16, blocks) == 58 * 18 + 3 * 15 + HEAD_KERNELS
    assert eager_launches(ds, tp8, FP8, blocks) == 58 * (18 + 6) + 3 * (15 + 6) + HEAD_KERNELS
    assert eager_launches(ds, tp8, FP8, blocks) < eager_launches(ds, tp8, FP8)
    # attention DP turns the engine's fusion off, and one GPU has no all-reduce to fuse: generic
    for p in (genmodel.Plan(ep=8, dp=8), genmodel.Plan()):
        assert eager_launches(ds, p, FP8, blocks) == eager_launches(ds, p, FP8)


def test_trtllm_qwen3_moe_fuses_at_any_hidden_size() -> None:
    blocks = eager_block_kernels(engine_preset("trtllm"))
    qwen, plan = load_model("qwen3-235b-a22b"), genmodel.Plan(tp=8, ep=8)
    # QKV GEMM, fused q/k norm + RoPE, attention op, o_proj, two fused all-reduce+norm, gate GEMM,
    # routing op, fused_moe: 9 a block; the QKV and o_proj inputs quantised at fp8. The hidden
    # size is 4096, where TensorRT-LLM's Llama does not fuse: the Qwen3-MoE code has no such test.
    assert qwen.hidden_size == 4096
    assert eager_launches(qwen, plan, BF16, blocks) == 94 * 9 + HEAD_KERNELS
    assert eager_launches(qwen, plan, FP8, blocks) == 94 * 11 + HEAD_KERNELS
    assert eager_launches(qwen, genmodel.Plan(ep=8, dp=8), FP8, blocks) == eager_launches(
        qwen, genmodel.Plan(ep=8, dp=8), FP8
    )


def test_sglang_deepseek_counts_its_mha_prefill_path_without_expert_parallelism() -> None:
    blocks = eager_block_kernels(engine_preset("sglang"))
    ds, tp8 = load_model("deepseek-v3"), genmodel.Plan(tp=8)
    # MoE block: all-reduce+add+norm (FlashInfer fusion), MLA on the MHA path 10 (q_a/kv_a GEMM,
    # q_a norm, q_b, kv_a norm, RoPE, latent write, kv_b, key assembly, attention, o_proj),
    # all-reduce+add+norm, router GEMM, fp32 cast, moe_fused_gate, align, two grouped GEMMs,
    # silu_and_mul, sum (the shared expert inside the fused MoE): 20; dense: 15. FP8: 6 each.
    assert eager_launches(ds, tp8, BF16, blocks) == 58 * 20 + 3 * 15 + HEAD_KERNELS
    assert eager_launches(ds, tp8, FP8, blocks) == 58 * (20 + 6) + 3 * (15 + 6) + HEAD_KERNELS
    trtllm = eager_block_kernels(engine_preset("trtllm"))
    assert eager_launches(ds, tp8, FP8, trtllm) < eager_launches(ds, tp8, FP8, blocks)
    assert eager_launches(ds, tp8, FP8, blocks) < eager_launches(ds, tp8, FP8)
    # expert parallelism keeps the shared expert apart (no fusion), one GPU has no all-reduce:
    # both take the generic count
    for p in (genmodel.Plan(tp=4, ep=4), genmodel.Plan()):
        assert eager_launches(ds, p, FP8, blocks) == eager_launches(ds, p, FP8)


def test_sglang_qwen3_moe_and_llama_launch_more_than_the_generic_count() -> None:
    blocks = eager_block_kernels(engine_preset("sglang"))
    qwen, tp4 = load_model("qwen3-235b-a22b"), genmodel.Plan(tp=4)
    # QKV, two copies + two norms for q/k, RoPE with the cache write, attention, o_proj, all-reduce,
    # two fused add-norms, gate, topk_softmax, the Triton fused MoE (5), all-reduce: 19; FP8 adds 4
    assert eager_launches(qwen, tp4, FP8, blocks) == 94 * (19 + 4) + HEAD_KERNELS
    assert eager_launches(qwen, tp4, FP8, blocks) > eager_launches(qwen, tp4, FP8)
    llama = load_model("llama-3.1-8b")
    # the K and V cache writes are two kernels and FA3 copies q: 14 under TP, 12 on one GPU
    assert eager_launches(llama, genmodel.Plan(tp=8), BF16, blocks) == 32 * 14 + HEAD_KERNELS
    assert eager_launches(llama, genmodel.Plan(), BF16, blocks) == 32 * 12 + HEAD_KERNELS
    assert eager_launches(llama, genmodel.Plan(), FP8, blocks) == 32 * 16 + HEAD_KERNELS
    assert all(b.source for b in blocks)


def test_the_launch_time_is_the_mean_of_two_measurements_over_their_engines_counts() -> None:
    # SGLang PR 12160: DeepSeek-V3 FP8 TP8, one new token on a cached one (absorbed MLA path);
    # sfllm PR 46: Qwen3-4B bf16 on one GPU, 36 blocks of 11
    sglang, sfllm = HOST_BOUND_PREFILLS
    assert (sglang.launches, sfllm.launches) == (1578, 36 * 11 + HEAD_KERNELS)
    # sfllm's one q/k-norm + RoPE + cache-write op saves two, its copies of k and v add two back,
    # and the norms it fuses into that op are not in the generic 36 x 10 + 4 = 364
    assert sfllm.launches > 36 * (NORM_KERNELS + GQA_KERNELS + DENSE_MLP_KERNELS) + HEAD_KERNELS
    assert pytest.approx((82.64e-3 / 1578 + 16.613e-3 / 400) / 2) == PREFILL_LAUNCH_S
    assert 46e-6 < PREFILL_LAUNCH_S < 48e-6


def test_a_dense_block_count_falls_back_to_the_block_count() -> None:
    blocks = eager_block_kernels(engine_preset("trtllm"))
    llama = next(b for b in blocks if b.architecture == "LlamaForCausalLM")
    ds = next(b for b in blocks if b.architecture == "DeepseekV3ForCausalLM")
    assert llama.per_block(dense=True, quantised=True) == llama.per_block(dense=False, quantised=True)
    assert ds.per_block(dense=True, quantised=False) != ds.per_block(dense=False, quantised=False)
    assert ds.per_block(dense=False, quantised=True) - ds.per_block(dense=False, quantised=False) == 6


def test_the_engine_count_reaches_the_step_table_and_the_wave() -> None:
    model, system, plan = load_model("llama-3.1-70b"), load_hardware("b200"), genmodel.Plan(tp=8)
    engine = engine_preset("trtllm")
    blocks = eager_block_kernels(engine)
    specs = StepSpecs(model=model, hardware=system, plan=plan, precision=FP8)
    generic = StepCostTable.build(specs, tokens_max=9000, prefill_launch_s=LAUNCH_S)
    own = StepCostTable.build(specs, tokens_max=9000, prefill_launch_s=LAUNCH_S, eager_blocks=blocks)
    assert own.prefill_host_s == pytest.approx(eager_launches(model, plan, FP8, blocks) * LAUNCH_S)
    assert own.prefill_host_s < generic.prefill_host_s
    client = BenchmarkClient(requests_per_client=3, warmup_requests=0)
    assert Wave.of(engine, client).eager_blocks == blocks
    # the simulation of a lone short prompt on TensorRT-LLM is held by the fused count's floor
    fused = eager_host_s(model, plan, FP8, launch_s=engine.prefill_launch_s, blocks=blocks)
    generic_s = eager_host_s(model, plan, FP8, launch_s=engine.prefill_launch_s)
    run = genmodel.simulate(
        model="llama-3.1-70b",
        hardware="b200",
        tp=8,
        weight_dtype="fp8",
        act_dtype="fp8",
        concurrency=1,
        input_tokens=256,
        output_tokens=16,
        requests_per_client=3,
        warmup_requests=0,
        engine="trtllm",
    )
    assert fused <= run.ttft_s.mean < generic_s


def _moe_harness(clients: int) -> dict[str, object]:
    """Qwen3-30B-A3B (many kernels, little GPU time a step) on one H100 under SGLang with mixed
    chunks (AIConfigurator's harness), 1,000/100 tokens: a step carrying prompts is host-bound."""
    preset = engine_preset("sglang", load_hardware("h100-sxm").device)
    engine = harness_engine(preset, "aiconfigurator", concurrency=clients, input_tokens=1000)
    return {
        "model": "qwen3-30b-a3b",
        "hardware": "h100-sxm",
        "concurrency": clients,
        "input_tokens": 1000,
        "output_tokens": 100,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "engine": engine,
    }


def test_the_closed_forms_load_pays_the_host_floor_of_a_mixed_step() -> None:
    """The simulation runs each step that carries a prompt eagerly, at least its host launches
    (genmodel._stepcost), and at 128 clients nearly every step carries one: its TPOT is that
    floor's. The closed form's load counted the GPU time of those steps only, 17 % under the
    simulation's TPOT (25.9 against 31.3 ms); with the floor in D it is within 10 %."""
    kw = _moe_harness(128)
    sim = genmodel.estimate(serving="simulated", requests_per_client=12, warmup_requests=2, **kw)  # type: ignore[arg-type]
    closed = genmodel.estimate(serving="closed-form", **kw)  # type: ignore[arg-type]
    assert closed.tpot_s == pytest.approx(sim.tpot_s, rel=0.10)
    assert closed.ttft_s == pytest.approx(sim.ttft_s, rel=0.10)


@pytest.mark.parametrize("clients", [32, 128])
def test_the_search_takes_the_mixed_steps_host_floor_as_the_estimate(clients: int) -> None:
    """The floor of a mixed step enters D in the estimate and the plan search alike: the search's
    figures at the estimate's running batch are the estimate's, and the floor binds there (its
    TPOT is above the same engine's without a host floor)."""
    model, hw = load_model("qwen3-30b-a3b"), load_hardware("h100-sxm")
    client = BenchmarkClient(requests_per_client=12, warmup_requests=2)
    wave = Wave.of(_moe_harness(clients)["engine"], client)  # type: ignore[arg-type]
    assert wave.mixed and wave.prefill_launch_s > 0
    kw = {"concurrency": clients, "input_tokens": 1000, "output_tokens": 100}
    est = estimate_serving(model, hw, genmodel.Plan(), FP8, wave=wave, **kw)
    graphed = dataclasses.replace(wave, prefill_launch_s=0.0)
    gpu = estimate_serving(model, hw, genmodel.Plan(), FP8, wave=graphed, **kw)
    assert est.serving is not None
    assert est.tpot_s > 1.05 * gpu.tpot_s
    _, arrays = _evaluate(
        model,
        hw,
        genmodel.Plan(),
        FP8,
        1000,
        100,
        Slo(),
        genmodel.RunOptions(),
        collections.Counter(),
        batches=np.array([est.serving.decode_batch]),
        wave=wave,
    )
    assert arrays["concurrency"][0] == pytest.approx(clients, rel=1e-9)
    assert arrays["ttft_s"][0] == pytest.approx(est.ttft_s, rel=1e-9)
    assert arrays["tpot_s"][0] == pytest.approx(est.tpot_s, rel=1e-9)


def test_a_mean_batch_between_two_whole_batches_decodes_at_the_upper_one() -> None:
    """TensorRT-LLM 1.0 captures decode batches 1-32, 64 and 128 only. With 128 clients the closed
    form's mean running batch is a little under 128 (each client is out of it for its prompt); its
    decode-only steps run all 128 and replay the graph, as the simulation's do. Rounded to the
    nearest, a mean of 127.5 became 127, an eager batch, and every decode step took the host floor:
    TPOT 26 ms against the simulation's 4.4 ms."""
    kw: dict[str, Any] = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "tp": 4,
        "concurrency": 128,
        "input_tokens": 256,
        "output_tokens": 512,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "kv_dtype": "fp8",
        "engine": "trtllm",
    }
    sim = genmodel.estimate(serving="simulated", **kw)
    closed = genmodel.estimate(serving="closed-form", **kw)
    assert closed.tpot_s == pytest.approx(sim.tpot_s, rel=0.10)
    engine = genmodel.engine_preset("trtllm")
    assert engine.eager_decode(127.5, 4) is False and engine.eager_decode(127.0, 4) is True
    assert list(engine.eager_decodes([127.0, 127.5, 128.0, 64.2], 4)) == [True, False, False, True]
