"""Serving engines: the :class:`Engine` (a continuously batching scheduler's knobs, checked), its KV pool, and
the per-rank rules of attention-DP ranks. The named engines' values are in :mod:`genmodel._enginepresets`.

Modelling assumptions:
- An engine is described by what its scheduler does each iteration: a token budget per step, a cap
  on running sequences, whether a prompt may be split into chunks, whether prefill chunks share a
  step with decode tokens (mixed) or run in steps of their own (prefill first), how KV memory is
  admitted ("reserve" the whole sequence, or "on-demand" as tokens arrive) and what happens when it
  runs out (preempt and "recompute", or "swap" to the offload tier), and the order of the queue.
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

from genmodel._eagerkernels import EAGER_BLOCK_KERNELS, EagerBlockKernels
from genmodel._errors import SpecError, did_you_mean, require_ints
from genmodel._newtokenratio import SGLANG_SWA_FULL_TOKENS_RATIO, NewTokenRatio

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
        vendors: the device vendors (``Device.vendor``) the engine runs on; () = any. A device of
            no named vendor is not refused (:meth:`runs_on`).
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
    vendors: tuple[str, ...] = ()
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
                raise SpecError(
                    f"{name}={value!r} must be one of {', '.join(allowed)}{did_you_mean(value, allowed)}"
                )
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

    def runs_on(self, vendor: str) -> bool:
        """Whether the engine runs on a device of ``vendor`` (``Device.vendor``): one of
        :attr:`vendors`, any where they are (), and a device of no named vendor ("")."""
        return not self.vendors or not vendor or vendor in self.vendors

    def decode_graphs(self, tp: int) -> tuple[int | None, tuple[int, ...]]:
        """(the largest decode batch replayed as a CUDA graph, None = no limit; the only sizes
        graphed, () = every size up to it) for a server of ``tp`` GPUs."""
        limit = self.graph_max_decode_batch
        if limit is None:
            limit = next((most for least, most in self.graph_max_decode_by_tp if tp >= least), None)
        return limit, self.graph_decode_sizes

    def eager_decode(self, batch: float, tp: int) -> bool:
        """Whether a decode-only step of ``batch`` sequences runs without a CUDA graph on a server
        of ``tp`` GPUs (:meth:`decode_graphs`; the step table compiles the same rule,
        ``StepCostTable.eager_decode``). A fractional ``batch`` is the closed form's mean running
        batch: its decode-only steps run every running sequence, the mean's upper neighbour (the
        steps that pull the mean below it are the ones holding a prompt, costed apart), so it
        rounds up; rounding to the nearest sent a mean of 127.5 of 128 clients to 127, a batch
        TensorRT-LLM 1.0 does not capture, and every decode step to the eager floor (6x the
        simulation's TPOT)."""
        n = math.ceil(batch - 1e-9)
        limit, sizes = self.decode_graphs(tp)
        return (limit is not None and n > limit) or (bool(sizes) and n not in sizes)

    def eager_decodes(self, batches: Any, tp: int) -> Any:
        """:meth:`eager_decode` of each of an array of ``batches`` (a bool array), in array
        operations: the plan search asks it of every candidate. The same rule, rounding up (a
        whole batch within 1e-9 of below stays itself)."""
        import numpy as np

        n = np.ceil(np.asarray(batches, dtype=float) - 1e-9)
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
    """Refuse a switch that is no bool (``chunked_prefill='yes'``), a figure that is no number
    (a bool is none: ``step_overhead_s=True``) and vendors that are no tuple of names, naming the
    knob and the value."""
    for f in dataclasses.fields(engine):
        value = getattr(engine, f.name)
        if f.type == "bool" and not isinstance(value, bool):
            raise SpecError(f"{f.name}={value!r} must be True or False")
        number = f.type in ("float", "float | None") and value is not None
        if number and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"{f.name}={value!r} must be a number")
    vendors = engine.vendors
    if not isinstance(vendors, tuple) or not all(isinstance(v, str) and v for v in vendors):
        raise SpecError(f"vendors={vendors!r} must be a tuple of vendor names (() = any)")


def eager_block_kernels(engine: Engine) -> tuple[EagerBlockKernels, ...]:
    """The per-architecture block counts of ``engine`` (by name); () = the generic count."""
    return EAGER_BLOCK_KERNELS.get(engine.name, ())


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
