"""Serving-engine presets: vLLM, SGLang and TensorRT-LLM at named versions, as
:class:`~genmodel._engines.Engine` values, each default with the engine's file it comes from.

Modelling assumptions:
- The defaults are those of the named version's server (the OpenAI-compatible API server, as the
  benchmarks use); where a default depends on the GPU, :func:`engine_preset` resolves it from the
  device's memory, as the engine does. Each value names the file it comes from in ``source``.
- The engines' own memory fractions (vLLM ``gpu_memory_utilization`` 0.9, SGLang
  ``mem_fraction_static``, TensorRT-LLM ``free_gpu_memory_fraction`` 0.9) are what genmodel's
  ``usable_memory_frac`` stands for; TensorRT-LLM's is a fraction of the memory left free after the
  weights are loaded (``kv_fraction_of`` "free").
- The host time per kernel launch of a step with prefill tokens (:data:`PREFILL_LAUNCH_S`, the
  presets that run such steps eagerly) is derived from two published host-bound prefills
  (:data:`~genmodel._eagerkernels.HOST_BOUND_PREFILLS`), not fitted.

What a knob means, and the checks on it, is :class:`~genmodel._engines.Engine`'s.
"""

from __future__ import annotations

from genmodel._eagerkernels import (
    HOST_BOUND_PREFILLS,
    SGLANG_GRAPH_MAX_BS,
    SGLANG_GRAPH_SIZES,
    TRTLLM_GRAPH_SIZES,
    VLLM_GRAPH_MAX,
    VLLM_GRAPH_SIZES,
)
from genmodel._engines import Engine
from genmodel._errors import SpecError, UnknownEntryError
from genmodel._hardware import Device
from genmodel._newtokenratio import SGLANG_NEW_TOKEN_RATIO
from genmodel._units import GiB

#: host time per kernel launch of an eager forward (a step with prefill tokens), seconds: the mean,
#: over two published eager prefills that are host-bound (their time flat in the tokens), of the
#: step time divided by the kernels the engine's own model code launched
#: (genmodel._eagerkernels.HOST_BOUND_PREFILLS, counted by the convention of the engines' block
#: counts): SGLang PR 12160 (DeepSeek-V3 fp8 under TP: 82.64 ms for a prefill of 1 new token on a
#: cached one, 1,578 kernels on SGLang's absorbed-MLA path) 52.4 us, and sfllm PR 46 (Qwen3-4B bf16,
#: one GPU: 16.613 ms at 129 tokens, 16.371 ms at 513; 400 kernels: its q/k norm, RoPE and cache
#: write one op, but k and v copied before the Triton attention) 41.5 us: 47.0 us. Of the order of
#: PyTorch eager dispatch plus cudaLaunchKernel (several to tens of microseconds per operator).
PREFILL_LAUNCH_S = sum(p.launch_s for p in HOST_BOUND_PREFILLS) / len(HOST_BOUND_PREFILLS)
_PREFILL_GRAPHS = (
    " Steps with prefill tokens run eagerly, outside CUDA graphs (prefill_launch_s, genmodel/_hostcost.py): "
)

#: the attention-DP rules (``dp_graph_sync``, ``dp_pad_tokens``; :mod:`genmodel._lockstep`) of each preset
_VLLM_DP = (
    " Data parallel (an MoE model's dp > 1): vllm/v1/worker/gpu_model_runner.py execute_model (0.10) "
    "pads a step's tokens to its CUDA-graph size (pad_for_cudagraph, up to the largest capture "
    "size) and then to the largest of the DP ranks' (get_dp_padding: DPMetadata.num_tokens_across_dp "
    "of vllm/forward_context.py, max_tokens_across_dp - num_tokens), prefill and mixed steps too; an "
    "idle rank runs _dummy_run(1), padded the same way (dp_pad_tokens max). Later releases "
    "(v1/worker/dp_utils.py coordinate_batch_across_dp) pad only while the ranks' CUDA-graph mode, "
    "their minimum, is not NONE (or they microbatch), so a step above the largest capture size is "
    "not padded there; the 0.10 rule is kept."
)
_SGLANG_DP = (
    " DP attention: managers/scheduler.py prepare_mlp_sync_batch (scheduler_dp_attn_mixin.py "
    "prepare_mlp_sync_batch_raw in later 0.5) all-gathers each rank's tokens and all-reduces (MIN) "
    "whether its batch is decode or idle (can_run_dp_cuda_graph); model_executor/cuda_graph_runner.py "
    "can_run and replay_prepare take the graph of the largest rank's tokens (bisect_left of "
    "max(global_num_tokens) in capture_bs) on every rank, an IDLE batch included "
    "(ForwardMode.is_cuda_graph), gathering in MAX_LEN mode (layers/dp_attention.py "
    "DpPaddingMode.get_default_mode_in_cuda_graph) (dp_graph_sync all-decode); outside a graph "
    "DpPaddingMode.get_dp_padding_mode picks SUM_LEN for a batch with a prefill and otherwise MAX_LEN "
    "when sum(global_num_tokens) x 2 > max x dp_size (model_executor/forward_batch_info.py "
    "prepare_mlp_sync_batch pads each rank's inputs to the max under MAX_LEN) (dp_pad_tokens max-len)."
)
_TRTLLM_DP = (
    " Attention DP: _torch/pyexecutor/cuda_graph_runner.py (1.0-1.2) maybe_get_cuda_graph "
    "tp_allgathers each rank's [can_run_cuda_graph, batch_size] and runs eagerly unless every rank's "
    "batch is generation-only (ScheduledRequests.can_run_cuda_graph: no context requests) and all "
    "batch sizes are equal; _get_padded_batch (pad_batch, before it) pads each rank up from the "
    "largest rank's batch only with cuda_graph_config enable_padding, False by default; an idle rank "
    "holds one dummy generation request (py_executor.py _pad_attention_dp_dummy_request) "
    "(dp_graph_sync all-decode-equal)."
)


#: the engines with presets; the default is the first
ENGINES = ("vllm", "sglang", "trtllm")
#: the engines a static measurement may name (a validation row's ``engine`` column, which selects
#: the device's profile for that engine): those with presets, llama.cpp (github.com/ggml-org/llama.cpp)
#: and MLC LLM (github.com/mlc-ai/mlc-llm); the last two have no serving preset
MEASURED_ENGINES = (*ENGINES, "llamacpp", "mlc")

_VLLM_SOURCE = (
    "vLLM 0.10 (V1 engine), vllm/engine/arg_utils.py EngineArgs.get_batch_defaults: OpenAI API "
    "server on a GPU of >= 70 GiB that is not an A100: max_num_batched_tokens 8192, max_num_seqs "
    "1024; other GPUs 2048 and 256. V1 always chunks prefills and schedules running requests' decode "
    "tokens and new prefill chunks in one step (vllm/v1/core/sched/scheduler.py), allocates KV "
    "blocks as tokens are computed and preempts the last running request by recompute "
    "(KVCacheManager.allocate_slots); --scheduling-policy fcfs; CacheConfig block_size 16. "
    "Prefix caching on (arg_utils.py _set_default_args: 'V1 always uses chunked prefills and prefix "
    "caching for non-pooling tasks'): a preempted request's blocks are freed with their hashes "
    "(single_type_kv_cache_manager.py free: tail blocks first) to the end of BlockPool's "
    "free_block_queue, which hands out (and so evicts) from its head; block_pool.py cache_full_blocks "
    "hashes generated tokens' blocks too, 'in case it will be preempted in the future', and on "
    "resumption scheduler.py asks get_computed_blocks for the cached prefix before it recomputes."
    " The same default in vLLM's engine-argument test "
    "test_prefix_caching_from_cli ('V1 turns on prefix caching by default'); a hit is whole cached "
    "blocks within all but the prompt's last token (vllm/v1/core/kv_cache_manager.py "
    "get_computed_blocks: max_cache_hit_length = request.num_tokens - 1)."
    " Async scheduling off (overlap_scheduler False): vllm/config/scheduler.py SchedulerConfig "
    "async_scheduling False by default through 0.13 (the v0.11.1 release notes: 'We expect "
    "--async-scheduling to be enabled by default in the next release'); vLLM 0.14.0 turned it on "
    "(release notes, Breaking Changes: 'Async scheduling is now enabled by default', PR 27614; "
    "'Excludes ... pipeline parallel, CPU backend, non-MTP/Eagle spec decoding'; vllm/config/vllm.py "
    "resolves async_scheduling None to True unless such an option, or an executor backend other "
    "than mp, uni or external_launcher, rules it out), which harness_engine's 'atom-oot' (vLLM 0.19) "
    "applies."
)
_SGLANG_SOURCE = (
    "SGLang 0.5, python/sglang/srt/server_args.py: chunked_prefill_size 2048 below 35 GB of GPU "
    "memory, 8192 below 160 GB (H100, H200), 16384 above (B200); schedule_policy fcfs; page_size 1; "
    "max_running_requests from the memory pool (at most 4096, model_runner req_to_token_pool). "
    "The scheduler runs a prefill batch whenever new requests fit, decoding otherwise, unless "
    "--enable-mixed-chunk (scheduler.py get_next_batch_to_run); it admits a request when its prompt "
    "and its output (clipped at 4096) fit beside the running requests' tokens and new_token_ratio x "
    "their clipped output to go, the ratio decaying from 0.7 to 0.098 over 600 decode steps, reset "
    "when idle and recomputed on a retraction (NewTokenRatio, schedule_policy.py PrefillAdder); it "
    "retracts the decodes with the fewest output tokens by recompute when the next step does not "
    "fit, to the end of the queue (schedule_batch.py retract_decode, scheduler.py update_running_batch). "
    "The radix cache is on (server_args.py disable_radix_cache False): a prompt matches its cached "
    "prefix up to all but its last token (managers/schedule_batch.py Req.adjust_max_prefix_ids: "
    "max_prefix_len = input_len - 1; _compute_max_prefix_len in later versions). "
    "The overlap scheduler is on (server_args.py disable_overlap_schedule False, kept with "
    "--enable-mixed-chunk: scheduler_output_processor_mixin.py process_batch_result_prefill): "
    "scheduler.py event_loop_overlap receives requests, chooses and launches the next batch, and "
    "only then processes the previous batch's results, so a batch's tokens leave once the next "
    "batch is launched (release_after_launch; environ.py SGLANG_DISABLE_CONSECUTIVE_PREFILL_OVERLAP "
    "False by default: consecutive prefill batches overlap the same way). Split pools: the sliding one must "
    "hold a new first chunk, >= a window (PrefillAdder.rem_swa_tokens, _swa_budget_for_req), a step retracts "
    "until both hold it (check_decode_mem); it keeps a decoding request's prompt (swa_radix_cache.py "
    "inc_lock_ref) and 1.5 windows of its output (maybe_evict_swa, sglang PRs 17220, 22645)."
)
_TRTLLM_SOURCE = (
    "TensorRT-LLM 1.0, trtllm-serve (PyTorch backend), tensorrt_llm/commands/serve.py: "
    "--max_batch_size and --max_num_tokens default to BuildConfig's 2048 and 8192 "
    "(tensorrt_llm/builder.py); capacity scheduler GUARANTEED_NO_EVICT (reserves the blocks of the "
    "whole request, never evicts; docs performance-tuning-guide/useful-runtime-flags); "
    "enable_chunked_prefill False; in-flight batching puts context and generation requests in one "
    "iteration (docs tuning-max-batch-size-and-max-num-tokens); KvCacheConfig tokens_per_block 32. "
    "Overlap scheduler on (TorchLlmArgs disable_overlap_scheduler False; docs torch/features/"
    "overlap_scheduler.md, 1.0: at step n the executor launches step n+1 before it processes step "
    "n's results, 'one extra decoding step'; py_executor.py _executor_loop_overlap fetches and "
    "schedules the next batch before it waits on the one running), so a request arriving during "
    "a step joins the step after the next (overlap_scheduler). The same loop sends a step's "
    "tokens (_process_previous_batch -> _handle_responses) only after it has launched the next "
    "step (_forward_step) and started its sampling, so they leave that step's host launch time "
    "after their own step ended when the next one runs eagerly (release_after_launch), and the "
    "next fetch of queued requests comes as late. "
    "The PyTorch backend's BindMicroBatchScheduler (tensorrt_llm/_torch/pyexecutor/scheduler.py) "
    "runs the C++ MicroBatchScheduler (cpp/tensorrt_llm/batch_manager/microBatchScheduler.cpp): "
    "it walks the active requests in order and counts each generation request's token (its beam "
    "width) and each whole context against max_num_tokens, stopping at the first that does not fit. "
    "With max_num_tokens 8192 that would hold an 8192-token prompt back until no request decodes; "
    "the preset keeps the budget for context tokens only (budget_counts_decode False), a known "
    "departure from the default server (budget_counts_decode=True gives the scheduler as written). "
    "The bundled TensorRT-LLM rows ran with AIConfigurator's configuration instead, max_num_tokens "
    "= batch + ISL + 1500 with generation tokens counted (harness_engine). "
    "KV pool: KvCacheConfig free_gpu_memory_fraction 0.9 'means TensorRT LLM will try to allocate 90% "
    "of free GPU memory for KV cache' (docs examples/kvcacheconfig, How to Change KV Cache Behavior), "
    "the memory free once the model is loaded (kv_fraction_of free): _torch/pyexecutor/_util.py "
    "KvCacheCreator._get_free_gpu_memory_fraction (0.9 when unset) and _cal_max_tokens (available = "
    "(total - peak of the profiling run, weights, activations and non-torch memory included, + its "
    "temporary KV) x fraction). Capacity scheduler GUARANTEED_NO_EVICT: llmapi/llm_args.py "
    "SchedulerConfig capacity_scheduler_policy default (admission reserve, whole requests). "
    "NVIDIA GPUs only (vendors): docs reference/support-matrix.md, 'TensorRT-LLM optimizes the "
    "performance of a range of well-known models on NVIDIA GPUs', its hardware table listing NVIDIA "
    "architectures only (Blackwell, Hopper, Ada Lovelace, Ampere); the library runs CUDA kernels and "
    "TensorRT engines, which no other vendor's device runs."
)


def engine_preset(name: str, device: Device | None = None) -> Engine:
    """The preset of an engine at its named version, with the defaults it picks on ``device``.

    Args:
        name: vllm (vLLM 0.10, V1 engine; the default engine), sglang (SGLang 0.5) or trtllm
            (TensorRT-LLM 1.0, trtllm-serve, PyTorch backend).
        device: the GPU; vLLM's budget and SGLang's chunk size depend on its memory. None = a
            GPU of 80 GB or more.

    Returns:
        The :class:`Engine`; change any knob with :meth:`Engine.replace`.

    Raises:
        UnknownEntryError: an engine without a preset.
    """
    memory = float("inf") if device is None else device.memory_capacity_bytes
    if name == "vllm":
        big = memory >= 70 * GiB and (device is None or "a100" not in device.id)
        return Engine(
            name="vllm",
            version="0.10 (V1)",
            max_num_seqs=1024 if big else 256,
            max_batched_tokens=8192 if big else 2048,
            chunked_prefill=True,
            mixed=True,
            admission="on-demand",
            preemption="recompute",
            prefix_caching=True,
            kv_block_tokens=16,
            swa_pool="window",
            graph_max_decode_batch=min(2 * (1024 if big else 256), VLLM_GRAPH_MAX),
            graph_pad_sizes=VLLM_GRAPH_SIZES,
            dp_pad_tokens="max",
            source=_VLLM_SOURCE
            + _VLLM_DP
            + " Prefill host time not modelled (prefill_launch_s 0): V1 runs the torch.compile'd "
            "forward and replays it as piecewise CUDA graphs (attention outside) for steps up to "
            "its largest capture size, and no host-bound eager measurement of it is at hand.",
        )
    if name == "sglang":
        mib = memory / 2**20
        chunk = 2048 if mib < 35 * 1024 else 8192 if mib < 160 * 1024 else 16384
        below, tp4 = next(((lo, hi) for most, lo, hi in SGLANG_GRAPH_MAX_BS if mib < most), (512, 512))
        return Engine(
            name="sglang",
            version="0.5",
            max_num_seqs=4096,
            max_batched_tokens=chunk,
            chunked_prefill=True,
            mixed=False,
            admission="reserve",
            reserve_output_frac=SGLANG_NEW_TOKEN_RATIO.init,
            new_token_ratio=SGLANG_NEW_TOKEN_RATIO,
            preemption="recompute",
            kv_block_tokens=1,
            swa_pool="split",
            overlap_scheduler=True,
            release_after_launch=True,
            prefix_caching=True,
            prefill_launch_s=PREFILL_LAUNCH_S,
            graph_max_decode_by_tp=((4, tp4), (1, below)),
            graph_pad_sizes=SGLANG_GRAPH_SIZES,
            dp_graph_sync="all-decode",
            dp_pad_tokens="max-len",
            source=_SGLANG_SOURCE
            + _SGLANG_DP
            + _PREFILL_GRAPHS
            + "server_args.py enable_piecewise_cuda_graph False through 0.5.9, so the CUDA graph "
            "runner (model_executor/cuda_graph_runner.py) replays decode batches only (0.5.10 turns "
            "piecewise prefill graphs on by default, sglang PR 16331: set prefill_launch_s 0 there).",
        )
    if name == "trtllm":
        return Engine(
            name="trtllm",
            version="1.0 (trtllm-serve, PyTorch backend)",
            max_num_seqs=2048,
            max_batched_tokens=8192,
            chunked_prefill=False,
            mixed=True,
            budget_counts_decode=False,
            admission="reserve",
            kv_fraction_of="free",
            preemption="recompute",
            kv_block_tokens=32,
            overlap_scheduler=True,
            release_after_launch=True,
            prefill_launch_s=PREFILL_LAUNCH_S,
            graph_max_decode_batch=max(TRTLLM_GRAPH_SIZES),
            graph_decode_sizes=TRTLLM_GRAPH_SIZES,
            dp_graph_sync="all-decode-equal",
            vendors=("NVIDIA",),
            source=_TRTLLM_SOURCE
            + _TRTLLM_DP
            + _PREFILL_GRAPHS
            + "_torch/pyexecutor/model_engine.py _maybe_get_cuda_graph returns a graph only for a "
            "batch that is_generation_only; piecewise graphs for context steps need "
            "TorchCompileConfig enable_piecewise_cuda_graph, False by default.",
        )
    raise UnknownEntryError("engine", name, ENGINES)


def as_engine(engine: str | Engine, device: Device | None = None) -> Engine:
    """``engine`` itself, or the preset of that name on ``device`` (:func:`engine_preset`).

    Raises:
        SpecError: neither a name nor an :class:`Engine`. UnknownEntryError: an engine without a preset.
    """
    if isinstance(engine, Engine):
        return engine
    if not isinstance(engine, str):
        raise SpecError(f"engine={engine!r} must be one of {', '.join(ENGINES)} or an Engine")
    return engine_preset(engine, device)
