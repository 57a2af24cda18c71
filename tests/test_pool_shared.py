"""Both serving models size the KV pool with one function (genmodel._kvpool.engine_pool): the closed
form's most running sequences (genmodel._memory.engine_max_batch, through genmodel._serving.pool_fit)
are the whole sequences the simulation's token pool (genmodel._simulate._kv_pool) holds, on dense and
MoE models, for each engine, with and without attention DP and AIConfigurator's harness."""

from __future__ import annotations

import math
from typing import Any

import pytest

import genmodel
from genmodel import Plan
from genmodel._enginepresets import engine_preset
from genmodel._engines import rank_engine
from genmodel._harness import harness_engine
from genmodel._memory import paged_tokens
from genmodel._options import DEFAULT_OPTIONS
from genmodel._serving import pool_fit
from genmodel._simulate import _kv_pool
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

BF16 = Precision(weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16")
FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
FP8_BF16_KV = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")

#: (model, hardware, plan, precision, prompt, output tokens): dense, MoE with TP or EP, attention DP
DEPLOYMENTS = [
    ("llama-3.1-8b", "h100-sxm", Plan(), BF16, 1024, 1024),
    ("llama-3.1-70b", "b200", Plan(), FP8_BF16_KV, 1024, 8192),
    ("qwen3-32b", "h200-sxm", Plan(tp=2, dp=2), FP8, 4096, 1024),
    ("qwen3-30b-a3b", "h100-sxm", Plan(tp=2, ep=2), FP8, 2048, 2048),
    ("qwen3-235b-a22b", "b200", Plan(tp=1, ep=2, dp=2), FP8, 4096, 16384),
    ("deepseek-v3", "b200", Plan(tp=8, ep=8), BF16, 128, 4096),
]


@pytest.mark.parametrize("harness", [False, True])
@pytest.mark.parametrize("name", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: f"{d[0]}-{d[1]}-dp{d[2].dp}")
def test_the_closed_form_runs_the_sequences_the_simulations_pool_holds(
    deployment: tuple[str, str, Plan, Precision, int, int], name: str, harness: bool
) -> None:
    model_id, hw, plan, precision, isl, osl = deployment
    model, hardware = load_model(model_id), load_hardware(hw)
    engine = engine_preset(name, hardware.device)
    if harness:  # a smaller budget, another memory fraction (TensorRT-LLM 0.80)
        engine = harness_engine(engine, "aiconfigurator", concurrency=64, input_tokens=isl)
    engine = rank_engine(engine, moe=model.moe is not None, dp=plan.dp)  # (each rank's, as both run it)
    lengths = (model, hardware, plan, precision, isl, osl, False, DEFAULT_OPTIONS)
    system, extras, _, most, held = pool_fit(*lengths, engine.kv_pool)
    tokens, _ = _kv_pool(model, system.device, plan, precision, engine, extras_input=isl, extras=extras)
    # the closed form's sequences each hold the prompt and what the admission keeps, in whole blocks
    per_sequence = paged_tokens(isl + held["output_tokens"], extras.kv_block_tokens)
    assert most // plan.dp == tokens // per_sequence, (most, tokens, per_sequence)
    assert most % plan.dp == 0


def test_the_pool_takes_off_the_engines_profile_run_not_the_running_batch() -> None:
    """A larger token budget (a larger profile run: vLLM's dummy forward of max_num_batched_tokens)
    leaves a smaller pool to the closed form too, where its running batch's own activations (a
    chunk of at most 8,192 prompt tokens) did not depend on the budget: Llama-3.1-70B bf16 at TP2
    on H100, 1,024 / 1,024 tokens, a budget of 2,048 against 8,192 tokens."""
    model, hardware = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    args = (model, hardware, Plan(tp=2), BF16, 1024, 1024, False, DEFAULT_OPTIONS)
    small = engine_preset("vllm", hardware.device).replace(max_batched_tokens=2048)
    large = small.replace(max_batched_tokens=8192)
    most = [pool_fit(*args, e.kv_pool)[3] for e in (small, large)]
    assert most[0] > most[1]


def test_the_tensorrt_llm_outlier_now_agrees() -> None:
    """Qwen3-235B-A22B fp8 (fp8 KV) at DP2 EP2 on B200, TensorRT-LLM's defaults, 4,096 / 16,384
    tokens, 64 clients: the closed form's pool kept 32 whole sequences a rank beside the decode
    batch's activations (0.46 GB) where the simulation's, less a full step's (1.68 GB), keeps 31, so
    the closed form gave 0.645 s of TTFT against 17.9 s simulated (0.036x; 32 clients a rank, the
    32nd waiting a whole request). With the pool both take from genmodel._kvpool: 18.1 s against
    17.9 s; within 1.25x here, and the two report the same most running sequences."""
    kw: dict[str, Any] = {"tp": 1, "ep": 2, "dp": 2, "weight_dtype": "fp8", "kv_dtype": "fp8"}
    kw.update(engine="trtllm", input_tokens=4096, output_tokens=16384, concurrency=64)
    sim, closed = (
        genmodel.estimate("qwen3-235b-a22b", "b200", serving=s, **kw) for s in ("simulated", "closed-form")
    )
    assert sim.serving is not None and closed.serving is not None
    assert closed.serving.max_running == sim.serving.max_running < 64
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.25), (closed.ttft_s, sim.ttft_s)
    assert sim.ttft_s > 10  # the 32nd client of each rank waits for a whole request


def test_the_simulation_accepts_what_the_engines_pool_holds() -> None:
    """TensorRT-LLM's fraction is of the memory the weights leave (kv_fraction_of "free"), so its
    engine uses more than the device's usable 90 %: DeepSeek-V3 fp8 at DP4 EP4 on B200 (182.6 GB of
    weights a device, over the device's usable 173.9 GB) keeps 97 sequences a rank in the pool both
    serving models size. The simulation checked one sequence against the device's 90 % before sizing
    that pool, so it refused what the closed form (and its own pool) ran (the fuzz sweep's
    sim-cf-refusal-differs class); both now run it, with the same most running sequences."""
    kw: dict[str, Any] = {"tp": 1, "ep": 4, "dp": 4, "weight_dtype": "fp8", "kv_dtype": "bf16"}
    kw.update(engine="trtllm", input_tokens=1024, output_tokens=128, concurrency=8)
    sim, closed = (
        genmodel.estimate("deepseek-v3", "b200", serving=s, **kw) for s in ("simulated", "closed-form")
    )
    assert sim.serving is not None and closed.serving is not None
    assert closed.serving.max_running == sim.serving.max_running > 8
    assert sim.memory.weights_bytes_per_device > 0.9 * load_hardware("b200").device.memory_capacity_bytes
