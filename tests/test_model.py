"""genmodel._model: architecture specs and parameter counts against published model sizes."""

from __future__ import annotations

import dataclasses

import pytest

import genmodel
from genmodel import GroupedQueryAttention, ModelSpec, MoeSpec, MultiHeadLatentAttention, SpecError


@pytest.mark.parametrize(
    ("model_id", "params", "rel"),
    [
        # published sizes: Llama 3.1 model cards (70.6B, 8.03B), DeepSeek-V3 report (671B without MTP),
        # Mixtral paper (46.7B), Qwen3 report (235B)
        ("llama-3.1-70b", 70.55e9, 0.005),
        ("llama-3.1-8b", 8.03e9, 0.005),
        ("deepseek-v3", 671e9, 0.01),
        ("mixtral-8x7b", 46.7e9, 0.005),
        ("qwen3-235b-a22b", 235e9, 0.01),
        ("llama-2-7b", 6.74e9, 0.005),
        # gpt-oss model card (arXiv:2508.10925, Table 1): 116.83B and 20.91B total; the experts' and
        # o_proj's biases and the attention sinks (under 0.04 %) are not counted
        ("gpt-oss-120b", 116.83e9, 0.001),
        ("gpt-oss-20b", 20.91e9, 0.001),
        # Qwen3 model cards (huggingface.co/Qwen/Qwen3-8B, Qwen3-14B): 8.2B and 14.8B, given to 0.1B
        ("qwen3-8b", 8.2e9, 0.006),
        ("qwen3-14b", 14.8e9, 0.004),
        # Kimi-K2-Instruct: 1,026,470,731,056 elements in the checkpoint's tensors (FP8 block scales and
        # router biases included); the model card rounds it to 1T
        ("kimi-k2", 1.02647e12, 0.001),
    ],
)
def test_count_params_matches_published_sizes(model_id: str, params: float, rel: float) -> None:
    assert genmodel.count_params(genmodel.load_model(model_id))["total"] == pytest.approx(params, rel=rel)


@pytest.mark.parametrize(
    ("model_id", "active", "rel"),
    [
        # published active parameters per token: gpt-oss model card (5.13B, 3.61B: the top-4 experts,
        # attention and the unembedding; the embedding table is a lookup), Kimi-K2 model card (32B)
        ("gpt-oss-120b", 5.13e9, 0.005),
        ("gpt-oss-20b", 3.61e9, 0.005),
        ("kimi-k2", 32e9, 0.02),
    ],
)
def test_active_params_match_published_sizes(model_id: str, active: float, rel: float) -> None:
    m = genmodel.load_model(model_id)
    shown = genmodel.describe_model(m)["active_params_b"] * 1e9  # embedding table included
    assert shown - genmodel.count_params(m)["embedding"] == pytest.approx(active, rel=rel)


def test_count_params_parts_sum_to_total() -> None:
    parts = genmodel.count_params(genmodel.load_model("deepseek-v3"))
    total = parts.pop("total")
    assert sum(parts.values()) == total
    assert parts["experts"] > 0
    assert parts["shared_experts"] > 0
    assert parts["mlp"] > 0  # the first three dense blocks


def test_count_params_of_a_hand_built_dense_model() -> None:
    # 2 layers, d=8, 2 heads of 4, 1 KV head, ff=16, vocab 10, untied
    m = ModelSpec(
        id="toy",
        hidden_size=8,
        num_layers=2,
        attention=GroupedQueryAttention(num_attention_heads=2, num_kv_heads=1, head_dim=4),
        intermediate_size=16,
        vocab_size=10,
    )
    attn = 8 * (2 + 2 * 1) * 4 + 2 * 4 * 8 + 8  # qkv + o + input norm
    mlp = 3 * 8 * 16 + 8  # gate, up, down + post-attention norm
    parts = genmodel.count_params(m)
    assert parts["attention"] == 2 * attn
    assert parts["mlp"] == 2 * mlp
    assert parts["embedding"] == 80
    assert parts["lm_head"] == 80
    assert parts["total"] == 2 * attn + 2 * mlp + 160 + 8
    tied = genmodel.count_params(dataclasses.replace(m, tie_word_embeddings=True))
    assert tied["total"] == parts["total"] - 80


@pytest.mark.parametrize(
    ("model_id", "kind"),
    [
        ("llama-2-7b", "mha"),
        ("llama-3.1-8b", "gqa"),
        ("deepseek-v3", "mla"),
        ("mixtral-8x7b", "gqa"),
    ],
)
def test_attention_kind(model_id: str, kind: str) -> None:
    assert genmodel.load_model(model_id).attention.kind == kind


def test_mqa_kind_and_kv_elements() -> None:
    gqa = genmodel.load_model("llama-3.1-8b").attention
    assert isinstance(gqa, GroupedQueryAttention)
    mqa = dataclasses.replace(gqa, num_kv_heads=1)
    assert mqa.kind == "mqa"
    assert mqa.kv_elements_per_token() == 2 * 1 * 128
    # one KV head is replicated on every tp rank; 8 split over 8 ranks leave one each
    assert mqa.kv_elements_per_token(8) == 2 * 1 * 128
    assert gqa.kv_elements_per_token(8) == 2 * 1 * 128
    assert gqa.kv_elements_per_token(2) == 2 * 4 * 128
    ds = genmodel.load_model("deepseek-v3").attention
    assert ds.kind == "mla"
    assert ds.kv_elements_per_token() == 512 + 64
    assert ds.kv_elements_per_token(8) == 512 + 64  # the latent is replicated, not split


def test_sliding_window_layers_wrap_the_model_attention() -> None:
    base = genmodel.load_model("llama-3.1-8b")
    assert base.attention_layers == ((base.attention, 32),)
    hybrid = dataclasses.replace(base, sliding_window=4096, num_sliding_window_layers=24)
    (full, n_full), (swa, n_swa) = hybrid.attention_layers
    assert (full, n_full, n_swa) == (base.attention, 8, 24)
    assert isinstance(swa, genmodel.SlidingWindow)
    assert swa.kind == "swa+gqa"
    assert swa.kv_elements_per_token(4) == base.attention.kv_elements_per_token(4)
    assert swa.params_per_device(4096, 4) == base.attention.params_per_device(4096, 4)
    assert swa.cached_tokens(1000) == 1000
    assert swa.cached_tokens(10_000) == 4096
    assert base.attention.cached_tokens(10_000) == 10_000
    with pytest.raises(SpecError, match="sliding_window=0"):
        genmodel.SlidingWindow(attention=base.attention, window=0)


def test_moe_layer_split_of_deepseek() -> None:
    ds = genmodel.load_model("deepseek-v3")
    assert ds.num_layers == 61
    assert ds.num_dense_layers == 3
    assert ds.num_moe_layers == 58
    assert ds.moe is not None
    assert ds.moe.num_experts == 256
    assert ds.moe.shared_intermediate_size == 2048


def _toy(**overrides: object) -> ModelSpec:
    kwargs: dict[str, object] = {
        "id": "toy",
        "hidden_size": 64,
        "num_layers": 4,
        "attention": GroupedQueryAttention(num_attention_heads=8, num_kv_heads=2, head_dim=8),
        "intermediate_size": 128,
        "vocab_size": 100,
    }
    kwargs.update(overrides)
    return ModelSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 0}, "hidden_size=0"),
        ({"sliding_window": 0}, "sliding_window=0"),
        ({"num_sliding_window_layers": 2}, "needs a sliding_window"),
        ({"num_sliding_window_layers": 5, "sliding_window": 16}, "num_sliding_window_layers=5"),
        (
            {
                "moe": MoeSpec(
                    num_experts=4, num_experts_per_tok=2, expert_intermediate_size=8, num_dense_layers=9
                )
            },
            "num_dense_layers=9",
        ),
    ],
)
def test_model_spec_rejects_impossible_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _toy(**overrides)


def test_moe_and_attention_specs_validate() -> None:
    with pytest.raises(SpecError, match="num_experts_per_tok=9"):
        MoeSpec(num_experts=8, num_experts_per_tok=9, expert_intermediate_size=8)
    mla = {"num_attention_heads": 4, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8}
    with pytest.raises(SpecError, match="q_lora_rank"):
        MultiHeadLatentAttention(q_lora_rank=-1, kv_lora_rank=8, **mla)
    with pytest.raises(SpecError, match="kv_lora_rank"):
        MultiHeadLatentAttention(q_lora_rank=0, kv_lora_rank=0, **mla)
    with pytest.raises(SpecError, match="num_kv_heads=3 must divide num_attention_heads=8"):
        GroupedQueryAttention(num_attention_heads=8, num_kv_heads=3, head_dim=8)
    with pytest.raises(SpecError, match="head_dim=0"):
        GroupedQueryAttention(num_attention_heads=8, num_kv_heads=2, head_dim=0)


def test_mla_holds_fewer_cached_elements_and_replicated_down_projections() -> None:
    ds = genmodel.load_model("deepseek-v3").attention
    assert isinstance(ds, MultiHeadLatentAttention)
    assert (ds.heads, ds.kv_heads, ds.head_dim) == (128, 128, 192)
    assert ds.tp_violations(8) == []
    assert ds.tp_violations(3) == ["tp=3 must divide num_attention_heads=128"]
    # the down-projections (q_a, kv_a and their norms) stay whole on every rank; the rest splits
    d = 7168
    replicated = d * 1536 + 1536 + d * (512 + 64) + 512
    one, eight = ds.params_per_device(d, 1), ds.params_per_device(d, 8)
    assert 8 * (eight - replicated) == pytest.approx(one - replicated, rel=1e-12)


def test_a_context_beyond_the_model_maximum_is_refused_unless_allowed() -> None:
    from genmodel._model import context_note

    llama2 = genmodel.load_model("llama-2-7b")
    assert llama2.max_position_embeddings == 4096
    assert context_note(llama2, 4096, allow=False) is None  # prompt + output = the maximum: fine
    with pytest.raises(
        SpecError, match=r"=4,097 exceeds .* max_position_embeddings=4,096.*--allow-long-context"
    ):
        context_note(llama2, 4097, allow=False)
    note = context_note(llama2, 16_000, allow=True)
    assert note is not None and "RoPE scaling" in note and "4,096" in note
    unknown = dataclasses.replace(llama2, max_position_embeddings=None)
    assert context_note(unknown, 10**6, allow=False) is None  # no published maximum: no check


def test_every_bundled_model_names_its_maximum_context() -> None:
    for model_id in genmodel.list_ids("model"):
        m = genmodel.load_model(model_id)
        assert m.max_position_embeddings is not None and m.max_position_embeddings >= 4096, model_id
        assert "config.json" in m.source, model_id  # the figure's source: the published config
