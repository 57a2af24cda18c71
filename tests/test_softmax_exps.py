"""Attention is no faster than the special-function units compute the softmax's exponentials
(one per (query, key) pair and query head), where the device file gives their rate: GB200 and
GB300, from NVIDIA's Blackwell Ultra posts (hardware_db/EFFICIENCY.md, "Softmax exponentials")."""

from __future__ import annotations

import dataclasses

import pytest

import genmodel
from genmodel import Precision, forward_ops
from genmodel._ops import Rates, roofline
from genmodel.io._schema import ComputeY

FP8 = Precision(weight_dtype="fp4", act_dtype="fp8", kv_dtype="fp8")
PROMPT = 131072.0  # the 128K prefill of the GB200/GB300 long-context rows


def _attention(model_id: str, *, new: float, past: float = 0.0, decode: bool = False) -> genmodel.Op:
    ops = forward_ops(
        genmodel.load_model(model_id), FP8, num_seqs=1.0, new_tokens=new, past_tokens=past, absorb_mla=decode
    )
    (op,) = [op for op in ops if op.kind == "attention"]
    return op


def test_one_exponential_per_pair_and_query_head() -> None:
    model = genmodel.load_model("deepseek-v3")
    mla = model.attention
    op = _attention("deepseek-v3", new=PROMPT)
    pairs = PROMPT * (PROMPT + 1) / 2  # causal
    assert op.exps == pytest.approx(model.num_layers * mla.num_attention_heads * pairs)
    # per exponential: scores over the qk width, context over the v width, 2 FLOPs a MAC
    assert op.flops / op.exps == pytest.approx(2 * (mla.head_dim + mla.v_head_dim))
    gqa = genmodel.load_model("llama-3.1-8b").attention
    op = _attention("llama-3.1-8b", new=1.0, past=4095.0, decode=True)
    assert op.flops / op.exps == pytest.approx(4 * gqa.head_dim)
    # MLA's absorbed decode: scores over latent + rope, context over the latent
    op = _attention("deepseek-v3", new=1.0, past=4095.0, decode=True)
    assert op.flops / op.exps == pytest.approx(2 * (mla.latent_dim + mla.kv_lora_rank))


def test_the_exponentials_bound_attention_where_the_device_gives_their_rate() -> None:
    op = _attention("deepseek-v3", new=PROMPT)
    gb200, gb300 = genmodel.load_device("gb200"), genmodel.load_device("gb300")
    assert gb200.exp_per_s == pytest.approx(5.0e12) and gb300.exp_per_s == pytest.approx(10.7e12)
    # the pure roofline: 640 FLOPs per exponential at 5 PFLOPS of fp8 needs 7.8 T exponentials/s, more
    # than GB200's 5, so its FP8 MLA prefill is bound by them, and GB300's (10.7) by its matrix units
    ideal200, ideal300 = gb200.ideal(), gb300.ideal()
    assert roofline(op, ideal200, FP8).compute_s == pytest.approx(op.exps / 5.0e12)
    assert roofline(op, ideal300, FP8).compute_s == pytest.approx(op.flops / gb300.peak_flops_per_s["fp8"])
    # without a published rate, the matrix units alone
    unbounded = dataclasses.replace(ideal200, exp_per_s=0.0)
    assert roofline(op, unbounded, FP8).compute_s == pytest.approx(op.flops / gb200.peak_flops_per_s["fp8"])
    assert Rates.of(unbounded, FP8).exp_per_s == 0.0
    # with the shipped efficiencies the FP8 kernel's tensor time (attention_frac 0.5) is the longer
    rates = Rates.of(gb200, FP8)
    assert roofline(op, gb200, FP8).compute_s == pytest.approx(op.flops / rates.attention_flops_per_s)
    assert op.exps / 5.0e12 < op.flops / rates.attention_flops_per_s


def test_the_ideal_128k_prefill_separates_gb200_from_gb300() -> None:
    def ttft(device: str) -> float:
        r = genmodel.estimate(
            "deepseek-v3",
            device,
            devices=4,
            pp=4,
            batch=1,
            input_tokens=int(PROMPT),
            output_tokens=1,
            weight_dtype="fp4",
            act_dtype="fp8",
            kv_dtype="fp8",
            ideal=True,
        )
        return r.ttft_s

    assert ttft("gb200") > 1.3 * ttft("gb300")


def test_the_rate_scales_with_the_flops_and_needs_a_source() -> None:
    system = genmodel.load_system("gb200-nvl72")
    assert system.scaled(flops=2.0).device.exp_per_s == pytest.approx(2 * system.device.exp_per_s)
    with pytest.raises(ValueError, match="go together"):
        ComputeY.model_validate(
            {"dense_tflops": {"fp8": 1.0}, "source": "a datasheet", "exp_tera_per_s": 1.0}
        )
    with pytest.raises(ValueError, match="greater than 0"):
        ComputeY.model_validate(
            {"dense_tflops": {"fp8": 1.0}, "source": "a datasheet", "exp_tera_per_s": 0.0}
        )


def test_the_flops_requirement_scales_the_exponentials_as_the_check_does() -> None:
    """genmodel.requirements solves the closed form with the rate in proportion to the peaks and
    System.scaled applies the answer the same way: the ideal GB200 needs more FLOP/s than the
    ideal GB300 for the same TTFT (its exponentials bind), and the scaled platform meets the target."""
    shape = dict(devices=4, pp=4, batch=1, input_tokens=32768, output_tokens=1)
    dtypes = dict(weight_dtype="fp4", act_dtype="fp8", kv_dtype="fp8")
    factors = {}
    for device in ("gb200", "gb300"):
        r = genmodel.requirements(
            "deepseek-v3", device, ttft_slo_s=1.0, resources=("flops",), ideal=True, **shape, **dtypes
        )
        (need,) = r.resources
        factors[device] = need.factor
        scaled = genmodel.load_system(f"{device}-nvl72").scaled(flops=need.factor)
        check = genmodel.estimate("deepseek-v3", scaled, ideal=True, **shape, **dtypes)
        assert check.ttft_s == pytest.approx(1.0, rel=1e-3), device
    assert factors["gb200"] > 1.2 * factors["gb300"]
