"""genmodel._model: architecture specs and parameter counts against published model sizes."""

from __future__ import annotations

import dataclasses

import pytest

import genmodel
from genmodel import MlaSpec, ModelSpec, MoeSpec, SpecError


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
    ],
)
def test_count_params_matches_published_sizes(model_id: str, params: float, rel: float) -> None:
    assert genmodel.count_params(genmodel.load_model(model_id))["total"] == pytest.approx(params, rel=rel)


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
        num_attention_heads=2,
        num_kv_heads=1,
        head_dim=4,
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
    assert genmodel.load_model(model_id).attention_kind == kind


def test_mqa_kind_and_kv_elements() -> None:
    m = dataclasses.replace(genmodel.load_model("llama-3.1-8b"), num_kv_heads=1)
    assert m.attention_kind == "mqa"
    assert m.kv_elements_per_token_per_layer == 2 * 1 * 128
    ds = genmodel.load_model("deepseek-v3")
    assert ds.kv_elements_per_token_per_layer == 512 + 64


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
        "num_attention_heads": 8,
        "num_kv_heads": 2,
        "head_dim": 8,
        "intermediate_size": 128,
        "vocab_size": 100,
    }
    kwargs.update(overrides)
    return ModelSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 0}, "hidden_size=0"),
        ({"num_kv_heads": 3}, "num_kv_heads=3 must divide"),
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


def test_moe_and_mla_specs_validate() -> None:
    with pytest.raises(SpecError, match="num_experts_per_tok=9"):
        MoeSpec(num_experts=8, num_experts_per_tok=9, expert_intermediate_size=8)
    with pytest.raises(SpecError, match="q_lora_rank"):
        MlaSpec(q_lora_rank=-1, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)
    with pytest.raises(SpecError, match="kv_lora_rank"):
        MlaSpec(q_lora_rank=0, kv_lora_rank=0, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)
