"""The cost of a forward pass: its time split by what bounds it.

A pass costs the roofline time of its operators (each counted as bound by compute or by memory,
whichever is larger), the collectives left exposed after overlap, the offload transfers left
exposed, and a fixed per-step overhead; :class:`StepTerms` holds them as ``Num`` (floats for one
estimate, NumPy arrays over a plan search's batch grid), :class:`PhaseCost` as floats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from genmodel._ops import OpTime, set_slots_init
from genmodel._units import Num


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseCost:
    """Time of one phase on the critical path, split by what bounds it.

    ``compute_s`` and ``memory_s`` are the sums of the operators' compute and memory times;
    ``compute_bound_s`` and ``memory_bound_s`` the time of the operators each bounds (an operator
    costs the larger of the two); ``comm_s`` the collectives left exposed after overlap
    (``comm_hidden_s`` were hidden), ``comm_breakdown`` each kind of collective before overlap;
    ``overhead_s`` the fixed cost. The phase takes their sum, :attr:`time_s`.
    """

    compute_s: float
    memory_s: float
    compute_bound_s: float
    memory_bound_s: float
    comm_s: float
    overhead_s: float
    comm_hidden_s: float = 0.0
    #: transfers to and from offload tiers left exposed, and hidden behind the step
    offload_s: float = 0.0
    offload_hidden_s: float = 0.0
    comm_breakdown: Mapping[str, float] = field(default_factory=dict)
    ops: tuple[OpTime, ...] = field(repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "comm_breakdown", MappingProxyType(dict(self.comm_breakdown)))

    @property
    def _terms(self) -> dict[str, float]:
        return {
            "compute": self.compute_bound_s,
            "memory": self.memory_bound_s,
            "comm": self.comm_s,
            "offload": self.offload_s,
            "overhead": self.overhead_s,
        }

    @property
    def time_s(self) -> float:
        """Critical-path time: compute- and memory-bound operators, exposed collectives and
        offload transfers, overhead."""
        return sum(self._terms.values())

    @property
    def bound(self) -> str:
        """The largest term: compute, memory, comm, offload or overhead."""
        terms = self._terms
        return max(terms, key=terms.__getitem__)

    @property
    def dominant_collective(self) -> str | None:
        """The collective that takes the most time, or None without communication."""
        busy = {k: v for k, v in self.comm_breakdown.items() if v > 0}
        return max(busy, key=busy.__getitem__) if busy else None


#: operators whose work is spread over the expert-parallel group: on attention-DP replicas in
#: lockstep a rank's routed experts serve every rank's tokens, so their time follows the group's
#: mean tokens per rank, not the rank's own (the simulation's step costs, the closed form's idle ranks)
GROUP_OPS = ("experts",)

#: The time fields of a phase (scaled and summed together).
_TIMES = (
    "compute_s",
    "memory_s",
    "compute_bound_s",
    "memory_bound_s",
    "comm_s",
    "overhead_s",
    "comm_hidden_s",
    "offload_s",
    "offload_hidden_s",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTerms:
    """The terms of :class:`PhaseCost` as ``Num``: floats for one estimate, NumPy arrays when a
    plan search evaluates many batch sizes at once (the same formulas either way)."""

    compute_s: Num
    memory_s: Num
    compute_bound_s: Num
    memory_bound_s: Num
    comm_s: Num
    overhead_s: Num
    comm_hidden_s: Num
    offload_s: Num
    offload_hidden_s: Num
    comm_breakdown: Mapping[str, Num]
    ops: tuple[OpTime, ...] = ()

    @property
    def time_s(self) -> Num:
        """Critical-path time, as :attr:`PhaseCost.time_s`."""
        return self.compute_bound_s + self.memory_bound_s + self.comm_s + self.offload_s + self.overhead_s

    def scaled(self, factor: float) -> StepTerms:
        """Every time multiplied by ``factor`` (e.g. per accepted token)."""
        return dataclasses.replace(
            self,
            **{name: getattr(self, name) * factor for name in _TIMES},
            comm_breakdown={k: v * factor for k, v in self.comm_breakdown.items()},
        )

    def plus(self, other: StepTerms) -> StepTerms:
        """Two passes run one after the other (a draft and a verify step, two prefill chunks)."""
        names = dict(self.comm_breakdown)
        for k, v in other.comm_breakdown.items():
            names[k] = names.get(k, 0.0) + v
        return StepTerms(
            **{name: getattr(self, name) + getattr(other, name) for name in _TIMES},
            comm_breakdown=names,
            ops=self.ops + other.ops,
        )

    def cost(self) -> PhaseCost:
        """The scalar :class:`PhaseCost` (only for float terms)."""
        return PhaseCost(
            **{name: float(getattr(self, name)) for name in _TIMES},
            comm_breakdown={k: float(v) for k, v in self.comm_breakdown.items() if float(v) > 0},
            ops=self.ops,
        )


set_slots_init(StepTerms)  # (a search makes one per pass: set as the operators are, ops.set_slots_init)
