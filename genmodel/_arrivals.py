"""How requests arrive at a simulated engine, and their lengths.

Modelling assumptions:
- Requests arrive from N closed-loop clients started together (each sends its next request when
  the last completes, as the vLLM, SGLang and TensorRT-LLM benchmark clients do), from a Poisson
  or a gamma (bursty) process at a rate, or from a trace. Lengths are fixed, or drawn uniformly
  within +-spread of their mean (the benchmarks' random range ratio).
- Poisson and gamma arrivals start at time 0 (the first gap is dropped); a gamma process has gaps
  of mean 1/rate and the given coefficient of variation.
- A prefix-cache hit rate makes that share of the shortest prompt cached for every request (at
  least its last token is computed).
- Randomness only from the ``numpy.random.Generator`` the caller passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genmodel._errors import SpecError, require_ints
from genmodel._scheduler import Requests
from genmodel._wave import BenchmarkClient

ARRIVALS = ("closed", "poisson", "gamma", "trace")
#: the most requests (or clients) one simulation runs: ~15 us each, a run of minutes beyond
MAX_REQUESTS = 1_000_000
#: the latest arrival a simulation takes, in seconds (about 32 years): its clock is float seconds,
#: which keep 1e9 s to 0.12 us, finer than any step; far beyond, a step's milliseconds are lost to
#: the clock's rounding (a rate of 1e-300 requests/s gave TTFTs of 0)
MAX_ARRIVAL_S = 1e9


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrivals:
    """How requests arrive.

    Attributes:
        kind: "closed" (clients in a closed loop, started together), "poisson", "gamma" or "trace".
        clients: closed loop: clients.
        requests_per_client: closed loop: requests each client sends (``requests`` overrides).
        warmup_requests: closed loop: each client's first requests, excluded from the figures.
        warmup_restart: closed loop with a warm-up: the warm-up is a phase of its own; every
            client's measured requests wait until all warm-up requests have completed, then the
            clients start together again, as perf_analyzer (genai-perf) runs it
            (:class:`~genmodel._simfigures.WarmupBarrier`); False = each client goes on to its
            measured requests at once.
        warmup_replay: with the restart, the warm-up's prompts again (:mod:`genmodel._simfigures`).
        rate_per_s: poisson, gamma: mean requests per second.
        cv: gamma: coefficient of variation of the gaps (1 = Poisson; above 1 bursty).
        requests: total requests (poisson, gamma; closed loop: split over the clients).
        trace: (arrival_s, input_tokens, output_tokens) per request.
    """

    kind: str
    clients: int = 0
    requests_per_client: int = 1
    warmup_requests: int = 0
    warmup_restart: bool = True
    warmup_replay: bool = False
    rate_per_s: float = 0.0
    cv: float = 1.0
    requests: int | None = None
    trace: tuple[tuple[float, int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ARRIVALS:
            raise SpecError(f"arrivals={self.kind!r} must be one of {', '.join(ARRIVALS)}")
        if self.kind == "closed":
            require_ints(clients=self.clients, requests_per_client=self.requests_per_client)
            require_ints(minimum=0, warmup_requests=self.warmup_requests)
            if self.requests is not None:
                require_ints(requests=self.requests)
        elif self.kind in ("poisson", "gamma"):
            for name, value in (("request_rate", self.rate_per_s), ("burstiness_cv", self.cv)):
                if isinstance(value, bool) or not isinstance(value, int | float):  # (True is no rate)
                    raise SpecError(f"{name}={value!r} must be a number > 0")
            if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
                raise SpecError(
                    f"request_rate={self.rate_per_s!r} must be a number > 0 (requests per second)"
                )
            if not self.cv > 0:
                raise SpecError(f"cv={self.cv!r} must be > 0")
            require_ints(requests=self.requests)
        elif not self.trace:
            raise SpecError("trace must hold at least one request")
        total = (
            len(self.trace)
            if self.kind == "trace"
            else self.requests or self.clients * self.requests_per_client
        )
        for name, n in (("concurrency", self.clients), ("requests", total)):
            if n > MAX_REQUESTS:
                raise SpecError(
                    f"{name}={n:,} must be at most {MAX_REQUESTS:,} (the simulation runs every request)"
                )
        self._check_span(total)
        for i, row in enumerate(self.trace):
            if len(row) != 3:
                raise SpecError(
                    f"trace row {i + 1}: {row!r} must be (arrival_s, input_tokens, output_tokens)"
                )
            t, n_in, n_out = row
            if not (math.isfinite(t) and 0 <= t <= MAX_ARRIVAL_S):
                raise SpecError(
                    f"trace row {i + 1}: arrival_s={t!r} must be between 0 and {MAX_ARRIVAL_S:.0e} s"
                )
            require_ints(where=f"trace row {i + 1}: ", input_tokens=n_in, output_tokens=n_out)

    def _check_span(self, total: int) -> None:
        """Refuse a rate whose requests would arrive (on average) beyond :data:`MAX_ARRIVAL_S`."""
        if self.kind in ("poisson", "gamma") and total / self.rate_per_s > MAX_ARRIVAL_S:
            raise SpecError(
                f"request_rate={self.rate_per_s!r}: {total:,} requests would arrive over about "
                f"{total / self.rate_per_s:.3g} s, beyond the simulation's {MAX_ARRIVAL_S:.0e} s"
            )

    @classmethod
    def closed(cls, client: BenchmarkClient, clients: int) -> Arrivals:
        """``clients`` closed-loop clients of ``client``, started together, each sending its requests."""
        return cls(
            kind="closed",
            clients=clients,
            requests_per_client=int(client.requests(clients)),
            warmup_requests=client.warmup_requests,
            warmup_restart=client.restart_after_warmup,
            warmup_replay=client.replays_warmup_prompts,
        )

    def per_client(self) -> list[int]:
        """Closed loop: the requests of each client."""
        if self.requests is None:
            return [self.requests_per_client] * self.clients
        base, extra = divmod(self.requests, self.clients)
        return [base + (1 if c < extra else 0) for c in range(self.clients)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lengths:
    """Token counts per request: ``mean``, or uniform integers within +-``spread_frac`` of it."""

    mean: int
    spread_frac: float = 0.0

    def __post_init__(self) -> None:
        require_ints(mean=self.mean)
        if not 0 <= self.spread_frac < 1:
            raise SpecError(f"spread_frac={self.spread_frac!r} must be in [0, 1)")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths (at least 1 each)."""
        if self.spread_frac == 0:
            return np.full(n, self.mean, dtype=np.int64)
        lo = max(1, round(self.mean * (1 - self.spread_frac)))
        hi = max(lo, round(self.mean * (1 + self.spread_frac)))
        return rng.integers(lo, hi + 1, size=n)


def requests_of(
    arrivals: Arrivals,
    input_tokens: Lengths,
    output_tokens: Lengths,
    rng: np.random.Generator,
    hit_rate: float,
) -> tuple[Requests, np.ndarray, np.ndarray]:
    """The requests' lengths, and for a closed loop each request's client and each client's first
    request (open loops: arrival times in ``arrival_s``)."""
    if arrivals.kind == "trace":
        rows = sorted(arrivals.trace, key=lambda r: r[0])
        n_in = np.array([r[1] for r in rows], dtype=np.int64)
        n_out = np.array([r[2] for r in rows], dtype=np.int64)
        times = np.array([r[0] for r in rows], dtype=float)
    else:
        n = sum(arrivals.per_client()) if arrivals.kind == "closed" else int(arrivals.requests or 0)
        n_in, n_out = input_tokens.draw(rng, n), output_tokens.draw(rng, n)
        times = arrival_times(arrivals, rng, n)
    cached = round(hit_rate * int(n_in.min())) if hit_rate else 0
    req = Requests(n_in, n_out, min(cached, int(n_in.min()) - 1))
    if arrivals.kind == "closed":
        counts = np.array(arrivals.per_client(), dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)))
        client_of = np.repeat(np.arange(arrivals.clients), counts)
        return req, client_of, starts
    req.arrival_s = times.tolist()
    return req, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def arrival_times(arrivals: Arrivals, rng: np.random.Generator, n: int) -> np.ndarray:
    if arrivals.kind == "poisson":
        gaps = rng.exponential(1 / arrivals.rate_per_s, size=n)
    elif arrivals.kind == "gamma":
        shape = 1 / arrivals.cv**2  # gamma gaps of mean 1/rate and coefficient of variation cv
        gaps = rng.gamma(shape, 1 / (arrivals.rate_per_s * shape), size=n)
    else:
        return np.zeros(n)
    times: np.ndarray = np.cumsum(gaps) - gaps[0]  # the first request at time 0
    return times
