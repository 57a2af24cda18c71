"""What the plan search works on: latency targets, the layouts it keeps, and its candidates.

Modelling assumptions:
- A candidate is a parallel layout and precision (:class:`Layout`) at one running decode batch per
  replica, in the steady state of a continuously batching server; :class:`Candidates` holds every
  evaluated one as parallel arrays.
- A deployment serving X requests/s covers a rate R with ceil(R / X) copies of it
  (:func:`copies_needed`), counted conservatively at each copy's full-load operating point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from genmodel._errors import SpecError
from genmodel._parallel import Plan
from genmodel._units import Num, ceil, maximum
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np


#: the statistics a latency target may name at the edges (``--ttft-slo p99:2s``), as quantiles
#: (None: the mean)
SLO_STATISTICS: Mapping[str, float | None] = MappingProxyType(
    {"mean": None, "p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
)


def statistic_name(quantile: float | None) -> str:
    """``mean`` for None, else ``p`` and the percentile: 0.99 -> ``p99``, 0.999 -> ``p99.9``."""
    return "mean" if quantile is None else f"p{quantile * 100:.10g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """Latency targets in seconds (None: no target): TTFT and TPOT, each a mean or a quantile
    (``ttft_quantile=0.99``: the p99 TTFT), and the longest inter-token gap (what chunked prefill
    bounds).

    The closed form (the search) judges a TTFT quantile by the M/D/1 tail and a TPOT quantile by
    the mean inter-token latency (its steady state has no spread of TPOT across requests); the
    serving simulation that re-checks the best candidates judges both on its per-request figures.
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    ttft_quantile: float | None = None
    tpot_quantile: float | None = None
    #: the longest gap between two tokens of a running request: a decode step plus the prefill
    #: piece run between two steps (the whole prompt, or its longest chunk with chunked prefill)
    itl_max_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "itl_max_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SpecError(f"{name}={value!r} must be > 0 seconds")
        for name in ("ttft_quantile", "tpot_quantile"):
            q = getattr(self, name)
            if q is not None and not 0 < q < 1:
                raise SpecError(f"{name}={q!r} must be in (0, 1), e.g. 0.9 or 0.99 (None: the mean)")


#: candidates the simulation re-checks per weight dtype by default, and the most it may (``plan``;
#: here, below the search, so that the CLI's help reads it without loading the planner)
DEFAULT_RECHECK = 8
MAX_RECHECK = 1_000

#: what ``plan`` optimises (SearchResult.ranking)
OBJECTIVES = ("goodput", "cost", "energy", "latency")


def check_objective(objective: str) -> None:
    """Raise SpecError unless ``objective`` is one of :data:`OBJECTIVES`."""
    if objective not in OBJECTIVES:
        raise SpecError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")


def copies_needed(request_rate_per_s: Num, capacity_per_s: Num) -> Num:
    """Copies of a deployment serving ``capacity_per_s`` requests/s that serve the whole rate:
    ceil(R / X), at least one (a ratio a rounding error above an integer counts as that integer)."""
    return maximum(ceil(request_rate_per_s / capacity_per_s * (1 - 1e-12)), 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidates:
    """Every evaluated candidate that can run, as parallel arrays (one entry per candidate)."""

    layout: np.ndarray[Any, Any]  # index into SearchResult.layouts
    batch: np.ndarray[Any, Any]  # running batch per replica
    concurrency: np.ndarray[Any, Any]  # clients, whole deployment
    devices: np.ndarray[Any, Any]  # devices of the deployment (one instance in traffic mode)
    rate_per_s: np.ndarray[Any, Any]  # requests completed per second, whole deployment
    ttft_s: np.ndarray[Any, Any]
    tpot_s: np.ndarray[Any, Any]
    tokens_per_s_per_device: np.ndarray[Any, Any]
    tokens_per_s_per_user: np.ndarray[Any, Any]
    meets_slo: np.ndarray[Any, Any]

    @property
    def goodput(self) -> np.ndarray[Any, Any]:
        """Output tokens/s per device where the SLOs hold, else 0."""
        import numpy as np

        return np.where(self.meets_slo, self.tokens_per_s_per_device, 0.0)

    def instances_for(self, request_rate_per_s: float) -> np.ndarray[Any, Any]:
        """Instances (deployments) needed to serve ``request_rate_per_s``: ceil(R / X), or inf
        where the SLOs do not hold."""
        import numpy as np

        with np.errstate(divide="ignore"):
            need = copies_needed(request_rate_per_s, self.rate_per_s)
        return np.where(self.meets_slo & (self.rate_per_s > 0), need, np.inf)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """A parallel layout and precision that can run, with what the search needs to re-evaluate it."""

    plan: Plan
    precision: Precision
    prefill_s: float
    max_batch: int  # whole deployment
    prefill_chunk: int | None = None  # chunked prefill: tokens per chunk (None: one pass)
