"""The cost of one forward step of a pipeline replica: its operators, the collectives it waits
for, what of them overlaps, its pipeline microbatches and offload transfers (:func:`step_terms`,
:func:`step_cost`); plain arithmetic, so the same function runs on floats, NumPy arrays (the plan
search) and SymPy symbols (``requirements``).

Modelling assumptions:
- A step's time on one device is the sum of its operators' roofline times, plus the collectives
  it waits for (:func:`~genmodel._parallel.step_collectives`), plus a fixed per-step overhead
  (:mod:`genmodel._cost`).
- A fraction ``comm_overlap_frac`` of the collectives hides behind compute: exposed =
  comm - f * min(comm, compute). Or, explicitly, the pass splits into m microbatches (two-batch
  overlap in SGLang, microbatch pipelining in CloudMatrix-Infer) that alternate, so a pass takes
  m * max(B, K) + min(B, K) for one microbatch's operator time B and collective time K, and every
  microbatch reads the weights again. SGLang's single-batch overlap hides a decode step's MoE
  combine behind the operators it runs beside (:func:`~genmodel._ops.combine_overlap_s`).
- Context parallelism (ring attention): the ring's KV transfer overlaps the attention it feeds.
- Pipeline parallelism: the replica's sequences split into m = min(seqs, pp) microbatches; prefill
  takes (m + pp - 1) stage times (the pipeline fill, GPipe, Huang et al. 2019), and a decode round
  gives every microbatch one token in pp stage times.
- Sparse (top-k) attention reads a fraction of the cached KV in decode; the cache keeps every token.
- Offload: a step's offloaded share of KV, expert and weight reads crosses the host link
  (:meth:`~genmodel._memory.MemoryUse.transfer_time_s`); prefetched layer by layer, only what the
  step's own work does not cover is exposed.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodel._cost import PhaseCost, StepTerms
from genmodel._errors import SpecError
from genmodel._evaluate import reused, step_operators
from genmodel._hardware import Device
from genmodel._memory import MemoryUse
from genmodel._model import ModelSpec
from genmodel._ops import combine_overlap_s
from genmodel._options import RunOptions
from genmodel._parallel import Plan, moe_layout, pp_send_time, step_collectives
from genmodel._system import System, as_system
from genmodel._units import Num, divided, floor, maximum, minimum, where
from genmodel._workload import Precision


def step_terms(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: Num,
    new_tokens: Num,
    past_tokens: Num,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> StepTerms:
    """:func:`step_cost` as :class:`StepTerms`: ``num_seqs``, ``new_tokens`` and ``past_tokens``
    may be NumPy arrays (broadcast together), as a plan search gives them (the operators are
    evaluated by :func:`~genmodel._evaluate.step_operators`: the plain formulas' numbers)."""
    if phase not in ("prefill", "decode"):
        raise SpecError(f"phase={phase!r} must be 'prefill' or 'decode'")
    system = as_system(hardware)
    device = system.device
    pp = plan.pp
    splits = options.overlap_microbatches
    micro, m = microbatches(plan, options, num_seqs, new_tokens)
    seqs = divided(num_seqs, micro, m)  # (each operator's step runs these sequences)
    layout = None
    if model.moe is not None:
        layout = moe_layout(
            plan, redundant_experts=options.redundant_experts, imbalance=options.moe_imbalance
        )
    ops, roof = step_operators(
        model,
        precision,
        device,
        num_seqs=seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        tp=plan.tp,
        cp=plan.cp,
        split_new_tokens=phase == "prefill",
        moe=layout,
        absorb_mla=phase == "decode",
        kv_read_frac=options.sparse_attention_frac if phase == "decode" else 1.0,
    )
    factor = (micro + pp - 1) / pp if phase == "prefill" else 1.0
    compute_s, memory_s = roof.compute_s, roof.memory_s
    compute_bound_s, memory_bound_s = roof.compute_bound_s, roof.memory_bound_s
    attention_s = roof.attention_s
    breakdown, cp_exposed = step_collectives(
        model,
        system,
        plan,
        precision,
        layout,
        algorithm=options.allreduce_algorithm,
        phase=phase,
        seqs=seqs,
        new_tokens=new_tokens,
        attention_s=attention_s,
        reuse=reused,
    )
    breakdown = {k: _times(v, factor) for k, v in breakdown.items()}
    if pp > 1:
        breakdown["pp_send"] = pp_send_time(model, system, plan, precision, seqs=seqs, new_tokens=new_tokens)
    busy_s = (compute_bound_s + memory_bound_s) * factor  # one microbatch's operators
    ring_s = breakdown.get("cp_ring", 0.0)
    ring_hidden_s = ring_s - cp_exposed * factor  # ring attention overlaps by construction
    comm_s: Num = sum(breakdown.values(), 0.0) - ring_hidden_s  # one microbatch's collectives
    sbo_s: Num = 0.0  # single-batch overlap: the combine hides behind what it runs beside
    if options.combine_overlap != "none" and phase == "decode":
        beside_s = combine_overlap_s(options.combine_overlap, roof.times)
        sbo_s = minimum(breakdown.get("ep_combine", 0.0), beside_s)
    # m microbatches alternate compute and communication; the first's compute (or the last's
    # communication) has nothing to hide behind. One microbatch: a fixed fraction overlaps.
    overlap = options.overlap_frac(system)
    one_total_s = busy_s + comm_s - sbo_s - overlap * minimum(comm_s - sbo_s, busy_s - sbo_s)
    one_hidden_s = overlap * minimum(comm_s - sbo_s, busy_s - sbo_s) + ring_hidden_s + sbo_s
    if splits == 1:  # (no split: the split pass need not be evaluated)
        total_s, hidden_s = one_total_s, one_hidden_s
    else:
        split_total_s = m * maximum(busy_s, comm_s) + minimum(busy_s, comm_s)
        total_s = where(m > 1, split_total_s, one_total_s)
        hidden_s = where(m > 1, m * (busy_s + comm_s) - split_total_s + m * ring_hidden_s, one_hidden_s)
    transfer_s: Num = 0.0
    offload_s: Num = 0.0
    if memory is not None and memory.spills:
        kv_bytes: Num = 0.0
        expert_bytes: Num = 0.0
        weight_bytes: Num = 0.0
        for op in ops:
            kv_bytes = kv_bytes + op.kv_bytes
            if op.name == "experts":
                expert_bytes = expert_bytes + op.weight_bytes
            else:
                weight_bytes = weight_bytes + op.weight_bytes
        transfer_s = (
            m
            * factor
            * memory.transfer_time_s(
                kv=kv_bytes,
                experts=expert_bytes,
                weights=weight_bytes,
                expert_hit_rate=options.offload.expert_hit_rate,
            )
        )
        # prefetched layer by layer, a transfer hides behind the step's own work
        offload_s = maximum(transfer_s - total_s, 0.0) if options.offload.overlap else transfer_s
    return StepTerms(
        compute_s=_times(_times(compute_s, m, first=True), factor),
        memory_s=_times(_times(memory_s, m, first=True), factor),
        compute_bound_s=_times(_times(compute_bound_s, m, first=True), factor),
        memory_bound_s=_times(_times(memory_bound_s, m, first=True), factor),
        comm_s=total_s - _times(busy_s, m, first=True),  # what the operators' time does not cover
        overhead_s=device.efficiency.step_overhead_s,
        comm_hidden_s=hidden_s,
        offload_s=offload_s,
        offload_hidden_s=transfer_s - offload_s,
        comm_breakdown={k: _times(v, m, first=True) for k, v in breakdown.items()},
        ops=roof.times,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSpecs:
    """What every step of one replica shares: the specs :func:`step_terms` takes besides the
    step's batch (model, hardware, plan, precision, run options, and where the deployment's bytes
    live). A value (hashable when ``memory`` is None): a step-cost table is kept by it."""

    model: ModelSpec
    hardware: System | Device
    plan: Plan
    precision: Precision
    options: RunOptions = RunOptions()
    memory: MemoryUse | None = None

    def terms(self, phase: str, *, num_seqs: Num, new_tokens: Num, past_tokens: Num) -> StepTerms:
        """:func:`step_terms` of a step of ``num_seqs`` sequences, each adding ``new_tokens`` to
        ``past_tokens`` cached ones, in ``phase`` ("prefill" or "decode")."""
        return step_terms(
            self.model,
            self.hardware,
            self.plan,
            self.precision,
            phase=phase,
            num_seqs=num_seqs,
            new_tokens=new_tokens,
            past_tokens=past_tokens,
            options=self.options,
            memory=self.memory,
        )


def microbatches(plan: Plan, options: RunOptions, num_seqs: Num, new_tokens: Num) -> tuple[Num, Num]:
    """(pipeline microbatches, overlap splits) of a pass of ``num_seqs`` sequences
    (:func:`step_terms`): each of its operators' steps runs num_seqs / micro / m sequences."""
    # (both counts are exactly 1 with one stage and no split: no need to evaluate them per batch)
    micro = 1.0 if plan.pp == 1 else maximum(1.0, minimum(num_seqs, float(plan.pp)))
    # two-batch overlap / microbatch pipelining: the pass runs as m halves whose collectives
    # overlap the other halves' compute
    splits = options.overlap_microbatches
    m = 1.0 if splits == 1 else maximum(1.0, minimum(float(splits), floor(num_seqs / micro * new_tokens)))
    return micro, m


def _times(value: Num, factor: Num, *, first: bool = False) -> Num:
    """``value * factor`` (``factor * value`` with ``first``), or ``value`` itself when the factor
    is the float 1.0 and the value a float or float64 array: the product's bits, without making
    them again (a plan search's decode steps have one microbatch and no pipeline factor)."""
    if type(factor) is float and factor == 1.0:
        kind = type(value)
        if kind is float or (kind.__module__ == "numpy" and value.dtype.char == "d"):  # type: ignore[union-attr]
            return value
    return factor * value if first else value * factor


def step_cost(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: float,
    new_tokens: float,
    past_tokens: float,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> PhaseCost:
    """Cost of one forward pass of ``num_seqs`` sequences through one pipeline replica.

    Args:
        phase: "prefill" (new_tokens = prompt, MLA unabsorbed) or "decode" (MLA with absorbed
            up-projections).
        num_seqs: sequences on the replica.
        new_tokens: tokens each sequence adds in the pass.
        past_tokens: tokens each sequence already has cached.
        options: overlap, redundant experts, load imbalance, collective algorithm, sparse
            attention (decode) and offload policy.
        memory: where the deployment's bytes live; the offloaded share of the step's reads
            crosses the host link (prefetched behind the step unless ``options.offload.overlap``
            is False).

    With pp stages the sequences run as m = min(num_seqs, pp) microbatches. A prefill's last
    microbatch leaves the pipe after (m + pp - 1) stage times; a decode round, which gives every
    sequence one token, takes pp stage times (the stages work on different microbatches at once).
    """
    specs = StepSpecs(
        model=model, hardware=hardware, plan=plan, precision=precision, options=options, memory=memory
    )
    return specs.terms(phase, num_seqs=num_seqs, new_tokens=new_tokens, past_tokens=past_tokens).cost()
