"""Quantised weight formats with their scales (genmodel._units.WEIGHT_FORMATS): llama.cpp's GGUF
block formats and mixes take their true storage size, and run their GEMMs as the plain precision;
and static validation rows that name an engine without a serving preset (llama.cpp, MLC).

Sources: ggml/src/ggml-common.h (ggml-org/llama.cpp), the block structs: a block of QK weights
stores fp16 scale(s) beside the packed quants; tools/quantize/README.md's table for the mixes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import SpecError
from genmodel._api import default_precision
from genmodel._profiles import Profile
from genmodel._units import WEIGHT_DTYPE_BYTES, WEIGHT_FORMATS, plain_dtype
from genmodel._workload import Precision

FP16 = 2  # bytes of ggml_half
QK_K = 256  # weights per k-quant super-block
K_SCALE_SIZE = 12


def _bits(block_bytes: float, weights: int) -> float:
    return block_bytes * 8 / weights


#: bits per weight recomputed from the block structs' fields (ggml-common.h)
BLOCKS = {
    "q4_0": _bits(FP16 + 32 // 2, 32),  # d, qs[16]
    "q4_1": _bits(2 * FP16 + 32 // 2, 32),  # d, m, qs[16]
    "q5_0": _bits(FP16 + 4 + 32 // 2, 32),  # d, qh[4], qs[16]
    "q8_0": _bits(FP16 + 32, 32),  # d, qs[32]
    "q4_k": _bits(2 * FP16 + K_SCALE_SIZE + QK_K // 2, QK_K),  # d, dmin, scales, qs
    "q5_k": _bits(2 * FP16 + K_SCALE_SIZE + QK_K // 2 + QK_K // 8, QK_K),  # + qh
    "q6_k": _bits(FP16 + QK_K // 16 + 3 * QK_K // 4, QK_K),  # ql, qh, scales, d
    "q4f16_1": _bits(FP16 + 32 // 2, 32),  # MLC: int4 with an fp16 scale per group of 32
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_formats_store_their_scales(name: str) -> None:
    bits, plain = WEIGHT_FORMATS[name]
    assert bits == pytest.approx(BLOCKS[name])
    assert WEIGHT_DTYPE_BYTES[name] == pytest.approx(BLOCKS[name] / 8)
    assert plain == ("int4" if name.startswith("q4") else "int8")  # 5-8-bit quants fit int8


def test_mixes_lie_between_their_formats() -> None:
    # Q4_K_M keeps most tensors in q4_k and some (attn_v, ffn_down, output) in q6_k
    assert BLOCKS["q4_k"] < WEIGHT_FORMATS["q4_k_s"][0] < WEIGHT_FORMATS["q4_k_m"][0] < BLOCKS["q6_k"]
    assert BLOCKS["q5_k"] < WEIGHT_FORMATS["q5_k_m"][0] < BLOCKS["q6_k"]
    # every 4-bit GGUF format stores more than int4's 4 bits
    assert min(b for b, p in WEIGHT_FORMATS.values() if p == "int4") > 8 * genmodel.DTYPE_BYTES["int4"]


def test_a_format_is_a_weight_precision_only() -> None:
    p = default_precision("q4_k_m", "fp16", "fp16")
    assert p.weight_bytes == pytest.approx(4.8944 / 8)
    assert p.gemm_dtype == "fp16"  # dequantised to the activations' precision
    assert default_precision("q8_0").act_dtype == "bf16"  # not int8 activations by default
    assert Precision(weight_dtype="q8_0", act_dtype="int8").gemm_dtype == "int8"
    assert plain_dtype("q6_k") == "int8" and plain_dtype("fp8") == "fp8"
    with pytest.raises(SpecError, match="act_dtype='q4_0'"):
        Precision(weight_dtype="int4", act_dtype="q4_0")
    with pytest.raises(SpecError, match="weight_dtype='q4_x'"):
        default_precision("q4_x")


def _estimate(weight_dtype: str) -> genmodel.Estimate:
    return genmodel.estimate(
        "llama-2-7b",
        "jetson-agx-orin-64gb",
        input_tokens=8,
        output_tokens=128,
        weight_dtype=weight_dtype,
        act_dtype="fp16",
        kv_dtype="fp16",
    )


def test_weights_take_the_formats_size_and_decode_slows_with_it() -> None:
    int4, q4_0, q4_k_m = (_estimate(d) for d in ("int4", "q4_0", "q4_k_m"))
    w = int4.memory.weights_bytes_per_device
    assert q4_0.memory.weights_bytes_per_device == pytest.approx(w * 4.5 / 4)
    assert q4_k_m.memory.weights_bytes_per_device == pytest.approx(w * 4.8944 / 4)
    # batch-1 decode streams the weights: slower in step with the bytes, a little less (fixed costs)
    slow_q4_0 = int4.decode_tokens_per_s_per_device / q4_0.decode_tokens_per_s_per_device
    slow_q4_k_m = int4.decode_tokens_per_s_per_device / q4_k_m.decode_tokens_per_s_per_device
    assert 1.0 < slow_q4_0 <= 4.5 / 4 + 1e-9
    assert slow_q4_0 < slow_q4_k_m <= 4.8944 / 4 + 1e-9


def test_cli_takes_a_format_and_refuses_an_unknown_one() -> None:
    args = ["estimate", "--model", "llama-2-7b", "--hardware", "jetson-agx-orin-64gb"]
    args += ["--input-tokens", "8", "--output-tokens", "16", "--act-dtype", "fp16"]
    assert '"weight_dtype": "q4_k_m"' in cli_ok([*args, "--weight-dtype", "q4_k_m", "--format", "json"])
    assert "weight_dtype='q4_x'" in cli_bad([*args, "--weight-dtype", "q4_x"])


# --- a static row names the engine that ran it (llama.cpp, MLC: no serving preset) --------------


def _row_file(tmp_path: Path, engine: str) -> Path:
    rows = genmodel.read_cases(genmodel.public_cases_path())
    row = next(r for r in rows if r["id"] == "P27")
    path = tmp_path / "cases.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({**row, "engine": engine})
    return path


@pytest.mark.parametrize("engine", ["llamacpp", "mlc", ""])
def test_a_static_row_may_name_an_engine_without_a_preset(tmp_path: Path, engine: str) -> None:
    report = genmodel.validate(_row_file(tmp_path, engine))
    assert not report.skipped
    (case,) = report.cases
    # no orin profile ships: the engine changes nothing but which profile would be looked up
    plain = _estimate("q4_k_m").decode_tokens_per_s_per_device
    assert case.predicted == pytest.approx(plain, rel=1e-12)
    assert case.profile is None


def test_a_static_row_naming_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="engine='llamacp' must be empty or one of"):
        genmodel.validate(_row_file(tmp_path, "llamacp"))
    assert "engine='llamacp'" in cli_bad(["validate", str(_row_file(tmp_path, "llamacp"))])


def test_a_profile_for_llamacpp_applies_to_its_device_only_with_that_engine() -> None:
    profile = Profile(id="orin-llamacpp", hardware=("jetson-agx-orin-64gb",), engines=("llamacpp",))
    assert profile.applies_to("jetson-agx-orin-64gb", "llamacpp")
    assert not profile.applies_to("jetson-agx-orin-64gb", "mlc")
    assert not profile.applies_to("jetson-agx-orin-64gb", None)
