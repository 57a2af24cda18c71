"""The engine configuration a benchmark harness generated (a validation row's ``engine_config``)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._harness import ENGINE_CONFIGS, FRESH_AFTER_WARMUP, harness_engine
from genmodel.io import load_hardware

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize(("clients", "prompt"), [(8, 1024), (64, 8192), (512, 2000)])
def test_aiconfigurator_configures_each_engine_by_its_rule(name: str, clients: int, prompt: int) -> None:
    preset = engine_preset(name, load_hardware("h200-sxm").device)
    e = harness_engine(preset, "aiconfigurator", concurrency=clients, input_tokens=prompt)
    assert e.max_num_seqs == clients  # the benchmark's concurrency is the batch size
    if name == "sglang":  # --enable-mixed-chunk, --max-prefill-tokens ISL + 1500, chunks as before
        assert e.mixed and e.max_prefill_tokens == prompt + 1500
        assert e.max_batched_tokens == preset.max_batched_tokens
    else:  # max_num_tokens = max_batch_size + ISL + 1500
        assert e.max_batched_tokens == clients + prompt + 1500
        assert e.budget_counts_decode
    assert (e.chunked_prefill, e.admission) == (preset.chunked_prefill, preset.admission)


def test_atom_oot_is_the_vllm_server_with_a_16384_token_budget() -> None:
    # ROCm/ATOM's out-of-tree benchmark launches vLLM with --max-num-batched-tokens 16384 and
    # otherwise the server's defaults, whatever the clients and the prompts
    preset = engine_preset("vllm", load_hardware("mi355x").device)
    for clients, prompt in ((4, 922), (64, 7373)):
        e = harness_engine(preset, "atom-oot", concurrency=clients, input_tokens=prompt)
        assert e.max_batched_tokens == 16384 != preset.max_batched_tokens
        # ...and the defaults of the vLLM it ran (0.19), where async scheduling is on
        assert e.overlap_scheduler and not preset.overlap_scheduler
        assert e == preset.replace(max_batched_tokens=16384, overlap_scheduler=True)
    with pytest.raises(genmodel.SpecError, match="atom-oot"):
        harness_engine(engine_preset("sglang"), "atom-oot", concurrency=4, input_tokens=100)


def test_only_atoms_client_sends_fresh_prompts_after_its_warm_up() -> None:
    # vLLM's bench serve (ATOM's workflow) warms up with its first prompt only; genai-perf's
    # restarted perf_analyzer workers (AIConfigurator's harness) replay the warm-up's prompts
    assert FRESH_AFTER_WARMUP == ("atom-oot",)
    assert set(FRESH_AFTER_WARMUP) <= set(ENGINE_CONFIGS)


def test_the_atom_rows_run_with_their_servers_budget(tmp_path: Path) -> None:
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    atom = [r for r in rows if r["engine_config"] == "atom-oot"]
    assert atom and {(r["hardware"], r["engine"]) for r in atom} == {("mi355x", "vllm")}
    row = next(r for r in atom if (r["metric"], r["batch"], r["input_tokens"]) == ("ttft_s", "64", "922"))

    def predicted(config: str) -> float:
        path = tmp_path / f"atom_{config or 'none'}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            w.writeheader()
            w.writerow({**row, "engine_config": config})
        return genmodel.validate(path).cases[0].predicted

    # 64 prompts of 922 tokens: the larger budget takes more of them into one step, so the first
    # token comes later on average than with the preset's 8192
    assert predicted("atom-oot") > predicted("")


def test_aiconfigurators_vllm_runs_without_async_scheduling() -> None:
    # the bundled vLLM rows ran 0.12.0 or were measured on 2025-10-29, before vLLM 0.14.0 turned
    # async scheduling on by default, and AIConfigurator's templates pass no --async-scheduling
    preset = engine_preset("vllm", load_hardware("h200-sxm").device)
    assert not preset.overlap_scheduler
    assert "0.14.0" in preset.source and "async_scheduling" in preset.source
    e = harness_engine(preset, "aiconfigurator", concurrency=48, input_tokens=4000)
    assert not e.overlap_scheduler


def test_async_scheduling_delays_the_atom_rows_first_token(tmp_path: Path) -> None:
    # vLLM 0.19's async scheduling chooses a step while the one before it runs: an arrival waits
    # for the step under way as well, so the same row's first token comes later with it than
    # without, and its decode steps are not delayed (TPOT within a few percent). The lengths
    # spread as the row's client drew them (--random-range-ratio 0.8: +-11 %), so that clients
    # come back while others decode (equal lengths keep 4 clients in step: an empty engine)
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    row = next(r for r in rows if r["engine_config"] == "atom-oot" and r["batch"] == "4")
    preset = engine_preset("vllm", load_hardware("mi355x").device)
    on = harness_engine(preset, "atom-oot", concurrency=4, input_tokens=int(row["input_tokens"]))
    kwargs = {k: int(row[k]) for k in ("devices", "tp", "input_tokens", "output_tokens")} | {
        k: row[k] for k in ("weight_dtype", "act_dtype", "kv_dtype")
    }
    runs = {
        o: genmodel.simulate(
            row["model"],
            row["hardware"],
            concurrency=4,
            requests_per_client=3,
            warmup_requests=0,
            engine=on.replace(overlap_scheduler=o),
            input_spread=0.11,
            output_spread=0.11,
            **kwargs,
        )
        for o in (False, True)
    }
    assert runs[True].ttft_s.mean > runs[False].ttft_s.mean
    assert runs[True].tpot_s.mean == pytest.approx(runs[False].tpot_s.mean, rel=0.05)


def test_an_unknown_configuration_is_refused() -> None:
    with pytest.raises(genmodel.SpecError, match="engine_config"):
        harness_engine(engine_preset("vllm"), "mine", concurrency=4, input_tokens=100)


def _case(tmp_path: Path, config: str) -> Path:
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    row = next(r for r in rows if r["id"] == "PS081")  # vLLM, 4 clients, 1024 x 1024
    path = tmp_path / f"case_{config or 'none'}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow({**row, "engine_config": config})
    return path


def test_validate_simulates_the_row_as_its_harness_configured_the_engine(tmp_path: Path) -> None:
    configured = genmodel.validate(_case(tmp_path, "aiconfigurator")).cases[0]
    default = genmodel.validate(_case(tmp_path, "")).cases[0]
    assert configured.engine == default.engine == "vllm"
    # a budget of 4 + 1024 + 1500 tokens, not 8192: the four prompts no longer share one step
    assert configured.predicted < default.predicted
    with pytest.raises(genmodel.SpecError, match="engine_config='mine'"):
        genmodel.validate(_case(tmp_path, "mine"))


def test_max_prefill_tokens_admits_further_prompts_whole_and_only_within_it() -> None:
    """SGLang's PrefillAdder: the first new prompt always, a further one only if it fits whole."""
    engine = engine_preset("sglang").replace(mixed=True, max_prefill_tokens=1024 + 1024 + 476)
    kwargs: dict[str, object] = {"input_tokens": 1024, "output_tokens": 8, "concurrency": 4}
    r = genmodel.simulate(
        "llama-3.2-1b", "h100-sxm", engine=engine, requests_per_client=1, records=True, **kwargs
    )
    free = genmodel.simulate(
        "llama-3.2-1b", "h100-sxm", engine="sglang", requests_per_client=1, records=True, **kwargs
    )
    assert r.records is not None and free.records is not None
    first = sorted(r.records.first_token_s.tolist())
    assert first[0] == first[1] < first[2] == first[3]  # two whole prompts a step, none split
    assert len(set(free.records.first_token_s.tolist())) == 1  # the 8192-token chunk takes all four
    with pytest.raises(genmodel.SpecError, match="max_prefill_tokens"):
        engine_preset("sglang").replace(max_prefill_tokens=0)


def test_sglang_030_is_the_sglang_server_without_overlap_or_radix_cache() -> None:
    # SGLang 0.3.0 had no overlap scheduler (on by default from sglang PR 2067, Nov 2024), and the
    # SGLang team's benchmark ran it with --disable-radix-cache; its new_token_ratio defaults are
    # those of the 0.5 preset within 2 % (0.7 from 0.7, floor 0.1 against 0.098, 0.001 per step)
    preset = engine_preset("sglang", load_hardware("h100-sxm").device)
    assert preset.overlap_scheduler and preset.release_after_launch and preset.prefix_caching
    assert preset.memory_fraction is None and preset.graph_max_decode_batch is None  # (by TP)
    e = harness_engine(preset, "sglang-0.3.0", tp=4)
    assert (e.overlap_scheduler, e.release_after_launch, e.prefix_caching) == (False, False, False)
    # server_args.py's mem_fraction_static by TP, and decode graphs captured up to 160 sequences
    # (cuda_graph_runner.py: [1, 2, 4] + multiples of 8, a batch padded up to the next)
    assert e == preset.replace(
        version="0.3.0",
        overlap_scheduler=False,
        release_after_launch=False,
        prefix_caching=False,
        memory_fraction=0.85,
        graph_max_decode_batch=160,
        graph_pad_sizes=(1, 2, 4, *range(8, 161, 8)),
    )
    assert harness_engine(preset, "sglang-0.3.0", tp=1).memory_fraction == 0.88
    assert harness_engine(preset, "sglang-0.3.0", tp=8).memory_fraction == 0.83
    ratio = preset.new_token_ratio
    assert ratio is not None and ratio.init == 0.7 and 0.098 <= ratio.min_ratio <= 0.1
    assert ratio.decay == pytest.approx(0.001, rel=0.01) and ratio.retract_decode_steps == 20
    with pytest.raises(genmodel.SpecError, match=r"sglang-0\.3\.0"):
        harness_engine(engine_preset("vllm"), "sglang-0.3.0", tp=4)
    with pytest.raises(genmodel.SpecError, match="tp=None"):
        harness_engine(preset, "sglang-0.3.0")  # its memory fraction depends on the TP
    with pytest.raises(genmodel.SpecError, match="concurrency"):
        harness_engine(engine_preset("vllm"), "aiconfigurator")  # it needs the clients


def test_sglang_04_keeps_the_overlap_scheduler() -> None:
    # the overlap scheduler was on by default in 0.4 (sglang PR 2067); the radix cache was off in
    # DataCrunch's runs (so bench_serving's ignore_eos requests take add_one_req_ignore_eos); 0.4's
    # mem_fraction_static and cuda_graph_max_bs defaults
    preset = engine_preset("sglang", load_hardware("h200-sxm").device)
    e = harness_engine(preset, "sglang-0.4", tp=4)
    assert preset.new_token_ratio is not None
    ratio = dataclasses.replace(preset.new_token_ratio, ignore_eos=True)
    assert e == preset.replace(
        version="0.4",
        prefix_caching=False,
        memory_fraction=0.85,
        graph_max_decode_batch=160,
        graph_pad_sizes=(1, 2, 4, *range(8, 161, 8)),
    ).replace(new_token_ratio=ratio)
    assert harness_engine(preset, "sglang-0.4", tp=8).memory_fraction == 0.81


def _rate_case(tmp_path: Path, row_id: str, config: str) -> Path:
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    row = next(r for r in rows if r["id"] == row_id)
    path = tmp_path / f"rate_{config or 'none'}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow({**row, "engine_config": config})
    return path


def test_the_sglang_030_rate_rows_run_without_the_overlap_scheduler(tmp_path: Path) -> None:
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    marked = {r["id"] for r in rows if r["engine_config"] == "sglang-0.3.0"}
    assert marked == {f"PS{i}" for i in range(111, 119)}  # the SGLang team's v0.3.0 runs
    # 70B on 4x H100 at 4 requests/s: without the overlap scheduler an arrival joins the next step,
    # not the one after it, and a first token leaves as its step ends: the median TTFT is lower
    old = genmodel.validate(_rate_case(tmp_path, "PS115", "sglang-0.3.0")).cases[0]
    new = genmodel.validate(_rate_case(tmp_path, "PS115", "")).cases[0]
    assert old.metric == "ttft_p50_s" and old.predicted < 0.9 * new.predicted


def test_a_rate_row_names_only_a_configuration_that_needs_no_clients(tmp_path: Path) -> None:
    with pytest.raises(genmodel.SpecError, match="engine_config='aiconfigurator' must be empty or one of"):
        genmodel.validate(_rate_case(tmp_path, "PS115", "aiconfigurator"))


def test_datacrunchs_sglang_04_decodes_large_batches_eagerly(tmp_path: Path) -> None:
    rows = genmodel.read_cases(ROOT / "validation" / "validation_public.csv")
    marked = {r["id"] for r in rows if r["engine_config"] == "sglang-0.4"}
    assert marked == {f"PS{i}" for i in range(119, 138)}  # DataCrunch's runs on SGLang 0.4
    # 70B on 4x H200 at 8 requests/s: some 300 sequences run, above the 160 SGLang 0.4 graphs, so
    # a decode step takes at least its host launches (~42 ms) and the median gap between tokens is
    # longer than with every batch graphed
    old = genmodel.validate(_rate_case(tmp_path, "PS130", "sglang-0.4")).cases[0]
    new = genmodel.validate(_rate_case(tmp_path, "PS130", "")).cases[0]
    assert old.metric == "itl_p50_s" and old.predicted > 1.5 * new.predicted
