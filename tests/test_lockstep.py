"""Attention-DP ranks in lockstep (genmodel._lockstep): each engine's padding between ranks and when
their decode step replays a CUDA graph, from the engines' sources (the presets' ``source``)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine
from genmodel._errors import SpecError
from genmodel._forwardpass import StepSpecs
from genmodel._lockstep import ALONE, Lockstep, lockstep
from genmodel._stepcost import StepCostTable
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

LAUNCH_S = 40e-6


@cache
def _table() -> StepCostTable:
    """Qwen3-30B-A3B at EP4 DP4 on H200: the attention-DP ranks of an MoE model."""
    model, system = load_model("qwen3-30b-a3b"), load_hardware("h200-sxm")
    specs = StepSpecs(model=model, hardware=system, plan=genmodel.Plan(ep=4, dp=4), precision=Precision())
    return StepCostTable.build(specs, tokens_max=1024, prefill_launch_s=LAUNCH_S)


def _engine(name: str) -> tuple[Engine, StepCostTable]:
    engine = engine_preset(name, load_hardware("h200-sxm").device)
    return engine, _table().graphed_up_to(*engine.cuda_graphs(4))


def test_presets_name_their_rules_and_bad_ones_are_refused() -> None:
    assert [
        (engine_preset(n).dp_graph_sync, engine_preset(n).dp_pad_tokens) for n in ("vllm", "sglang", "trtllm")
    ] == [
        ("own", "max"),
        ("all-decode", "max-len"),
        ("all-decode-equal", "none"),
    ]
    for knob in ("dp_graph_sync", "dp_pad_tokens"):
        with pytest.raises(SpecError, match=knob):
            engine_preset("vllm").replace(**{knob: "sometimes"})


def test_a_lone_rank_keeps_its_own_rules() -> None:
    for name in ("vllm", "sglang", "trtllm"):
        engine, table = _engine(name)
        assert lockstep(engine, table, [(37, False)]) is ALONE
        assert lockstep(engine, table, [(37, True)], [4]) is ALONE  # (four ranks alike)


def test_trtllm_decode_runs_eagerly_while_another_rank_prefills() -> None:
    """cuda_graph_runner.py maybe_get_cuda_graph: with attention DP, no graph unless every rank's
    batch is generation-only: a decode-only rank beside a prompt on another steps eagerly, at
    least its kernels' host launches, where alone it replays its graph."""
    engine, table = _engine("trtllm")
    group = lockstep(engine, table, [(8, False), (8 + 512, True), (8, False), (8, False)])
    assert group.eager is True and group.rows is None
    alone = table.step_s(decode_seqs=8, decode_past_sum=8000.0, chunks=())
    eager = table.step_s(decode_seqs=8, decode_past_sum=8000.0, chunks=(), eager=group.eager)
    assert not table.eager_decode(8) and alone < table.prefill_host_s
    assert eager == pytest.approx(table.prefill_host_s + table.overhead_s)


def test_trtllm_without_padding_graphs_only_equal_batches() -> None:
    """... and, without enable_padding, only when every rank's batch size is the same; an idle
    rank holds one dummy generation request, so one client on each rank or one in all is graphed."""
    engine, table = _engine("trtllm")
    assert lockstep(engine, table, [(8, False)] * 4) == Lockstep(rows=8, eager=False)
    assert lockstep(engine, table, [(8, False), (7, False), (8, False), (8, False)]).eager is True
    assert lockstep(engine, table, [(1, False), (0, False), (0, False), (0, False)]).eager is False
    assert lockstep(engine, table, [(2, False), (0, False), (0, False), (0, False)]).eager is True
    # equal but of a size not captured (33-63): eager, as alone
    assert lockstep(engine, table, [(40, False)] * 4).eager is True


def test_trtllm_with_padding_pads_every_rank_from_the_largest() -> None:
    """_get_padded_batch: with enable_padding every generation-only rank is padded up to the
    captured size at least the largest rank's batch, so the group replays that graph."""
    engine, _ = _engine("trtllm")
    padded = engine.replace(graph_decode_sizes=(), graph_pad_sizes=(1, 2, 4, 8, 16, 32, 64, 128))
    table = _table().graphed_up_to(*padded.cuda_graphs(4))
    assert lockstep(padded, table, [(9, False), (3, False), (0, False), (16, False)]) == Lockstep(
        rows=16, eager=False
    )
    assert lockstep(padded, table, [(17, False), (3, False)]) == Lockstep(rows=32, eager=False)
    assert lockstep(padded, table, [(129, False), (3, False)]).eager is True  # (above the graphs)


def test_sglang_graph_runs_on_every_rank_at_the_largest_batch() -> None:
    """prepare_mlp_sync_batch: can_run_dp_cuda_graph is the MIN over ranks of decode-or-idle;
    cuda_graph_runner.py then replays the graph of bisect(capture_bs, max(global_num_tokens)) on
    every rank, an idle one too: the routed experts see that batch from each."""
    engine, table = _engine("sglang")
    group = lockstep(engine, table, [(9, False), (3, False), (0, False), (0, False)])
    assert group == Lockstep(rows=12, eager=False)  # (captured sizes ... 8, 12, 16 ...)
    busy = table.step_s(decode_seqs=3, decode_past_sum=3000.0, chunks=(), rows=group.rows, eager=group.eager)
    assert busy == table.step_s(decode_seqs=3, decode_past_sum=3000.0, chunks=(), rows=12)
    assert busy > table.step_s(decode_seqs=3, decode_past_sum=3000.0, chunks=())  # (its own graph: 4)


def test_sglang_prefill_in_the_batch_is_eager_and_sum_len() -> None:
    """A prompt on any rank: no graph, and get_dp_padding_mode picks SUM_LEN (is_extend_in_batch):
    each rank its own tokens, an idle rank none, the experts at the mean."""
    engine, table = _engine("sglang")
    group = lockstep(engine, table, [(9, False), (300, True), (0, False), (3, False)])
    assert group == Lockstep(group=(9 + 300 + 0 + 3) / 4, eager=True)


def test_sglang_eager_decode_pads_to_the_largest_when_the_load_is_even() -> None:
    """Above the graph limit a decode step is eager; MAX_LEN (every rank padded to the largest)
    when sum x 2 > max x dp, SUM_LEN otherwise."""
    engine, table = _engine("sglang")
    limit = table.graph_max_decode
    even = lockstep(engine, table, [(limit + 10, False), (limit, False), (limit, False), (limit, False)])
    assert even == Lockstep(rows=limit + 10, eager=True)
    uneven = lockstep(engine, table, [(limit + 10, False), (1, False), (0, False), (0, False)])
    assert uneven == Lockstep(group=(limit + 11) / 4, eager=True)
    # weighted entries count as repeated ones: one busy class of three ranks, one idle rank
    assert lockstep(engine, table, [(limit + 1, False), (0, False)], [3, 1]).rows == limit + 1


def test_vllm_pads_every_step_to_the_largest_rank() -> None:
    """get_dp_padding: each rank's tokens (padded to its graph first) to the largest rank's, a
    mixed step's too; an idle rank's dummy batch of one the same."""
    engine, table = _engine("vllm")
    assert lockstep(engine, table, [(9, False), (3, False), (0, False), (0, False)]) == Lockstep(rows=16)
    assert lockstep(engine, table, [(9, False), (700, True)]) == Lockstep(rows=700)
    mixed = table.step_s(decode_seqs=9, decode_past_sum=9000.0, chunks=(), rows=700)
    assert mixed > table.step_s(decode_seqs=9, decode_past_sum=9000.0, chunks=())


def _tpot(engine: Engine | str, **kw: Any) -> float:
    r = genmodel.simulate(
        "qwen3-30b-a3b",
        "h200-sxm",
        engine=engine,
        concurrency=6,
        ep=4,
        dp=4,
        weight_dtype="fp8",
        requests_per_client=4,
        warmup_requests=0,
        input_tokens=512,
        output_tokens=64,
        **kw,
    )
    return float(r.tpot_s.mean)


def test_trtllm_uneven_ranks_decode_eagerly_in_the_simulation() -> None:
    """Six clients on four ranks (two ranks of two, two of one): TensorRT-LLM's ranks never decode
    equal batches, so every decode step is eager and the TPOT is the host-bound floor's; each
    rank on its own rules (dp_graph_sync "own") would replay its graphs."""
    preset = engine_preset("trtllm", load_hardware("h200-sxm").device)
    own = _tpot(preset.replace(dp_graph_sync="own"))
    assert _tpot(preset) > 1.5 * own


def test_closed_form_idle_ranks_follow_the_engines_rules() -> None:
    client = BenchmarkClient(requests_per_client=4, warmup_requests=0, restart_after_warmup=False)
    trt = Wave.of(engine_preset("trtllm"), client)
    assert trt.idle_ranks(1.0, prefill=False, busy=0.25, tp=4) == (1.0, False)  # (equal: graphed)
    assert trt.idle_ranks(2.0, prefill=False, busy=0.25, tp=4) == (1.0, True)  # (2 vs a dummy 1)
    sglang = Wave.of(engine_preset("sglang"), client)
    assert sglang.idle_ranks(5.0, prefill=False, busy=0.25, tp=4) == (5.0, False)  # (the graph)
    assert sglang.idle_ranks(1024.0, prefill=True, busy=0.25, tp=4) == (0.0, False)  # (SUM_LEN)
    vllm = Wave.of(engine_preset("vllm"), client)
    assert vllm.idle_ranks(1024.0, prefill=True, busy=0.25, tp=4)[0] == 1024.0  # (padded to the max)
