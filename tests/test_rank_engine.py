"""SGLang's per-rank knobs with DP attention (rank_engine) in the simulation, the disaggregated
simulation and the closed form."""

from __future__ import annotations

from typing import Any

import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._engines import DP_ATTENTION_CONSERVATIVENESS, idle_rank_tokens, rank_engine
from genmodel._lockstep import group_tokens
from genmodel._wave import BenchmarkClient, Wave
from genmodel.io import load_hardware

_CLIENT = BenchmarkClient(requests_per_client=12, warmup_requests=2, restart_after_warmup=True)


def _h200_sglang() -> genmodel.Engine:
    hw = load_hardware("h200-sxm")
    return engine_preset("sglang", hw.device)


def test_sglang_ranks_divide_the_chunk_and_scale_the_conservativeness() -> None:
    """server_args.py _handle_data_parallelism: chunked_prefill_size // dp_size and
    schedule_conservativeness x 0.3, so init_new_token_ratio = 0.7 x 0.3 and its floor x 0.14."""
    sglang = engine_preset("sglang")  # (16,384-token chunk: no device)
    rank = rank_engine(sglang, moe=True, dp=4)
    assert rank.max_batched_tokens == 16384 // 4
    assert rank.new_token_ratio is not None and sglang.new_token_ratio is not None
    assert DP_ATTENTION_CONSERVATIVENESS == 0.3
    assert rank.new_token_ratio.init == pytest.approx(0.21)
    assert rank.new_token_ratio.min_ratio == pytest.approx(0.21 * 0.14)
    assert rank.new_token_ratio.decay == pytest.approx((0.21 - 0.21 * 0.14) / 600)
    assert rank.reserve_output_frac == pytest.approx(0.21)  # (the closed form's initial ratio)
    # the knobs SGLang keeps per server, and a rank's own request cap
    assert rank.max_prefill_tokens == sglang.max_prefill_tokens
    assert rank.max_num_seqs == sglang.max_num_seqs
    # dense replicas, one rank and the other engines keep theirs
    assert rank_engine(sglang, moe=False, dp=4) is sglang
    assert rank_engine(sglang, moe=True, dp=1) is sglang
    vllm = engine_preset("vllm")
    assert rank_engine(vllm, moe=True, dp=4) is vllm


def test_the_simulated_ranks_run_the_lower_ratio() -> None:
    r = genmodel.simulate(
        "qwen3-30b-a3b",
        "h200-sxm",
        engine="sglang",
        tp=1,
        ep=2,
        dp=2,
        weight_dtype="fp8",
        input_tokens=512,
        output_tokens=20,
        concurrency=2,
        requests_per_client=2,
        warmup_requests=0,
    )
    assert r.engine.new_token_ratio is not None
    assert r.engine.new_token_ratio.init == pytest.approx(0.21)


def _disagg(engine: str | genmodel.Engine) -> genmodel.SimulationResult:
    return genmodel.simulate(
        "qwen3-30b-a3b",
        "h200-sxm",
        engine=engine,
        weight_dtype="fp8",
        concurrency=2,
        requests_per_client=2,
        warmup_requests=0,
        input_tokens=8192,
        output_tokens=20,
        disaggregated=True,
        prefill_ep=2,
        prefill_dp=2,
        decode_ep=2,
        decode_dp=2,
    )


def test_disaggregated_pools_run_each_ranks_knobs() -> None:
    """Each pool's attention-DP ranks chunk at 8,192 / 2 tokens: an 8,192-token prompt takes two
    prefill steps there, one when the size given is doubled."""
    sglang = _disagg("sglang")
    assert sglang.engine.max_batched_tokens == 4096  # (the decode pool's engine)
    assert sglang.engine.new_token_ratio is not None
    assert sglang.engine.new_token_ratio.init == pytest.approx(0.21)
    whole = _disagg(_h200_sglang().replace(max_batched_tokens=16384))
    assert whole.engine.max_batched_tokens == 8192
    steps = sglang.to_dict()["prefill_pool"]["steps"], whole.to_dict()["prefill_pool"]["steps"]
    assert steps[0] > steps[1]
    assert sglang.ttft_s.mean > whole.ttft_s.mean


def test_the_closed_forms_wave_takes_each_ranks_budget() -> None:
    sglang = Wave.of(engine_preset("sglang"), _CLIENT)
    ranked = sglang.on_ranks(moe=True, dp=8)
    assert ranked.budget_tokens == 16384 // 8
    assert ranked.pool.new_token_ratio is not None
    assert ranked.pool.new_token_ratio.init == pytest.approx(0.21)
    assert sglang.on_ranks(moe=False, dp=8) is sglang
    vllm = Wave.of(engine_preset("vllm"), _CLIENT)
    assert vllm.on_ranks(moe=True, dp=8) is vllm


_DS: dict[str, Any] = {
    "tp": 1,
    "ep": 8,
    "dp": 8,
    "weight_dtype": "fp8",
    "kv_dtype": "bf16",
    "input_tokens": 1024,
    "output_tokens": 256,
}


def _ttft(serving: str, concurrency: int, engine: str | genmodel.Engine = "sglang") -> float:
    e = genmodel.estimate(
        "deepseek-v3", "h200-sxm", concurrency=concurrency, serving=serving, engine=engine, **_DS
    )
    return e.ttft_s


def test_closed_form_follows_the_simulated_chunk_over_the_dp_size() -> None:
    """64 clients on DeepSeek-V3 DP8: the rank's 1,024-token chunk (8,192 / 8) holds one prompt a
    step, not eight, so the burst of prompts ends sooner than with a rank chunk of 8,192 (the
    size given x 8): the simulation's TTFT falls, and the closed form's by about as much."""
    whole = _h200_sglang().replace(max_batched_tokens=8 * 8192)
    sim, sim_whole = _ttft("simulated", 64), _ttft("simulated", 64, whole)
    closed, closed_whole = _ttft("closed-form", 64), _ttft("closed-form", 64, whole)
    assert sim < 0.9 * sim_whole and closed < 0.9 * closed_whole
    assert closed / closed_whole == pytest.approx(sim / sim_whole, abs=0.1)


def _both(serving: str, concurrency: int, engine: str = "sglang") -> tuple[float, float]:
    e = genmodel.estimate(
        "deepseek-v3", "h200-sxm", concurrency=concurrency, serving=serving, engine=engine, **_DS
    )
    return e.ttft_s, e.tpot_s


@pytest.mark.parametrize("clients", [1, 2, 4])
def test_closed_form_loads_only_the_busy_ranks_experts(clients: int) -> None:
    """Fewer clients than attention-DP ranks on SGLang: a prompt's step is eager and gathers in
    SUM_LEN mode, the idle ranks sending the routed experts no tokens (idle_rank_tokens 0), so a
    prompt's prefill is shorter than on a full DP8 load; a decode step replays the CUDA graph of the
    busy ranks' batch on every rank, the idle ones too (cuda_graph_runner.py: the graph of
    max(global_num_tokens), ForwardMode.IDLE graphed, MAX_LEN), so it costs what a full load's
    does. The closed form stays within a few per cent of the simulation."""
    (sim_ttft, sim_tpot), (ttft, tpot) = _both("simulated", clients), _both("closed-form", clients)
    assert ttft == pytest.approx(sim_ttft, rel=0.05) and tpot == pytest.approx(sim_tpot, rel=0.05)
    full_ttft, full_tpot = _both("closed-form", 8)  # (eight clients load every rank)
    assert ttft < full_ttft and tpot == pytest.approx(full_tpot, rel=1e-9)
    assert sim_tpot == pytest.approx(_both("simulated", 8)[1], rel=1e-9)


def test_idle_ranks_of_vllm_and_trtllm_send_a_dummy_token() -> None:
    """vLLM's idle DP rank runs a one-token dummy batch and TensorRT-LLM pads it with a dummy
    generation request: one decoding client on DP8 costs a decode step as eight do (TensorRT-LLM's
    batches of one on every rank are equal, so the step is graphed); SGLang's idle rank sends
    nothing outside a CUDA graph, but its decode steps are graphed, the graph replayed on the idle
    ranks at the busy one's batch: the same."""
    assert idle_rank_tokens(engine_preset("sglang")) == 0
    assert idle_rank_tokens(engine_preset("vllm")) == idle_rank_tokens(engine_preset("trtllm")) == 1
    assert idle_rank_tokens(None) == 1
    for engine in ("vllm", "trtllm", "sglang"):
        one, eight = _both("simulated", 1, engine)[1], _both("simulated", 8, engine)[1]
        assert one == pytest.approx(eight, rel=1e-6)
        assert _both("closed-form", 1, engine)[1] == pytest.approx(one, rel=0.02)


def test_group_tokens_count_the_idle_ranks_tokens() -> None:
    assert group_tokens([1, 0, 0, 0]) == pytest.approx(0.25)  # (SGLang: below one token)
    assert group_tokens([1, 0, 0, 0], idle=1) is None  # (a dummy token each: a uniform load)
    assert group_tokens([9, 0, 0, 0], idle=1) == pytest.approx(3.0)
    assert group_tokens([9, 0], [1, 3], idle=1) == pytest.approx(3.0)  # (weighted as repeated)


def test_disaggregated_decode_ranks_share_the_experts_as_aggregated_ones() -> None:
    """A decode pool's attention-DP ranks step as the aggregated simulation's: one SGLang client on
    DP4 decodes at the aggregated step's pace, and as four do (the graphed decode step runs on the
    idle ranks at the busy one's batch); TensorRT-LLM's idle ranks decode a dummy sequence, so one
    client costs as four."""
    kw: dict[str, Any] = {
        "weight_dtype": "fp8",
        "requests_per_client": 3,
        "warmup_requests": 1,
        "input_tokens": 1024,
        "output_tokens": 64,
    }

    def tpot(engine: str, clients: int, **plan: Any) -> float:
        r = genmodel.simulate("qwen3-30b-a3b", "h200-sxm", engine=engine, concurrency=clients, **kw, **plan)
        return r.tpot_s.mean

    split = {"disaggregated": True, "decode_ep": 4, "decode_dp": 4}
    one = tpot("sglang", 1, **split)
    assert one == pytest.approx(tpot("sglang", 1, ep=4, dp=4), rel=1e-3)
    assert one == pytest.approx(tpot("sglang", 4, **split), rel=1e-6)
    assert tpot("trtllm", 1, **split) == pytest.approx(tpot("trtllm", 4, **split), rel=1e-3)
