"""Serving models: one interface for a continuously batching server under a closed-loop load.

A serving model takes a deployment (model, system, plan, precision, run options), a workload
(prompt and output tokens per request) and a load (N closed-loop clients) and returns an
:class:`~genmodel._phases.Estimate` whose ``ttft_s`` and ``tpot_s`` are the means a request sees.
Two implementations:

- :class:`ClosedForm`: the steady state of :mod:`genmodel._serving` (plain arithmetic, vectorised
  in the plan search, which keeps it), plus the wave of the benchmark client's clients started
  together on the engine (:mod:`genmodel._wave`), so that it answers what the simulation measures.
- :class:`Simulated`: the engine's scheduler step by step (:mod:`genmodel._simulate`), N clients
  started together that each send :data:`REQUESTS_PER_CLIENT` requests, the first
  :data:`WARMUP_REQUESTS` of them left out of the means, as a benchmark client does. The default
  of ``genmodel.estimate(..., concurrency=N)``.

Modelling assumptions: those of the two implementations. The simulation does not cover pipeline
or context parallelism, overlapped microbatches or a single-batch overlap, speculative decoding or
offload tiers (:func:`~genmodel._stepcost.check_simulable`); for those :class:`Simulated` falls back to the
closed form and says so in ``serving.notes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from genmodel._enginepresets import ENGINES, as_engine, engine_preset
from genmodel._engines import Engine
from genmodel._errors import InfeasibleError, SpecError, did_you_mean, require_ints
from genmodel._forwardpass import StepSpecs
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import Estimate
from genmodel._serving import estimate_serving
from genmodel._simestimate import StepTables, fallback_note, length_draws, simulated_estimate, with_note
from genmodel._system import System, as_system
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import FIXED_LENGTHS, LengthSpreads, Precision

if TYPE_CHECKING:  # (the simulation is imported where it runs: a static estimate does not load it)
    from genmodel._simresult import SimulationResult

#: the serving models by name; the default is the first
SERVING_MODELS = ("simulated", "closed-form")

#: requests each closed-loop client sends in a simulated estimate (``estimate --concurrency``,
#: ``validate``), warm-up included, and the first of them left out of the means: the client of
#: AIConfigurator's evaluation harness, genai-perf with ``--request-count`` 10 x concurrency after
#: ``--warmup-request-count`` 2 x concurrency (aiconfigurator
#: src/aiconfigurator/eval/benchmarks/genai_perf_runner.py; genai-perf is its default
#: ``--bench-runner``, eval/main.py), which measured the bundled serving cases. perf_analyzer (under
#: genai-perf) drains the warm-up and then restarts every client at once, so the measured phase
#: opens with a synchronised wave too (:class:`~genmodel._simfigures.WarmupBarrier`).
REQUESTS_PER_CLIENT = 12
WARMUP_REQUESTS = 2
#: the most requests per client an estimate simulates (a bound at the edge, not a physical limit)
MAX_REQUESTS_PER_CLIENT = 1_000


def check_serving(serving: str) -> None:
    """Raise :class:`SpecError` unless ``serving`` names a serving model (:data:`SERVING_MODELS`)."""
    if serving not in SERVING_MODELS:
        raise SpecError(
            f"serving={serving!r} must be one of {', '.join(SERVING_MODELS)}"
            + did_you_mean(serving, SERVING_MODELS)
        )


def engine_for(engine: str | Engine, device: Device | None) -> Engine:
    """:func:`~genmodel._enginepresets.as_engine`, refusing an engine on a device of a vendor it
    does not run on (:attr:`Engine.vendors`, :meth:`Engine.runs_on`: the trtllm preset, NVIDIA's
    only), naming the presets that do.

    Raises:
        InfeasibleError: an engine on such a device. UnknownEntryError: an engine without a preset.
    """
    resolved = as_engine(engine, device)
    if device is not None and not resolved.runs_on(device.vendor):
        vendors = " or ".join(resolved.vendors)
        others = ", ".join(n for n in ENGINES if engine_preset(n, device).runs_on(device.vendor))
        refused = f"engine={resolved.name!r} runs on {vendors} GPUs only"
        raise InfeasibleError([f"{refused}; {device.id} is {device.vendor}'s: use {others}"])
    return resolved


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingSpec:
    """The serving engine and the benchmark client that loads it, as a caller gives them.

    :func:`genmodel.estimate`, :func:`genmodel.simulate` and :func:`genmodel.requirements` take
    these as keywords; each builds one ServingSpec, which checks them all (the engine's knobs on
    its preset too), and passes it on. The engine is resolved on the device by :meth:`engine_on`,
    a simulated estimate's closed-loop client by :meth:`client`.

    Attributes:
        engine: vllm (the default), sglang, trtllm, or an :class:`Engine`.
        knobs: the engine's knobs to override, (name, value) pairs; a None value keeps the preset's.
        requests_per_client: closed loop: requests each client sends, warm-up included (None:
            :data:`REQUESTS_PER_CLIENT`).
        warmup_requests: closed loop: each client's first requests, left out of the figures
            (None: :data:`WARMUP_REQUESTS`, fewer when a client sends fewer than 3: one request
            is always measured).
        warmup_restart: closed loop with a warm-up: the warm-up drains, then every client starts
            its measured requests together (perf_analyzer, under genai-perf); False: each client
            goes straight on.
        warmup_replay: with the restart, each client's first measured requests send the prompts
            of its warm-up again, as perf_analyzer's restarted workers do (an engine with
            ``prefix_caching`` finds them cached); False: fresh prompts (vLLM's ``bench serve``,
            whose warm-up sends its first prompt only).
        burstiness_cv: open loop: the coefficient of variation of the gaps between arrivals (a
            gamma process; None: Poisson).
        spreads: the requests' prompt and output lengths, each drawn uniformly within +- a
            fraction of its mean (:class:`~genmodel._workload.LengthSpreads`; the default: fixed
            lengths).
        seed: seed of the random lengths and arrival times (the same seed, the same result).
    """

    engine: str | Engine = ENGINES[0]
    knobs: tuple[tuple[str, Any], ...] = ()
    requests_per_client: int | None = None
    warmup_requests: int | None = None
    warmup_restart: bool = True
    warmup_replay: bool = True
    burstiness_cv: float | None = None
    spreads: LengthSpreads = FIXED_LENGTHS
    seed: int = 0

    def __post_init__(self) -> None:
        self.engine_on(None)  # an unknown engine or a bad knob fails before any id is resolved
        if self.requests_per_client is not None:
            require_ints(requests_per_client=self.requests_per_client)
        if self.warmup_requests is not None:
            require_ints(minimum=0, warmup_requests=self.warmup_requests)
        cv = self.burstiness_cv
        if cv is not None and not 0 < cv < math.inf:
            raise SpecError(f"burstiness_cv={cv!r} must be > 0 and finite (1 = Poisson)")

    def check_closed_loop(self, arrivals: str, *, engine: bool = True) -> None:
        """Refuse the closed-loop client's settings (and without an ``engine``, its knobs) where
        ``arrivals`` send the requests instead: they would go unused, unchecked.

        Raises:
            SpecError: requests_per_client, a warm-up (or a knob) given.
        """
        warmup = None if self.warmup_requests == 0 else self.warmup_requests  # 0: none, as there
        values = [("requests_per_client", self.requests_per_client), ("warmup_requests", warmup)]
        values += [*(() if engine else self.knobs)]
        given = [f"{k}={v!r}" for k, v in values if v is not None]
        if given:
            raise SpecError(
                f"{', '.join(given)}: only with concurrency= (closed-loop clients), not {arrivals}"
            )

    def engine_on(self, device: Device | None) -> Engine:
        """The engine with its knobs overridden; a preset takes the defaults it picks on ``device``
        (None: a GPU of 80 GB or more).

        Raises:
            SpecError: a bad knob value. UnknownEntryError: an engine without a preset.
            InfeasibleError: a preset the device cannot run (:func:`engine_for`).
        """
        return engine_for(self.engine, device).replace(**dict(self.knobs))

    @property
    def per_client(self) -> int:
        """Requests each closed-loop client sends, warm-up included."""
        return REQUESTS_PER_CLIENT if self.requests_per_client is None else self.requests_per_client

    def warmup(self, fewest: int) -> int:
        """Each closed-loop client's warm-up, where the client that sends the fewest requests sends
        ``fewest``: the one given, else :data:`WARMUP_REQUESTS`, less where it must leave one
        request measured."""
        if self.warmup_requests is not None:
            return self.warmup_requests
        return max(0, min(WARMUP_REQUESTS, fewest - 1))

    def client(self) -> BenchmarkClient:
        """The closed-loop client of a simulated estimate: :attr:`per_client` requests each.

        Raises:
            SpecError: warmup_requests not below requests_per_client.
        """
        n = self.per_client
        return BenchmarkClient(
            requests_per_client=n,
            warmup_requests=self.warmup(n),
            restart_after_warmup=self.warmup_restart,
            replays_warmup_prompts=self.warmup_restart and self.warmup_replay,
        )

    def serving_model(
        self,
        serving: str = SERVING_MODELS[0],
        *,
        device: Device | None = None,
        tables: StepTables | None = None,
    ) -> ServingModel:
        """The serving model by name, for this engine on ``device`` and this client.

        Args:
            serving: "simulated" (the default) or "closed-form" (whose wave is the simulated
                client's: :attr:`Simulated.wave`).
            device: the GPU whose memory sets the engine preset's defaults (None: 80 GB or more).
            tables: step-cost tables to reuse across simulations.

        Raises:
            SpecError: an unknown serving model, warmup_requests not below requests_per_client,
                more than :data:`MAX_REQUESTS_PER_CLIENT` requests per client.
        """
        check_serving(serving)
        # built for the closed form too, so that its client is checked
        simulated = Simulated(
            engine=self.engine_on(device),
            client=self.client(),
            tables=tables,
            spreads=self.spreads,
        )
        return ClosedForm(wave=simulated.wave) if serving == "closed-form" else simulated


class ServingModel(Protocol):
    """A serving model: the means a request sees from N closed-loop clients on a deployment."""

    @property
    def name(self) -> str:
        """ "simulated" or "closed-form" (:data:`SERVING_MODELS`)."""
        ...

    def estimate(
        self,
        model: ModelSpec,
        hardware: System | Device,
        plan: Plan,
        precision: Precision,
        *,
        concurrency: int,
        input_tokens: int,
        output_tokens: int,
        ideal: bool = False,
        options: RunOptions = ...,
    ) -> Estimate:
        """The estimate of ``concurrency`` closed-loop clients; ``serving`` holds the load's state.

        Raises:
            SpecError: bad arguments. InfeasibleError: the deployment cannot run.
        """
        ...


@dataclass(frozen=True, slots=True)
class ClosedForm:
    """The steady state of a continuously batching server (:func:`~genmodel._serving.estimate_serving`).

    Attributes:
        wave: the engine's admission and the benchmark client whose wave (clients started
            together) TTFT adds (:mod:`genmodel._wave`); None: the steady state alone.
    """

    wave: Wave | None = None

    @property
    def name(self) -> str:
        """ "closed-form"."""
        return "closed-form"

    def estimate(
        self,
        model: ModelSpec,
        hardware: System | Device,
        plan: Plan,
        precision: Precision,
        *,
        concurrency: int,
        input_tokens: int,
        output_tokens: int,
        ideal: bool = False,
        options: RunOptions = DEFAULT_OPTIONS,
    ) -> Estimate:
        """:func:`~genmodel._serving.estimate_serving` (its Args and Raises)."""
        return estimate_serving(
            model,
            hardware,
            plan,
            precision,
            concurrency=concurrency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ideal=ideal,
            options=options,
            wave=self.wave,
        )


@dataclass(frozen=True, slots=True, init=False)
class Simulated:
    """The engine's scheduler, simulated step by step, for N clients started together.

    ``Simulated(engine=..., requests_per_client=12, warmup_requests=2, warmup_restart=True)``
    describes the clients by their knobs, ``Simulated(engine=..., client=BenchmarkClient(...))`` by
    the client itself (not both); either way the client is held once, and the knobs are read from it.

    Attributes:
        engine: the engine's knobs (:func:`~genmodel._enginepresets.engine_preset`).
        client: how the closed-loop clients send and measure their requests
            (:class:`~genmodel._wave.BenchmarkClient`): :data:`REQUESTS_PER_CLIENT` each, the first
            :data:`WARMUP_REQUESTS` a warm-up that drains before every client restarts together.
        tables: step-cost tables to reuse across calls (None: each call builds its own).
        spreads: the clients' prompt and output lengths, each drawn uniformly within +- a
            fraction of its mean (:class:`~genmodel._workload.LengthSpreads`, a random dataset's
            range ratio; the default: every request the mean lengths). The closed form's terms
            (the phases, the memory) take the means.
    """

    engine: Engine
    client: BenchmarkClient
    tables: StepTables | None = field(default=None, compare=False)
    spreads: LengthSpreads = FIXED_LENGTHS

    def __init__(
        self,
        *,
        engine: Engine,
        requests_per_client: int | None = None,
        warmup_requests: int | None = None,
        warmup_restart: bool | None = None,
        warmup_replay: bool | None = None,
        client: BenchmarkClient | None = None,
        tables: StepTables | None = None,
        spreads: LengthSpreads = FIXED_LENGTHS,
    ) -> None:
        """Hold ``client``, or the one the knobs describe (:meth:`ServingSpec.client`; None: its
        defaults).

        Raises:
            SpecError: a client and its knobs both, bad counts (:class:`ServingSpec`,
                :class:`BenchmarkClient`), or more than :data:`MAX_REQUESTS_PER_CLIENT` requests
                per client, ``spreads`` not a :class:`~genmodel._workload.LengthSpreads`.
        """
        if not isinstance(spreads, LengthSpreads):
            raise SpecError(f"spreads={spreads!r} must be a LengthSpreads")
        knobs = {
            "requests_per_client": requests_per_client,
            "warmup_requests": warmup_requests,
            "warmup_restart": warmup_restart,
            "warmup_replay": warmup_replay,
        }
        given = {k: v for k, v in knobs.items() if v is not None}
        if client is not None and given:
            raise SpecError(f"give client={client!r} or its knobs ({', '.join(given)}), not both")
        if client is None:
            client = ServingSpec(
                engine=engine,
                requests_per_client=requests_per_client,
                warmup_requests=warmup_requests,
                warmup_restart=True if warmup_restart is None else warmup_restart,
                warmup_replay=True if warmup_replay is None else warmup_replay,
            ).client()
        if client.requests_per_client > MAX_REQUESTS_PER_CLIENT:
            most = MAX_REQUESTS_PER_CLIENT
            raise SpecError(f"requests_per_client={client.requests_per_client} must be at most {most:,}")
        object.__setattr__(self, "engine", engine)
        object.__setattr__(self, "client", client)
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "spreads", spreads)

    @property
    def name(self) -> str:
        """ "simulated"."""
        return "simulated"

    @property
    def requests_per_client(self) -> int:
        """Requests each client sends, warm-up included (the client's)."""
        return self.client.requests_per_client

    @property
    def warmup_requests(self) -> int:
        """Each client's first requests, sent but left out of the means (a benchmark's warm-up
        phase, e.g. genai-perf's ``--warmup-request-count``; the client's)."""
        return self.client.warmup_requests

    @property
    def warmup_restart(self) -> bool:
        """The warm-up drains, then every client starts its measured requests together
        (perf_analyzer, under genai-perf); False: each client goes straight on (the client's)."""
        return self.client.restart_after_warmup

    @property
    def wave(self) -> Wave:
        """The wave of this benchmark client on this engine (the closed form's term for it)."""
        return Wave.of(self.engine, self.client, in_step=self.spreads.fixed)

    def estimate(
        self,
        model: ModelSpec,
        hardware: System | Device,
        plan: Plan,
        precision: Precision,
        *,
        concurrency: int,
        input_tokens: int,
        output_tokens: int,
        ideal: bool = False,
        options: RunOptions = DEFAULT_OPTIONS,
    ) -> Estimate:
        """The simulated means as an :class:`Estimate`.

        ``ttft_s``, ``tpot_s`` and ``serving`` (decode_batch = the mean running batch,
        request_rate_per_s, queue_wait_s = the mean time before a request's prefill is scheduled,
        prefill_busy_frac = rate per replica x one prefill) are the simulation's; the phases'
        breakdown (``prefill``, ``decode``) and ``memory`` are the closed form's. A deployment the
        simulation does not cover gets the closed form, with a note in ``serving.notes``.

        Raises:
            SpecError: bad arguments (output_tokens < 2, concurrency < 1).
            InfeasibleError: the deployment cannot run, or one request does not fit.
        """
        from genmodel._stepcost import check_simulable

        closed = ClosedForm(wave=self.wave).estimate(  # (its phases, memory and fallback)
            model,
            hardware,
            plan,
            precision,
            concurrency=concurrency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ideal=ideal,
            options=options,
        )
        assert closed.serving is not None
        try:
            check_simulable(plan, options)
        except SpecError as exc:
            return with_note(closed, fallback_note(exc))
        sim = self.simulate(
            model,
            hardware,
            plan,
            precision,
            concurrency=concurrency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ideal=ideal,
            options=options,
            itl=False,  # (the estimate reads the requests' means, not the ITL percentiles)
        )
        return simulated_estimate(closed, sim)

    def simulate(
        self,
        model: ModelSpec,
        hardware: System | Device,
        plan: Plan,
        precision: Precision,
        *,
        concurrency: int,
        input_tokens: int,
        output_tokens: int,
        ideal: bool = False,
        options: RunOptions = DEFAULT_OPTIONS,
        records: bool = False,
        itl: bool = True,
    ) -> SimulationResult:
        """The simulation behind :meth:`estimate`: ``concurrency`` clients of this benchmark client
        through this engine's scheduler (:func:`~genmodel._simulate.simulate_serving`): the mean
        lengths, or lengths drawn (seed 0) within :attr:`spreads`. The plan must be one the simulation covers
        (:func:`~genmodel._stepcost.check_simulable`).

        Args:
            records: keep the per-request records (the figures behind the percentiles).
            itl: False leaves the ITL percentiles out (NaN), for a caller that reads only the
                requests' figures.

        Raises:
            SpecError: a plan the simulation does not cover, bad arguments.
            InfeasibleError: the deployment cannot run, or one request does not fit.
        """
        from genmodel._arrivals import Arrivals
        from genmodel._simulate import simulate_serving

        prompts, outputs = length_draws(self.spreads, input_tokens, output_tokens)

        table = None
        if self.tables is not None:
            system = as_system(hardware)
            if ideal:
                system = system.ideal()
            running = min(self.engine.max_num_seqs, -(-concurrency // plan.dp))  # every client's decode
            table = self.tables.get(
                StepSpecs(model=model, hardware=system, plan=plan, precision=precision, options=options),
                engine=self.engine,
                input_tokens=math.ceil(input_tokens * (1 + self.spreads.input_spread)),  # the longest drawn
                running=running,
            )
        return simulate_serving(
            model,
            hardware,
            plan,
            precision,
            engine=self.engine,
            arrivals=Arrivals.closed(self.client, concurrency),
            input_tokens=prompts,
            output_tokens=outputs,
            ideal=ideal,
            options=options,
            table=table,
            records=records,
            itl=itl,
        )


def serving_model(
    serving: str = SERVING_MODELS[0],
    *,
    engine: str | Engine = ENGINES[0],
    device: Device | None = None,
    tables: StepTables | None = None,
    requests_per_client: int | None = None,
    warmup_requests: int | None = None,
    warmup_restart: bool = True,
    warmup_replay: bool = True,
) -> ServingModel:
    """The serving model by name: :meth:`ServingSpec.serving_model` of the engine and client
    these keywords give (:class:`ServingSpec`'s attributes).

    Args:
        serving: "simulated" (the default) or "closed-form".
        engine: the simulated engine (ignored by the closed form, but still checked).
        device: the GPU whose memory sets the engine preset's defaults (None: 80 GB or more).
        tables: step-cost tables to reuse across simulations.
        requests_per_client, warmup_requests, warmup_restart, warmup_replay: the simulated
            clients; the closed form's wave term follows them (the replay too: :mod:`genmodel._replay`).

    Returns:
        A :class:`ServingModel`.

    Raises:
        SpecError: an unknown serving model, bad client counts. UnknownEntryError: an unknown engine.
    """
    spec = ServingSpec(
        engine=engine,
        requests_per_client=requests_per_client,
        warmup_requests=warmup_requests,
        warmup_restart=warmup_restart,
        warmup_replay=warmup_replay,
    )
    return spec.serving_model(serving, device=device, tables=tables)
