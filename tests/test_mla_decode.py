"""MLA's absorbed decode attention runs at its own efficiency, ``mla_decode_frac``: a different
kernel (FlashMLA, CUTLASS MLA, TRT-LLM's) from a prefill's flash attention, with its own published
timings (hardware_db/EFFICIENCY.md, "MLA decode attention")."""

from __future__ import annotations

import dataclasses

import pytest

import genmodel
from genmodel import Precision, forward_ops
from genmodel._ops import Rates, roofline
from genmodel.io._load import load_device_yaml

BF16 = Precision()
TFLOP = 1e12
BLACKWELL = ("b200", "gb200", "b300", "gb300")


def _attention(model_id: str, *, decode: bool, seqs: float = 256.0, past: float = 2048.0) -> genmodel.Op:
    model = genmodel.load_model(model_id)
    ops = forward_ops(
        model,
        BF16,
        num_seqs=seqs,
        new_tokens=1.0 if decode else past,
        past_tokens=past if decode else 0.0,
        absorb_mla=decode,
    )
    (op,) = [op for op in ops if op.kind == "attention"]
    return op


def test_only_mlas_absorbed_decode_attention_is_the_latent_kernel() -> None:
    assert _attention("deepseek-v3", decode=True).latent
    assert not _attention("deepseek-v3", decode=False).latent  # prefill: per-head K and V, flash attention
    assert not _attention("llama-3.1-8b", decode=True).latent  # GQA decode


def test_the_latent_kernel_runs_at_mla_decode_frac_and_the_rest_at_attention_frac() -> None:
    d = genmodel.load_device("gb200")
    slow = dataclasses.replace(d, efficiency=dataclasses.replace(d.efficiency, mla_decode_frac=0.25))
    peak = d.peak_flops_per_s["bf16"] * d.matmul_scale["bf16"]
    decode, prefill = _attention("deepseek-v3", decode=True), _attention("deepseek-v3", decode=False)
    assert roofline(decode, slow, BF16).compute_s == pytest.approx(decode.flops / (peak * 0.25))
    # a prefill's attention keeps attention_frac, whatever the decode kernel reaches
    assert roofline(prefill, slow, BF16).compute_s == pytest.approx(roofline(prefill, d, BF16).compute_s)
    assert roofline(prefill, d, BF16).compute_s == pytest.approx(
        prefill.flops / (peak * d.efficiency.attention_frac)
    )
    # --ideal: the pure roofline for both
    assert Rates.of(d.ideal(), BF16).mla_decode_flops_per_s == pytest.approx(d.peak_flops_per_s["bf16"])


def test_devices_without_a_published_timing_keep_their_attention_frac() -> None:
    for device_id in genmodel.list_ids("hardware"):
        eff = genmodel.load_device(device_id).efficiency
        given = load_device_yaml(device_id).efficiency.mla_decode_frac
        if device_id in BLACKWELL:
            assert given is not None and eff.mla_decode_frac == pytest.approx(0.42), device_id
        else:
            assert given is None and eff.mla_decode_frac == eff.attention_frac, device_id


def test_the_b200_value_reproduces_the_cutlass_mla_benchmark_it_stands_on() -> None:
    """sglang PR 6929, sgl-kernel benchmark/bench_cutlass_mla.py: 128 heads, bf16, 256 sequences;
    "GB/s" over q, output and cache bytes. One layer of genmodel's absorbed attention at those
    shapes takes the kernel's measured time within 8 % (the value is their mean rate; they span
    875-969 TFLOPS)."""
    d = genmodel.load_device("b200")
    layers = genmodel.load_model("deepseek-v3").num_layers
    for seq_len, gb_per_s in ((2048, 4047.294114), (4096, 4015.363449), (8192, 4124.473260)):
        q_bytes = 256 * 128 * 576 * 2
        measured_s = (q_bytes * (1 + 512 / 576) + 256 * seq_len * 576 * 2) / (gb_per_s * 1e9)
        op = _attention("deepseek-v3", decode=True, past=seq_len - 1.0)  # seq_len keys with the new one
        t = roofline(op, d, BF16)
        assert t.compute_s > t.memory_s  # compute-bound at 128 heads
        assert t.compute_s / layers == pytest.approx(measured_s, rel=0.08), seq_len


def test_the_profile_fits_leave_the_sourced_kernel_rate_alone() -> None:
    """tools/fit_profiles.py fits a platform's profile on its end-to-end rows; the MLA decode rate is
    the device file's kernel timing, and the GB200 rows would otherwise pull it to their residual."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "fit_profiles.py"
    spec = importlib.util.spec_from_file_location("fit_profiles", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert "mla_decode_frac" in tool.SOURCED
    rows = tool.fit_cases(genmodel.read_cases(genmodel.public_cases_path()))
    gb200 = next(s for s in tool.SPECS if s[0] == "gb200-sglang")
    _, fit = tool.fit_one(gb200, rows, tool.DEFAULT_METRICS)
    assert fit is None or "mla_decode_frac" not in fit.fitted
