"""Benchmark harnesses' engine configurations: an engine preset as a harness's generator, or a
named older server version, configures it for one validation row (its ``engine_config`` column).

Modelling assumptions:
- A configuration changes only the knobs its generator or server version sets, each cited; the
  rest stay the preset's (the server's defaults).
- AIConfigurator's depend on the benchmark's clients and prompt length; SGLang 0.3.0's and 0.4's
  on the tensor parallelism (their memory fraction); ROCm/ATOM's on nothing.
"""

from __future__ import annotations

from dataclasses import replace

from genmodel._eagerkernels import SGLANG_04_GRAPH_MAX_BS, SGLANG_04_GRAPH_SIZES
from genmodel._engines import MAX_KNOB, Engine
from genmodel._errors import SpecError, require_ints

#: engine configurations a benchmark harness generates for its runs (a validation row's
#: ``engine_config`` column); none = the server's defaults (the presets)
ENGINE_CONFIGS = ("aiconfigurator", "atom-oot", "sglang-0.3.0", "sglang-0.4")
#: the engine configurations (of :data:`ENGINE_CONFIGS`) an open-loop (rate) case may name: they
#: depend on no client count or prompt length
OPEN_LOOP_CONFIGS = ("sglang-0.3.0", "sglang-0.4")
#: the engine configurations (of :data:`ENGINE_CONFIGS`) whose benchmark client sends fresh prompts
#: after its warm-up (``warmup_replay=False`` of :func:`genmodel.estimate`); the others' clients are
#: genai-perf's, whose restarted perf_analyzer workers replay the warm-up's prompts. ROCm/ATOM's
#: workflow runs vLLM's ``bench serve``, whose warm-up requests all send its first prompt
#: (vllm/benchmarks/serve.py: ``test_input`` built from ``input_requests[0]``)
FRESH_AFTER_WARMUP = ("atom-oot",)
#: tokens AIConfigurator's generator adds to the prompt in its token budgets
_AIC_SLACK_TOKENS = 1500
#: the KV cache's share of the free memory in the TensorRT-LLM configuration AIConfigurator writes:
#: ``kv_cache_config: free_gpu_memory_fraction: {{ kv_cache_config.free_gpu_memory_fraction |
#: default(0.80) }}`` (src/aiconfigurator/generator/config/backend_templates/trtllm/
#: extra_engine_args.1.0.0.yaml.j2, the same in the 1.0-1.2 templates); neither rule_plugin/trtllm.rule
#: nor rule_plugin/benchmark/trtllm.rule sets it (config/backend_config_mapping.yaml maps
#: kv_cache_free_gpu_memory_fraction to it). Its vLLM and SGLang templates (cli_args*.j2) pass no
#: --gpu-memory-utilization or --mem-fraction-static: their servers' defaults.
_AIC_TRTLLM_FREE_FRACTION = 0.80
#: the token budget of the vLLM servers ROCm/ATOM's out-of-tree (vLLM plugin) benchmark launches:
#: ``--max-num-batched-tokens 16384`` in the ``extra_args`` of .github/benchmark/
#: oot_benchmark_models.json (github.com/ROCm/ATOM, e.g. @676c3acefaba43b6bd1199b767460ca49cfb3bb4)
_ATOM_OOT_BUDGET = 16384
#: the vLLM server of ROCm/ATOM's out-of-tree benchmark schedules step k+1 while step k runs
#: (overlap_scheduler). vLLM >= 0.14 turns async scheduling on by default (0.14.0 release notes,
#: PR 27614) unless pipeline parallelism, a speculative method other than EAGLE/MTP or an executor
#: without support (vllm/config/vllm.py: mp, uni and external_launcher have it) rules it out; the
#: workflow's extra_args for DeepSeek-R1 FP8 TP8 pass neither --no-async-scheduling nor a
#: --speculative-config, one node at TP8 runs the mp executor, and ATOM's platform
#: (atom/plugin/vllm/platform.py check_and_update_config) leaves async_scheduling alone. With it
#: vllm/v1/engine/core.py step_with_batch_queue (two batches in flight) schedules step k+1 as soon
#: as step k is submitted and only then waits for step k's output, and
#: vllm/v1/core/sched/async_scheduler.py AsyncScheduler gives a request that finished its prompt
#: in step k an output placeholder so that it decodes in step k+1: a request arriving while step k
#: runs joins step k+2, the overlap rule; decode steps are not delayed.
_ATOM_OOT_ASYNC = True
#: SGLang 0.3.0 (Sep 2024) had no overlap scheduler: sglang PR 1687 (2024-10-16, "Launch a thread to
#: overlap CPU and GPU" for "the overlapping version of the event loop") added it behind the experimental
#: ``--enable-overlap-schedule`` (docs/backend/backend.md, sglang PR 2047, 2024-11-15), and sglang PR
#: 2067 ("Enable overlap by default", 2024-11-18) turned it on by default, noting the later first
#: token it brings ("we delayed the processing of the first batch in favor of launching the kernels
#: for the next batch first"); so each step is scheduled after the last one ended and its tokens
#: leave when it ends (overlap_scheduler and release_after_launch False)
_SGLANG_030_OVERLAP = False
#: SGLang 0.3-0.4's default ``mem_fraction_static`` by the least TP each applies from
#: (python/sglang/srt/server_args.py ``__post_init__``: TP >= 16 0.79, >= 8 0.81 (0.3: 0.83), >= 4
#: 0.85, >= 2 0.87, else 0.88): the fraction of the GPU for weights and KV pool
_SGLANG_04_MEM_FRACTION = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
_SGLANG_03_MEM_FRACTION = ((16, 0.79), (8, 0.83), (4, 0.85), (2, 0.87), (1, 0.88))


def _old_sglang(engine: Engine, config: str, tp: int | None) -> Engine:
    """``engine`` (SGLang's preset) as the SGLang 0.3.0 or 0.4 server of ``config`` runs it at ``tp``
    (:func:`harness_engine`)."""
    if engine.name != "sglang":
        raise SpecError(f"engine_config={config!r} configures an SGLang server, not {engine.name}")
    require_ints(tp=tp)
    assert tp is not None
    old = config == "sglang-0.3.0"
    fractions = _SGLANG_03_MEM_FRACTION if old else _SGLANG_04_MEM_FRACTION
    overlap = _SGLANG_030_OVERLAP if old else engine.overlap_scheduler
    return engine.replace(
        version="0.3.0" if old else "0.4",
        overlap_scheduler=overlap,
        release_after_launch=overlap and engine.release_after_launch,
        prefix_caching=False,
        memory_fraction=next(f for least, f in fractions if tp >= least),
        graph_max_decode_batch=SGLANG_04_GRAPH_MAX_BS,
        graph_pad_sizes=SGLANG_04_GRAPH_SIZES,
        # (0.4 only: 0.3.0's policy_scheduler.py has no add_one_req_ignore_eos)
        new_token_ratio=replace(engine.new_token_ratio, ignore_eos=not old)
        if engine.new_token_ratio
        else None,
    )


def harness_engine(
    engine: Engine,
    config: str,
    *,
    concurrency: int | None = None,
    input_tokens: int | None = None,
    tp: int | None = None,
) -> Engine:
    """``engine`` as a benchmark harness configures it for ``concurrency`` clients sending prompts
    of ``input_tokens`` tokens.

    "aiconfigurator": the configuration AIConfigurator's generator writes for an aggregated
    benchmark (aiconfigurator src/aiconfigurator/generator/rule_plugin/benchmark/{vllm,sglang,
    trtllm}.rule): the benchmark's concurrency is the workers x ``max_batch_size``
    (``BenchConfig.estimated_concurrency``), so one worker runs at most ``concurrency`` sequences;
    vLLM's and TensorRT-LLM's token budget is ``max_batch_size`` + ISL + 1500 (``agg
    max_num_tokens``), which TensorRT-LLM's scheduler counts generation tokens against (its C++
    MicroBatchScheduler, see the preset's source); SGLang runs ``--enable-mixed-chunk`` with
    ``--max-prefill-tokens`` ISL + 1500 (``max_prefill_tokens``: python/sglang/srt/managers/
    schedule_policy.py PrefillAdder admits a further new prompt only within it, and chunks at
    ``chunked_prefill_size``; a mixed step counts its decode tokens against both). Every engine
    graphs each decode batch size from 1 to ``max_batch_size`` (the rules' ``cuda_graph_batch_sizes``,
    config/backend_config_mapping.yaml: vLLM ``--cudagraph-capture-sizes``, SGLang ``--cuda-graph-bs``,
    TensorRT-LLM ``cuda_graph_config.batch_sizes``), so no decode step of its clients runs eagerly.

    "atom-oot": the vLLM server of ROCm/ATOM's out-of-tree benchmark workflow
    (.github/workflows/atom-vllm-oot-benchmark.yaml, models in .github/benchmark/
    oot_benchmark_models.json): the server's defaults but a token budget of 16384
    (``--max-num-batched-tokens``), and the defaults of the vLLM it ran (0.19, the bundled rows'
    notes), where async scheduling is on (:data:`_ATOM_OOT_ASYNC`); vLLM only.

    "sglang-0.3.0": the SGLang 0.3.0 server of the SGLang team's benchmark_vllm_060 commands
    (sgl-project/sglang benchmark/benchmark_vllm_060/README.md: ``pip install sglang[all]==0.3.0``,
    ``launch_server ... --disable-radix-cache`` with ``--enable-torch-compile`` for 8B): no overlap
    scheduler in that version (:data:`_SGLANG_030_OVERLAP`), the radix cache off (``prefix_caching``
    False), that version's ``mem_fraction_static`` for ``tp`` (:data:`_SGLANG_03_MEM_FRACTION`) and
    decode batches above 160 eager (:data:`~genmodel._eagerkernels.SGLANG_04_GRAPH_MAX_BS`). Its other
    scheduler defaults are the 0.5 preset's: python/sglang/
    global_config.py ``init_new_token_ratio`` 0.7, ``base_min_new_token_ratio`` 0.1,
    ``new_token_ratio_decay`` 0.001 per decode step and ``retract_decode_steps`` 20 (0.5: 0.7, 0.098,
    0.602 / 600 and 20), ``CLIP_MAX_NEW_TOKENS`` 4096 (managers/policy_scheduler.py), chunked prefill
    8192, ``--enable-mixed-chunk`` off; its default ``schedule_policy`` "lpm" becomes "fcfs" with the
    radix cache off (PolicyScheduler). It needs no client count (:data:`OPEN_LOOP_CONFIGS`); SGLang only.

    "sglang-0.4": the SGLang 0.4 server DataCrunch ran the same commands on (datacrunch-research/
    h200-benchmarks sglang/experiments/docker_dev_commands.txt: Docker ``lmsysorg/sglang`` dev/latest
    of early 2025, ``--disable-radix-cache --enable-torch-compile``): the overlap scheduler on, as in
    the preset (on by default since sglang PR 2067), the radix cache off, 0.4's
    ``mem_fraction_static`` for ``tp`` (:data:`_SGLANG_04_MEM_FRACTION`) and decode batches above 160
    eager (:data:`~genmodel._eagerkernels.SGLANG_04_GRAPH_MAX_BS`); the ratio defaults are 0.3.0's
    (python/sglang/global_config.py), the preset's within 2 %; and as sglang.bench_serving sends
    ``ignore_eos`` (unless ``--disable-ignore-eos``), those requests are admitted by
    ``PrefillAdder.add_one_req_ignore_eos`` (managers/schedule_policy.py of 0.4.1 and 0.4.3, chosen
    when ``ignore_eos`` and ``tree_cache.disable``: ``NewTokenRatio.ignore_eos``). SGLang only.

    vLLM's async scheduling stays off under "aiconfigurator": the bundled vLLM rows ran 0.12.0 or
    name no version, and those of the latter read in AIConfigurator's silicon_sample.csv (six of
    eight) carry ``measured=2025-10-29``, both before vLLM 0.14.0 turned it on by default (see the preset's
    source); AIConfigurator's vLLM templates (backend_templates/vllm/cli_args*.j2) pass no
    ``--async-scheduling``.

    Raises:
        SpecError: an unknown configuration, "atom-oot" for an engine other than vLLM,
            "sglang-0.3.0" or "sglang-0.4" for one other than SGLang or without ``tp``,
            "aiconfigurator" without ``concurrency`` and ``input_tokens``.
    """
    if config not in ENGINE_CONFIGS:
        raise SpecError(f"engine_config={config!r} must be one of {', '.join(ENGINE_CONFIGS)}")
    if config.startswith("sglang-"):
        return _old_sglang(engine, config, tp)
    if config == "atom-oot":
        if engine.name != "vllm":
            raise SpecError(f"engine_config='atom-oot' configures a vLLM server, not {engine.name}")
        return engine.replace(max_batched_tokens=_ATOM_OOT_BUDGET, overlap_scheduler=_ATOM_OOT_ASYNC)
    require_ints(concurrency=concurrency, input_tokens=input_tokens)
    assert concurrency is not None and input_tokens is not None
    budget = min(concurrency + input_tokens + _AIC_SLACK_TOKENS, MAX_KNOB)
    seqs = min(concurrency, MAX_KNOB)
    engine = engine.replace(graph_max_decode_batch=seqs, graph_decode_sizes=(), graph_pad_sizes=())  # 1..seqs
    if engine.name == "sglang":
        prefill = min(input_tokens + _AIC_SLACK_TOKENS, MAX_KNOB)
        return engine.replace(max_num_seqs=seqs, max_prefill_tokens=prefill, mixed=True)
    if engine.name == "trtllm":
        # (extra_engine_args.*.yaml.j2: kv_cache_config.enable_block_reuse default(false), and
        # free_gpu_memory_fraction default(0.80), which no rule of the generator sets)
        return engine.replace(
            max_num_seqs=seqs,
            max_batched_tokens=budget,
            budget_counts_decode=True,
            prefix_caching=False,
            memory_fraction=_AIC_TRTLLM_FREE_FRACTION,
        )
    return engine.replace(max_num_seqs=seqs, max_batched_tokens=budget)
