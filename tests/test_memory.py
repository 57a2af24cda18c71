"""genmodel._memory: KV bytes per token (hand-derived), weights per device, max batch."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import genmodel
from genmodel import (
    InfeasibleError,
    Plan,
    Precision,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    max_batch,
    memory_use,
)

BF16 = Precision()
FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")


def test_kv_bytes_per_token_by_attention_kind() -> None:
    # GQA: 80 layers x (K+V) x 8 KV heads x 128 x 1 byte
    assert kv_bytes_per_token(genmodel.load_model("llama-3.1-70b"), FP8) == pytest.approx(163840.0)
    # MHA: 32 layers x 2 x 32 heads x 128 x 2 bytes
    assert kv_bytes_per_token(genmodel.load_model("llama-2-7b"), BF16) == pytest.approx(2 * 32 * 32 * 128 * 2)
    # MLA: 61 layers x (kv_lora_rank 512 + rope 64) x 2 bytes, shared by all heads
    assert kv_bytes_per_token(genmodel.load_model("deepseek-v3"), BF16) == pytest.approx(61 * (512 + 64) * 2)


def test_kv_bytes_per_sequence_shards_kv_heads_and_replicates_mla() -> None:
    llama = genmodel.load_model("llama-3.1-70b")
    one = kv_bytes_per_sequence(llama, BF16, 1000)
    assert one == pytest.approx(1000 * kv_bytes_per_token(llama, BF16))
    assert kv_bytes_per_sequence(llama, BF16, 1000, tp=8) == pytest.approx(one / 8)
    assert kv_bytes_per_sequence(llama, BF16, 1000, tp=16) == pytest.approx(one / 8)  # 1 KV head per rank
    assert kv_bytes_per_sequence(llama, BF16, 1000, pp=4) == pytest.approx(one / 4)
    ds = genmodel.load_model("deepseek-v3")
    assert kv_bytes_per_sequence(ds, BF16, 1000, tp=8) == pytest.approx(kv_bytes_per_sequence(ds, BF16, 1000))


def _all_sliding(window: int) -> genmodel.ModelSpec:
    base = genmodel.load_model("llama-3.1-8b")
    return dataclasses.replace(base, sliding_window=window, num_sliding_window_layers=base.num_layers)


def test_sliding_window_kv_saturates_at_the_window() -> None:
    m = _all_sliding(4096)
    at_window = kv_bytes_per_sequence(m, BF16, 4096)
    assert at_window == pytest.approx(4096 * kv_bytes_per_token(m, BF16))
    for context in (4097, 10_000, 128_000):
        assert kv_bytes_per_sequence(m, BF16, context) == pytest.approx(at_window)
    assert kv_bytes_per_sequence(m, BF16, 1000) == pytest.approx(1000 * kv_bytes_per_token(m, BF16))


def test_mixed_sliding_and_full_layers() -> None:
    base = genmodel.load_model("llama-3.1-8b")
    m = dataclasses.replace(base, sliding_window=100, num_sliding_window_layers=base.num_layers // 2)
    per_layer_token = kv_bytes_per_token(base, BF16) / base.num_layers
    expected = (16 * 1000 + 16 * 100) * per_layer_token
    assert kv_bytes_per_sequence(m, BF16, 1000) == pytest.approx(expected)


NO_WINDOW = ["llama-3.1-8b", "llama-3.1-70b", "llama-2-7b", "deepseek-v3", "qwen3-32b", "mixtral-8x7b"]


@given(
    model_id=st.sampled_from(NO_WINDOW),
    a=st.integers(min_value=0, max_value=200_000),
    b=st.integers(min_value=0, max_value=200_000),
    tp=st.sampled_from([1, 2, 4, 8]),
)
def test_kv_bytes_are_linear_in_context(model_id: str, a: int, b: int, tp: int) -> None:
    m = genmodel.load_model(model_id)
    assert m.num_sliding_window_layers == 0
    total = kv_bytes_per_sequence(m, FP8, a + b, tp=tp)
    assert total == pytest.approx(
        kv_bytes_per_sequence(m, FP8, a, tp=tp) + kv_bytes_per_sequence(m, FP8, b, tp=tp)
    )
    assert kv_bytes_per_sequence(m, FP8, 3 * a, tp=tp) == pytest.approx(
        3 * kv_bytes_per_sequence(m, FP8, a, tp=tp)
    )


@pytest.mark.parametrize("model_id", ["llama-3.1-70b", "llama-3.1-8b", "mixtral-8x7b", "deepseek-v3"])
def test_unsharded_weights_are_all_parameters(model_id: str) -> None:
    m = genmodel.load_model(model_id)
    w = genmodel.weight_bytes_per_device(m, BF16, Plan())
    assert w == pytest.approx(2 * genmodel.count_params(m)["total"], rel=1e-12)


def test_tensor_parallel_weights_shrink_close_to_one_over_tp() -> None:
    m = genmodel.load_model("llama-3.1-70b")
    total = genmodel.weight_bytes_per_device(m, FP8, Plan())
    for tp in (2, 4, 8):
        per = genmodel.weight_bytes_per_device(m, FP8, Plan(tp=tp))
        assert per >= total / tp  # norms are replicated
        assert per == pytest.approx(total / tp, rel=0.01)
    pp2 = genmodel.weight_bytes_per_device(m, FP8, Plan(pp=2))
    assert pp2 == pytest.approx(total / 2, rel=0.02)


def test_max_batch_fits_and_one_more_does_not() -> None:
    m, d = genmodel.load_model("llama-3.1-70b"), genmodel.load_device("h100-sxm")
    plan = Plan(tp=2)
    b = max_batch(m, d, plan, FP8, input_tokens=1000, output_tokens=1000)
    assert b >= 1
    kw = {"input_tokens": 1000, "output_tokens": 1000}
    assert memory_use(m, d, plan, FP8, batch=b, **kw).fits
    assert not memory_use(m, d, plan, FP8, batch=b + 1, **kw).fits


def test_memory_use_totals_and_grows_with_batch() -> None:
    m, d = genmodel.load_model("llama-3.1-8b"), genmodel.load_device("h100-sxm")
    kw = {"input_tokens": 2000, "output_tokens": 500}
    small = memory_use(m, d, Plan(), BF16, batch=1, **kw)
    big = memory_use(m, d, Plan(), BF16, batch=32, **kw)
    assert small.total_bytes_per_device == pytest.approx(
        small.weights_bytes_per_device + small.kv_cache_bytes_per_device + small.activation_bytes_per_device
    )
    assert big.kv_cache_bytes_per_device == pytest.approx(32 * small.kv_cache_bytes_per_device)
    assert big.weights_bytes_per_device == pytest.approx(small.weights_bytes_per_device)
    assert small.capacity_bytes_per_device == pytest.approx(d.memory_capacity_bytes)
    assert small.usable_bytes_per_device == pytest.approx(d.usable_memory_bytes)


def test_max_batch_raises_when_one_sequence_does_not_fit() -> None:
    m, d = genmodel.load_model("llama-3.1-405b"), genmodel.load_device("a100-sxm-40gb")
    with pytest.raises(InfeasibleError, match="a100-sxm-40gb"):
        max_batch(m, d, Plan(), BF16, input_tokens=100, output_tokens=100)


@given(
    model_id=st.sampled_from(["llama-3.1-8b", "llama-2-7b", "qwen3-30b-a3b"]),
    extra=st.floats(min_value=1.0, max_value=8.0),
    tokens=st.integers(min_value=16, max_value=8000),
    dp=st.sampled_from([1, 2]),
)
def test_max_batch_is_monotone_in_device_capacity(model_id: str, extra: float, tokens: int, dp: int) -> None:
    m = genmodel.load_model(model_id)
    if m.moe is not None:
        dp = 1
    d = genmodel.load_device("h100-sxm")
    bigger = dataclasses.replace(d, memory_capacity_bytes=d.memory_capacity_bytes * extra)
    plan = Plan(dp=dp)
    kw = {"input_tokens": tokens, "output_tokens": tokens // 2 + 1}
    small, large = max_batch(m, d, plan, BF16, **kw), max_batch(m, bigger, plan, BF16, **kw)
    assert large >= small
    assert small % dp == 0
    assert large % dp == 0


@pytest.mark.parametrize(
    ("model_id", "plan", "prefix"),
    [
        ("llama-3.1-70b", Plan(tp=2, pp=2, dp=2), 0),
        ("deepseek-v3", Plan(tp=8, dp=8, ep=64), 0),
        ("llama-3.1-70b", Plan(tp=1), 512),  # (and a shared prefix)
    ],
)
def test_a_footprints_fit_is_its_memory_uses_and_the_pools_is_the_whole_ones_but_its_lengths(
    model_id: str, plan: Plan, prefix: int
) -> None:
    from genmodel._memory import MemoryExtras, _Footprint

    m, d = genmodel.load_model(model_id), genmodel.load_device("h200-sxm")
    more = MemoryExtras(kv_block_tokens=16, shared_prefix_tokens=prefix)
    whole = _Footprint(m, d, plan, FP8, input_tokens=1000, output_tokens=2000, extras=more)
    held = _Footprint(m, d, plan, FP8, whole, input_tokens=1000, output_tokens=300, extras=more)
    alone = _Footprint(m, d, plan, FP8, input_tokens=1000, output_tokens=300, extras=more)
    most = max_batch(m, d, plan, FP8, input_tokens=1000, output_tokens=300, extras=more)
    assert most >= plan.dp
    for batch in sorted({plan.dp, most - plan.dp, most, most + plan.dp, 10 * most}):
        assert whole.fits(batch) == whole.use(batch).fits
        assert held.fits(batch) == held.use(batch).fits == alone.use(batch).fits
        assert held.use(batch) == alone.use(batch)
    assert held.fits(most) and not held.fits(most + plan.dp)
