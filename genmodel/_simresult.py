"""The result of a serving simulation: latency percentiles, rates, and per-request records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genmodel._engines import Engine


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    """Mean, median, p90 and p99 of a latency, seconds."""

    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: np.ndarray, weights: np.ndarray | None = None) -> Percentiles:
        """The figures of ``values`` (weighted: each value counts ``weights`` times)."""
        if len(values) == 0:
            return cls(mean=math.nan, p50=math.nan, p90=math.nan, p99=math.nan)
        if weights is None:
            p = np.percentile(values, [50, 90, 99])
            return cls(mean=float(values.mean()), p50=float(p[0]), p90=float(p[1]), p99=float(p[2]))
        order = np.argsort(values, kind="stable")
        v, w = values[order], weights[order]
        cum = np.cumsum(w)
        at = np.searchsorted(cum, np.array([0.5, 0.9, 0.99]) * cum[-1], side="left")
        q = v[np.minimum(at, len(v) - 1)]
        return cls(mean=float((v * w).sum() / cum[-1]), p50=float(q[0]), p90=float(q[1]), p99=float(q[2]))

    def to_dict(self) -> dict[str, float]:
        """{mean, p50, p90, p99}."""
        return {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99}


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecords:
    """Per-request records (NumPy arrays, seconds from the start of the simulation)."""

    arrival_s: np.ndarray
    scheduled_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    replica: np.ndarray
    preemptions: np.ndarray
    measured: np.ndarray  # False for warm-up requests
    #: disaggregated serving: when each prompt's prefill ended, when its KV reached the decode
    #: worker, and that worker's replica (None when aggregated)
    prefill_end_s: np.ndarray | None = None
    kv_arrival_s: np.ndarray | None = None
    decode_replica: np.ndarray | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per request: the records, its queue, prefill and decode times, and its TPOT
        (decode time over its output tokens after the first; None for a one-token output)."""
        out = []
        for i in range(len(self.arrival_s)):
            decode_steps = int(self.output_tokens[i]) - 1
            decode_s = float(self.finish_s[i] - self.first_token_s[i])
            out.append(
                {
                    "request": i,
                    "arrival_s": float(self.arrival_s[i]),
                    "input_tokens": int(self.input_tokens[i]),
                    "output_tokens": int(self.output_tokens[i]),
                    "replica": int(self.replica[i]),
                    "queue_s": float(self.scheduled_s[i] - self.arrival_s[i]),
                    "prefill_s": float(self.first_token_s[i] - self.scheduled_s[i]),
                    "decode_s": decode_s,
                    "ttft_s": float(self.first_token_s[i] - self.arrival_s[i]),
                    "tpot_s": decode_s / decode_steps if decode_steps > 0 else None,
                    "e2e_s": float(self.finish_s[i] - self.arrival_s[i]),
                    "preemptions": int(self.preemptions[i]),
                    "warmup": not bool(self.measured[i]),
                    **self._disaggregated(i),
                }
            )
        return out

    def _disaggregated(self, i: int) -> dict[str, Any]:
        """Request ``i``'s disaggregated figures: its prefill alone (``prefill_s`` then ends with
        the prefill, not with the first token), its KV transfer and its decode worker."""
        if self.prefill_end_s is None or self.kv_arrival_s is None or self.decode_replica is None:
            return {}
        end, arrival = float(self.prefill_end_s[i]), float(self.kv_arrival_s[i])
        return {
            "prefill_s": end - float(self.scheduled_s[i]),
            "kv_transfer_s": arrival - end,
            "decode_replica": int(self.decode_replica[i]),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStats:
    """One pool of a disaggregated simulation (JSON keys ``prefill_pool`` and ``decode_pool``).

    Attributes:
        workers: instances in the pool; devices: all their devices.
        tp, ep, dp: each instance's plan.
        max_batch: each replica's cap on running sequences.
        busy_frac: the share of the simulated time its replicas spend stepping (utilisation).
        mean_running_batch: sequences in its steps, time-averaged, summed over its replicas.
        steps: steps its instances ran; preemptions: sequences it preempted.
        kv_peak_bytes_per_device, kv_capacity_bytes_per_device: its KV use and pool.
    """

    workers: int
    devices: int
    tp: int
    ep: int
    dp: int
    max_batch: int
    busy_frac: float
    mean_running_batch: float
    steps: int
    preemptions: int
    kv_peak_bytes_per_device: float
    kv_capacity_bytes_per_device: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True, kw_only=True)
class DisaggregatedStats:
    """What a disaggregated simulation adds: its pools, the KV transfers, and its conventions."""

    prefill: PoolStats
    decode: PoolStats
    kv_transfer_s: Percentiles
    routing: str
    first_token: str

    def to_dict(self) -> dict[str, Any]:
        """JSON keys ``prefill_pool``, ``decode_pool``, ``kv_transfer_s``, ``routing``, ``first_token``."""
        return {
            "prefill_pool": self.prefill.to_dict(),
            "decode_pool": self.decode.to_dict(),
            "kv_transfer_s": self.kv_transfer_s.to_dict(),
            "routing": self.routing,
            "first_token": self.first_token,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """The deployment's load over time: a sample at the start of each step (a run of decode-only
    steps costed together counts as one) and when a replica falls idle; each value holds until the
    next sample (a step function).

    Attributes:
        t_s: sample times, seconds from the start, non-decreasing.
        running: the running batch: sequences in the step (decoding, or prefilling a prompt
            chunk), all replicas; its time average is ``mean_running_batch`` (one replica).
        queued: requests that have arrived and wait for admission, all replicas.
        kv_used_bytes_per_device: KV cache held per device on the fullest replica (reserved
            blocks under "reserve" admission), as ``kv_peak_bytes_per_device`` counts it.
    """

    t_s: np.ndarray
    running: np.ndarray
    queued: np.ndarray
    kv_used_bytes_per_device: np.ndarray

    @classmethod
    def merge(cls, groups: list[list[tuple[float, int, int, int]]], *, token_bytes: float) -> Timeline:
        """One timeline from each group of replicas' samples (time, running, queued, KV tokens):
        at every sample time the groups' last values, summed (KV: the largest)."""
        parts = [np.array(g, dtype=float).reshape(-1, 4) for g in groups]
        t = np.unique(np.concatenate([p[:, 0] for p in parts]))
        running, queued, kv = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
        for p in parts:
            at = np.searchsorted(p[:, 0], t, side="right") - 1
            seen = at >= 0
            idx = np.maximum(at, 0)
            running += np.where(seen, p[idx, 1], 0.0)
            queued += np.where(seen, p[idx, 2], 0.0)
            kv = np.maximum(kv, np.where(seen, p[idx, 3], 0.0))
        return cls(
            t_s=t,
            running=running.astype(np.int64),
            queued=queued.astype(np.int64),
            kv_used_bytes_per_device=kv * token_bytes,
        )

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        """Columns as lists: ``t_s``, ``running``, ``queued``, ``kv_used_bytes_per_device``."""
        return {
            "t_s": self.t_s.tolist(),
            "running": self.running.tolist(),
            "queued": self.queued.tolist(),
            "kv_used_bytes_per_device": self.kv_used_bytes_per_device.tolist(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationResult:
    """What a simulated serving run gives (JSON keys by :meth:`to_dict`)."""

    ttft_s: Percentiles
    tpot_s: Percentiles
    itl_s: Percentiles
    e2e_s: Percentiles
    queue_s: float
    prefill_s: float
    decode_s: float
    requests: int
    #: tokens generated for every request, warm-up included: first tokens plus decode tokens
    generated_tokens: int
    request_rate_per_s: float
    output_tokens_per_s: float
    output_tokens_per_s_per_device: float
    mean_running_batch: float
    preemptions: int
    kv_peak_bytes_per_device: float
    kv_capacity_bytes_per_device: float
    steps: int
    simulated_s: float
    elapsed_s: float
    engine: Engine
    #: each request's time in the serving frontend (the efficiency ``request_overhead_s``),
    #: included once in ``ttft_s`` and ``e2e_s`` but not in ``queue_s``, ``prefill_s``, ``decode_s``
    request_overhead_s: float = 0.0
    #: swap preemption: seconds of KV copies to and from the offload tier, summed over replicas
    #: (None without swap)
    swap_s: float | None = None
    #: times a waiting request's prompt fit the step's budget but not the KV pool (not in the JSON)
    kv_refusals: int = 0
    #: disaggregated serving: the pools and the KV transfers (None when aggregated)
    disaggregated: DisaggregatedStats | None = None
    #: what the run assumes beyond what was asked, as an estimate's notes say it (a precision the
    #: device has no units for, a context beyond the model's maximum, a bare device's fabric
    #: between nodes); in the JSON only when there are some
    notes: tuple[str, ...] = ()
    records: RequestRecords | None = field(default=None, repr=False)
    timeline: Timeline | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        """A few lines: the engine, the run and its latency percentiles and rates (every field stays
        an attribute; :meth:`to_dict` gives them all). The dataclass's own took ~5,000 characters."""

        def time(x: float) -> str:
            return f"{x * 1e3:.4g} ms" if x < 1 else f"{x:.4g} s"

        def row(name: str, p: Percentiles) -> str:
            return f"  {name} mean {time(p.mean)}, p50 {time(p.p50)}, p90 {time(p.p90)}, p99 {time(p.p99)}"

        e = self.engine
        return "\n".join(
            [
                f"SimulationResult({e.name} {e.version}: {self.requests:,} requests, {self.steps:,} steps, "
                f"{self.simulated_s:.4g} s simulated",
                *(row(n, p) for n, p in (("TTFT", self.ttft_s), ("TPOT", self.tpot_s), ("ITL", self.itl_s))),
                row("e2e", self.e2e_s),
                f"  {self.output_tokens_per_s:,.1f} output tokens/s "
                f"({self.output_tokens_per_s_per_device:,.1f} per device), mean running batch "
                f"{self.mean_running_batch:.1f}, {self.preemptions} "
                f"preemptions, KV peak {self.kv_peak_bytes_per_device / 1e9:.3g} of "
                f"{self.kv_capacity_bytes_per_device / 1e9:.3g} GB per device)",
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the latency figures, rates, batch, KV, steps, times and the engine's knobs
        (with swap preemption ``swap_s``; disaggregated, the keys of :class:`DisaggregatedStats`;
        ``notes`` when there are some; and ``timeline``'s columns when it was kept)."""
        out = {
            "ttft_s": self.ttft_s.to_dict(),
            "tpot_s": self.tpot_s.to_dict(),
            "itl_s": self.itl_s.to_dict(),
            "e2e_s": self.e2e_s.to_dict(),
            "queue_s": self.queue_s,
            "request_overhead_s": self.request_overhead_s,
            "prefill_s": self.prefill_s,
            "decode_s": self.decode_s,
            "requests": self.requests,
            "generated_tokens": self.generated_tokens,
            "request_rate_per_s": self.request_rate_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_device": self.output_tokens_per_s_per_device,
            "mean_running_batch": self.mean_running_batch,
            "preemptions": self.preemptions,
            "kv_peak_bytes_per_device": self.kv_peak_bytes_per_device,
            "kv_capacity_bytes_per_device": self.kv_capacity_bytes_per_device,
            "steps": self.steps,
            "simulated_s": self.simulated_s,
            "elapsed_s": self.elapsed_s,
            "engine": self.engine.to_dict(),
            **({} if self.swap_s is None else {"swap_s": self.swap_s}),
            **({} if self.disaggregated is None else self.disaggregated.to_dict()),
            **({"notes": list(self.notes)} if self.notes else {}),
        }
        if self.timeline is not None:
            out["timeline"] = self.timeline.to_dict()
        return out
