"""Phases of inference: prefill (TTFT), decode (TPOT) and the static-batch estimate that joins them.

Each pass is made of forward steps costed by :func:`~genmodel._forwardpass.step_terms` (operators,
collectives, overlap, pipeline microbatches, offload: its module's assumptions).

Modelling assumptions:
- Static batching: ``batch`` sequences (whole deployment, split evenly over ``dp`` replicas) are
  prefilled together, then decoded together for ``output_tokens - 1`` steps.
- TPOT is the decode step at the mean context of the output, past = input + (output-2)/2 tokens
  (:func:`~genmodel._workload.mean_decode_context`); this is exact while attention stays on one
  side of its roofline ridge (it is linear in context).
- Speculative decoding and MTP: a decode step per output token as :mod:`genmodel._speculation`
  says.
- Disaggregated prefill/decode: the exposed KV transfer of :mod:`genmodel._kvtransfer` adds to TTFT.
- Chunked prefill (Sarathi, Agrawal et al. 2023): the prompt runs in passes of ``prefill_chunk``
  tokens, each attending to everything before it and reading the weights again; a prefix-cache hit
  skips the cached tokens. ``decode_stall_s`` is one new request's prefill (or its longest chunk):
  the longest a running decode batch waits for it.
- Energy uses the device's TDP (an upper bound); cost its price per device-hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# (re-exported: the layers above import a pass's cost from here)
from genmodel._cost import PhaseCost as PhaseCost
from genmodel._cost import StepTerms as StepTerms
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._forwardpass import StepSpecs
from genmodel._hardware import Device

# (re-exported: the disaggregated estimates import the KV transfer from here)
from genmodel._kvtransfer import exposed_transfer_s as exposed_transfer_s
from genmodel._kvtransfer import kv_transfer_time as kv_transfer_time
from genmodel._memory import MemoryExtras, MemoryUse, max_batch, memory_use, require_one_sequence
from genmodel._model import ModelSpec, context_note
from genmodel._options import RunOptions
from genmodel._parallel import Plan, check_plan
from genmodel._speculation import draft_model, speculative_step
from genmodel._system import System, as_system
from genmodel._units import GB, HOUR, MS, Num
from genmodel._workload import Precision

# (re-exported: the closed forms and the search import the mean decode context from here)
from genmodel._workload import mean_decode_context as mean_decode_context


def prefill_chunking(input_tokens: int, options: RunOptions) -> tuple[int, int]:
    """(cached, chunk): the prompt tokens a prefix-cache hit skips, and the most tokens of one
    prefill pass (:func:`prefill_pass`); the passes are ceil((input_tokens - cached) / chunk)."""
    cached = min(round(options.prefix_hit_rate * input_tokens), input_tokens - 1)
    return cached, options.prefill_chunk or input_tokens - cached


def prefill_pass(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    num_seqs: Num,
    input_tokens: int,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
    need_longest: bool = True,
) -> tuple[StepTerms, StepTerms]:
    """The prefill of ``num_seqs`` prompts of ``input_tokens``, and its longest chunk alone
    (``need_longest=False``: the prefill twice, for a caller that needs only the prefill).

    A prefix-cache hit skips the cached part of the prompt; chunked prefill runs the rest in
    passes of at most ``options.prefill_chunk`` tokens, each attending to everything before it
    and reading the weights again (Sarathi, Agrawal et al. 2023).

    Returns:
        (prefill, longest_chunk): the whole prefill, and the longest pass of one sequence's prompt
        (the longest a running decode batch waits for one new request): the last, which attends to
        the most context, or the full chunk before it when the last is a short remainder.
    """
    cached, chunk = prefill_chunking(input_tokens, options)
    specs = StepSpecs(
        model=model, hardware=hardware, plan=plan, precision=precision, options=options, memory=memory
    )

    def run(seqs: Num, new_tokens: int, past_tokens: int) -> StepTerms:
        return specs.terms("prefill", num_seqs=seqs, new_tokens=new_tokens, past_tokens=past_tokens)

    total = None
    for start in range(cached, input_tokens, chunk):
        piece = run(num_seqs, min(chunk, input_tokens - start), start)
        total = piece if total is None else total.plus(piece)
    assert total is not None
    last = input_tokens - (input_tokens - cached - 1) % chunk - 1
    if not need_longest or (last == cached and isinstance(num_seqs, float) and num_seqs == 1):
        return total, total  # (one sequence in one pass: the last chunk is the whole prefill)
    longest = run(1.0, input_tokens - last, last)
    if input_tokens - last < chunk and last - chunk >= cached:  # a remainder after full chunks
        full = run(1.0, chunk, last - chunk)
        if type(full.time_s) is float and type(longest.time_s) is float and full.time_s > longest.time_s:
            longest = full  # (symbolic figures keep the last: the stall is a numeric report)
    return total, longest


def decode_pass(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    num_seqs: Num,
    past_tokens: Num,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> StepTerms:
    """One decode step per output token: a plain step, or with speculation the verify step over
    k+1 tokens plus k draft steps, over the tokens a step yields (Leviathan et al. 2023)."""

    specs = StepSpecs(
        model=model, hardware=hardware, plan=plan, precision=precision, options=options, memory=memory
    )

    def run(m: ModelSpec, p: Plan, new_tokens: int) -> StepTerms:
        # (a speculative step's draft is another model, its verify step another plan's)
        at = specs if m is model and p is plan else replace(specs, model=m, plan=p)
        return at.terms("decode", num_seqs=num_seqs, new_tokens=new_tokens, past_tokens=past_tokens)

    spec = options.speculation
    if spec is None:
        return run(model, plan, 1)
    return speculative_step(run, model, plan, spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingState:
    """The serving mode's steady state for the whole deployment (JSON key ``serving``)."""

    concurrency: int
    decode_batch: float
    request_rate_per_s: float
    prefill_busy_frac: float
    queue_wait_s: float
    kv_limited: bool
    max_running: int
    #: a request's time in the serving frontend (``request_overhead_s``): in ttft_s, not queue_wait_s
    request_overhead_s: float = 0.0
    #: the serving model that gave these figures: "closed-form" (steady state) or "simulated"
    serving_model: str = "closed-form"
    #: the engine whose scheduler was simulated (None for the closed form)
    engine: str | None = None
    #: what the figures are not, e.g. a fall back from the simulation to the closed form ("" if none)
    notes: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """What a deployment does: latencies, throughputs, memory, and the phases' breakdown."""

    model_id: str
    hardware_id: str
    system_id: str = ""
    plan: Plan
    precision: Precision
    mode: str
    batch: int
    input_tokens: int
    output_tokens: int
    ttft_s: float
    tpot_s: float
    prefill: PhaseCost
    decode: PhaseCost
    memory: MemoryUse
    tdp_w: float | None = None
    usd_per_hour: float | None = None
    options: RunOptions = RunOptions()
    comm_overlap_frac: float = 0.0
    #: KV-cache transfer from the prefill to the decode device per replica (disaggregated only).
    kv_transfer_s: float | None = None
    kv_transfer_exposed_s: float | None = None
    #: the longest a running decode batch waits while one new request's prefill (or its last
    #: chunk, with chunked prefill) runs
    decode_stall_s: float | None = None
    #: the steady state of the serving mode (None for a static batch)
    serving: ServingState | None = None
    #: what the figures assume beyond the asked (a precision the device lacks, a context beyond
    #: the model's maximum); :func:`estimate_notes`
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        """A few lines: what ran where, and the headline figures (every field stays an attribute;
        :func:`genmodel.report.estimate_dict` gives them all)."""
        p, m, pr = self.plan, self.memory, self.precision
        degrees = " ".join(
            f"{k}={getattr(p, k)}" for k in ("tp", "pp", "ep", "dp", "cp") if getattr(p, k) > 1
        )
        load = f"{self.batch} clients" if self.mode == "concurrency" else f"batch {self.batch}"
        lines = [
            f"Estimate({self.model_id} on {self.num_devices}x {self.hardware_id} "
            f"({self.system_id or self.hardware_id}; {degrees or 'one device'}), {load}, "
            f"{self.input_tokens:,} in / {self.output_tokens:,} out, "
            f"{pr.weight_dtype}/{pr.act_dtype}/{pr.kv_dtype} weights/activations/KV"
            + "".join(f", {m} {d}" for m, d in pr.keep_modules if pr.for_module(m) is not pr),
            f"  TTFT {_time(self.ttft_s)}, TPOT {_time(self.tpot_s)}, e2e {_time(self.e2e_s)}, "
            f"{self.output_tokens_per_s_per_device:,.1f} output tokens/s per device",
            f"  memory {m.total_bytes_per_device / GB:,.1f} of {m.capacity_bytes_per_device / GB:,.1f} GB "
            f"per device ({'fits' if m.fits else 'does NOT fit'}); prefill {self.prefill.bound}-bound, "
            f"decode {self.decode.bound}-bound",
            *(f"  note: {n}" for n in self.notes),
        ]
        return "\n".join(lines) + ")"

    @property
    def num_devices(self) -> int:
        """Devices of the deployment."""
        return self.plan.num_devices

    @property
    def e2e_s(self) -> float:
        """End-to-end latency of a request: ttft + (output_tokens - 1) * tpot."""
        return self.ttft_s + (self.output_tokens - 1) * self.tpot_s

    @property
    def output_tokens_per_s(self) -> float:
        """Output tokens per second of the whole deployment: batch * output_tokens / e2e."""
        return self.batch * self.output_tokens / self.e2e_s

    @property
    def output_tokens_per_s_per_device(self) -> float:
        """Output tokens per second per device."""
        return self.output_tokens_per_s / self.num_devices

    @property
    def prefill_tokens_per_s_per_device(self) -> float:
        """Prompt tokens per second per device during prefill: batch * input / ttft / devices."""
        return self.batch * self.input_tokens / self.ttft_s / self.num_devices

    @property
    def decode_tokens_per_s_per_device(self) -> float:
        """Tokens per second per device during decode: batch / tpot / devices."""
        return self.batch / self.tpot_s / self.num_devices

    @property
    def joules_per_output_token(self) -> float | None:
        """Energy per output token at TDP (an upper bound); None without a TDP."""
        if self.tdp_w is None:
            return None
        return self.tdp_w * self.num_devices / self.output_tokens_per_s

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        """Cost per million output tokens at the device's hourly price; None without a price."""
        if self.usd_per_hour is None:
            return None
        return self.usd_per_hour * self.num_devices / HOUR / self.output_tokens_per_s * 1e6


def _time(seconds: float) -> str:
    return f"{seconds:.4g} s" if seconds >= 1 else f"{seconds / MS:.4g} ms"


def estimate_notes(
    model: ModelSpec, hw: System, plan: Plan, precision: Precision, context_tokens: int, options: RunOptions
) -> tuple[str, ...]:
    """What an estimate assumes beyond what was asked: each precision the device has no units for
    (:meth:`Device.compute_note`: the GEMMs', kept modules', attention's), a context beyond the
    model's maximum (allowed), a bare device's fabric between nodes (:meth:`System.fabric_note`)."""
    kinds = {precision.gemm_dtype: "GEMMs"}
    kinds.update({dtype: "kept GEMMs" for dtype in precision.kept_gemm_dtypes})
    attention = precision.attention_dtype
    kinds[attention] = "GEMMs and attention" if attention in kinds else "attention"
    notes = [hw.device.compute_note(dtype, what) for dtype, what in kinds.items()]
    notes.append(context_note(model, context_tokens, allow=options.allow_long_context))
    return tuple(n for n in (*notes, hw.fabric_note(plan.num_devices)) if n is not None)


def deployment_fields(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    options: RunOptions,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    """The fields of an :class:`Estimate` that the deployment fixes (what ran where, the lengths,
    the device's power and price, the overlap, :func:`estimate_notes`), filled from its specs once
    for the static batch (:func:`estimate_static`) and the serving mode
    (:func:`~genmodel._serving.estimate_serving`) alike; the caller gives the rest."""
    device = system.device
    return {
        "model_id": model.id,
        "hardware_id": device.id,
        "system_id": system.id,
        "plan": plan,
        "precision": precision,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tdp_w": device.tdp_w,
        "usd_per_hour": device.usd_per_hour,
        "options": options,
        "comm_overlap_frac": options.overlap_frac(system),
        "notes": estimate_notes(
            model, system, plan, precision, context_tokens=input_tokens + output_tokens, options=options
        ),
    }


def prepare(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    ideal: bool,
    options: RunOptions,
) -> tuple[System, MemoryExtras]:
    """Check a deployment and return its system (ideal when asked) and what its memory holds
    beyond the model's weights and KV cache (draft model, paging, prefix, offload tiers).

    Raises:
        SpecError: a non-positive length, or a context beyond the model's maximum without
        ``options.allow_long_context``. InfeasibleError: the plan violates divisibility, or
        needs more devices than the system has.
    """
    require_ints(input_tokens=input_tokens, output_tokens=output_tokens)
    context_note(model, input_tokens + output_tokens, allow=options.allow_long_context)
    system = as_system(hardware)
    check_plan(plan, model, system.device)
    if system.max_devices is not None and plan.num_devices > system.max_devices:
        raise InfeasibleError(
            [f"devices={plan.num_devices} must be <= max_devices={system.max_devices} of system={system.id}"]
        )
    if ideal:
        system = system.ideal()
    spec = options.speculation
    draft = None if spec is None else draft_model(model, spec)
    extras = MemoryExtras(
        redundant_experts=options.redundant_experts,
        draft=draft,
        draft_shares_vocab=spec is not None and spec.draft_model is None,
        kv_block_tokens=options.kv_block_tokens,
        shared_prefix_tokens=round(options.prefix_hit_rate * input_tokens),
        offload=options.offload,
        sharing=min(plan.num_devices, system.num_node_devices),
    )
    return system, extras


def estimate_static(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int | str,
    input_tokens: int,
    output_tokens: int,
    ideal: bool = False,
    options: RunOptions = RunOptions(),
) -> Estimate:
    """Estimate a static batch: prefill all sequences together, then decode them together.

    Args:
        model: the architecture.
        hardware: a system, or a device (its usual system); efficiencies apply unless ``ideal``.
        plan: the parallel plan; ``plan.num_devices`` devices are used.
        precision: weight, activation and KV-cache precisions.
        batch: sequences in the whole deployment, or "max" for the largest that fits memory.
        input_tokens: prompt tokens per sequence.
        output_tokens: generated tokens per sequence (the first comes from the prefill).
        ideal: use peak figures with no efficiency losses or overheads (the roofline bound).
        options: overlap, redundant experts, imbalance, speculative decoding, disaggregation.

    Returns:
        The :class:`Estimate`; ``memory.fits`` is False when an explicit batch does not fit.

    Raises:
        SpecError: a non-positive size or an unknown batch keyword.
        InfeasibleError: the plan violates divisibility, or one sequence does not fit in memory.
    """
    system, extras = prepare(
        model,
        hardware,
        plan,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ideal=ideal,
        options=options,
    )
    device = system.device
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if batch == "max":
        resolved = max_batch(model, device, plan, precision, **lengths, extras=extras)
    elif isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1:
        resolved = batch
        require_one_sequence(model, device, plan, precision, **lengths, extras=extras)
    else:
        raise SpecError(f"batch={batch!r} must be an integer >= 1 or 'max'")
    seqs = float(plan.seqs_per_replica(resolved))
    mem = memory_use(model, device, plan, precision, batch=resolved, **lengths, extras=extras)

    prefill_terms, stall_terms = prefill_pass(
        model, system, plan, precision, num_seqs=seqs, input_tokens=input_tokens, options=options, memory=mem
    )
    prefill = prefill_terms.cost()
    stall = float(stall_terms.time_s)
    past = mean_decode_context(input_tokens, output_tokens)
    decode = decode_pass(
        model, system, plan, precision, num_seqs=seqs, past_tokens=past, options=options, memory=mem
    ).cost()
    ttft_s = prefill.time_s
    transfer_s = exposed_s = None
    if options.disaggregated:
        transfer_s = float(
            kv_transfer_time(model, system, plan, precision, seqs_per_replica=seqs, input_tokens=input_tokens)
        )
        exposed_s = float(exposed_transfer_s(transfer_s, prefill.time_s, model.num_layers))
        ttft_s += exposed_s
    return Estimate(
        **deployment_fields(model, system, plan, precision, options, input_tokens, output_tokens),
        mode="static",
        batch=resolved,
        ttft_s=ttft_s,
        tpot_s=decode.time_s,
        prefill=prefill,
        decode=decode,
        memory=mem,
        kv_transfer_s=transfer_s,
        kv_transfer_exposed_s=exposed_s,
        decode_stall_s=stall,
    )
