"""The serving KV pool of a model with sliding-window layers (``Engine.swa_pool``): vLLM keeps a
sequence's window and a block in those layers, SGLang sizes a full-layer pool beside a sliding one
("split"), the simulation's accounting, the closed form's pool and ``estimate``'s max_running agree,
and a model without such layers (or a context within the window) is unchanged."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import genmodel
from genmodel._api import default_precision
from genmodel._enginepresets import engine_preset
from genmodel._memory import engine_max_batch
from genmodel._parallel import Plan
from genmodel._sizes import pool_kv_model, sliding_kv_share, split_kv_scale
from genmodel._windowkv import WindowKv
from genmodel.io import load_hardware, load_model

H100 = load_hardware("h100-sxm").device
OSS = load_model("gpt-oss-20b")  # 12 of its 24 blocks slide over 128 tokens
VLLM = engine_preset("vllm", H100)
FULL = VLLM.replace(swa_pool="full")
FP4 = default_precision("fp4", model=OSS)
#: a pool of about 8 GB: a few hundred gpt-oss-20b sequences of 1280 tokens, whole
SMALL_POOL = 0.25


def _sim(
    engine: genmodel.Engine, model: genmodel.ModelSpec = OSS, **kwargs: object
) -> genmodel.SimulationResult:
    args: dict[str, object] = {
        "input_tokens": 1024,
        "output_tokens": 256,
        "concurrency": 300,
        "requests_per_client": 2,
        "warmup_requests": 0,
        "weight_dtype": "fp4",
    }
    args.update(kwargs)
    return genmodel.simulate(model, "h100-sxm", engine=engine, **args)  # type: ignore[arg-type]


def _pooled_and_whole(
    engine: genmodel.Engine, fraction: float, model: genmodel.ModelSpec = OSS, **kwargs: object
) -> tuple[genmodel.SimulationResult, genmodel.SimulationResult]:
    """The same run with ``engine``'s sliding-window pool and with a pool of whole sequences
    (``swa_pool="full"``), each in ``fraction`` of the memory."""
    small = engine.replace(memory_fraction=fraction)
    whole = dataclasses.replace(small, swa_pool="full")
    return _sim(small, model, **kwargs), _sim(whole, model, **kwargs)


def _max_running(pool: genmodel.Engine, output_tokens: int = 256) -> float:
    """The sequences estimate's closed-form pool holds (``engine_max_batch``) under ``pool``'s KV
    pool: gpt-oss-20b in fp4 on one H100, 1024 tokens in, ``output_tokens`` out."""
    lengths = {"input_tokens": 1024, "output_tokens": output_tokens}
    _, most, _ = engine_max_batch(OSS, H100, Plan(), FP4, **lengths, pool=pool.kv_pool)
    return most


def _figures(r: genmodel.SimulationResult) -> tuple[object, ...]:
    """What a pool that changes nothing leaves as it was."""
    return (r.ttft_s, r.tpot_s, r.kv_peak_bytes_per_device, r.kv_capacity_bytes_per_device)


def test_the_pool_model_keeps_the_window_and_a_block_or_every_token() -> None:
    assert sliding_kv_share(OSS) == 0.5  # its sliding and full blocks cache alike
    assert pool_kv_model(OSS, 16).sliding_window == 128 + 16
    assert pool_kv_model(OSS, None).num_sliding_window_layers == 0
    assert pool_kv_model(OSS, 0) is OSS  # the static memory model's window
    llama = load_model("llama-3.1-8b")
    assert pool_kv_model(llama, None) is llama and sliding_kv_share(llama) == 0.0


def test_a_sliding_model_holds_more_sequences_than_without_its_window() -> None:
    window, whole = _pooled_and_whole(VLLM, SMALL_POOL)
    assert window.mean_running_batch > 1.3 * whole.mean_running_batch
    assert window.ttft_s.mean < whole.ttft_s.mean
    # the closed form's pool, as estimate's max_running sees it
    assert _max_running(window.engine) > 1.5 * _max_running(whole.engine)


def test_a_model_without_sliding_layers_is_unchanged() -> None:
    llama = load_model("llama-3.2-1b")
    kwargs = {"input_tokens": 1000, "output_tokens": 200, "weight_dtype": "bf16"}
    a, b = _pooled_and_whole(VLLM, 0.05, llama, **kwargs)
    assert a.preemptions > 0  # the pool is the limit
    assert _figures(a) == _figures(b)


def test_contexts_within_the_window_change_nothing() -> None:
    wide = dataclasses.replace(OSS, sliding_window=4096)
    kwargs = {"input_tokens": 2000, "output_tokens": 500, "concurrency": 400}
    a, b = _pooled_and_whole(VLLM, SMALL_POOL, wide, **kwargs)
    assert a.kv_refusals > 0  # the pool is the limit
    assert _figures(a) == _figures(b)


def test_the_simulated_kv_peak_is_what_each_sequence_holds() -> None:
    # 8 prompts prefilled in one step, then decoded together in one run of 49 steps to their
    # completion: the peak is as the step before the last leaves them (the last one's completions
    # free them), each holding its prompt, 48 decode tokens and half a block of waste, less
    # (window) what its sliding-window layers freed past the window
    n, n_in, out = 8, 1000, 50
    kwargs = {"input_tokens": n_in, "output_tokens": out, "concurrency": n, "requests_per_client": 1}
    token_bytes = OSS.num_layers * OSS.attention.kv_elements_per_token() * 2  # bf16 K and V
    cached = n_in + out - 2
    whole = n * (cached + VLLM.kv_block_tokens // 2)
    assert _sim(FULL, **kwargs).kv_peak_bytes_per_device == whole * token_bytes
    keep = OSS.sliding_window + VLLM.kv_block_tokens
    freed = math.floor(sliding_kv_share(OSS) * n * (cached - keep))
    assert freed > 0
    assert _sim(VLLM, **kwargs).kv_peak_bytes_per_device == (whole - freed) * token_bytes


def test_the_freed_tokens_follow_each_sequence_across_its_window() -> None:
    # sequences entering below and above the window, leaving at random: the running count is the
    # sum over the decoding ones of share * max(0, cached - keep), rounded down
    rng = np.random.default_rng(7)
    kv, keep, share = WindowKv(0.25, 100), 100, 0.25
    live: dict[int, tuple[int, int]] = {}  # rid -> (cached tokens at entry, step of entry)
    g = 0
    for rid in range(400):
        past = int(rng.integers(1, 200))
        kv.enter(rid, past, g)
        live[rid] = (past, g)
        if live and rng.random() < 0.4:
            gone = int(rng.choice(list(live)))
            p0, g0 = live.pop(gone)
            kv.leave(gone, p0 + g - g0, g)
        g += int(rng.integers(0, 5))
        kv.advance(g)
        expected = sum(max(p0 + g - g0 - keep, 0) for p0, g0 in live.values())
        assert kv.saved(g) == math.floor(share * expected)


SGLANG = engine_preset("sglang", H100)


def test_sglang_splits_its_pool_and_the_full_one_holds_more_tokens() -> None:
    assert SGLANG.swa_pool == "split" and SGLANG.kv_pool.swa_ratio == 0.8
    # full tokens = memory / (F n_full + 0.8 S n_swa): half of gpt-oss's bytes slide, so 1 / 0.9 as many
    assert math.isclose(split_kv_scale(OSS, 0.8), 0.9)
    assert split_kv_scale(OSS, None) == 1.0 and split_kv_scale(load_model("llama-3.1-8b"), 0.8) == 1.0


def test_sglang_split_holds_more_sequences_than_one_pool_of_whole_tokens() -> None:
    # a long output: the full pool binds (a short one's prompt fills the sliding pool first:
    # tests/test_sliding_pool_sglang.py)
    split, whole = _pooled_and_whole(SGLANG, SMALL_POOL, output_tokens=2048)
    # the same memory, in 1 / 0.9 as many (full-pool) tokens
    assert math.isclose(split.kv_capacity_bytes_per_device, whole.kv_capacity_bytes_per_device, rel_tol=1e-4)
    assert split.mean_running_batch > 1.05 * whole.mean_running_batch
    most_split, most_whole = _max_running(split.engine, 2048), _max_running(whole.engine, 2048)
    assert most_whole < most_split <= math.ceil(most_whole / 0.9) + 1
    assert most_split >= math.floor(most_whole / 0.9) - 1


def test_sglang_split_leaves_a_model_without_sliding_layers_unchanged() -> None:
    llama = load_model("llama-3.2-1b")
    kwargs = {"input_tokens": 1000, "output_tokens": 200, "weight_dtype": "bf16"}
    a, b = _pooled_and_whole(SGLANG, 0.1, llama, **kwargs)
    assert a.preemptions + a.kv_refusals > 0  # the pool is the limit
    assert _figures(a) == _figures(b)
