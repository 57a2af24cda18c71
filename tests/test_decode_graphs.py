"""Which decode batches each engine replays as CUDA graphs (Engine.decode_graphs), at the versions and
harness configurations of the bundled rows, and what a batch without a graph costs."""

from __future__ import annotations

from typing import Any

import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._forwardpass import StepSpecs
from genmodel._harness import harness_engine
from genmodel._stepcost import StepCostTable
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

LAUNCH_S = 40e-6


@pytest.mark.parametrize(
    ("hardware", "below_tp4", "from_tp4"),
    [
        ("h100-sxm", 256, 512),
        ("h200-sxm", 256, 512),
        ("b200", 512, 512),
        ("l40s", 32, 160),
        ("rtx-4090", 24, 80),
    ],
)
def test_sglang_05_graphs_by_gpu_memory_and_tp(hardware: str, below_tp4: int, from_tp4: int) -> None:
    # server_args.py _handle_gpu_memory_settings (0.5.6.post2): cuda_graph_max_bs by the GPU's
    # memory, and below TP4 a smaller one on GPUs under 160 GB; every size up to it is padded to
    preset = engine_preset("sglang", load_hardware(hardware).device)
    assert preset.graph_max_decode_batch is None
    assert preset.decode_graphs(1) == preset.decode_graphs(2) == (below_tp4, ())
    assert preset.decode_graphs(4) == preset.decode_graphs(8) == (from_tp4, ())
    assert engine_preset("sglang").decode_graphs(1) == (512, ())  # no device: 80 GB or more, B200-like
    # a knob set by hand (or a harness's 160) wins over the by-TP default
    assert preset.replace(graph_max_decode_batch=100).decode_graphs(8) == (100, ())
    assert harness_engine(preset, "sglang-0.4", tp=8).decode_graphs(8) == (160, ())


def test_trtllm_10_graphs_only_its_default_sizes_without_padding() -> None:
    # TorchLlmArgs' default CudaGraphConfig: max_batch_size 128, enable_padding False, sizes
    # 1-31, 32, 64, 128; trtllm-serve sets none; a size not listed runs eagerly
    limit, sizes = engine_preset("trtllm").decode_graphs(2)
    assert limit == 128 and set(sizes) == {*range(1, 33), 64, 128}


def test_vllm_captures_up_to_512() -> None:
    # min(2 x max_num_seqs, 512): 1024 or 256 sequences by the GPU, 512 either way
    for hw in ("h100-sxm", "a100-sxm-80gb"):
        assert engine_preset("vllm", load_hardware(hw).device).decode_graphs(1) == (512, ())


@pytest.mark.parametrize("name", ["vllm", "sglang", "trtllm"])
def test_aiconfigurator_graphs_every_batch_up_to_its_clients(name: str) -> None:
    # the benchmark rules' cuda_graph_batch_sizes = 1..max_batch_size, max_batch_size the clients
    preset = engine_preset(name, load_hardware("b200").device)
    for clients in (7, 256, 1000):
        e = harness_engine(preset, "aiconfigurator", concurrency=clients, input_tokens=1024)
        assert e.decode_graphs(8) == (clients, ()) == e.decode_graphs(1)


def _table() -> StepCostTable:
    model, system = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    specs = StepSpecs(model=model, hardware=system, plan=genmodel.Plan(tp=2), precision=Precision())
    return StepCostTable.build(specs, tokens_max=256, prefill_launch_s=LAUNCH_S)


def test_a_decode_batch_of_a_size_not_graphed_runs_eagerly() -> None:
    table = _table()
    sizes = engine_preset("trtllm").graph_decode_sizes
    gaps = table.graphed_up_to(128, sizes)
    assert table.graphed_up_to(None, ()) is table and gaps.graphed_up_to(128, sizes) is gaps
    host = table.prefill_host_s
    for n, eager in ((1, False), (32, False), (33, True), (50, True), (64, False), (65, True), (128, False)):
        assert gaps.eager_decode(n) is eager
        all_graphed = table.step_s(decode_seqs=n, decode_past_sum=600.0 * n, chunks=())
        got = gaps.step_s(decode_seqs=n, decode_past_sum=600.0 * n, chunks=())
        run = gaps.decode_run_s(decode_seqs=n, decode_past_sum=600.0 * n, steps=2)
        if eager:
            assert got == pytest.approx(max(all_graphed - table.overhead_s, host) + table.overhead_s)
            assert got > all_graphed  # 70B at TP2 decodes these batches faster than it launches them
        else:
            assert got == all_graphed
        assert run[0] == pytest.approx(got)
    assert gaps.eager_decode(129)


@pytest.mark.parametrize("serving", ["simulated", "closed-form"])
def test_trtllm_serves_50_clients_with_eager_decode_steps(serving: str) -> None:
    # 50 clients decode in batches of 33-50 most of the time, none of which trtllm-serve's default
    # graphs: each such step takes its host launches; with a graph for every size it is faster
    # (the closed form's steady batch, about 50, is eager too)
    preset = engine_preset("trtllm", load_hardware("h100-sxm").device)

    def tpot(engine: genmodel.Engine) -> float:  # fp8: bf16 70B at TP2 holds too few sequences
        model, hw = "llama-3.1-70b", "h100-sxm"
        e = genmodel.estimate(
            model,
            hw,
            input_tokens=1000,
            output_tokens=200,
            concurrency=50,
            tp=2,
            weight_dtype="fp8",
            serving=serving,
            engine=engine,
        )
        return e.tpot_s

    assert tpot(preset) > 1.05 * tpot(preset.replace(graph_decode_sizes=()))


def test_graph_sizes_must_be_positive_integers() -> None:
    with pytest.raises(genmodel.SpecError, match="graph size"):
        engine_preset("trtllm").replace(graph_decode_sizes=(0, 8))
    with pytest.raises(genmodel.SpecError, match="graph size"):
        engine_preset("sglang").replace(graph_max_decode_by_tp=((4, 1.5),))


def test_the_closed_forms_wave_graphs_as_the_engine_does() -> None:
    client = BenchmarkClient(requests_per_client=10, warmup_requests=1)
    sglang = engine_preset("sglang", load_hardware("h200-sxm").device)
    wave = Wave.of(sglang, client)
    assert wave.eager_decode(300, 2) and not wave.eager_decode(300, 4)  # 256 below TP4, 512 from it
    old = Wave.of(harness_engine(sglang, "sglang-0.4", tp=4), client)
    assert old.eager_decode(161, 8) and not old.eager_decode(160, 1)  # 160 at any TP
    trt = Wave.of(engine_preset("trtllm"), client)
    assert [n for n in range(1, 140) if trt.eager_decode(n, 1)] == [
        *range(33, 64),
        *range(65, 128),
        *range(129, 140),
    ]
    assert not Wave.of(engine_preset("vllm"), client).eager_decode(512, 1)


@pytest.mark.parametrize("clients", [64, 128])
def test_clients_in_step_at_a_captured_batch_decode_at_its_graph(clients: int) -> None:
    """TensorRT-LLM's server defaults capture decode batches 1-32, 64 and 128. Clients of fixed
    lengths stay in step: a decode-only step holds every group of them (64 or 128) and replays the
    graph, the steps holding prompts run eagerly apart. The closed form's mean running batch falls
    below the clients by those steps and the replies (63 of 64), and deciding the graph at the mean
    sent every decode step to the eager floor: TPOT 26 ms against the simulation's 3.7 ms (64) and
    4.4 ms (128)."""
    kw: dict[str, Any] = {
        "tp": 2,
        "concurrency": clients,
        "input_tokens": 128,
        "output_tokens": 128,
        "weight_dtype": "fp8",
        "act_dtype": "fp8",
        "engine": "trtllm",
    }
    sim = genmodel.estimate("llama-3.1-8b", "h200-sxm", serving="simulated", **kw)
    closed = genmodel.estimate("llama-3.1-8b", "h200-sxm", serving="closed-form", **kw)
    assert sim.tpot_s < 6e-3  # (the simulation replays the graph: far below the eager floor)
    assert closed.tpot_s / sim.tpot_s == pytest.approx(1.0, abs=0.5)


def test_a_decode_only_step_holds_every_client_in_step_and_the_mean_out_of_step() -> None:
    client = BenchmarkClient(requests_per_client=10, warmup_requests=1)
    trt = engine_preset("trtllm")
    assert Wave.of(trt, client).decode_only_batch(63.0, 64.0) == 64.0
    assert Wave.of(trt, client, in_step=False).decode_only_batch(63.0, 64.0) == 63.0


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_the_array_rule_is_the_scalar_one_batch_by_batch(tp: int) -> None:
    # the plan search asks Engine.eager_decodes of whole batch grids; each entry must be what
    # eager_decode says of that batch, half-way batches rounded as round() does
    import numpy as np

    h200 = load_hardware("h200-sxm").device
    engines = [engine_preset(name, h200) for name in ("vllm", "sglang", "trtllm")]
    engines += [harness_engine(engines[1], "sglang-0.4", tp=tp), engines[0].replace(graph_max_decode_batch=7)]
    batches = np.concatenate(
        [np.arange(0.0, 600.0), np.arange(0.5, 140.0), [31.4999, 32.5, 63.5, 64.5, 512.5]]
    )
    for engine in engines:
        scalar = [engine.eager_decode(float(b), tp) for b in batches]
        assert engine.eager_decodes(batches, tp).tolist() == scalar
    assert sum(engines[2].eager_decodes(batches, tp)) > 0  # (the sizes that are not graphed are asked)


def test_a_graphed_decode_batch_runs_at_the_captured_size_it_is_padded_up_to() -> None:
    table = _table()
    pads = engine_preset("sglang").graph_pad_sizes  # 1, 2, 4, 8, 12, 16, 24, ...
    padded = table.graphed_up_to(128, (), pads)
    assert padded.graphed_up_to(128, (), pads) is padded and padded.graph_pad[9] == 12
    for n in (1, 2, 4, 8, 12, 16, 24, 128):  # captured: no padding
        assert padded.step_s(decode_seqs=n, decode_past_sum=700.0 * n, chunks=()) == table.step_s(
            decode_seqs=n, decode_past_sum=700.0 * n, chunks=()
        )
    for n, size in ((3, 4), (9, 12), (13, 16), (17, 24), (121, 128)):
        past = 700.0 * n
        got = padded.step_s(decode_seqs=n, decode_past_sum=past, chunks=())
        # the GEMMs run the padded rows, attention only the real sequences' context
        assert table.step_s(decode_seqs=n, decode_past_sum=past, chunks=()) < got
        assert got <= table.step_s(decode_seqs=size, decode_past_sum=past, chunks=())
        assert padded.decode_run_s(decode_seqs=n, decode_past_sum=past, steps=1)[0] == pytest.approx(got)
    # above the limit the step runs eagerly at its own size; a step with a prompt is not padded
    assert padded.step_s(decode_seqs=129, decode_past_sum=0.0, chunks=()) == max(
        table.step_s(decode_seqs=129, decode_past_sum=0.0, chunks=()), table.prefill_host_s + table.overhead_s
    )
    mixed = {"decode_seqs": 9, "decode_past_sum": 6300.0, "chunks": ((100, 0),)}
    assert padded.step_s(**mixed) == table.step_s(**mixed)


def test_vllm_and_sglang_pad_their_decode_batches_trtllm_and_the_aiconfigurator_harness_do_not() -> None:
    h200 = load_hardware("h200-sxm").device
    vllm, sglang = engine_preset("vllm", h200), engine_preset("sglang", h200)
    assert vllm.graph_pad_sizes[:5] == (1, 2, 4, 8, 16) and max(vllm.graph_pad_sizes) == 512
    assert sglang.graph_pad_sizes[:7] == (1, 2, 4, 8, 12, 16, 24) and 272 in sglang.graph_pad_sizes
    assert harness_engine(sglang, "sglang-0.4", tp=8).graph_pad_sizes[:5] == (1, 2, 4, 8, 16)
    assert engine_preset("trtllm").graph_pad_sizes == ()
    for preset in (vllm, sglang):
        aic = harness_engine(preset, "aiconfigurator", concurrency=50, input_tokens=1024)
        assert aic.graph_pad_sizes == ()
    with pytest.raises(genmodel.SpecError, match="graph size"):
        vllm.replace(graph_pad_sizes=(0, 8))
