"""Models added to the database beyond the interface list of docs/cli.md: gpt-oss-120b and gpt-oss-20b
(OpenAI: MoE with MXFP4 experts, alternating sliding-window and full attention), qwen3-8b, qwen3-14b and
kimi-k2.

Checked here: the published checkpoint of gpt-oss (MXFP4 experts, BF16 the rest) under ``--weight-dtype
fp4`` and ``mxfp4``, its size against the model card's, where it fits (one H100 80GB; the 20b within 16
GB), what a Hopper GPU, which has no fp4 units, runs its GEMMs in, the KV cache of its sliding-window
blocks, that kimi-k2 is DeepSeek-V3's architecture with Moonshot's figures, and that estimate and
simulate run on every added model. (Parameter counts against the model cards: tests/test_model.py; the
config.json parser's layer_types: tests/test_io.py.)
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import InfeasibleError, Plan, default_precision
from genmodel._ops import forward_ops
from genmodel._sizes import kv_bytes_per_sequence, weight_bytes_per_device
from genmodel._units import WEIGHT_FORMATS, GiB
from genmodel._workload import Precision
from genmodel.io import load_device, load_model

ADDED = ["gpt-oss-120b", "gpt-oss-20b", "qwen3-8b", "qwen3-14b", "kimi-k2"]
GPT_OSS = ["gpt-oss-120b", "gpt-oss-20b"]
#: the gpt-oss model card (arXiv:2508.10925, Table 1): checkpoint size in GiB, MXFP4 experts at 4.25 bits
#: per weight (4-bit values and one 8-bit scale per 32), the other weights BF16 (its biases included)
CHECKPOINT_GIB = {"gpt-oss-120b": 60.8, "gpt-oss-20b": 12.8}
MXFP4_SCALE_BYTES = 8 / 32 / 8  # one 8-bit scale per 32 weights, which genmodel's fp4 leaves out


@pytest.mark.parametrize("model_id", GPT_OSS)
def test_gpt_oss_fp4_is_the_published_mix_mxfp4_experts_and_bf16_the_rest(model_id: str) -> None:
    m = load_model(model_id)
    p = default_precision("fp4", model=m)
    # quantization_config.modules_to_not_convert: self_attn, mlp.router, embed_tokens, lm_head
    assert dict(p.keep_modules) == {
        "attention": "bf16",
        "router": "bf16",
        "embedding": "bf16",
        "lm_head": "bf16",
    }
    assert default_precision("mxfp4", model=m).keep_modules == p.keep_modules  # the same checkpoint
    assert default_precision("bf16", model=m).keep_modules == ()
    assert default_precision("fp4", model=m, keep_modules="none").keep_modules == ()
    ops = {o.name: o for o in forward_ops(m, p, num_seqs=1, new_tokens=1000, past_tokens=0)}
    d, parts = m.hidden_size, genmodel.count_params(m)
    assert ops["lm_head"].weight_bytes == pytest.approx(m.vocab_size * d * 2)
    assert m.moe is not None
    assert ops["router"].weight_bytes == pytest.approx(m.num_layers * d * m.moe.num_experts * 2)
    # a 1000-token prefill touches every expert once: all of them at half a byte
    assert ops["experts"].weight_bytes == pytest.approx(parts["experts"] * 0.5, rel=1e-3)


def test_mxfp4_is_a_block_of_32_fp4_values_with_one_8_bit_scale() -> None:
    # OCP Microscaling Formats (MX) v1.0: 32 E2M1 elements share one E8M0 scale
    assert WEIGHT_FORMATS["mxfp4"] == ((32 * 4 + 8) / 32, "fp4")
    p = default_precision("mxfp4")
    assert (p.act_dtype, p.gemm_dtype) == ("bf16", "bf16")  # dequantised, as every 4-bit format
    assert Precision(weight_dtype="mxfp4", act_dtype="fp8").gemm_dtype == "fp8"  # MXFP4 x MXFP8


@pytest.mark.parametrize("model_id", GPT_OSS)
def test_gpt_oss_mxfp4_weights_are_the_published_checkpoint(model_id: str) -> None:
    m = load_model(model_id)
    mxfp4 = weight_bytes_per_device(m, default_precision("mxfp4", model=m), Plan())
    assert mxfp4 == pytest.approx(CHECKPOINT_GIB[model_id] * GiB, rel=0.01)
    # fp4 ignores the scales: the experts' one byte per 32 weights less (and their norms' in fp4)
    fp4 = weight_bytes_per_device(m, default_precision("fp4", model=m), Plan())
    experts = genmodel.count_params(m)["experts"]
    assert mxfp4 - fp4 == pytest.approx(experts * MXFP4_SCALE_BYTES, rel=1e-3)
    # all fp4 (no module kept) would be 1.5 bytes per weight lighter on the attention, head and embedding
    lighter = weight_bytes_per_device(m, default_precision("fp4", model=m, keep_modules="none"), Plan())
    assert lighter < fp4 - 1.5 * 2 * m.vocab_size * m.hidden_size


def _estimate(model: str, hardware: str, weight_dtype: str, **kwargs: object) -> genmodel.Estimate:
    return genmodel.estimate(
        model, hardware, weight_dtype=weight_dtype, input_tokens=1024, output_tokens=128, **kwargs
    )


def test_gpt_oss_120b_fits_one_h100_at_fp4_not_at_bf16() -> None:
    # huggingface.co/openai/gpt-oss-120b: 'fits into a single 80GB GPU (like NVIDIA H100 or AMD MI300X)'
    for weights in ("fp4", "mxfp4"):
        est = _estimate("gpt-oss-120b", "h100-sxm", weights)
        assert est.memory.fits
        assert 55 * GiB < est.memory.weights_bytes_per_device < 62 * GiB
    with pytest.raises(InfeasibleError, match=r"gpt-oss-120b needs 2\d\d\.\d GB per device"):
        _estimate("gpt-oss-120b", "h100-sxm", "bf16")


def test_gpt_oss_20b_fits_16_gb_at_fp4() -> None:
    # huggingface.co/openai/gpt-oss-20b: 'runs within 16GB of memory'; the database's smallest GPU
    # above that is the RTX 4090 (24 GB); the 8 GB Jetson Orin Nano is too small
    m = load_model("gpt-oss-20b")
    assert weight_bytes_per_device(m, default_precision("mxfp4", model=m), Plan()) < 14e9
    assert _estimate("gpt-oss-20b", "rtx-4090", "mxfp4").memory.fits
    with pytest.raises(InfeasibleError, match="more than the usable"):
        _estimate("gpt-oss-20b", "jetson-orin-nano-8gb", "fp4")


def test_gpt_oss_on_hopper_runs_its_mxfp4_experts_weight_only_in_bf16() -> None:
    # H100 has no fp4 units; vLLM and SGLang run gpt-oss's MXFP4 MoE there weight-only (Marlin,
    # triton_kernels), BF16 activations: genmodel's default for 4-bit weights asks BF16 GEMMs
    h100 = load_device("h100-sxm")
    assert "fp4" not in h100.peak_flops_per_s
    p = default_precision("fp4", model=load_model("gpt-oss-120b"))
    assert (p.act_dtype, p.gemm_dtype, h100.compute_dtype(p.gemm_dtype)) == ("bf16", "bf16", "bf16")
    assert h100.compute_note(p.gemm_dtype) is None
    est = _estimate("gpt-oss-120b", "h100-sxm", "fp4")
    assert est.precision.act_dtype == "bf16"
    assert not any("not native" in n for n in est.notes)
    # fp4 activations asked explicitly: the math falls back to the fp8 units, and the estimate says so
    assert h100.compute_dtype("fp4") == "fp8"
    w4a4 = _estimate("gpt-oss-120b", "h100-sxm", "fp4", act_dtype="fp4")
    assert any("fp4 is not native on h100-sxm" in n for n in w4a4.notes)


def test_gpt_oss_sliding_window_blocks_cache_128_tokens() -> None:
    m = load_model("gpt-oss-120b")
    p = default_precision("fp4", model=m)
    per_token = 2 * 8 * 64 * p.kv_bytes  # K and V of 8 KV heads of 64
    for context in (100, 10_000):
        expected = (18 * context + 18 * min(context, 128)) * per_token
        assert kv_bytes_per_sequence(m, p, context) == pytest.approx(expected)
    # half the blocks windowed: at 10k tokens the cache is a little over half a full-attention model's
    full = dataclasses.replace(m, sliding_window=None, num_sliding_window_layers=0)
    assert kv_bytes_per_sequence(m, p, 10_000) / kv_bytes_per_sequence(full, p, 10_000) == pytest.approx(
        (10_000 + 128) / 20_000
    )


def test_kimi_k2_is_deepseek_v3_with_moonshots_figures() -> None:
    ds, k2 = load_model("deepseek-v3"), load_model("kimi-k2")
    assert ds.moe is not None
    expected = dataclasses.replace(
        ds,
        id="kimi-k2",
        name=k2.name,
        source=k2.source,
        attention=dataclasses.replace(ds.attention, num_attention_heads=64),
        vocab_size=163_840,
        max_position_embeddings=131_072,
        num_mtp_layers=0,
        moe=dataclasses.replace(ds.moe, num_experts=384, num_dense_layers=1),
        kept_modules=ds.kept_modules[:1],  # DeepSeek's fp8 rule (Moonshot's FP8 weights); no fp4 checkpoint
    )
    assert k2 == expected
    assert genmodel.load_model("kimi-k2-instruct") == k2


@pytest.mark.parametrize(
    ("model_id", "args"),
    [
        ("gpt-oss-120b", ["--hardware", "h100-sxm", "--weight-dtype", "mxfp4"]),
        ("gpt-oss-20b", ["--hardware", "rtx-4090", "--weight-dtype", "fp4"]),
        ("qwen3-8b", ["--hardware", "h100-sxm"]),
        ("qwen3-14b", ["--hardware", "h100-sxm", "--weight-dtype", "fp8"]),
        ("kimi-k2", ["--hardware", "h200-sxm", "--tp", "8", "--weight-dtype", "fp8"]),
    ],
)
def test_estimate_and_simulate_run_on_each_added_model(model_id: str, args: list[str]) -> None:
    common = [
        "--model",
        model_id,
        *args,
        "--input-tokens",
        "1024",
        "--output-tokens",
        "64",
        "--format",
        "json",
    ]
    est = json.loads(cli_ok(["estimate", *common]))
    assert est["model"] == model_id and est["memory"]["fits"]
    assert 0 < est["ttft_s"] < 10 and 0 < est["tpot_s"] < 1
    sim = json.loads(cli_ok(["simulate", *common, "--concurrency", "8"]))
    assert sim["requests"] > 0 and sim["output_tokens_per_s"] > 0
    assert sim["tpot_s"]["mean"] > 0


def test_every_added_model_is_listed() -> None:
    assert set(ADDED) <= set(genmodel.list_ids("model"))
    assert "did you mean" in cli_bad(
        [
            "estimate",
            "--model",
            "gpt-oss-12b",
            "--hardware",
            "h100-sxm",
            "--input-tokens",
            "8",
            "--output-tokens",
            "8",
        ]
    )
