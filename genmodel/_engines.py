"""Serving-engine presets: the scheduler knobs of vLLM, SGLang and TensorRT-LLM at named versions.

Modelling assumptions:
- An engine is described by what its scheduler does each iteration: a token budget per step, a cap
  on running sequences, whether a prompt may be split into chunks, whether prefill chunks share a
  step with decode tokens (mixed) or run in steps of their own (prefill first), how KV memory is
  admitted ("reserve" the whole sequence, or "on-demand" as tokens arrive) and what happens when it
  runs out (preempt and "recompute", or "swap" to the offload tier), and the order of the queue.
- The defaults are those of the named version's server (the OpenAI-compatible API server, as the
  benchmarks use); where a default depends on the GPU, :func:`engine_preset` resolves it from the
  device's memory, as the engine does. Each value names the file it comes from in ``source``.
- The KV pool is the usable memory less the weights and the activations of the engine's profile run at its
  token budget and ``max_num_seqs`` (:func:`~genmodel._kvpool.engine_pool`, one size for both serving models).
  The engines' own memory fractions (vLLM ``gpu_memory_utilization`` 0.9, SGLang ``mem_fraction_static``,
  TensorRT-LLM ``free_gpu_memory_fraction`` 0.9) are genmodel's ``usable_memory_frac``: of the device's
  memory, TensorRT-LLM's of the memory the weights leave free (``kv_fraction_of`` "free").
- The per-step CPU overhead is the device's ``step_overhead_s`` unless an engine sets one. An engine that
  schedules a step while the one before it runs (``overlap_scheduler``: TensorRT-LLM's overlap scheduler,
  SGLang's overlap schedule, vLLM's async scheduling) keeps it: the overlap changes which step an arrival can
  join, and no source splits the fitted overhead into the host work the overlap hides and the rest.
- A step that carries prefill tokens runs outside the CUDA graphs that replay decode-only steps
  (TensorRT-LLM, SGLang): it takes at least the host time of launching its kernels,
  ``prefill_launch_s`` per kernel (:mod:`genmodel._hostcost`); vLLM V1 captures such steps in
  piecewise graphs, and its preset leaves the term out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from genmodel._eagerkernels import (
    EAGER_BLOCK_KERNELS,
    HOST_BOUND_PREFILLS,
    SGLANG_GRAPH_MAX_BS,
    SGLANG_GRAPH_SIZES,
    TRTLLM_GRAPH_SIZES,
    VLLM_GRAPH_MAX,
    VLLM_GRAPH_SIZES,
    EagerBlockKernels,
)
from genmodel._errors import SpecError, UnknownEntryError, require_ints
from genmodel._hardware import Device
from genmodel._newtokenratio import SGLANG_NEW_TOKEN_RATIO, SGLANG_SWA_FULL_TOKENS_RATIO, NewTokenRatio
from genmodel._units import GiB

#: the largest max_num_seqs and max_batched_tokens an engine takes (far beyond any engine's)
MAX_KNOB = 1_000_000
ADMISSIONS = ("reserve", "on-demand")
#: what the usable-memory fraction is a fraction of: the device's memory, or what the weights leave free
KV_FRACTIONS_OF = ("device", "free")
PREEMPTIONS = ("recompute", "swap")
#: when a decode step of attention-DP ranks in lockstep replays a CUDA graph (``Engine.dp_graph_sync``)
DP_GRAPH_SYNCS = ("own", "all-decode", "all-decode-equal")
#: how attention-DP ranks in lockstep pad their steps' tokens to each other (``Engine.dp_pad_tokens``)
DP_PADS = ("none", "max", "max-len")
SCHEDULES = ("fcfs",)
SWA_POOLS = ("full", "window", "split")  # what the KV pool keeps of a sliding-window layer (Engine.swa_pool)


@dataclass(frozen=True, slots=True)
class KvPool:
    """How an engine sizes and fills its KV pool (:attr:`Engine.kv_pool`): what its usable-memory fraction is
    a fraction of (``fraction_of``, as :func:`~genmodel._kvpool.pool_device` takes it) and what a running
    sequence holds of the pool (:meth:`held_output_tokens`). The default is whole sequences in a fraction of
    the device (:data:`WHOLE_SEQUENCES`)."""

    admission: str = "reserve"
    reserve_output_frac: float = 1.0
    fraction_of: str = "device"
    memory_fraction: float | None = None
    new_token_ratio: NewTokenRatio | None = None
    #: tokens past its window a sliding-window layer keeps of a sequence (vLLM: a block; 0 before an
    #: engine is named: the static memory's window); None = all (:func:`~genmodel._sizes.pool_kv_model`)
    swa_slack: int | None = 0
    swa_ratio: float | None = None  # SGLang's split pools: sliding tokens per full-pool token (None: one)
    profile_step: tuple[int, int] | None = None  # budget, most seqs of its profile run; None: no engine

    def held_output_tokens(self, output_tokens: int) -> int:
        """The output tokens a running sequence holds in the KV pool, on average over its life.

        "reserve": its reservation, ``reserve_output_frac`` of the output, from admission to
        completion; "on-demand": the tokens it has generated, which grow by one per decode step,
        so half the output averaged over its decode (the steady state's sequences are spread over
        their progress). Source: the admission rules :mod:`genmodel._scheduler` runs (vLLM V1
        allocates blocks as tokens arrive; TensorRT-LLM's GUARANTEED_NO_EVICT the whole sequence).
        "reserve" with a ``new_token_ratio`` (SGLang) holds as on-demand does: the ratio's
        reservation is slack its admission keeps free, not tokens a sequence holds, and at the KV
        limit the pool fills with computed tokens until SGLang retracts (:mod:`genmodel._newtokens`;
        simulated, SGLang runs about as many sequences there as vLLM).
        """
        if self.admission == "on-demand" or self.new_token_ratio is not None:
            return max(1, -(-output_tokens // 2))
        return max(1, math.ceil(output_tokens * self.reserve_output_frac))


#: the KV pool before an engine is named: whole sequences, in a fraction of the device's memory
WHOLE_SEQUENCES = KvPool()


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """The scheduler of a continuously batching serving engine.

    Attributes:
        name: engine name (vllm, sglang, trtllm, or any label).
        version: the version whose defaults these are.
        max_num_seqs: most sequences running at once (prefilling or decoding) per replica.
        max_batched_tokens: token budget of one step (prefill chunk tokens, plus decode tokens
            when ``mixed``).
        chunked_prefill: a prompt longer than the budget left may be split over steps.
        mixed: prefill chunks and decode tokens share a step; False = a step either prefills
            (while requests wait to be admitted) or decodes (SGLang without mixed chunk).
        budget_counts_decode: a mixed step's decode tokens count against the token budget
            (vLLM); False = the budget limits the prompt tokens only.
        max_prefill_tokens: SGLang's ``--max-prefill-tokens``: a step takes a further new prompt
            only while its prompt tokens (and a mixed step's decode tokens) stay within this, and
            never splits a prompt for it (the budget above still chunks); None = no such cap.
        admission: "reserve" KV blocks for the whole sequence when a request is admitted, or
            "on-demand": allocate blocks as tokens arrive and preempt when the pool is full.
        reserve_output_frac: under "reserve", the share of the output tokens reserved at
            admission and held to completion; 1 = all. The closed form's view of SGLang (its
            initial ``new_token_ratio``); the simulation uses ``new_token_ratio`` where it is set.
        new_token_ratio: under "reserve", SGLang's decaying estimate of the output to come
            (:class:`NewTokenRatio`) instead of a fixed reservation: the simulated scheduler admits,
            retracts and re-queues as SGLang's does (:mod:`genmodel._newtokens`); None = fixed.
        kv_fraction_of: what the usable-memory fraction is a fraction of: the "device"'s memory
            (vLLM, SGLang) or the memory "free" after the weights are loaded (TensorRT-LLM's
            ``free_gpu_memory_fraction``), :func:`~genmodel._kvpool.pool_device`.
        memory_fraction: the engine's memory fraction (of what ``kv_fraction_of`` says) where a
            harness sets one other than the engine's default; None = the device's
            ``usable_memory_frac`` (0.9: vLLM's ``gpu_memory_utilization``, TensorRT-LLM's
            ``free_gpu_memory_fraction``).
        preemption: what a preempted sequence does: "recompute" its KV later, or "swap" it to the
            KV offload tier and back.
        prefix_caching: the engine's prefix cache is on (vLLM V1's prefix caching, SGLang's radix
            cache). It keeps the KV of finished prompts and reuses it for a prompt that repeats: a
            repeated prompt computes only what its cache hit leaves, its tokens after the last whole
            ``kv_block_tokens`` block within all but its last token; the simulation repeats prompts
            only where the benchmark client does (the warm-up replay of
            :func:`~genmodel._simfigures.replay_warmup_prompts`). A recompute preemption draws on it
            too: the preempted sequence's full KV blocks stay in the pool as evictable cache, the
            other sequences' new blocks evict them (least recently freed first) only when nothing
            else is free, and on resumption the blocks still cached are not recomputed (vLLM V1). A
            run's shared prompt prefix is a run option (``prefix_hit_rate``), not this knob.
        schedule: order of the waiting queue ("fcfs").
        kv_block_tokens: tokens per KV-cache block (paging granularity).
        swa_pool: what the pool keeps of a sliding-window layer's sequence: "full", every token, "window", its
            window and a block (vLLM V1), "split", SGLang's two pools (``genmodel._sizes.split_kv_scale``).
        step_overhead_s: per-step CPU overhead; None = the device's ``step_overhead_s``.
        prefill_launch_s: host time per kernel launch of a step with prefill tokens, which the
            engine runs eagerly (outside CUDA graphs): such a step takes at least its kernels
            (:func:`~genmodel._hostcost.eager_launches`) times this; 0 = graphed or not modelled.
        graph_max_decode_batch: the largest decode batch the engine replays as a CUDA graph (SGLang's
            ``cuda_graph_max_bs``): a decode-only step of more sequences runs eagerly and takes at
            least the same host launch time as a prefill step; None = ``graph_max_decode_by_tp``'s.
        graph_max_decode_by_tp: where ``graph_max_decode_batch`` is None, that limit by the TP of the
            server, as (least TP, limit) pairs, the first that applies (SGLang 0.5 sets it by TP);
            () or none applying = every decode batch is graphed (:meth:`decode_graphs`).
        graph_decode_sizes: the only decode batch sizes graphed, where the engine does not pad a
            batch up to the next (TensorRT-LLM without ``enable_padding``); () = all up to the limit.
        graph_pad_sizes: the decode batch sizes the engine captures and pads a smaller batch up to
            (vLLM, SGLang): a graphed decode step of n sequences runs the graph of the least of them
            at least n (up to the limit), its GEMMs and LM head over the padded rows; () = no padding
            (every size up to the limit captured, or only ``graph_decode_sizes``).
        overlap_scheduler: the scheduler prepares step k+1 while step k runs on the GPU
            (TensorRT-LLM's PyTorch-backend overlap scheduler, SGLang's overlap schedule, vLLM's
            async scheduling): a request that arrives after step k started is not in step k+1
            but in k+2 at the earliest, one more step of TTFT; an engine with nothing running
            admits an arrival at once. False = each step is scheduled after the last one ended.
        release_after_launch: with ``overlap_scheduler``, a step's tokens leave the engine only once
            the next step has been launched (TensorRT-LLM's ``_executor_loop_overlap`` and SGLang's
            ``event_loop_overlap`` process a step's results after launching the next): when the
            next step holds a prompt, which runs eagerly, that is its host launch time
            (``prefill_launch_s`` x its kernels) after the step ended, and the first tokens, the
            last tokens and the clients' replies to them come that much later; the next fetch
            of waiting requests too. False = a step's tokens leave when it ends.
        dp_graph_sync: when a decode step of attention-DP ranks of an MoE model (in lockstep,
            :mod:`genmodel._lockstep`) replays a CUDA graph: "own" = each rank by its own batch (the
            rules above); "all-decode" = only when every rank's step is decode-only (or idle), the
            graph of the largest rank's batch (padded up) replayed on every rank, idle ones included
            (SGLang); "all-decode-equal" = only when every rank's step is decode-only and, unless the
            engine pads (``graph_pad_sizes``: every rank then padded up from the largest's batch),
            every rank decodes as many sequences, an idle rank its dummy one (TensorRT-LLM).
        dp_pad_tokens: how those ranks pad their steps' tokens to each other outside that rule:
            "none"; "max" = every step, each rank to the largest rank's tokens (its own padded
            to its graph first; vLLM); "max-len" = a decode-only group's eager step, when the
            ranks' summed tokens exceed half of the largest's x dp (SGLang's MAX_LEN gather; else
            SUM_LEN: each its own, an idle rank none).
        reply_latency_s: a closed-loop client's reply, from a response's last token leaving the
            engine to the client's next request reaching the scheduler (the frontend's egress,
            the client's turnaround and the frontend's ingress); the same legs lie between a
            request and its first token, so it is added to every TTFT and e2e as well. 0 = the
            client replies at the instant the token leaves the engine.
        source: where each default comes from.
    """

    name: str
    version: str = ""
    max_num_seqs: int
    max_batched_tokens: int
    chunked_prefill: bool = True
    mixed: bool = True
    budget_counts_decode: bool = True
    max_prefill_tokens: int | None = None
    admission: str = "on-demand"
    reserve_output_frac: float = 1.0
    new_token_ratio: NewTokenRatio | None = None
    kv_fraction_of: str = "device"
    memory_fraction: float | None = None
    preemption: str = "recompute"
    prefix_caching: bool = False
    schedule: str = "fcfs"
    kv_block_tokens: int = 16
    swa_pool: str = "full"
    step_overhead_s: float | None = None
    prefill_launch_s: float = 0.0
    graph_max_decode_batch: int | None = None
    graph_max_decode_by_tp: tuple[tuple[int, int], ...] = ()
    graph_decode_sizes: tuple[int, ...] = ()
    graph_pad_sizes: tuple[int, ...] = ()
    overlap_scheduler: bool = False
    release_after_launch: bool = False
    dp_graph_sync: str = "own"
    dp_pad_tokens: str = "none"
    reply_latency_s: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        _check_types(self)
        require_ints(
            max_num_seqs=self.max_num_seqs,
            max_batched_tokens=self.max_batched_tokens,
            kv_block_tokens=self.kv_block_tokens,
        )
        for name, value, allowed in (
            ("admission", self.admission, ADMISSIONS),
            ("kv_fraction_of", self.kv_fraction_of, KV_FRACTIONS_OF),
            ("preemption", self.preemption, PREEMPTIONS),
            ("schedule", self.schedule, SCHEDULES),
            ("swa_pool", self.swa_pool, SWA_POOLS),
            ("dp_graph_sync", self.dp_graph_sync, DP_GRAPH_SYNCS),
            ("dp_pad_tokens", self.dp_pad_tokens, DP_PADS),
        ):
            if value not in allowed:
                raise SpecError(f"{name}={value!r} must be one of {', '.join(allowed)}")
        if self.memory_fraction is not None and not 0 < self.memory_fraction <= 1:
            raise SpecError(f"memory_fraction={self.memory_fraction!r} must be in (0, 1]")
        if not 0 <= self.reserve_output_frac <= 1:
            raise SpecError(f"reserve_output_frac={self.reserve_output_frac!r} must be in [0, 1]")
        for knob in ("max_prefill_tokens", "graph_max_decode_batch"):
            if getattr(self, knob) is not None:
                require_ints(**{knob: getattr(self, knob)})
        graphs: list[Any] = [n for pair in self.graph_max_decode_by_tp for n in pair]
        graphs += [*self.graph_decode_sizes, *self.graph_pad_sizes]
        require_ints(**{f"graph size {i}": n for i, n in enumerate(graphs)})
        for knob, count in (
            ("max_num_seqs", self.max_num_seqs),
            ("max_batched_tokens", self.max_batched_tokens),
            ("max_prefill_tokens", self.max_prefill_tokens or 0),
        ):
            if count > MAX_KNOB:  # the step-cost tables are sized by them
                raise SpecError(f"{knob}={count} must be at most {MAX_KNOB:,}")
        if self.step_overhead_s is not None and not 0 <= self.step_overhead_s < math.inf:
            raise SpecError(f"step_overhead_s={self.step_overhead_s!r} must be >= 0 and finite")
        for knob, seconds in (
            ("prefill_launch_s", self.prefill_launch_s),
            ("reply_latency_s", self.reply_latency_s),
        ):
            if not 0 <= seconds < math.inf:
                raise SpecError(f"{knob}={seconds!r} must be >= 0 and finite")

    def decode_graphs(self, tp: int) -> tuple[int | None, tuple[int, ...]]:
        """(the largest decode batch replayed as a CUDA graph, None = no limit; the only sizes
        graphed, () = every size up to it) for a server of ``tp`` GPUs."""
        limit = self.graph_max_decode_batch
        if limit is None:
            limit = next((most for least, most in self.graph_max_decode_by_tp if tp >= least), None)
        return limit, self.graph_decode_sizes

    def eager_decode(self, batch: float, tp: int) -> bool:
        """Whether a decode-only step of ``batch`` sequences (rounded) runs without a CUDA graph on a
        server of ``tp`` GPUs (:meth:`decode_graphs`; the step table compiles the same rule,
        ``StepCostTable.eager_decode``)."""
        n = round(batch)
        limit, sizes = self.decode_graphs(tp)
        return (limit is not None and n > limit) or (bool(sizes) and n not in sizes)

    def eager_decodes(self, batches: Any, tp: int) -> Any:
        """:meth:`eager_decode` of each of an array of ``batches`` (a bool array), in array
        operations: the plan search asks it of every candidate. The same rule, rounding as
        ``round`` does (half to even; exact for whole floats below 2**53)."""
        import numpy as np

        n = np.rint(batches)
        limit, sizes = self.decode_graphs(tp)
        eager = n > limit if limit is not None else np.zeros(np.shape(n), dtype=bool)
        return eager | ~np.isin(n, sizes) if sizes else eager

    def cuda_graphs(self, tp: int) -> tuple[int | None, tuple[int, ...], tuple[int, ...]]:
        """:meth:`decode_graphs` and the captured sizes a graphed decode batch is padded up to
        (``graph_pad_sizes``; () = none)."""
        return (*self.decode_graphs(tp), self.graph_pad_sizes)

    @property
    def kv_pool(self) -> KvPool:
        """How this engine sizes and fills its KV pool (the closed form's and the search's view)."""
        rule = self.new_token_ratio if self.admission == "reserve" else None
        slack = self.kv_block_tokens if self.swa_pool == "window" else None
        ratio = SGLANG_SWA_FULL_TOKENS_RATIO if self.swa_pool == "split" else None
        step = (self.max_batched_tokens, self.max_num_seqs)  # what its profile run takes (genmodel._kvpool)
        fraction = (self.kv_fraction_of, self.memory_fraction)
        return KvPool(self.admission, self.reserve_output_frac, *fraction, rule, slack, ratio, step)

    def replace(self, **changes: Any) -> Engine:
        """This engine with some knobs changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """The knob values (JSON key ``engine``)."""
        return dataclasses.asdict(self)


def _check_types(engine: Engine) -> None:
    """Refuse a switch that is no bool (``chunked_prefill='yes'``) and a figure that is no number
    (a bool is none: ``step_overhead_s=True``), naming the knob and the value."""
    for f in dataclasses.fields(engine):
        value = getattr(engine, f.name)
        if f.type == "bool" and not isinstance(value, bool):
            raise SpecError(f"{f.name}={value!r} must be True or False")
        number = f.type in ("float", "float | None") and value is not None
        if number and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"{f.name}={value!r} must be a number")


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


def eager_block_kernels(engine: Engine) -> tuple[EagerBlockKernels, ...]:
    """The per-architecture block counts of ``engine`` (by name); () = the generic count."""
    return EAGER_BLOCK_KERNELS.get(engine.name, ())


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
    "False by default: consecutive prefill batches overlap the same way)."
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
    "SchedulerConfig capacity_scheduler_policy default (admission reserve, whole requests)."
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


#: what SGLang multiplies its ``schedule_conservativeness`` by with DP attention, so its initial
#: ``new_token_ratio`` (0.7 x the conservativeness) and the floor it decays to are 0.3 of the
#: default's (:func:`rank_engine`)
DP_ATTENTION_CONSERVATIVENESS = 0.3


def rank_engine(engine: Engine, *, moe: bool, dp: int) -> Engine:
    """``engine`` as each of ``dp`` attention-DP ranks of an MoE model runs it.

    SGLang with DP attention (``--enable-dp-attention``, which genmodel's dp > 1 of an MoE model is) changes
    two of its scheduler's knobs per rank (python/sglang/srt/server_args.py ``_handle_data_parallelism`` in
    0.5 and later, the same two lines in the 0.4 releases' ``__post_init__``, "Data parallelism attention"):

    - ``chunked_prefill_size = chunked_prefill_size // dp_size`` ("DP attention is enabled. The chunked
      prefill size is adjusted to ... to avoid MoE kernel issues"): the preset's (or a harness's)
      ``max_batched_tokens`` is the size given, the rank's is that over ``dp``;
    - ``schedule_conservativeness = schedule_conservativeness * 0.3`` (:data:`DP_ATTENTION_CONSERVATIVENESS`),
      which managers/scheduler.py ``Scheduler.__init__`` turns into ``init_new_token_ratio =
      min(SGLANG_INIT_NEW_TOKEN_RATIO x schedule_conservativeness, 1)``, the floor being that x
      ``SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR``: the rank's :class:`NewTokenRatio` starts at 0.3 of the preset's
      (0.21 rather than 0.7, the floor 0.0294) and so reserves less for the running sequences' output; the
      closed form's ``reserve_output_frac`` (the initial ratio) follows.

    Knobs it leaves per server, and so unchanged here: ``max_prefill_tokens``; the preset's ``max_num_seqs``
    is already a rank's (the rank's request pool, ``req_to_token_pool``). A ``--max-running-requests`` given
    to the server is divided by the DP size in each rank's model runner (model_executor/model_runner.py,
    tp_worker.py in 0.4: ``max_running_requests // dp_size`` with DP attention): an ``Engine``'s
    ``max_num_seqs`` is the rank's, so give that. Early 0.4 releases (DP attention forcing dp = tp) also
    halved the chunk, capped the CUDA graph batch at 96 and turned the overlap schedule off; the bundled rows
    ran later releases. The other engines and dense replicas keep their knobs.
    """
    if engine.name != "sglang" or not moe or dp < 2:
        return engine
    rule = engine.new_token_ratio
    if rule is not None:
        rule = dataclasses.replace(rule, init=min(rule.init * DP_ATTENTION_CONSERVATIVENESS, 1.0))
    return dataclasses.replace(
        engine,
        max_batched_tokens=max(engine.max_batched_tokens // dp, 1),
        new_token_ratio=rule,
        reserve_output_frac=engine.reserve_output_frac * DP_ATTENTION_CONSERVATIVENESS,
    )


def idle_rank_tokens(engine: Engine | None) -> int:
    """Tokens an attention-DP rank of an MoE model with nothing to run sends the routed experts
    while the other ranks step (they step in lockstep). SGLang's idle rank runs an IDLE batch of no
    tokens (managers/scheduler.py ``get_idle_batch`` under DP attention), and its gather before
    the MoE pads to the sum of the ranks' tokens in a batch with a prefill, or where that sum is at
    most half of the largest rank's x dp (layers/dp_attention.py ``DpPaddingMode.get_dp_padding_mode``:
    SUM_LEN), so a rank without work adds none: 0. vLLM's idle DP rank runs a dummy batch of one
    token (v1/worker/gpu_worker.py ``execute_dummy_batch``: ``_dummy_run(1)``) and TensorRT-LLM
    pads it with a dummy generation request (_torch/pyexecutor/py_executor.py
    ``_pad_attention_dp_dummy_request``): 1, as for any other engine (None: no engine named).
    Where the engine pads the ranks to each other (a graphed SGLang decode step, vLLM's every
    step), the idle rank runs the padded tokens instead (:mod:`genmodel._lockstep`).
    """
    return 0 if engine is not None and engine.name == "sglang" else 1
