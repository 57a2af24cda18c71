"""tools/: the EP study behind the README's "Expert parallelism at scale" table, and the CLI reference."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_ep_study_table_is_the_one_in_the_readme() -> None:
    study = _load("ep_study")
    table = study.markdown()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), "rerun: python tools/ep_study.py"


def test_ep_study_shows_the_fabric_difference() -> None:
    rows = _load("ep_study").rows()
    h100 = {r["ep"]: r for r in rows if r["system"] == "dgx-h100" and "note" not in r}
    cm = {r["ep"]: r for r in rows if r["system"] == "cloudmatrix384" and "note" not in r}
    # beyond one 8-GPU node the all-to-all leaves NVLink: a larger share of the step than on the UB
    for ep in (16, 32, 64, 128, 256):
        assert h100[ep]["comm_share"] > cm[ep]["comm_share"]
    assert h100[64]["comm_share"] > h100[16]["comm_share"]
    assert all(r["dominant"] in ("ep_dispatch", "ep_combine") for r in [*h100.values(), *cm.values()])
    # the fp8 model does not fit on one H100 node
    assert any(r["system"] == "dgx-h100" and r["ep"] == 8 and "note" in r for r in rows)


def test_cli_reference_is_current() -> None:
    reference = _load("make_cli_reference").reference()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert reference == current, "docs/cli.md is out of date: rerun python tools/make_cli_reference.py"


def test_serving_errors_splits_the_first_round_from_the_rest() -> None:
    import genmodel

    split = _load("serving_errors").round_split
    clients = 8
    # one 2,000-token prompt per step: clients sent together queue behind each other's prompts
    sim = genmodel.simulate(
        "llama-3.1-8b",
        "h100-sxm",
        concurrency=clients,
        requests_per_client=4,
        warmup_requests=1,
        input_tokens=2000,
        output_tokens=50,
        max_batched_tokens=2048,
        records=True,
        warmup_replay=False,  # (fresh prompts: a replayed first round would come from the cache)
    )
    first, later = split(sim.records, clients)
    # the warm-up restart sends every client at once: the first round is the wave, the later ones
    # arrive spread out and wait less
    assert first > 2 * later > 0
    # the two parts are the measured requests (one per client in the first), so they make the mean
    measured = int(sim.records.measured.sum())
    assert measured == 3 * clients
    mean = (first * clients + later * (measured - clients)) / measured
    assert abs(mean + sim.request_overhead_s - sim.ttft_s.mean) < 1e-9


def test_serving_sweep_runs_clean_on_a_few_deployments(capsys: object) -> None:
    # tools/sweep_serving_sanity.py: a crash or a NaN makes it exit 1
    assert _load("sweep_serving_sanity").main(["--n", "3", "--seed", "0"]) == 0


def test_serving_sweep_flags_what_it_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    import genmodel

    sweep_tool = _load("sweep_serving_sanity")
    # (its "slow" flag is wall time, which a busy machine inflates: not what this test checks)
    monkeypatch.setattr(sweep_tool, "SLOW_S", math.inf)
    sweep = sweep_tool.Sweep(examples=3)
    case = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "tp": 1,
        "ep": 1,
        "dp": 2,  # (1 client on 2 dense replicas crashed the warm-up restart once: IndexError)
        "weight_dtype": "fp8",
        "kv_dtype": "fp8",
        "input_tokens": 512,
        "output_tokens": 64,
        "engine": "vllm",
        "harness": "aiconfigurator",
        "ladder": [1, 4],
    }
    sweep.deployment(case)
    assert dict(sweep.counts) == {}, sweep.anomalies
    assert len(sweep.times) == 2 + 2 * 2  # the ladder, then the other engines at 4 clients and at 1
    # a TTFT that falls with more clients is flagged; a genmodel error is a refusal, any other a crash
    sweep.ladder(case, {1: _estimate(ttft_s=0.2, tpot_s=0.01), 4: _estimate(ttft_s=0.1, tpot_s=0.01)})
    assert sweep.counts["ttft-drop"] == 1
    assert (
        sweep.call({**case, "tp": 3}, concurrency=1) is None and sweep.refused and "crash" not in sweep.counts
    )

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(genmodel, "estimate", broken)
    assert sweep.call(case, concurrency=1) is None and sweep.counts["crash"] == 1


def test_serving_sweep_counts_a_whole_sequence_for_a_pool_that_fits() -> None:
    """The 60-s TTFT check holds a pool to every client's whole sequence: 512 clients of
    Llama-3.1-405B TP8 on H200 with 8,192-token outputs fill a pool that holds 603 mean sequences
    (prompt and half the output, the serving estimate's memory) but 311 whole ones, and vLLM
    preempts (88 s TTFT): not a pool that fits, which the mean sequence made it."""
    sweep = _load("sweep_serving_sanity").Sweep(examples=3)
    case = {
        "model": "llama-3.1-405b",
        "hardware": "h200-sxm",
        "tp": 8,
        "ep": 1,
        "dp": 1,
        "weight_dtype": "fp8",
        "kv_dtype": "fp8",
        "input_tokens": 256,
        "output_tokens": 8192,
        "engine": "vllm",
        "harness": "",
        "ladder": [1, 512],
    }
    static, sim = sweep.call(case, batch=1), sweep.call(case, concurrency=512)
    assert sim.ttft_s > 60  # (the case the check looks at)
    sweep.absurd(case, 512, sim, static)
    assert "ttft-over-60s-fits" not in sweep.counts, sweep.anomalies


def _estimate(**figures: float) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(**figures)


def test_plausibility_sweep_files_a_jump_by_its_mechanism(monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/sweep_serving_plausibility.py: a TTFT 10x that of half the clients is an anomaly
    unless a mechanism explains it (a full KV pool, the engine's cap, a prefill-bound loop, the
    benchmark's restart burst); a TTFT below one client's is one whatever the tags."""
    from types import SimpleNamespace

    tool = _load("sweep_serving_plausibility")
    case = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "engine": "vllm", "harness": ""}

    def est(ttft_s: float, tpot_s: float = 0.01) -> object:
        return SimpleNamespace(ttft_s=ttft_s, tpot_s=tpot_s, plan=SimpleNamespace(dp=1))

    single = est(0.05)
    sims = {1: est(0.05), 2: est(0.06), 4: est(0.8)}
    sweep = tool.Sweep(examples=3, call_limit=5.0)
    monkeypatch.setattr(sweep, "call", lambda *a, **k: None)  # (no restart to compare with)
    sweep.ladder(case, sims, {1: set(), 2: set(), 4: set()}, single)
    assert sweep.counts["ttft-jump"] == 1 and sweep.anomalies["ttft-jump"][0]["clients"] == (2, 4)
    assert sweep.counts["ttft-grows-pool-free"] == 1  # (0.8 s > 3 x (4 prompts of 0.05 s + 2 steps))
    sweep = tool.Sweep(examples=3, call_limit=5.0)
    monkeypatch.setattr(sweep, "call", lambda *a, **k: None)
    sweep.ladder(case, sims, {1: set(), 2: set(), 4: {"kv"}}, single)
    assert not sweep.counts
    # the jump gone without the warm-up's restart: the restart's burst, explained
    sweep = tool.Sweep(examples=3, call_limit=5.0)
    monkeypatch.setattr(sweep, "call", lambda *a, **k: est(0.07))
    sweep.ladder(case, {1: est(0.05), 2: est(0.06), 4: est(0.35)}, {1: set(), 2: set(), 4: set()}, single)
    assert "ttft-jump" not in sweep.counts and sweep.explained["ttft-jump: restart burst"] == 1
    sweep.ladder(case, {1: est(0.05), 2: est(0.04)}, {1: set(), 2: {"kv"}}, single)
    assert sweep.counts["ttft-below-single"] == 1


def test_plausibility_sweep_knows_which_decode_batches_run_eagerly() -> None:
    from genmodel._enginepresets import engine_preset
    from genmodel._harness import harness_engine
    from genmodel.io import load_hardware

    tool = _load("sweep_serving_plausibility")
    trtllm = engine_preset("trtllm", load_hardware("h200-sxm").device)
    # TensorRT-LLM's server defaults capture 1-32, 64 and 128 and do not pad
    assert [tool._eager_decode(trtllm, 2, b) for b in (32, 33, 64, 65, 128, 129)] == [
        False,
        True,
        False,
        True,
        False,
        True,
    ]
    harnessed = harness_engine(trtllm, "aiconfigurator", concurrency=256, input_tokens=128)
    assert not any(tool._eager_decode(harnessed, 2, b) for b in (33, 65, 129, 256))
