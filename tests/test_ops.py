"""genmodel._ops: FLOPs and bytes per operator (checked by hand), roofline time, and the laws
"roofline >= each term", "sharded FLOPs sum to unsharded", one formula for floats/NumPy/SymPy/pint."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pint
import pytest
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

import genmodel
from genmodel import Op, Precision, attended_pairs, expected_experts_touched, forward_ops, roofline
from genmodel._cost import StepTerms
from genmodel._ops import OpTime, Rates, StepRoofline

BF16 = Precision()


def _ops(model_id: str, **kwargs: object) -> dict[str, Op]:
    ops = forward_ops(genmodel.load_model(model_id), kwargs.pop("precision", BF16), **kwargs)  # type: ignore[arg-type]
    by_name = {op.name: op for op in ops}
    assert len(by_name) == len(ops), "operator names are unique"
    return by_name


# ---- hand-derived FLOPs and bytes ---------------------------------------------------------------


@pytest.mark.parametrize(("num_seqs", "prompt"), [(1, 1), (1, 1000), (4, 512), (3, 7)])
def test_gemm_flops_are_two_per_parameter_per_token(num_seqs: int, prompt: int) -> None:
    """Kaplan et al. 2020: forward FLOPs = 2 * (non-embedding, non-norm) params per token."""
    model = genmodel.load_model("llama-3.1-8b")
    parts = genmodel.count_params(model)
    norms = 2 * model.num_layers * model.hidden_size  # input and post-attention RMSNorm weights
    matmul_params = parts["attention"] + parts["mlp"] - norms
    tokens = num_seqs * prompt
    ops = forward_ops(model, BF16, num_seqs=num_seqs, new_tokens=prompt, past_tokens=0)
    gemm = sum(op.flops for op in ops if op.kind == "gemm" and op.name != "lm_head")
    assert gemm == pytest.approx(2 * matmul_params * tokens, rel=1e-9)


def test_lm_head_computes_logits_for_the_last_token_only() -> None:
    m = genmodel.load_model("llama-3.1-8b")
    ops = _ops("llama-3.1-8b", num_seqs=5, new_tokens=300, past_tokens=0)
    assert ops["lm_head"].flops == pytest.approx(2 * 5 * m.hidden_size * m.vocab_size)
    assert ops["lm_head"].weight_bytes == pytest.approx(m.hidden_size * m.vocab_size * 2)


@pytest.mark.parametrize("prompt", [1, 2, 128, 1000])
def test_prefill_attention_flops_are_causal(prompt: int) -> None:
    m = genmodel.load_model("llama-3.1-70b")
    seqs = 3
    ops = _ops("llama-3.1-70b", num_seqs=seqs, new_tokens=prompt, past_tokens=0)
    per_seq = 4 * m.attention.heads * m.attention.head_dim * prompt * (prompt + 1) / 2 * m.num_layers
    assert ops["attention"].flops == pytest.approx(seqs * per_seq, rel=1e-12)


@pytest.mark.parametrize("model_id", ["llama-3.1-70b", "llama-2-7b", "deepseek-v3"])
def test_decode_reads_the_whole_kv_cache_and_writes_one_token(model_id: str) -> None:
    m = genmodel.load_model(model_id)
    p = Precision(kv_dtype="fp8")
    seqs, past = 16, 4000
    ops = forward_ops(m, p, num_seqs=seqs, new_tokens=1, past_tokens=past, absorb_mla=True)
    kv = sum(op.kv_bytes for op in ops)
    per_token = genmodel.kv_bytes_per_token(m, p)
    # read: seqs * past tokens of cache; write: this step's one token per sequence
    assert kv == pytest.approx(seqs * past * per_token + seqs * per_token, rel=1e-12)


def test_gemm_weights_are_read_once_per_step() -> None:
    m = genmodel.load_model("llama-3.1-8b")
    parts = genmodel.count_params(m)
    norms = 2 * m.num_layers * m.hidden_size
    for seqs in (1, 64):
        ops = forward_ops(
            m, Precision(weight_dtype="fp8", act_dtype="fp8"), num_seqs=seqs, new_tokens=1, past_tokens=10
        )
        w = sum(op.weight_bytes for op in ops if op.kind == "gemm" and op.name != "lm_head")
        assert w == pytest.approx(parts["attention"] + parts["mlp"] - norms, rel=1e-12)


# ---- attended pairs and MoE routing -------------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=1, max_value=300),
    st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
)
def test_attended_pairs_equals_brute_force(past: int, new: int, window: int | None) -> None:
    brute = sum(j if window is None else min(j, window) for j in range(past + 1, past + new + 1))
    assert float(attended_pairs(past, new, window)) == pytest.approx(brute, rel=1e-12, abs=1e-9)


def test_expected_experts_touched() -> None:
    assert expected_experts_touched(256, 8, 1) == pytest.approx(8.0)
    assert expected_experts_touched(8, 2, 0) == pytest.approx(0.0)
    assert expected_experts_touched(256, 8, 10_000) == pytest.approx(256.0)
    # two tokens: 8 + 8 * (1 - 8/256)
    assert expected_experts_touched(256, 8, 2) == pytest.approx(8 + 8 * (1 - 8 / 256))


@given(st.integers(min_value=1, max_value=5000))
def test_expected_experts_touched_is_bounded_and_monotone(tokens: int) -> None:
    e = expected_experts_touched(128, 8, tokens)
    assert 8 - 1e-9 <= e <= 128
    assert expected_experts_touched(128, 8, tokens + 1) >= e


def test_moe_expert_flops_use_top_k_experts_per_token() -> None:
    m = genmodel.load_model("mixtral-8x7b")
    assert m.moe is not None
    tokens = 6 * 100
    ops = _ops("mixtral-8x7b", num_seqs=6, new_tokens=100, past_tokens=0)
    expected = 2 * tokens * m.moe.num_experts_per_tok * 3 * m.hidden_size * m.moe.expert_intermediate_size
    assert ops["experts"].flops == pytest.approx(expected * m.num_moe_layers, rel=1e-12)


@pytest.mark.parametrize(("act", "partial_bytes"), [("bf16", 2.0), ("fp8", 2.0), ("fp32", 4.0)])
def test_each_expert_pair_writes_its_partial_output_in_16_bits_and_the_combine_reads_it(
    act: str, partial_bytes: float
) -> None:
    # per token-expert pair: the token read by gate/up (d) and the intermediate written, activated
    # and read (3 I_e / tp) at the activation width; the down GEMM's partial output (d) written and
    # read back by the combine at 16 bits (bf16 epilogue, then moe_sum / finalizeMoeRouting)
    m = genmodel.load_model("qwen3-235b-a22b")
    assert m.moe is not None
    p = Precision(weight_dtype="fp8", act_dtype=act, kv_dtype="bf16")
    assert p.partial_sum_bytes == partial_bytes
    tp, seqs, prompt = 4, 2, 512
    ops = _ops("qwen3-235b-a22b", precision=p, num_seqs=seqs, new_tokens=prompt, past_tokens=0, tp=tp)
    pairs = seqs * prompt * m.moe.num_experts_per_tok
    d, inter = m.hidden_size, m.moe.expert_intermediate_size
    per_pair = (d + 3 * inter / tp) * p.act_bytes + 2 * d * partial_bytes
    assert ops["experts"].act_bytes == pytest.approx(pairs * per_pair * m.num_moe_layers, rel=1e-12)


def test_tp_split_experts_move_every_pair_on_every_device_and_expert_parallel_ones_a_share() -> None:
    # under MoE-TP every device computes a slice of every pair and writes its full-width partial
    # output; under EP a device holds whole experts and only its share of the pairs
    p = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    kwargs: dict[str, object] = {"precision": p, "num_seqs": 1, "new_tokens": 8192, "past_tokens": 0, "tp": 8}
    tp_split = _ops("deepseek-v3", **kwargs)["experts"]
    ep = _ops("deepseek-v3", moe=genmodel.moe_layout(genmodel.Plan(tp=8, ep=8)), **kwargs)["experts"]
    assert tp_split.flops == pytest.approx(ep.flops, rel=0.2)  # the same work, EP's busiest a bit more
    assert tp_split.act_bytes > 4 * ep.act_bytes


# ---- roofline ------------------------------------------------------------------------------------

MODELS = ["llama-3.1-8b", "llama-2-7b", "qwen3-32b", "mixtral-8x7b", "deepseek-v3", "qwen3-30b-a3b"]
DEVICES = ["h100-sxm", "a100-sxm-80gb", "jetson-orin-nano-8gb", "mi300x", "b200"]
DTYPES = ["fp32", "bf16", "fp16", "fp8", "int8", "fp4", "int4"]


@given(
    model_id=st.sampled_from(MODELS),
    device_id=st.sampled_from(DEVICES),
    seqs=st.integers(min_value=1, max_value=256),
    new=st.integers(min_value=1, max_value=4096),
    past=st.integers(min_value=0, max_value=32768),
    weight=st.sampled_from(DTYPES),
    act=st.sampled_from(["bf16", "fp16", "fp8", "fp32"]),
    absorb=st.booleans(),
)
def test_roofline_time_is_at_least_each_term(
    model_id: str, device_id: str, seqs: int, new: int, past: int, weight: str, act: str, absorb: bool
) -> None:
    p = Precision(weight_dtype=weight, act_dtype=act, kv_dtype="fp8")
    device = genmodel.load_device(device_id)
    ops = forward_ops(
        genmodel.load_model(model_id), p, num_seqs=seqs, new_tokens=new, past_tokens=past, absorb_mla=absorb
    )
    for op in ops:
        assert op.flops >= 0
        assert op.bytes > 0
        t = roofline(op, device, p)
        assert t.time_s >= t.compute_s
        assert t.time_s >= t.memory_s
        assert t.time_s == pytest.approx(max(t.compute_s, t.memory_s))
        # the routed experts add their fused-MoE kernels' fixed time, once per MoE layer; a device
        # with a measured streaming shortfall (memory_scale) streams that much slower
        assert t.memory_s == pytest.approx(
            op.bytes
            / (device.memory_bandwidth_bytes_per_s * device.efficiency.memory_frac * device.memory_scale)
            + op.moe_calls * device.efficiency.moe_layer_latency_s
            + (op.calls * device.efficiency.gemm_latency_s if op.name != "experts" else 0.0)
        )


def test_ideal_roofline_of_a_gemm_is_flops_over_peak() -> None:
    device = genmodel.load_device("h100-sxm").ideal()
    op = Op("g", "gemm", flops=2e12, weight_bytes=1e6, act_bytes=1e6, kv_bytes=0, rows=4096)
    t = roofline(op, device, BF16)
    assert t.compute_s == pytest.approx(2e12 / device.peak_flops_per_s["bf16"])
    assert t.memory_s == pytest.approx(2e6 / device.memory_bandwidth_bytes_per_s)
    assert t.arithmetic_intensity == pytest.approx(1e6)


def _gemm_compute_s(device: genmodel.Device, rows: int) -> float:
    return float(roofline(Op("g", "gemm", 2e9 * rows, 1.0, 1.0, 0, rows=rows), device, BF16).compute_s)


def test_gemm_rows_are_padded_to_the_tile() -> None:
    device = genmodel.load_device("a100-sxm-80gb")
    tile = device.efficiency.gemm_tile_tokens
    assert tile > 1 and device.efficiency.gemm_small_tile_tokens == 0
    # one row costs as much compute as a full tile
    assert _gemm_compute_s(device, 1) == pytest.approx(_gemm_compute_s(device, tile))
    assert _gemm_compute_s(device, tile + 1) == pytest.approx(2 * _gemm_compute_s(device, tile))


@pytest.mark.parametrize("device_id", ["h100-sxm", "h20", "b200"])
def test_small_gemms_pad_to_the_swap_ab_tile_and_larger_ones_to_the_instruction_tile(device_id: str) -> None:
    """Hopper and Blackwell run a GEMM of few tokens with its operands swapped (hardware_db/EFFICIENCY.md):
    up to the small tile, tokens pad to it; beyond, to the 64-row instruction tile."""
    device = genmodel.load_device(device_id)
    small, tile = device.efficiency.gemm_small_tile_tokens, device.efficiency.gemm_tile_tokens
    assert 1 < small < tile == 64
    assert _gemm_compute_s(device, 1) == pytest.approx(_gemm_compute_s(device, small))
    assert _gemm_compute_s(device, 1) == pytest.approx(_gemm_compute_s(device, tile) * small / tile)
    assert _gemm_compute_s(device, small + 1) == pytest.approx(_gemm_compute_s(device, tile))
    rates = Rates.of(device, BF16)  # arrays of rows (a plan search) pad as scalars do
    rows = np.array([0.0, 1.0, small, small + 1.0, tile, tile + 1.0])
    padded = rates.padding(rows) * np.maximum(rows, 1e-30)
    assert padded.tolist() == [0.0, small, small, tile, tile, 2 * tile]


# ---- sharding: sum over tp ranks equals the unsharded operator -------------------------------------

SHARDED = (
    "qkv_proj",
    "o_proj",
    "attention",
    "gate_up_proj",
    "down_proj",
    "experts",
    "shared_experts",
    "lm_head",
)


@given(
    model_id=st.sampled_from(
        ["llama-3.1-8b", "llama-3.1-70b", "llama-2-7b", "qwen3-32b", "mixtral-8x7b", "qwen3-30b-a3b"]
    ),
    tp_exp=st.integers(min_value=0, max_value=4),
    seqs=st.integers(min_value=1, max_value=64),
    new=st.integers(min_value=1, max_value=2048),
    past=st.integers(min_value=0, max_value=8192),
)
def test_sharded_flops_sum_to_unsharded(model_id: str, tp_exp: int, seqs: int, new: int, past: int) -> None:
    m = genmodel.load_model(model_id)
    tp = 2**tp_exp
    # only tp dividing heads and KV heads shards every operator exactly
    assume(m.attention.heads % tp == 0 and m.attention.kv_heads % tp == 0)
    kwargs = {"num_seqs": seqs, "new_tokens": new, "past_tokens": past}
    one = {op.name: op for op in forward_ops(m, BF16, tp=1, **kwargs)}
    ranks = {op.name: op for op in forward_ops(m, BF16, tp=tp, **kwargs)}
    checked = 0
    for name in SHARDED:
        if name in one:
            assert tp * ranks[name].flops == pytest.approx(one[name].flops, rel=1e-9), name
            checked += 1
    assert checked >= 5


def test_kv_heads_fewer_than_tp_are_replicated() -> None:
    m = genmodel.load_model("llama-3.1-70b")  # 8 KV heads
    kwargs = {"num_seqs": 2, "new_tokens": 1, "past_tokens": 1000}
    tp8 = {op.name: op for op in forward_ops(m, BF16, tp=8, **kwargs)}
    tp16 = {op.name: op for op in forward_ops(m, BF16, tp=16, **kwargs)}
    # one KV head per rank either way: the KV cache read per rank does not shrink
    assert tp16["attention"].kv_bytes == pytest.approx(tp8["attention"].kv_bytes)


# ---- one formula, three (four) uses -----------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3"])
def test_forward_ops_and_roofline_vectorise_over_numpy(model_id: str) -> None:
    m = genmodel.load_model(model_id)
    device = genmodel.load_device("h100-sxm")
    seqs = np.array([1.0, 3.0, 64.0, 200.0])
    vec = forward_ops(m, BF16, num_seqs=seqs, new_tokens=1, past_tokens=900, absorb_mla=True)
    for i, s in enumerate(seqs):
        scalar = forward_ops(m, BF16, num_seqs=float(s), new_tokens=1, past_tokens=900, absorb_mla=True)
        assert [op.name for op in scalar] == [op.name for op in vec]
        for v_op, s_op in zip(vec, scalar, strict=True):
            v_t, s_t = roofline(v_op, device, BF16), roofline(s_op, device, BF16)
            assert np.broadcast_to(v_op.flops, seqs.shape)[i] == pytest.approx(s_op.flops, rel=1e-12)
            assert np.broadcast_to(v_op.bytes, seqs.shape)[i] == pytest.approx(s_op.bytes, rel=1e-12)
            assert np.broadcast_to(v_t.time_s, seqs.shape)[i] == pytest.approx(float(s_t.time_s), rel=1e-12)


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_a_step_over_a_batch_grid_is_each_scalar_step_to_the_last_bit(model_id: str, phase: str) -> None:
    # what makes a plan search's candidates the estimate's figures: the step's sums over a grid
    # of batch sizes, by the plain formulas and by the evaluator, are the scalar step's, exactly
    from genmodel._evaluate import time_step
    from genmodel._ops import roofline_step

    m, device = genmodel.load_model(model_id), genmodel.load_device("h100-sxm")
    seqs = np.array([1.0, 2.0, 3.0, 17.0, 64.0, 255.0, 1000.0])
    step = {"new_tokens": 1, "past_tokens": 900.0, "absorb_mla": True, "split_new_tokens": False, "tp": 2}
    if phase == "prefill":
        step = {"new_tokens": 3000, "past_tokens": 0, "absorb_mla": False, "split_new_tokens": True, "tp": 2}
    moe = genmodel.MoeLayout(tp=2, dp=2, ep=4) if m.moe is not None else None
    names = ("compute_s", "memory_s", "compute_bound_s", "memory_bound_s", "attention_s")
    ops = forward_ops(m, BF16, num_seqs=seqs, moe=moe, **step)  # type: ignore[arg-type]
    grids = [roofline_step(ops, device, BF16), time_step(ops, device, BF16)]
    for i, s in enumerate(seqs):
        scalar = roofline_step(forward_ops(m, BF16, num_seqs=float(s), moe=moe, **step), device, BF16)  # type: ignore[arg-type]
        for grid in grids:
            for name in names:
                assert np.broadcast_to(getattr(grid, name), seqs.shape)[i] == getattr(scalar, name), name


def test_attended_pairs_vectorises_with_a_window() -> None:
    past = np.array([0.0, 10.0, 100.0, 5000.0])
    vec = attended_pairs(past, 64.0, 128)
    for i, p in enumerate(past):
        assert vec[i] == pytest.approx(attended_pairs(float(p), 64.0, 128))


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "deepseek-v3"])
def test_forward_ops_and_roofline_run_on_sympy_symbols(model_id: str) -> None:
    m = genmodel.load_model(model_id)
    device = genmodel.load_device("h100-sxm")
    b = sympy.Symbol("b", positive=True)
    sym = forward_ops(m, BF16, num_seqs=b, new_tokens=1, past_tokens=1000, absorb_mla=True)
    total = sum(roofline(op, device, BF16).time_s for op in sym)
    assert isinstance(total, sympy.Expr)
    assert total.free_symbols == {b}
    for value in (1, 17, 128):
        num = forward_ops(m, BF16, num_seqs=value, new_tokens=1, past_tokens=1000, absorb_mla=True)
        expected = sum(float(roofline(op, device, BF16).time_s) for op in num)
        assert float(total.subs(b, value)) == pytest.approx(expected, rel=1e-9)


def test_decode_kv_bytes_is_linear_in_a_symbolic_context() -> None:
    c = sympy.Symbol("c", positive=True)
    m = genmodel.load_model("llama-3.1-70b")
    ops = forward_ops(m, BF16, num_seqs=1, new_tokens=1, past_tokens=c)
    kv = sympy.expand(sum(op.kv_bytes for op in ops))
    assert sympy.degree(kv, c) == 1
    assert float(kv.coeff(c, 1)) == pytest.approx(genmodel.kv_bytes_per_token(m, BF16))


# ---- dimensions with pint ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ureg() -> pint.UnitRegistry:
    u = pint.UnitRegistry()
    u.define("flop = [flop]")
    # pint's own byte is dimensionless (8 bits); a base dimension of its own catches bytes/FLOPs mix-ups
    u.define("databyte = [data]")
    return u


def _device_with_units(u: pint.UnitRegistry) -> genmodel.Device:
    d = genmodel.load_device("h100-sxm")
    return dataclasses.replace(
        d,
        peak_flops_per_s={k: v * u.flop / u.s for k, v in d.peak_flops_per_s.items()},
        memory_capacity_bytes=d.memory_capacity_bytes * u.databyte,
        memory_bandwidth_bytes_per_s=d.memory_bandwidth_bytes_per_s * u.databyte / u.s,
    )


@pytest.mark.parametrize("kind", ["gemm", "attention", "elementwise"])
def test_roofline_terms_have_the_dimension_of_time(ureg: pint.UnitRegistry, kind: str) -> None:
    device = _device_with_units(ureg)
    flops = (0 if kind == "elementwise" else 3e12) * ureg.flop
    op = Op(
        "x",
        kind,
        flops=flops,
        weight_bytes=2e9 * ureg.databyte,
        act_bytes=1e6 * ureg.databyte,
        kv_bytes=5e8 * ureg.databyte,
        rows=(100 if kind == "gemm" else 0) * ureg.dimensionless,
    )
    t = roofline(op, device, BF16)
    assert t.memory_s.dimensionality == ureg.s.dimensionality
    assert t.time_s.dimensionality == ureg.s.dimensionality
    if kind != "elementwise":
        assert t.compute_s.dimensionality == ureg.s.dimensionality
    assert (op.flops / op.bytes).dimensionality == (ureg.flop / ureg.databyte).dimensionality
    plain = roofline(
        Op("x", kind, flops.magnitude, 2e9, 1e6, 5e8, rows=100 if kind == "gemm" else 0),
        genmodel.load_device("h100-sxm"),
        BF16,
    )
    assert t.time_s.to(ureg.s).magnitude == pytest.approx(float(plain.time_s))


def test_attended_pairs_is_dimensionless(ureg: pint.UnitRegistry) -> None:
    pairs = attended_pairs(10 * ureg.dimensionless, 5 * ureg.dimensionless, 12 * ureg.dimensionless)
    assert pairs.dimensionless
    assert pairs.magnitude == pytest.approx(sum(min(j, 12) for j in range(11, 16)))
    assert not math.isnan(pairs.magnitude)


# ---- the fixed time of a GEMM kernel (gemm_latency_s) -----------------------------------------------


def _with_gemm_latency(device_id: str, latency_s: float) -> genmodel.Device:
    device = genmodel.load_device(device_id)
    return dataclasses.replace(
        device, efficiency=dataclasses.replace(device.efficiency, gemm_latency_s=latency_s)
    )


def test_each_gemm_kernel_adds_its_fixed_time_to_the_memory_side() -> None:
    # Llama-3.1-8B decode: qkv, o, gate_up, down once per layer (32) and the lm_head once
    ops = _ops("llama-3.1-8b", num_seqs=1, new_tokens=1, past_tokens=1000)
    calls = {name: op.calls for name, op in ops.items() if op.kind == "gemm"}
    assert calls == {"qkv_proj": 32, "o_proj": 32, "gate_up_proj": 32, "down_proj": 32, "lm_head": 1}
    base, slow = genmodel.load_device("h200-sxm"), _with_gemm_latency("h200-sxm", 6e-6)
    for op in ops.values():
        extra = roofline(op, slow, BF16).memory_s - roofline(op, base, BF16).memory_s
        assert extra == pytest.approx(op.calls * 6e-6 if op.kind == "gemm" else 0.0, abs=1e-15)


def test_batched_per_head_gemms_are_one_kernel_per_layer() -> None:
    # MLA's absorbed per-head products run as one batched kernel per layer, not one per head
    m = genmodel.load_model("deepseek-v3")
    ops = _ops("deepseek-v3", num_seqs=4, new_tokens=1, past_tokens=1000, absorb_mla=True)
    assert ops["q_absorb"].calls == ops["v_absorb"].calls == m.num_layers
    assert ops["kv_a_proj"].calls == m.num_layers
    assert "experts" in ops and ops["experts"].calls == 0  # they pay moe_layer_latency_s instead


def test_gemm_latency_matters_most_where_slices_are_small() -> None:
    # the fixed time is a larger share of a tensor-parallel slice's decode step than of a whole one
    from genmodel._ops import roofline_step

    m = genmodel.load_model("llama-3.1-70b")
    shares = []
    for tp in (1, 8):
        ops = forward_ops(m, BF16, num_seqs=1, new_tokens=1, past_tokens=1000, tp=tp)
        base = roofline_step(ops, genmodel.load_device("h200-sxm"), BF16).memory_s
        slow = roofline_step(ops, _with_gemm_latency("h200-sxm", 5.7e-6), BF16).memory_s
        shares.append(slow / base - 1)
    assert shares[1] > 5 * shares[0] > 0


def test_the_evaluator_stacks_the_gemm_latency_exactly() -> None:
    from genmodel._evaluate import time_step
    from genmodel._ops import roofline_step

    m, device = genmodel.load_model("llama-3.1-8b"), _with_gemm_latency("h100-sxm", 5.7e-6)
    seqs = np.array([1.0, 7.0, 300.0])
    ops = forward_ops(m, BF16, num_seqs=seqs, new_tokens=1, past_tokens=900.0, tp=2)
    grid, plain = time_step(ops, device, BF16), roofline_step(ops, device, BF16)
    np.testing.assert_array_equal(grid.memory_s, plain.memory_s)
    np.testing.assert_array_equal(grid.memory_bound_s, plain.memory_bound_s)


@pytest.mark.parametrize("cls", [Op, OpTime, StepRoofline, StepTerms])
def test_the_fast_init_of_the_search_s_values_keeps_the_dataclass_s_signature_and_freezes(cls: type) -> None:
    """The operators', their times' and a pass's ``__init__`` (set through the slots'
    descriptors) takes the fields in order with their defaults (keyword-only ones after ``*``),
    as the dataclass made it, and the instance stays frozen."""
    import inspect

    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.kind == p.KEYWORD_ONLY for p in params] == [bool(f.kw_only) for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]
    values = {f.name: i for i, f in enumerate(fields)}
    made = cls(**values)
    assert {f.name: getattr(made, f.name) for f in fields} == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(fields[0].name, -1)
    assert dataclasses.replace(made, **{fields[-1].name: -1}) == cls(**{**values, fields[-1].name: -1})
