"""The memory hierarchy: KV bytes by attention kind, paging, prefix caching, offload tiers
(host DDR, CXL, NVMe), max concurrency, chunked prefill, expert offload, and the CLI around them."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
from typing import Any

import pytest
from _cli import cli_bad, cli_ok
from hypothesis import given, settings
from hypothesis import strategies as st

import genmodel
from genmodel import AttachedTier, InfeasibleError, Precision, SpecError, kv_bytes_per_sequence
from genmodel import kv_bytes_per_token as kv_per_token
from genmodel.report import estimate_dict

QUICK = settings(max_examples=30, deadline=None)

BF16 = Precision()
CXL = "cxl-samsung-cmm-d-128gb"
GIB = 1024**3


def _kv(kv_dtype: str) -> Precision:
    return Precision(weight_dtype="bf16", act_dtype="bf16", kv_dtype=kv_dtype)


def _with(model_id: str, **changes: Any) -> genmodel.ModelSpec:
    return dataclasses.replace(genmodel.load_model(model_id), **changes)


def _device(device_id: str, capacity_bytes: float) -> genmodel.Device:
    return dataclasses.replace(genmodel.load_device(device_id), memory_capacity_bytes=capacity_bytes)


def _cxl(bandwidth_bytes_per_s: float | None = None, count: int = 1) -> AttachedTier:
    tier = genmodel.load_memory_tier(CXL)
    if bandwidth_bytes_per_s is not None:
        tier = dataclasses.replace(tier, bandwidth_bytes_per_s=bandwidth_bytes_per_s)
    return AttachedTier(tier=tier, count=count)


# ---- 1. KV bytes per token by attention kind and KV dtype ---------------------------------------


@pytest.mark.parametrize(
    ("model", "kv_dtype", "expected"),
    [
        # MHA: 32 layers x (K+V) x 32 KV heads x head_dim 128 x 2 B = 524,288
        ("llama-2-7b", "bf16", 524_288),
        ("llama-2-7b", "fp8", 262_144),  # x 1 B
        ("llama-2-7b", "int8", 262_144),  # x 1 B
        ("llama-2-7b", "int4", 131_072),  # x 0.5 B
        # GQA: 80 layers x 2 x 8 KV heads x 128 x 2 B = 327,680
        ("llama-3.1-70b", "bf16", 327_680),
        ("llama-3.1-70b", "fp8", 163_840),
        ("llama-3.1-70b", "int4", 81_920),
        # GQA: 32 layers x 2 x 8 x 128 x 2 B = 131,072
        ("llama-3.1-8b", "bf16", 131_072),
        # MLA: 61 layers x (kv_lora_rank 512 + rope 64 = 576) x 2 B = 70,272
        ("deepseek-v3", "bf16", 70_272),
        ("deepseek-v3", "fp8", 35_136),  # 61 x 576 x 1 B
        ("deepseek-v3", "int4", 17_568),  # 61 x 576 x 0.5 B
    ],
)
def test_kv_bytes_per_token_hand_computed(model: str, kv_dtype: str, expected: int) -> None:
    m = genmodel.load_model(model)
    assert kv_per_token(m, _kv(kv_dtype)) == pytest.approx(expected, rel=1e-12)
    # one sequence of 1000 tokens on one device: 1000 x the per-token bytes
    assert kv_bytes_per_sequence(m, _kv(kv_dtype), 1000) == pytest.approx(1000 * expected, rel=1e-12)


def test_mqa_kv_is_one_head_and_replicated_over_tp() -> None:
    gqa = genmodel.load_model("llama-3.1-8b")
    mqa = _with("llama-3.1-8b", attention=dataclasses.replace(gqa.attention, num_kv_heads=1))
    # MQA: 32 layers x 2 x 1 KV head x 128 x 2 B = 16,384 B per token
    assert kv_per_token(mqa, BF16) == pytest.approx(16_384)
    # 1/8 of the GQA model's 131,072 (8 KV heads -> 1)
    assert kv_per_token(mqa, BF16) * 8 == pytest.approx(
        kv_per_token(genmodel.load_model("llama-3.1-8b"), BF16)
    )
    # a single KV head cannot be split: every tp rank holds all of it
    one = kv_bytes_per_sequence(mqa, BF16, 4096)
    assert one == pytest.approx(4096 * 16_384)  # 67,108,864
    for tp in (2, 4, 8):
        assert kv_bytes_per_sequence(mqa, BF16, 4096, tp=tp) == pytest.approx(one)
    # ... but pp splits the layers and cp the tokens
    assert kv_bytes_per_sequence(mqa, BF16, 4096, pp=4) == pytest.approx(one / 4)
    assert kv_bytes_per_sequence(mqa, BF16, 4096, cp=2) == pytest.approx(one / 2)


def test_sliding_window_layers_stop_growing_past_the_window_hybrid_keeps_growing() -> None:
    # llama-3.1-8b: 2 x 8 KV heads x 128 x 2 B = 4,096 B per token per layer
    per_layer_token = 4096
    window = 4096
    full_swa = _with("llama-3.1-8b", sliding_window=window, num_sliding_window_layers=32)
    hybrid = _with("llama-3.1-8b", sliding_window=window, num_sliding_window_layers=24)  # 8 full layers
    # below the window every layer keeps every token: 32 x 1000 x 4096 = 131,072,000
    for m in (full_swa, hybrid):
        assert kv_bytes_per_sequence(m, BF16, 1000) == pytest.approx(131_072_000)
        # at the window: 32 x 4096 x 4096 = 536,870,912
        assert kv_bytes_per_sequence(m, BF16, window) == pytest.approx(536_870_912)
    # all layers windowed: flat past the window
    for context in (window + 1, 8192, 131_072):
        assert kv_bytes_per_sequence(full_swa, BF16, context) == pytest.approx(536_870_912)
    # hybrid: 8 full layers x 4096 extra tokens x 4096 B = 134,217,728 more at 8192 tokens
    assert kv_bytes_per_sequence(hybrid, BF16, 8192) == pytest.approx(536_870_912 + 134_217_728)
    # at 131,072 tokens: (8 x 131,072 + 24 x 4096) x 4096 B = 4,697,620,480
    assert kv_bytes_per_sequence(hybrid, BF16, 131_072) == pytest.approx(
        (8 * 131_072 + 24 * window) * per_layer_token
    )
    assert (8 * 131_072 + 24 * window) * per_layer_token == 4_697_620_480
    # kv_bytes_per_token ignores windows (all layers, no window)
    assert kv_per_token(hybrid, BF16) == pytest.approx(32 * per_layer_token)


@QUICK
@given(
    windowed=st.integers(min_value=0, max_value=32),
    window=st.integers(min_value=1, max_value=8192),
    a=st.integers(min_value=1, max_value=100_000),
    b=st.integers(min_value=1, max_value=100_000),
)
def test_kv_with_windows_grows_with_context_no_faster_than_full_attention(
    windowed: int, window: int, a: int, b: int
) -> None:
    m = _with("llama-3.1-8b", sliding_window=window, num_sliding_window_layers=windowed)
    lo, hi = sorted((a, b))
    grow = kv_bytes_per_sequence(m, BF16, hi) - kv_bytes_per_sequence(m, BF16, lo)
    assert grow >= 0
    # never more than the full-attention growth (32 layers x 4096 B per token), never less than the
    # growth of its (32 - windowed) full layers
    assert grow <= (hi - lo) * 32 * 4096 * (1 + 1e-12)
    assert grow >= (hi - lo) * (32 - windowed) * 4096 * (1 - 1e-12)


def test_estimate_kv_dtype_scales_the_kv_cache() -> None:
    def kv(kv_dtype: str) -> float:
        est = genmodel.estimate(
            "llama-3.1-8b", "h100-sxm", input_tokens=1008, output_tokens=16, batch=4, kv_dtype=kv_dtype
        )
        return est.memory.kv_cache_bytes_per_device

    # 4 sequences x 1024 tokens (64 whole blocks) x 131,072 B = 536,870,912
    assert kv("bf16") == pytest.approx(536_870_912)
    assert kv("fp8") == pytest.approx(536_870_912 / 2)
    assert kv("int8") == pytest.approx(536_870_912 / 2)
    assert kv("int4") == pytest.approx(536_870_912 / 4)


# ---- 2. paged KV block waste --------------------------------------------------------------------


def _kv_bytes(input_tokens: int, output_tokens: int, **options: Any) -> float:
    est = genmodel.estimate(
        "llama-3.1-8b",
        "a100-sxm-80gb",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=1,
        **options,
    )
    return est.memory.kv_cache_bytes_per_device


def test_paged_kv_rounds_a_sequence_up_to_whole_blocks() -> None:
    # 1000 tokens in blocks of 16 = 62.5 -> 63 blocks = 1008 tokens x 131,072 B = 132,120,576
    assert _kv_bytes(999, 1) == pytest.approx(132_120_576)
    assert _kv_bytes(999, 1) == pytest.approx(_kv_bytes(1007, 1))  # 1008 tokens: exactly 63 blocks
    assert _kv_bytes(1008, 1) > _kv_bytes(1007, 1)  # 1009 tokens: a 64th block
    # no paging: 1000 x 131,072 = 131,072,000
    assert _kv_bytes(999, 1, kv_block_tokens=1) == pytest.approx(131_072_000)
    # a 256-token block: 1000 -> 4 blocks = 1024 tokens x 131,072 = 134,217,728
    assert _kv_bytes(999, 1, kv_block_tokens=256) == pytest.approx(134_217_728)


@QUICK
@given(context=st.integers(min_value=2, max_value=50_000), block=st.sampled_from([1, 8, 16, 32, 128]))
def test_block_waste_is_under_one_block(context: int, block: int) -> None:
    paged = _kv_bytes(context - 1, 1, kv_block_tokens=block)
    exact = _kv_bytes(context - 1, 1, kv_block_tokens=1)
    assert exact <= paged < exact + block * 131_072
    assert genmodel.paged_tokens(context, block) % block == 0


# ---- 3. prefix caching --------------------------------------------------------------------------


def _prefix(batch: int, hit: float) -> genmodel.Estimate:
    return genmodel.estimate(
        "llama-3.1-8b",
        "a100-sxm-80gb",
        input_tokens=4000,
        output_tokens=100,
        batch=batch,
        prefix_hit_rate=hit,
    )


def test_prefix_cache_shortens_ttft_and_shares_the_prefix_kv() -> None:
    for batch in (1, 8):
        assert _prefix(batch, 0.5).ttft_s < _prefix(batch, 0.0).ttft_s
    # batch 8, no sharing: 4100 tokens -> 257 blocks = 4112 tokens; 8 x 4112 x 131,072 = 4,311,744,512
    assert _prefix(8, 0.0).memory.kv_cache_bytes_per_device == pytest.approx(4_311_744_512)
    # 50 % of 4000 = 2000 shared tokens (125 whole blocks) stored once, then each sequence's own
    # 2100 tokens -> 132 blocks = 2112: (2000 + 8 x 2112) x 131,072 = 2,476,736,512
    assert _prefix(8, 0.5).memory.kv_cache_bytes_per_device == pytest.approx(2_476_736_512)
    # one sequence: nothing to share, 2000 + 2112 = 4112 tokens either way
    assert _prefix(1, 0.5).memory.kv_cache_bytes_per_device == pytest.approx(
        _prefix(1, 0.0).memory.kv_cache_bytes_per_device
    )
    # a decode step still reads the same KV: batch-1 TPOT about unchanged
    assert _prefix(1, 0.5).tpot_s == pytest.approx(_prefix(1, 0.0).tpot_s, rel=1e-3)


@QUICK
@given(
    batch=st.integers(min_value=1, max_value=32),
    low=st.floats(min_value=0.0, max_value=0.95),
    high=st.floats(min_value=0.0, max_value=0.95),
)
def test_more_prefix_hits_never_cost_ttft_or_kv(batch: int, low: float, high: float) -> None:
    low, high = sorted((low, high))
    a, b = _prefix(batch, low), _prefix(batch, high)
    assert b.ttft_s <= a.ttft_s * (1 + 1e-9)
    assert b.memory.kv_cache_bytes_per_device <= a.memory.kv_cache_bytes_per_device


# ---- 4. offloading never increases HBM use -------------------------------------------------------

TIERS = ["host-ddr5", CXL, f"{CXL}:4", "cxl-astera-leo-512gb"]


@QUICK
@given(
    model=st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"]),
    hardware=st.sampled_from(["a100-sxm-80gb", "h100-sxm"]),
    tp=st.sampled_from([1, 2]),
    batch=st.integers(min_value=1, max_value=64),
    context=st.integers(min_value=1024, max_value=131_072),
    kind=st.sampled_from(["kv_offload", "weight_offload", "expert_offload"]),
    tier=st.sampled_from(TIERS),
)
def test_offloading_never_increases_device_memory(
    model: str, hardware: str, tp: int, batch: int, context: int, kind: str, tier: str
) -> None:
    kw: dict[str, Any] = {"input_tokens": context - 256, "output_tokens": 256, "batch": batch, "tp": tp}
    kw["allow_long_context"] = True  # Mixtral-8x7B is trained to 32,768 tokens; memory is the law here
    tiered: dict[str, Any] = {**kw, kind: tier}
    if kind == "expert_offload" and model != "mixtral-8x7b":
        with pytest.raises(SpecError, match="has no experts"):
            genmodel.estimate(model, hardware, **tiered)
        return
    try:
        base = genmodel.estimate(model, hardware, **kw)
    except InfeasibleError:
        base = None
    try:
        off = genmodel.estimate(model, hardware, **tiered)
    except InfeasibleError:
        assert base is None  # an offload tier never makes a feasible plan infeasible
        return
    m = off.memory
    assert m.tiers[0].id == genmodel.load_device(hardware).id
    assert [t.id for t in m.tiers[1:]] == [tier]
    assert m.device_bytes_per_device + m.offloaded_bytes_per_device == pytest.approx(m.total_bytes_per_device)
    assert m.offloaded_bytes_per_device >= 0
    if m.device_bytes_per_device > m.usable_bytes_per_device * (1 + 1e-9):
        # still over (an explicit batch may not fit): the tier already took all it may take
        assert not m.fits
        moved = {"kv_offload": ["kv"], "expert_offload": ["experts"], "weight_offload": ["weights"]}[kind]
        if kind == "weight_offload" and m.expert_bytes_per_device:
            moved.append("experts")  # experts go to the weights' tier too
        for what in moved:
            assert m.spill_frac(what) == pytest.approx(1.0)
    if base is None:
        return
    assert m.device_bytes_per_device <= base.memory.device_bytes_per_device * (1 + 1e-12)
    # the same bytes in all, only placed differently
    assert m.total_bytes_per_device == pytest.approx(base.memory.total_bytes_per_device)
    if base.memory.fits:
        # it fits: nothing spills and decode runs as without a tier
        assert m.offloaded_bytes_per_device == 0
        assert off.tpot_s == pytest.approx(base.tpot_s, rel=1e-12)
        assert off.decode.offload_s == 0
    else:
        assert m.offloaded_bytes_per_device > 0


# ---- 5. CXL bandwidth and count ------------------------------------------------------------------

# llama-3.1-70b on 2x H100 (bf16 weights fill 70.6 of 77.3 GB usable), 8 x 33,000-token sequences:
# 8 x 5.4 GB of KV per device, most of it spills to the CXL tier.
SPILL: dict[str, Any] = {"tp": 2, "input_tokens": 32_000, "output_tokens": 1000, "batch": 8}


def _spill(tier: AttachedTier | str | None, **options: Any) -> genmodel.Estimate:
    return genmodel.estimate("llama-3.1-70b", "h100-sxm", kv_offload=tier, **{**SPILL, **options})


def test_cxl_bandwidth_per_device_and_swap_time_hand_computed() -> None:
    # one sequence's KV per device: 33,000 -> 2063 blocks = 33,008 tokens x 80 x 2 x (8/2) x 128 x 2 B
    # = 33,008 x 163,840 = 5,408,030,720 B
    per_seq = 33_008 * 163_840
    assert per_seq == 5_408_030_720
    # 1 expander of 16 GB/s (its own x8 link allows 32): min(16, 32) x 1 / 2 devices = 8 GB/s per device,
    # under the H100's 64 GB/s PCIe Gen5; x 0.8 offload_link_frac = 6.4 GB/s
    est = _spill(_cxl(16e9, count=1))
    assert est.memory.kv_bytes_per_sequence == pytest.approx(per_seq)
    assert est.memory.tiers[1].bandwidth_bytes_per_s == pytest.approx(6.4e9)
    assert est.memory.swap_time_s() == pytest.approx(per_seq / 6.4e9)  # 0.8450048 s
    # capacity: 128 GiB x 1 / 2 devices sharing the node's expander = 64 GiB each
    assert est.memory.tiers[1].capacity_bytes == pytest.approx(64 * GIB)
    # 4 stock expanders (36 GB/s, capped by their 32 GB/s x8 links): 4 x 32 / 2 = 64 GB/s,
    # = the PCIe Gen5 x16 host link; x 0.8 = 51.2 GB/s; 4 x 128 GiB / 2 = 256 GiB per device
    four = _spill(f"{CXL}:4")
    assert four.memory.tiers[1].id == f"{CXL}:4"
    assert four.memory.tiers[1].bandwidth_bytes_per_s == pytest.approx(51.2e9)
    assert four.memory.tiers[1].capacity_bytes == pytest.approx(256 * GIB)
    assert four.memory.swap_time_s() == pytest.approx(0.1056256)  # 5,408,030,720 / 51.2e9
    # no KV tier: no swap time
    assert _spill(None, weight_offload="host-ddr5").memory.swap_time_s() is None


def test_tier_bound_transfer_halves_when_the_bandwidth_doubles() -> None:
    # 4 and 8 GB/s on 1 expander -> 1.6 and 3.2 GB/s per device, both far under the 51.2 GB/s host
    # link, so the tier alone sets the transfer time: exactly 2x apart
    slow, fast = _spill(_cxl(4e9)), _spill(_cxl(8e9))
    # bandwidth does not change what spills
    assert [s.bytes for s in slow.memory.spills] == [s.bytes for s in fast.memory.spills]
    t_slow = slow.decode.offload_s + slow.decode.offload_hidden_s
    t_fast = fast.decode.offload_s + fast.decode.offload_hidden_s
    assert t_fast > 0
    assert t_slow == pytest.approx(2 * t_fast, rel=1e-9)
    assert slow.tpot_s > fast.tpot_s


@QUICK
@given(
    b1=st.floats(min_value=1e8, max_value=2e11),
    b2=st.floats(min_value=1e8, max_value=2e11),
    count=st.integers(min_value=1, max_value=8),
    overlap=st.booleans(),
)
def test_more_cxl_bandwidth_never_slows_decode(b1: float, b2: float, count: int, overlap: bool) -> None:
    lo, hi = sorted((b1, b2))
    slow = _spill(_cxl(lo, count), offload_overlap=overlap)
    fast = _spill(_cxl(hi, count), offload_overlap=overlap)
    assert fast.tpot_s <= slow.tpot_s * (1 + 1e-12)
    assert fast.ttft_s <= slow.ttft_s * (1 + 1e-12)


@QUICK
@given(
    n1=st.integers(min_value=1, max_value=16),
    n2=st.integers(min_value=1, max_value=16),
    bandwidth=st.sampled_from([2e9, 8e9, 36e9]),
)
def test_more_cxl_devices_never_slow_decode(n1: int, n2: int, bandwidth: float) -> None:
    lo, hi = sorted((n1, n2))
    few, many = _spill(_cxl(bandwidth, lo)), _spill(_cxl(bandwidth, hi))
    assert many.tpot_s <= few.tpot_s * (1 + 1e-12)
    assert many.memory.tiers[1].capacity_bytes >= few.memory.tiers[1].capacity_bytes


# ---- 6. max concurrency -------------------------------------------------------------------------


def test_max_concurrency_hand_computed() -> None:
    # llama-3.1-8b bf16 on one A100-80GB, 8192-token sequences (8191 + 1):
    # usable 80 GiB x 0.9 = 77,309,411,328; weights 2 x 8,030,261,248 = 16,060,522,496;
    # prefill activations min(8191 x seqs, 8192) x (4 x 4096 + 3 x 14,336) x 2 B = 973,078,528;
    # per sequence: KV 8192 x 131,072 = 1,073,741,824 + fp32 logits 128,256 x 4 = 513,024
    # -> seqs <= (77,309,411,328 - 16,060,522,496 - 973,078,528) / 1,074,254,848 = 56.1 -> 56
    assert genmodel.max_concurrency("llama-3.1-8b", "a100-sxm-80gb", context_tokens=8192) == 56
    # too small to hold the 16 GB of weights: 0
    assert (
        genmodel.max_concurrency("llama-3.1-8b", _device("a100-sxm-80gb", 16 * GIB), context_tokens=8192) == 0
    )
    with pytest.raises(SpecError, match="must exceed"):
        genmodel.max_concurrency("llama-3.1-8b", "a100-sxm-80gb", context_tokens=100, output_tokens=100)


@QUICK
@given(
    c1=st.floats(min_value=8 * GIB, max_value=320 * GIB),
    c2=st.floats(min_value=8 * GIB, max_value=320 * GIB),
    context=st.sampled_from([2048, 8192, 32_768]),
)
def test_max_concurrency_grows_with_device_capacity(c1: float, c2: float, context: int) -> None:
    lo, hi = sorted((c1, c2))
    small = genmodel.max_concurrency("llama-3.1-8b", _device("a100-sxm-80gb", lo), context_tokens=context)
    large = genmodel.max_concurrency("llama-3.1-8b", _device("a100-sxm-80gb", hi), context_tokens=context)
    assert 0 <= small <= large


@QUICK
@given(n1=st.integers(min_value=1, max_value=8), n2=st.integers(min_value=1, max_value=8))
def test_max_concurrency_grows_with_cxl_count(n1: int, n2: int) -> None:
    lo, hi = sorted((n1, n2))

    def users(n: int) -> int:
        return genmodel.max_concurrency(
            "llama-3.1-70b",
            "h100-sxm",
            context_tokens=33_000,
            output_tokens=1000,
            tp=2,
            kv_offload=f"{CXL}:{n}",
        )

    assert users(lo) <= users(hi)
    # and a tier always adds room: at least as many as HBM alone
    hbm = genmodel.max_concurrency(
        "llama-3.1-70b", "h100-sxm", context_tokens=33_000, output_tokens=1000, tp=2
    )
    assert hbm <= users(lo)


def test_cxl_capacity_bounds_the_users_that_fit() -> None:
    # llama-3.1-70b bf16 over tp=2, per device: layers 80 x (2 x 8192^2 + 2 x 8192 x 1024
    # + 3 x 8192 x 28,672) / 2 = 34,225,520,640 + norms 80 x 2 x 8192 = 1,310,720 + embedding and
    # LM head 2 x 128,256 x 8192 / 2 = 1,050,673,152 + final norm 8192 = 35,277,512,704 x 2 B
    weights = 70_555_025_408
    # n users: activations 8192 x (4 x 8192 + 3 x 28,672 / 2) x 2 B = 1,241,513,984 + n x 128,256 / 2 x 4 B;
    # HBM holds usable 77,309,411,328 - weights - activations of KV, the 4 expanders 256 GiB
    # = 274,877,906,944 B per device, each user 5,408,030,720 B of KV per device.
    # n = 51: HBM 5,499,789,824 + tier 270,309,776,896 (fits); n = 52: the tier needs 275,718,064,128
    users = genmodel.max_concurrency(
        "llama-3.1-70b", "h100-sxm", context_tokens=33_000, output_tokens=1000, tp=2, kv_offload=f"{CXL}:4"
    )
    assert users == 51
    est = _spill(f"{CXL}:4", batch=51)
    assert est.memory.weights_bytes_per_device == pytest.approx(weights)
    assert est.memory.activation_bytes_per_device == pytest.approx(1_241_513_984 + 51 * 256_512)
    assert est.memory.tiers[1].kv_bytes == pytest.approx(270_309_776_896)
    assert est.memory.fits
    assert not _spill(f"{CXL}:4", batch=52).memory.fits


@QUICK
@given(
    a=st.integers(min_value=512, max_value=131_072),
    b=st.integers(min_value=512, max_value=131_072),
    offload=st.sampled_from([None, "host-ddr5", f"{CXL}:2"]),
)
def test_max_concurrency_falls_with_context(a: int, b: int, offload: str | None) -> None:
    short, long = sorted((a, b))

    def users(context: int) -> int:
        return genmodel.max_concurrency(
            "llama-3.1-8b", "h100-sxm", context_tokens=context, kv_offload=offload
        )

    assert users(short) >= users(long)


def test_memory_report_curve_matches_max_concurrency_and_the_batch() -> None:
    r = genmodel.memory_report(
        "llama-3.1-70b",
        "h100-sxm",
        input_tokens=32_000,
        output_tokens=1000,
        tp=2,
        kv_offload=f"{CXL}:4",
        contexts=(8192, 33_000, 131_072),
    )
    assert [row["context_tokens"] for row in r["concurrency"]] == [8192, 33_000, 131_072]
    curve = [row["max_concurrency"] for row in r["concurrency"]]
    assert curve == sorted(curve, reverse=True)
    # the curve at the report's own context is the report's batch
    assert curve[1] == r["batch"] == 51
    assert [t["id"] for t in r["tiers"]] == ["h100-sxm", f"{CXL}:4"]
    assert r["kv_bytes_per_token_per_device"] == pytest.approx(163_840)  # 327,680 / tp 2
    assert r["kv_bytes_per_sequence"] == pytest.approx(5_408_030_720)
    assert r["swap_s_per_sequence"] == pytest.approx(0.1056256)
    assert r["fits"] is True
    for tier in r["tiers"]:
        assert tier["bytes_per_device"] <= tier["capacity_bytes_per_device"] * (1 + 1e-9)


# ---- 7. the offload transfer --------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["host-ddr5", f"{CXL}:4", "cxl-astera-leo-512gb"])
def test_spilled_kv_slows_decode_fitting_kv_does_not(tier: str) -> None:
    # batch 8 spills (explicit batches beyond memory still get an estimate, fits=False, without a tier)
    hbm, off = _spill(None), _spill(tier)
    assert not hbm.memory.fits
    assert off.memory.spill_frac("kv") > 0
    assert off.tpot_s > hbm.tpot_s
    assert off.decode.offload_s > 0
    assert off.decode.bound == "offload"
    # batch 1 fits in HBM: nothing spills, the same TPOT
    kw: dict[str, Any] = {**SPILL, "batch": 1}
    a = genmodel.estimate("llama-3.1-70b", "h100-sxm", **kw)
    b = genmodel.estimate("llama-3.1-70b", "h100-sxm", kv_offload=tier, **kw)
    assert a.memory.fits
    assert b.memory.offloaded_bytes_per_device == 0
    assert b.tpot_s == a.tpot_s
    assert b.decode.offload_s == 0


@QUICK
@given(
    batch=st.integers(min_value=1, max_value=48),
    context=st.integers(min_value=2048, max_value=65_536),
    tier=st.sampled_from(TIERS),
)
def test_on_demand_fetch_is_never_faster_than_prefetch(batch: int, context: int, tier: str) -> None:
    kw: dict[str, Any] = {
        "tp": 2,
        "input_tokens": context - 128,
        "output_tokens": 128,
        "batch": batch,
        "kv_offload": tier,
    }
    pre = genmodel.estimate("llama-3.1-70b", "h100-sxm", **kw)
    lazy = genmodel.estimate("llama-3.1-70b", "h100-sxm", offload_overlap=False, **kw)
    assert lazy.tpot_s >= pre.tpot_s
    assert lazy.ttft_s >= pre.ttft_s
    # the same transfer; on demand none of it hides
    assert lazy.decode.offload_hidden_s == 0
    transfer = pre.decode.offload_s + pre.decode.offload_hidden_s
    assert lazy.decode.offload_s == pytest.approx(transfer, rel=1e-12, abs=1e-15)
    assert lazy.tpot_s == pytest.approx(pre.tpot_s + pre.decode.offload_hidden_s, rel=1e-12)


def test_sparse_attention_shortens_long_context_decode() -> None:
    kw: dict[str, Any] = {"input_tokens": 32_000, "output_tokens": 1000, "batch": 8}
    dense = genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw)
    sparse = genmodel.estimate("llama-3.1-8b", "h100-sxm", sparse_attention_frac=0.25, **kw)
    assert dense.memory.fits
    assert sparse.tpot_s < dense.tpot_s
    # it reads less KV, but still holds all of it
    assert sparse.memory.kv_cache_bytes_per_device == dense.memory.kv_cache_bytes_per_device
    # prefill reads everything either way
    assert sparse.ttft_s == pytest.approx(dense.ttft_s)
    # with the KV spilled to a tier, fewer bytes cross the link too
    off_dense, off_sparse = _spill("host-ddr5"), _spill("host-ddr5", sparse_attention_frac=0.25)
    assert off_sparse.tpot_s < off_dense.tpot_s
    assert off_sparse.decode.offload_s + off_sparse.decode.offload_hidden_s < (
        off_dense.decode.offload_s + off_dense.decode.offload_hidden_s
    )


def test_kv_window_forces_old_kv_to_the_tier_even_when_it_fits() -> None:
    kw: dict[str, Any] = {"input_tokens": 32_000, "output_tokens": 1000}
    plain = genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", batch=1, **kw)
    tier = genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", batch=1, kv_offload="host-ddr5", **kw)
    windowed = genmodel.estimate(
        "llama-3.1-8b", "a100-sxm-80gb", batch=1, kv_offload="host-ddr5", kv_window=4096, **kw
    )
    assert plain.memory.fits
    assert tier.memory.tiers[1].kv_bytes == 0  # it fits: a tier alone moves nothing
    # 33,000 -> 33,008 tokens in blocks; the last 4096 stay: (33,008 - 4096) x 131,072 = 3,789,553,664
    assert windowed.memory.tiers[1].kv_bytes == pytest.approx(3_789_553_664)
    assert windowed.memory.tiers[0].kv_bytes == pytest.approx(4096 * 131_072)  # 536,870,912
    assert windowed.tpot_s > plain.tpot_s
    assert windowed.decode.offload_s + windowed.decode.offload_hidden_s > 0
    # 4 sequences: 4 x 3,789,553,664 = 15,158,214,656 forced out
    four = genmodel.estimate(
        "llama-3.1-8b", "a100-sxm-80gb", batch=4, kv_offload="host-ddr5", kv_window=4096, **kw
    )
    assert four.memory.tiers[1].kv_bytes == pytest.approx(15_158_214_656)
    # a window longer than the context moves nothing
    wide = genmodel.estimate(
        "llama-3.1-8b", "a100-sxm-80gb", batch=1, kv_offload="host-ddr5", kv_window=40_000, **kw
    )
    assert wide.memory.tiers[1].kv_bytes == 0
    assert wide.tpot_s == plain.tpot_s
    d = estimate_dict(windowed)
    assert d["offload"]["kv_window"] == 4096
    assert d["offload"]["kv"] == "host-ddr5"


def test_kv_window_never_moves_more_kv_than_there_is() -> None:
    # usable = weights + 1.0 GB: 200 sequences' prefill activations and logits
    # (973,078,528 + 200 x 513,024 = 1,075,683,328 B) alone overflow it, so after the window's forced
    # move the rest of the KV goes too, and no more than the KV there is
    weights = 16_060_522_496
    device = _device("a100-sxm-80gb", (weights + 1e9) / 0.9)
    est = genmodel.estimate(
        "llama-3.1-8b",
        device,
        input_tokens=32_000,
        output_tokens=1000,
        batch=200,
        kv_offload="host-ddr5",
        kv_window=4096,
    )
    m = est.memory
    assert m.tiers[0].kv_bytes == pytest.approx(0, abs=1)
    # 200 x 33,008 x 131,072 = 865,284,915,200
    assert m.tiers[1].kv_bytes == pytest.approx(865_284_915_200)
    assert m.spill_frac("kv") == pytest.approx(1.0)
    assert m.tiers[0].bytes == pytest.approx(weights + 1_075_683_328)
    assert not m.fits


def test_tiers_share_the_host_link() -> None:
    # llama-3.1-70b bf16 (141 GB) on one H100: KV to 4 CXL expanders, weights to host DDR5; both reach
    # the GPU at 51.2 GB/s per device (64 GB/s PCIe Gen5 x 0.8), and both share that one host link
    est = genmodel.estimate(
        "llama-3.1-70b",
        "h100-sxm",
        input_tokens=4000,
        output_tokens=96,
        batch=4,
        kv_offload=f"{CXL}:4",
        weight_offload="host-ddr5",
    )
    m = est.memory
    assert [t.id for t in m.tiers] == ["h100-sxm", f"{CXL}:4", "host-ddr5"]
    assert m.host_link_bytes_per_s == pytest.approx(51.2e9)
    assert m.spill_frac("kv") == pytest.approx(1.0)  # KV moves first
    f_w = m.spill_frac("weights")
    assert 0 < f_w < 1
    # 1 GB of KV reads and 1 GB of weight reads: (1 + f_w) GB through the one 51.2 GB/s link, not
    # max(1, f_w) GB as two independent paths would give
    assert m.transfer_time_s(kv=1e9, experts=0, weights=1e9) == pytest.approx((1 + f_w) * 1e9 / 51.2e9)
    assert m.transfer_time_s(kv=0, experts=0, weights=0) == 0
    # A100: host DDR5 (614 GB/s) behind PCIe Gen4 x16 (32 GB/s) -> 32 x 0.8 = 25.6 GB/s per device
    a100 = genmodel.estimate(
        "llama-3.1-8b", "a100-sxm-80gb", input_tokens=1000, output_tokens=10, kv_offload="host-ddr5"
    )
    assert a100.memory.tiers[1].bandwidth_bytes_per_s == pytest.approx(25.6e9)
    assert a100.memory.host_link_bytes_per_s == pytest.approx(25.6e9)


def test_kv_window_needs_a_kv_tier() -> None:
    with pytest.raises(SpecError, match="kv_window"):
        genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", input_tokens=100, output_tokens=10, kv_window=64)
    with pytest.raises(SpecError, match="kv_window"):
        genmodel.estimate(
            "llama-3.1-8b",
            "a100-sxm-80gb",
            input_tokens=100,
            output_tokens=10,
            kv_window=64,
            weight_offload="host-ddr5",
        )


def test_a_tier_too_small_for_one_sequence_is_infeasible_and_named() -> None:
    # 24 GiB device: 21.6 GiB usable beside 16 GB of weights; a 64K-token sequence has 8.6 GB of KV,
    # so a few GB spill, more than a 1 GiB expander holds
    device = _device("a100-sxm-80gb", 24 * GIB)
    tiny = AttachedTier(tier=dataclasses.replace(genmodel.load_memory_tier(CXL), capacity_bytes=GIB))
    kw: dict[str, Any] = {"input_tokens": 64_000, "output_tokens": 1000}
    with pytest.raises(InfeasibleError, match=CXL):
        genmodel.estimate("llama-3.1-8b", device, kv_offload=tiny, **kw)
    assert genmodel.max_concurrency("llama-3.1-8b", device, context_tokens=65_000, kv_offload=tiny) == 0
    assert genmodel.max_concurrency("llama-3.1-8b", device, context_tokens=65_000, kv_offload=CXL) >= 1


# ---- 8. chunked prefill -------------------------------------------------------------------------


def _chunked(input_tokens: int, chunk: int | None, batch: int = 1) -> genmodel.Estimate:
    return genmodel.estimate(
        "llama-3.1-8b",
        "h100-sxm",
        input_tokens=input_tokens,
        output_tokens=64,
        batch=batch,
        prefill_chunk=chunk,
    )


def test_chunked_prefill_trades_ttft_for_a_shorter_decode_stall() -> None:
    whole = _chunked(8192, None)
    chunked = _chunked(8192, 512)
    # 16 passes: the weights are read 16 times and 16 step overheads are paid
    assert chunked.ttft_s > whole.ttft_s
    assert chunked.ttft_s >= whole.ttft_s + 15 * whole.prefill.overhead_s * (1 - 1e-9)
    assert chunked.prefill.overhead_s == pytest.approx(16 * whole.prefill.overhead_s)
    assert whole.decode_stall_s is not None and chunked.decode_stall_s is not None
    assert chunked.decode_stall_s < whole.decode_stall_s
    # without chunks a running batch waits for the whole one-sequence prefill
    assert whole.decode_stall_s == pytest.approx(whole.ttft_s)
    assert chunked.tpot_s == pytest.approx(whole.tpot_s)


@QUICK
@given(
    input_tokens=st.integers(min_value=2, max_value=20_000),
    chunk=st.integers(min_value=1, max_value=20_000),
    batch=st.integers(min_value=1, max_value=8),
)
def test_chunked_prefill_never_shortens_ttft_nor_lengthens_the_stall(
    input_tokens: int, chunk: int, batch: int
) -> None:
    chunk = max(chunk, input_tokens // 64)  # at most 64 passes (keeps the run quick)
    whole, chunked = _chunked(input_tokens, None, batch), _chunked(input_tokens, chunk, batch)
    assert whole.decode_stall_s is not None and chunked.decode_stall_s is not None
    assert chunked.ttft_s >= whole.ttft_s * (1 - 1e-12)
    assert chunked.decode_stall_s <= whole.decode_stall_s * (1 + 1e-12)
    if chunk >= input_tokens:  # one chunk: one pass, as without chunking
        assert chunked.ttft_s == pytest.approx(whole.ttft_s, rel=1e-12)
        assert chunked.decode_stall_s == pytest.approx(whole.decode_stall_s, rel=1e-12)


# ---- 9. expert offload --------------------------------------------------------------------------


def _experts(hit: float | None, hardware: str = "a100-sxm-80gb", **options: Any) -> genmodel.Estimate:
    # mixtral-8x7b bf16 needs 93.4 GB of weights: on one 80 GB device part of its experts spill
    return genmodel.estimate(
        "mixtral-8x7b",
        hardware,
        input_tokens=1000,
        output_tokens=200,
        batch=1,
        expert_offload="host-ddr5",
        expert_hit_rate=hit,
        **options,
    )


def test_expert_offload_spills_experts_only_and_all_hits_hide_it() -> None:
    with pytest.raises(InfeasibleError, match="mixtral-8x7b"):
        genmodel.estimate("mixtral-8x7b", "a100-sxm-80gb", input_tokens=1000, output_tokens=200)
    est = _experts(None)
    m = est.memory
    assert 0 < m.spill_frac("experts") < 1
    assert m.spill_frac("weights") == 0
    assert m.spill_frac("kv") == 0
    assert m.tiers[1].weights_bytes == pytest.approx(m.spill_frac("experts") * m.expert_bytes_per_device)
    assert m.device_bytes_per_device <= m.usable_bytes_per_device * (1 + 1e-9)
    for overlap in (True, False):
        hit = _experts(1.0, offload_overlap=overlap)
        assert hit.decode.offload_s == 0
        assert hit.decode.offload_hidden_s == 0
        assert hit.prefill.offload_s == 0
        assert hit.tpot_s < est.tpot_s
    # the default hit rate is the share of experts kept on the device
    kept = _experts(1 - m.spill_frac("experts"))
    assert kept.tpot_s == pytest.approx(est.tpot_s, rel=1e-9)
    assert kept.ttft_s == pytest.approx(est.ttft_s, rel=1e-9)


@QUICK
@given(
    h1=st.floats(min_value=0.0, max_value=1.0),
    h2=st.floats(min_value=0.0, max_value=1.0),
    hardware=st.sampled_from(["a100-sxm-80gb", "h100-sxm"]),
    overlap=st.booleans(),
)
def test_fewer_expert_hits_never_decode_faster(h1: float, h2: float, hardware: str, overlap: bool) -> None:
    lo, hi = sorted((h1, h2))
    worse, better = (
        _experts(lo, hardware, offload_overlap=overlap),
        _experts(hi, hardware, offload_overlap=overlap),
    )
    assert worse.tpot_s >= better.tpot_s * (1 - 1e-12)
    assert worse.ttft_s >= better.ttft_s * (1 - 1e-12)


def test_expert_hit_rate_out_of_range_and_experts_of_a_dense_model_are_rejected() -> None:
    with pytest.raises(SpecError, match="expert_hit_rate"):
        _experts(1.5)
    with pytest.raises(SpecError, match="has no experts"):
        genmodel.estimate(
            "llama-3.1-8b", "h100-sxm", input_tokens=100, output_tokens=10, expert_offload="host-ddr5"
        )


# ---- tiers: ids, counts, unreachable tiers, JSON ----------------------------------------------------


def test_attached_tier_parses_id_and_count() -> None:
    assert genmodel.attached_tier(None) is None
    one = genmodel.attached_tier("host-ddr5")
    assert one is not None and one.count == 1 and one.label == "host-ddr5"
    four = genmodel.attached_tier(f"{CXL}:4")
    assert four is not None and four.count == 4 and four.label == f"{CXL}:4"
    # 4 x 128 GiB over 8 devices: 64 GiB each
    assert four.capacity_per_device(8) == pytest.approx(64 * GIB)
    given_tier = _cxl(count=2)
    assert genmodel.attached_tier(given_tier) is given_tier
    empty = genmodel.attached_tier(f"{CXL}:")  # an empty count means 1
    assert empty is not None and empty.count == 1
    for bad in (f"{CXL}:0", f"{CXL}:-1", f"{CXL}:x"):
        with pytest.raises(SpecError, match="count"):
            genmodel.attached_tier(bad)
    with pytest.raises(genmodel.UnknownEntryError):
        genmodel.attached_tier("no-such-tier")
    with pytest.raises(SpecError, match="count"):
        AttachedTier(tier=genmodel.load_memory_tier(CXL), count=0)


def test_host_names_the_devices_own_host_tier() -> None:
    kw: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 10}
    # DGX A100 hosts are DDR4, DGX H100 hosts DDR5 (hardware_db/devices/*.yaml memory.host.tier)
    for hardware in ("a100-sxm-80gb", "h100-sxm"):
        device = genmodel.load_device(hardware)
        assert device.host is not None
        est = genmodel.estimate("llama-3.1-8b", hardware, kv_offload="host", **kw)
        assert est.memory.tiers[1].id == device.host.tier_id
        assert estimate_dict(est)["offload"]["kv"] == device.host.tier_id
    a100_host = genmodel.load_device("a100-sxm-80gb").host
    assert a100_host is not None and a100_host.tier_id == "host-ddr4"
    two = genmodel.attached_tier("host:2", "kv_offload", genmodel.load_device("h100-sxm"))
    assert two is not None and two.label == "host-ddr5:2" and two.count == 2
    with pytest.raises(SpecError, match="integer >= 1"):
        genmodel.attached_tier("host:0", "kv_offload", genmodel.load_device("h100-sxm"))
    # a unified-memory Jetson has no host tier to name
    with pytest.raises(SpecError, match="no host memory tier"):
        genmodel.estimate("llama-3.1-8b", "jetson-agx-orin-64gb", kv_offload="host", **kw)


def test_memory_tiers_in_the_database() -> None:
    ids = genmodel.list_ids("memory tier")
    assert {"host-ddr5", CXL, "cxl-astera-leo-512gb", "nvme-gen5-ssd"} <= set(ids)
    for tier_id in ids:
        tier = genmodel.load_memory_tier(tier_id)
        assert tier.id == tier_id
        assert tier.medium in ("ddr", "cxl", "nvme")
        assert tier.capacity_bytes > 0 and tier.bandwidth_bytes_per_s > 0
    assert genmodel.load_memory_tier(CXL).capacity_bytes == pytest.approx(128 * GIB)


def test_unified_memory_device_cannot_offload_to_host_ddr_but_can_to_nvme() -> None:
    kw: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 100}
    with pytest.raises(SpecError, match="host-ddr5"):
        genmodel.estimate("llama-3.1-8b", "jetson-agx-orin-64gb", kv_offload="host-ddr5", **kw)
    est = genmodel.estimate("llama-3.1-8b", "jetson-agx-orin-64gb", kv_offload="nvme-gen5-ssd", **kw)
    # no host link: the drive's own figures, min(13, 15.75 GB/s link) x 0.8 = 10.4 GB/s
    assert est.memory.tiers[1].bandwidth_bytes_per_s == pytest.approx(10.4e9)


def test_estimate_json_reports_tiers_and_offload() -> None:
    d = estimate_dict(_spill(f"{CXL}:4"))
    json.dumps(d)
    assert [t["id"] for t in d["memory"]["tiers"]] == ["h100-sxm", f"{CXL}:4"]
    tier = d["memory"]["tiers"][1]
    assert tier["medium"] == "cxl"
    assert tier["kv_cache_bytes_per_device"] == pytest.approx(tier["bytes_per_device"])
    assert d["memory"]["offloaded_bytes_per_device"] == pytest.approx(tier["bytes_per_device"])
    assert d["offload"] == {
        "kv": f"{CXL}:4",
        "weights": None,
        "experts": None,
        "kv_window": None,
        "expert_hit_rate": None,
        "overlap": True,
    }
    for phase in ("prefill", "decode"):
        assert d[phase]["offload_s"] >= 0 and d[phase]["offload_hidden_s"] >= 0
    assert d["decode"]["bound"] == "offload"
    plain = genmodel.estimate("llama-3.1-8b", "h100-sxm", input_tokens=10, output_tokens=10)
    assert estimate_dict(plain)["offload"] is None


# ---- power modes --------------------------------------------------------------------------------


def test_power_modes_are_slower_than_their_device() -> None:
    modes = genmodel.list_ids("power mode")
    if not modes:
        pytest.skip("no power mode in hardware_db yet")
    bases = {
        m.id: hw for hw in genmodel.list_ids("hardware") for m in genmodel.load_device_yaml(hw).power_modes
    }
    assert set(bases) == set(modes)
    for mode_id in modes:
        mode, base = genmodel.load_device(mode_id), genmodel.load_device(bases[mode_id])
        assert mode.id == mode_id
        assert mode.memory_capacity_bytes == base.memory_capacity_bytes
        assert mode.memory_bandwidth_bytes_per_s <= base.memory_bandwidth_bytes_per_s
        assert set(mode.peak_flops_per_s) == set(base.peak_flops_per_s)
        for dtype, peak in mode.peak_flops_per_s.items():
            assert peak <= base.peak_flops_per_s[dtype]
        assert mode.tdp_w is not None and base.tdp_w is not None and mode.tdp_w <= base.tdp_w
        kw: dict[str, Any] = {"input_tokens": 512, "output_tokens": 32}
        fast = genmodel.estimate("llama-3.2-1b", base, **kw)
        slow = genmodel.estimate("llama-3.2-1b", mode, **kw)
        assert slow.tpot_s >= fast.tpot_s and slow.ttft_s >= fast.ttft_s


# ---- 10. CLI ------------------------------------------------------------------------------------

MEMORY = [
    "memory",
    "--model",
    "llama-3.1-70b",
    "--hardware",
    "h100-sxm",
    "--tp",
    "2",
    "--input-tokens",
    "32000",
    "--output-tokens",
    "1000",
    "--kv-offload",
    f"{CXL}:4",
    "--contexts",
    "8192,32768",
]
ESTIMATE = ["estimate", "--model", "llama-3.1-8b", "--input-tokens", "1000", "--output-tokens", "100"]


_cli_wide = functools.partial(cli_ok, columns=200)


def test_cli_memory_json_matches_the_api() -> None:
    d = json.loads(_cli_wide([*MEMORY, "--format", "json"]))
    api = genmodel.memory_report(
        "llama-3.1-70b",
        "h100-sxm",
        tp=2,
        input_tokens=32_000,
        output_tokens=1000,
        kv_offload=f"{CXL}:4",
        contexts=(8192, 32_768),
    )
    assert [t["id"] for t in d["tiers"]] == ["h100-sxm", f"{CXL}:4"]
    assert d["batch"] == api["batch"] == 51
    assert d["concurrency"] == api["concurrency"]
    assert [row["context_tokens"] for row in d["concurrency"]] == [8192, 32_768]
    curve = [row["max_concurrency"] for row in d["concurrency"]]
    assert curve[0] > curve[1] >= 1
    assert d["offload"]["kv"] == f"{CXL}:4"
    assert d["swap_s_per_sequence"] == pytest.approx(0.1056256)  # 5,408,030,720 B / 51.2 GB/s


def test_cli_memory_csv_carries_the_tiers_and_the_curve() -> None:
    # the users-that-fit curve was JSON-only: the CSV had the tier rows alone
    d = json.loads(_cli_wide([*MEMORY, "--format", "json"]))
    rows = list(csv.DictReader(io.StringIO(_cli_wide([*MEMORY, "--format", "csv"]))))
    tiers = [r for r in rows if r["id"]]
    curve = [r for r in rows if r["context_tokens"]]
    assert [t["id"] for t in tiers] == [t["id"] for t in d["tiers"]]
    assert len(tiers) + len(curve) == len(rows)
    assert all(not r["max_concurrency"] for r in tiers) and all(not r["bytes_per_device"] for r in curve)
    got = [
        {"context_tokens": int(r["context_tokens"]), "max_concurrency": int(r["max_concurrency"])}
        for r in curve
    ]
    assert got == d["concurrency"]
    without = _cli_wide([*MEMORY[:-2], "--format", "csv"])  # no --contexts: the tier rows alone, as before
    assert "context_tokens" not in without and len(without.splitlines()) == 1 + len(tiers)


def test_cli_memory_table_shows_tiers_and_the_curve() -> None:
    text = _cli_wide(MEMORY)
    for needle in ("h100-sxm", f"{CXL}:4", "cxl", "51.2 GB/s", "8,192", "32,768", "max concurrency"):
        assert needle in text
    plain = _cli_wide(["memory", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", *ESTIMATE[3:]])
    assert "h100-sxm" in plain
    assert CXL not in plain


def test_cli_memory_csv_has_one_row_per_tier() -> None:
    text = _cli_wide([*MEMORY[:-2], "--format", "csv"])  # without --contexts (with: the test above)
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == 3  # header, the device, the CXL tier
    assert lines[1].startswith("h100-sxm")
    assert lines[2].startswith(f"{CXL}:4")


def test_cli_hw_list_has_memory_tiers_with_kinds() -> None:
    rows = json.loads(_cli_wide(["hw", "list", "--format", "json"]))
    kinds = {r["kind"] for r in rows}
    assert kinds <= {"device", "system", "memory tier", "link"}
    assert {"device", "system", "memory tier"} <= kinds
    tiers = {r["id"] for r in rows if r["kind"] == "memory tier"}
    assert tiers == set(genmodel.list_ids("memory tier"))
    devices = {r["id"] for r in rows if r["kind"] == "device"}
    assert devices == set(genmodel.list_ids("hardware")) | set(genmodel.list_ids("power mode"))
    assert CXL in _cli_wide(["hw", "list"], columns=250)


def test_cli_hw_show_a_memory_tier() -> None:
    shown = json.loads(_cli_wide(["hw", "show", CXL]))
    assert shown["id"] == CXL
    assert shown["kind"] == "memory tier"
    assert shown["medium"] == "cxl"
    assert shown["capacity_gib"] == pytest.approx(128)


def test_cli_estimate_with_kv_offload_reaches_the_json() -> None:
    d = json.loads(
        _cli_wide(
            [
                "estimate",
                "--model",
                "llama-3.1-70b",
                "--hardware",
                "h100-sxm",
                "--tp",
                "2",
                "--batch",
                "8",
                "--input-tokens",
                "32000",
                "--output-tokens",
                "1000",
                "--kv-offload",
                f"{CXL}:4",
                "--format",
                "json",
            ]
        )
    )
    assert d["tpot_s"] == pytest.approx(_spill(f"{CXL}:4").tpot_s)
    assert d["offload"]["kv"] == f"{CXL}:4"
    assert [t["id"] for t in d["memory"]["tiers"]] == ["h100-sxm", f"{CXL}:4"]


@pytest.mark.parametrize(
    ("hardware", "extra", "message"),
    [
        ("h100-sxm", ["--kv-offload", "bad-id"], "bad-id"),
        ("h100-sxm", ["--kv-offload", f"{CXL}:0"], "integer >= 1"),
        ("h100-sxm", ["--weight-offload", f"{CXL}:two"], "integer >= 1"),
        ("h100-sxm", ["--expert-offload", "host-ddr5"], "has no experts"),
        ("h100-sxm", ["--kv-window", "64"], "kv_window"),
        ("h100-sxm", ["--kv-offload", "host-ddr5", "--expert-hit-rate", "2"], "expert_hit_rate"),
        ("jetson-agx-orin-64gb", ["--kv-offload", "host-ddr5"], "host-ddr5"),
        ("jetson-agx-orin-64gb", ["--weight-offload", "host"], "no host memory tier"),
    ],
)
def test_cli_bad_offload_input_exits_2_with_one_line(hardware: str, extra: list[str], message: str) -> None:
    assert message in cli_bad([*ESTIMATE, "--hardware", hardware, *extra])


def test_cli_memory_bad_input_exits_2() -> None:
    assert "bad-id" in cli_bad([*MEMORY[:-4], "--kv-offload", "bad-id"])
    assert "contexts" in cli_bad([*MEMORY[:-1], "8192,abc"])
    assert "contexts" in cli_bad([*MEMORY[:-1], "1"])
    # a context beyond the model's: it said input_tokens + output_tokens=10,000,000, which were not given
    assert "contexts: 10,000,000 tokens: " in cli_bad([*MEMORY[:-1], "8192,10000000"])
