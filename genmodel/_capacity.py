"""A deployment as the inverse problem scales it, and the capacity pre-solve.

Modelling assumptions:
- Memory capacity: the smallest capacity at which the deployment (the resolved batch) fits,
  ``estimate(...).memory.fits``; in serving mode, at which the memory holds every client's sequence
  at once (``serving.max_running >= concurrency``). It is found by bisection on the real estimate
  of the platform scaled by :meth:`System.scaled` (capacity above the OS reserve).
- A deployment that does not fit the platform (not even one sequence, or not the explicit batch or
  concurrency) has no latency on it to solve from. The least capacity at which it fits is solved
  first, on the platform as given (:func:`fit_capacity`), and every other resource is then solved
  on the platform with that capacity. ``batch="max"`` has no size to fit and is refused.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from genmodel._errors import InfeasibleError
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import Estimate, estimate_static
from genmodel._serving import estimate_serving
from genmodel._symbolic import RESOURCES, X_MAX
from genmodel._system import System
from genmodel._units import GB, TFLOP
from genmodel._wave import Wave
from genmodel._workload import Precision

#: RunOptions() as a default argument (frozen, so sharing it is safe)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A model served on a platform, as the estimate takes it: what the solve scales and re-estimates.

    Attributes:
        model, system, plan, precision, options: the specs, as
            :func:`~genmodel._phases.estimate_static` and
            :func:`~genmodel._serving.estimate_serving` take them; ``system`` is the platform as
            given, every factor scales it.
        input_tokens, output_tokens: tokens per request.
        batch: static batch over the whole deployment, or "max" (ignored with ``concurrency``).
        concurrency: clients of a continuously batching server (serving mode); None: static.
        ideal: every efficiency 1 and no overheads (the pure roofline bound).
        wave: serving mode: the wave of the benchmark's clients started together that the closed
            form adds (:mod:`genmodel._wave`; None: the steady state alone).
    """

    model: ModelSpec
    system: System
    plan: Plan
    precision: Precision
    input_tokens: int
    output_tokens: int
    batch: int | str = 1
    concurrency: int | None = None
    ideal: bool = False
    options: RunOptions = DEFAULT_OPTIONS
    wave: Wave | None = None

    def estimate(self, **factors: float) -> Estimate:
        """The estimate on the platform scaled by ``factors`` (:meth:`System.scaled`'s names).

        Raises:
            InfeasibleError: the plan cannot run, or not even one sequence fits.
        """
        system = self.system.scaled(**factors) if factors else self.system
        lengths: dict[str, Any] = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.concurrency is not None:
            return estimate_serving(
                self.model,
                system,
                self.plan,
                self.precision,
                concurrency=self.concurrency,
                **lengths,
                ideal=self.ideal,
                options=self.options,
                wave=self.wave,
            )
        return estimate_static(
            self.model,
            system,
            self.plan,
            self.precision,
            batch=self.batch,
            **lengths,
            ideal=self.ideal,
            options=self.options,
        )


#: how a repr shows each SI unit: (divisor, shown unit), decimal prefixes
_SHOWN_UNITS = {"flop/s": (TFLOP, "TFLOP/s"), "bytes/s": (GB, "GB/s"), "bytes": (GB, "GB")}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRequirement:
    """The least amount of one resource (the others at the platform's figures) that meets the targets.

    Attributes:
        resource: flops, memory_bandwidth, memory_capacity, scale_up_bandwidth or scale_out_bandwidth.
        unit: SI unit of the values (flop/s, bytes/s, bytes).
        platform_value: the platform's figure (flops: dense peak of the GEMM precision); None when
            the system has no such tier.
        required_value: the least figure that meets the targets; inf when no amount alone does.
        factor: required over platform as :meth:`System.scaled` applies it (capacity: on the
            memory above the OS reserve); 0 when the targets hold with none of it; inf unreachable.
        status: "met" (the platform has enough), "binding" (it has less than required),
            "unreachable" (no amount alone meets the targets) or "unused" (it does not enter them).
        set_by: the target that sets the requirement (ttft_s, tpot_s, or fits for capacity).
        reason: why a requirement is unreachable or unused.
    """

    resource: str
    unit: str
    platform_value: float | None
    required_value: float
    factor: float
    status: str
    set_by: str | None = None
    reason: str | None = None

    def __repr__(self) -> str:
        """One line: ``memory_bandwidth: 1,255 of 3,350 GB/s (x0.375, met; set by tpot_s)``."""
        scale, unit = _SHOWN_UNITS.get(self.unit, (1.0, self.unit))

        def show(x: float | None) -> str:
            return "-" if x is None else "inf" if math.isinf(x) else f"{x / scale:,.4g}"

        why = f"; {self.reason}" if self.reason else f"; set by {self.set_by}" if self.set_by else ""
        return (
            f"{self.resource}: {show(self.required_value)} of {show(self.platform_value)} {unit} "
            f"(x{self.factor:.3g}, {self.status}{why})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SI units); infinities become None."""

        def finite(x: float | None) -> float | None:
            return None if x is None or math.isinf(x) else x

        return {
            "resource": self.resource,
            "unit": self.unit,
            "platform_value": self.platform_value,
            "required_value": finite(self.required_value),
            "factor": finite(self.factor),
            "status": self.status,
            "set_by": self.set_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Fitted:
    """The deployment on a platform with enough memory: what every latency resource is solved on."""

    #: the deployment, its static batch resolved ("max" becomes the number that fits)
    deployment: Deployment
    #: the estimate on the platform with ``assumed`` times its memory capacity
    base: Estimate
    #: the memory-capacity factor assumed: 1, or the least at which the deployment fits
    assumed: float
    #: the capacity requirement, when the deployment does not fit the platform as given
    capacity: ResourceRequirement | None = None

    def estimate(self, resource: str, factor: float) -> Estimate:
        """The estimate with ``factor`` times the platform's ``resource`` (and the assumed memory)."""
        return self.deployment.estimate(**{"memory_capacity": self.assumed, resource: factor})


def fit_capacity(deployment: Deployment) -> Fitted:
    """The capacity pre-solve: the deployment on the platform, or, when it does not fit there, on
    the platform with the least memory capacity at which it fits.

    Raises:
        InfeasibleError: the plan cannot run with any amount of memory (divisibility, too many
            devices, full offload tiers), or nothing fits and ``batch="max"`` has no size to fit.
    """
    failure: InfeasibleError | None = None
    try:
        base: Estimate | None = deployment.estimate()
    except InfeasibleError as exc:
        base, failure = None, exc
    capacity, assumed = None, 1.0
    if base is None or not base.memory.fits:
        if base is not None:
            needed = base.memory.total_bytes_per_device
        else:
            assert failure is not None
            needed = _memory_needed(deployment, failure)
        capacity = capacity_requirement(deployment, needed)
        if math.isfinite(capacity.factor):
            assumed = capacity.factor
            base = deployment.estimate(memory_capacity=assumed)
        elif base is None:
            assert failure is not None and capacity.reason is not None
            raise InfeasibleError([*failure.violations, capacity.reason]) from failure
    if base.mode == "static":  # "max" resolved once: only capacity could change it
        deployment = dataclasses.replace(deployment, batch=base.batch)
    return Fitted(deployment=deployment, base=base, assumed=assumed, capacity=capacity)


def _holds(e: Estimate) -> bool:
    """Whether the memory holds the deployment: the batch, or in serving mode every client's sequence."""
    return e.memory.fits and (e.serving is None or e.serving.max_running >= e.serving.concurrency)


def _memory_needed(deployment: Deployment, failure: InfeasibleError) -> float:
    """Bytes per device the deployment needs, when it does not run on the platform.

    Raises:
        InfeasibleError: ``failure`` again when the deployment cannot run with unlimited memory
            either (divisibility, too many devices); with a hint when ``batch="max"`` (no size to fit).
    """
    most = deployment.batch == "max"
    try:  # "max" has no size: probe one sequence to tell a memory failure from the others
        probe = (dataclasses.replace(deployment, batch=1) if most else deployment).estimate(
            memory_capacity=X_MAX
        )
    except InfeasibleError:
        raise failure from None
    if most:
        raise InfeasibleError(
            [
                *failure.violations,
                "batch='max' is the largest batch that fits, and none does, so there is no batch to "
                "solve the memory capacity for: give an explicit batch= or concurrency= (--batch N or "
                "--concurrency N) to get the capacity, and the other requirements, for that many sequences",
            ]
        ) from failure
    return probe.memory.total_bytes_per_device


def capacity_requirement(deployment: Deployment, needed_bytes: float) -> ResourceRequirement:
    """The least memory capacity at which the deployment fits (bisection on :func:`_holds`).

    ``needed_bytes`` (per device) gives the first guess; capacity is scaled on the deployment's
    platform as given.
    """

    def fits(x: float) -> bool:
        try:
            return _holds(deployment.estimate(memory_capacity=x))
        except InfeasibleError:  # not even one sequence fits
            return False

    d = deployment.system.device
    unit = RESOURCES["memory_capacity"]
    if not fits(X_MAX):
        return ResourceRequirement(
            resource="memory_capacity",
            unit=unit,
            platform_value=d.memory_capacity_bytes,
            required_value=math.inf,
            factor=math.inf,
            status="unreachable",
            set_by="fits",
            reason="the deployment does not fit with unlimited device memory (its offload tiers are full)",
        )
    # without offload the boundary is total / usable; bisection makes it exact either way
    guess = needed_bytes / d.usable_memory_bytes
    hi = lo = guess
    step = 1e-9
    while not fits(hi):
        lo, hi, step = hi, hi * (1 + step), step * 10
    while fits(lo):
        hi, lo, step = lo, lo / (1 + step), step * 10
    while hi / lo - 1 > 1e-12:
        mid = (lo + hi) / 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    required = d.os_reserve_bytes + (d.memory_capacity_bytes - d.os_reserve_bytes) * hi
    return ResourceRequirement(
        resource="memory_capacity",
        unit=unit,
        platform_value=d.memory_capacity_bytes,
        required_value=required,
        factor=hi,
        status="binding" if hi > 1 else "met",
        set_by="fits",
    )
