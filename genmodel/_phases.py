"""Phases of inference: prefill (TTFT), decode (TPOT) and the static-batch estimate that joins them.

Modelling assumptions:
- Static batching: ``batch`` sequences (whole deployment, split evenly over ``dp`` replicas) are
  prefilled together, then decoded together for ``output_tokens - 1`` steps.
- A step's time on one device is the sum of its operators' roofline times, plus the
  tensor-parallel all-reduces (not overlapped with compute), plus a fixed per-step overhead.
- TPOT is the decode step at the mean context of the output, past = input + (output-2)/2 tokens;
  this is exact while attention stays on one side of its roofline ridge (it is linear in context).
- Pipeline parallelism: the replica's sequences split into m = min(seqs, pp) microbatches; prefill
  takes (m + pp - 1) stage times (the pipeline fill, GPipe, Huang et al. 2019), and a decode round
  gives every microbatch one token in pp stage times.
- Energy uses the device's TDP (an upper bound); cost its price per device-hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import Device
from genmodel._memory import MemoryUse, max_batch, memory_use, require_one_sequence
from genmodel._model import ModelSpec
from genmodel._ops import OpTime, forward_ops, roofline
from genmodel._parallel import Plan, allreduce_time, check_plan, p2p_time
from genmodel._units import HOUR
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseCost:
    """Time of one phase on the critical path, split by what bounds it.

    ``compute_s`` and ``memory_s`` are the sums of the operators' compute and memory times (each
    operator costs the larger of the two); ``comm_s`` the collectives; ``overhead_s`` the fixed cost.
    """

    time_s: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float
    bound: str
    ops: tuple[OpTime, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: time_s, compute_s, memory_s, comm_s, overhead_s, bound."""
        return {
            "time_s": self.time_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "comm_s": self.comm_s,
            "overhead_s": self.overhead_s,
            "bound": self.bound,
        }


def step_cost(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: float,
    new_tokens: float,
    past_tokens: float,
) -> PhaseCost:
    """Cost of one forward pass of ``num_seqs`` sequences through one pipeline replica.

    Args:
        phase: "prefill" (new_tokens = prompt, MLA unabsorbed) or "decode" (one token per
            sequence, MLA with absorbed up-projections).
        num_seqs: sequences on the replica.
        new_tokens: tokens each sequence adds in the pass.
        past_tokens: tokens each sequence already has cached.

    With pp stages the sequences run as m = min(num_seqs, pp) microbatches. A prefill's last
    microbatch leaves the pipe after (m + pp - 1) stage times; a decode round, which gives every
    sequence one token, takes pp stage times (the stages work on different microbatches at once).
    """
    if phase not in ("prefill", "decode"):
        raise SpecError(f"phase={phase!r} must be 'prefill' or 'decode'")
    pp = plan.pp
    micro = max(1.0, min(num_seqs, float(pp)))
    seqs = num_seqs / micro
    ops = tuple(
        roofline(op, device, precision)
        for op in forward_ops(
            model,
            precision,
            num_seqs=seqs,
            new_tokens=new_tokens,
            past_tokens=past_tokens,
            tp=plan.tp,
            absorb_mla=phase == "decode",
        )
    )
    factor = (micro + pp - 1) / pp if phase == "prefill" else 1.0
    compute_s = memory_s = compute_bound_s = memory_bound_s = 0.0
    for t in ops:
        c, m = float(t.compute_s), float(t.memory_s)
        compute_s += c
        memory_s += m
        if c >= m:
            compute_bound_s += c
        else:
            memory_bound_s += m
    message = seqs * new_tokens * model.hidden_size * precision.comm_bytes
    # two all-reduces per block (attention, FFN) and one after the vocabulary-parallel embedding
    comm_s = (2 * model.num_layers + 1) * float(allreduce_time(message, plan.tp, device)) * factor
    if pp > 1:
        comm_s += (pp - 1) * float(p2p_time(message, device, group_devices=plan.tp * pp))
    overhead_s = device.efficiency.step_overhead_s
    terms = {
        "compute": compute_bound_s * factor,
        "memory": memory_bound_s * factor,
        "comm": comm_s,
        "overhead": overhead_s,
    }
    return PhaseCost(
        time_s=sum(terms.values()),
        compute_s=compute_s * factor,
        memory_s=memory_s * factor,
        comm_s=comm_s,
        overhead_s=overhead_s,
        bound=max(terms, key=terms.__getitem__),
        ops=ops,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """What a deployment does: latencies, throughputs, memory, and the phases' breakdown."""

    model_id: str
    hardware_id: str
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the keys of DESIGN.md (SI units: seconds and bytes)."""
        m = self.memory
        return {
            "model": self.model_id,
            "hardware": self.hardware_id,
            "mode": self.mode,
            "devices": self.num_devices,
            "tp": self.plan.tp,
            "pp": self.plan.pp,
            "ep": self.plan.ep,
            "dp": self.plan.dp,
            "weight_dtype": self.precision.weight_dtype,
            "act_dtype": self.precision.act_dtype,
            "kv_dtype": self.precision.kv_dtype,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "batch": self.batch,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_device": self.output_tokens_per_s_per_device,
            "prefill_tokens_per_s_per_device": self.prefill_tokens_per_s_per_device,
            "decode_tokens_per_s_per_device": self.decode_tokens_per_s_per_device,
            "joules_per_output_token": self.joules_per_output_token,
            "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
            "memory": {
                "weights_bytes_per_device": m.weights_bytes_per_device,
                "kv_cache_bytes_per_device": m.kv_cache_bytes_per_device,
                "activation_bytes_per_device": m.activation_bytes_per_device,
                "total_bytes_per_device": m.total_bytes_per_device,
                "capacity_bytes_per_device": m.capacity_bytes_per_device,
                "usable_bytes_per_device": m.usable_bytes_per_device,
                "fits": m.fits,
            },
            "prefill": self.prefill.to_dict(),
            "decode": self.decode.to_dict(),
        }


def _check_tokens(**values: object) -> None:
    for name, value in values.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise SpecError(f"{name}={value!r} must be an integer >= 1")


def estimate_static(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int | str,
    input_tokens: int,
    output_tokens: int,
    ideal: bool = False,
) -> Estimate:
    """Estimate a static batch: prefill all sequences together, then decode them together.

    Args:
        model: the architecture.
        device: the accelerator (its efficiencies apply unless ``ideal``).
        plan: the parallel plan; ``plan.num_devices`` devices are used.
        precision: weight, activation and KV-cache precisions.
        batch: sequences in the whole deployment, or "max" for the largest that fits memory.
        input_tokens: prompt tokens per sequence.
        output_tokens: generated tokens per sequence (the first comes from the prefill).
        ideal: use peak figures with no efficiency losses or overheads (the roofline bound).

    Returns:
        The :class:`Estimate`; ``memory.fits`` is False when an explicit batch does not fit.

    Raises:
        SpecError: a non-positive size or an unknown batch keyword.
        InfeasibleError: the plan violates divisibility, or one sequence does not fit in memory.
    """
    _check_tokens(input_tokens=input_tokens, output_tokens=output_tokens)
    check_plan(plan, model, device)
    if plan.ep > 1 or plan.cp > 1 or (plan.dp > 1 and model.moe is not None):
        raise InfeasibleError(
            [
                f"ep={plan.ep}, cp={plan.cp}, dp={plan.dp}: expert, context and attention-data "
                "parallelism of MoE models are not modelled yet (planned: 'Parallelism at scale')"
            ]
        )
    if ideal:
        device = device.ideal()
    if batch == "max":
        resolved = max_batch(
            model, device, plan, precision, input_tokens=input_tokens, output_tokens=output_tokens
        )
    elif isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1:
        resolved = batch
        require_one_sequence(
            model, device, plan, precision, input_tokens=input_tokens, output_tokens=output_tokens
        )
    else:
        raise SpecError(f"batch={batch!r} must be an integer >= 1 or 'max'")
    seqs = float(math.ceil(resolved / plan.dp))
    prefill = step_cost(
        model,
        device,
        plan,
        precision,
        phase="prefill",
        num_seqs=seqs,
        new_tokens=input_tokens,
        past_tokens=0,
    )
    decode = step_cost(
        model,
        device,
        plan,
        precision,
        phase="decode",
        num_seqs=seqs,
        new_tokens=1,
        past_tokens=input_tokens + max(output_tokens - 2, 0) / 2,
    )
    mem = memory_use(
        model,
        device,
        plan,
        precision,
        batch=resolved,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    return Estimate(
        model_id=model.id,
        hardware_id=device.id,
        plan=plan,
        precision=precision,
        mode="static",
        batch=resolved,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_s=prefill.time_s,
        tpot_s=decode.time_s,
        prefill=prefill,
        decode=decode,
        memory=mem,
        tdp_w=device.tdp_w,
        usd_per_hour=device.usd_per_hour,
    )
