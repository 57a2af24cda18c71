"""genmodel._attention: each attention kind's cache, weights and operators, and how they compose."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genmodel
from genmodel import GroupedQueryAttention, MultiHeadLatentAttention, Precision, SlidingWindow, forward_ops
from genmodel._attention import AttentionStep, attended_pairs

BF16 = Precision()


def _step(**kw: float) -> AttentionStep:
    base: dict[str, float] = {"num_seqs": 4.0, "new_tokens": 1.0, "past_tokens": 3000.0}
    return AttentionStep(**{**base, **kw}, act_bytes=2.0, kv_bytes=2.0)  # type: ignore[arg-type]


def test_gqa_attention_moves_the_cache_it_keeps() -> None:
    gqa = GroupedQueryAttention(num_attention_heads=32, num_kv_heads=8, head_dim=128)
    work = gqa.attention_work(_step(tp=2.0), count=1)
    # 4 sequences read 3000 cached tokens and write one, 2 x 4 KV heads x 128 per token, bf16
    assert work.kv_bytes == pytest.approx((4 * 3000 + 4) * 2 * 4 * 128 * 2.0)
    # 4 FLOPs per (query, key) pair, head and head_dim element
    assert work.flops == pytest.approx(4 * 4 * 16 * 128 * attended_pairs(3000.0, 1.0))


def test_sliding_window_is_its_kind_over_the_window() -> None:
    gqa = GroupedQueryAttention(num_attention_heads=32, num_kv_heads=8, head_dim=128)
    swa = SlidingWindow(attention=gqa, window=1024)
    step = _step()
    windowed = swa.attention_work(step, count=1)
    assert windowed.name == "attention_swa"
    # the new token sees the window (itself and 1023 cached), and the cache read is the window
    seen = gqa.attention_work(_step(past_tokens=1023.0), count=1)
    assert windowed.flops == pytest.approx(seen.flops, rel=1e-12)
    kept = gqa.attention_work(_step(past_tokens=1024.0), count=1)
    assert windowed.kv_bytes == pytest.approx(kept.kv_bytes, rel=1e-12)
    # projections, weights and the per-token cache are the wrapped kind's
    assert swa.projections(step, 4096, 32) == gqa.projections(step, 4096, 32)
    assert swa.tp_violations(3) == gqa.tp_violations(3)
    # sparse (top-k) reads apply to the full layers only
    sparse = _step(kv_read_frac=0.25)
    assert swa.attention_work(sparse, count=1) == windowed
    assert gqa.attention_work(sparse, count=1).kv_bytes < gqa.attention_work(step, count=1).kv_bytes


def test_mla_absorbs_its_up_projections_in_decode() -> None:
    ds = genmodel.load_model("deepseek-v3").attention
    assert isinstance(ds, MultiHeadLatentAttention)
    before, after = ds.projections(_step(absorbed=True), 7168, 61)
    assert [g.name for g in before] == ["q_a_proj", "q_b_proj", "kv_a_proj", "q_absorb"]
    assert [g.name for g in after] == ["v_absorb", "o_proj"]
    before, after = ds.projections(_step(), 7168, 61)
    assert [g.name for g in before] == ["q_a_proj", "q_b_proj", "kv_a_proj", "kv_b_proj"]
    assert [g.name for g in after] == ["o_proj"]
    # the cache holds the latent either way: the same KV bytes absorbed or not
    absorbed = ds.attention_work(_step(absorbed=True), count=1)
    assert absorbed.kv_bytes == ds.attention_work(_step(), count=1).kv_bytes
    assert absorbed.kv_bytes == pytest.approx((4 * 3000 + 4) * (512 + 64) * 2.0)


def test_a_hybrid_model_has_one_attention_operator_per_kind() -> None:
    base = genmodel.load_model("llama-3.1-8b")
    hybrid = dataclasses.replace(base, sliding_window=512, num_sliding_window_layers=24)
    ops = {op.name: op for op in forward_ops(hybrid, BF16, num_seqs=2, new_tokens=1, past_tokens=4000)}
    full = {op.name: op for op in forward_ops(base, BF16, num_seqs=2, new_tokens=1, past_tokens=4000)}
    assert ops["attention"].flops == pytest.approx(full["attention"].flops * 8 / 32, rel=1e-12)
    assert ops["attention_swa"].kv_bytes < full["attention"].kv_bytes * 24 / 32
    # the projections run on every layer either way
    assert ops["qkv_proj"] == full["qkv_proj"]


@settings(max_examples=40, deadline=None)
@given(
    context=st.integers(min_value=1, max_value=200_000),
    windowed=st.integers(min_value=0, max_value=32),
    tp=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_kv_bytes_per_sequence_is_the_sum_over_the_kinds(context: int, windowed: int, tp: int) -> None:
    base = genmodel.load_model("llama-3.1-8b")
    m = dataclasses.replace(base, sliding_window=4096, num_sliding_window_layers=windowed)
    expected = sum(
        count * kind.cached_tokens(context) * kind.kv_elements_per_token(tp) * BF16.kv_bytes
        for kind, count in m.attention_layers
    )
    assert genmodel.kv_bytes_per_sequence(m, BF16, context, tp=tp) == pytest.approx(expected, rel=1e-12)
