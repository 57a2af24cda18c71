"""The public serving simulation: :func:`simulate` by ids, on top of :func:`genmodel.estimate`'s specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genmodel._api import estimate, profiled
from genmodel._engines import ENGINES, Engine, engine_preset
from genmodel._errors import SpecError
from genmodel._hardware import Device, System
from genmodel._model import ModelSpec
from genmodel._phases import as_system
from genmodel._servingmodel import REQUESTS_PER_CLIENT
from genmodel._simresult import SimulationResult
from genmodel._simulate import Arrivals, Lengths, simulate_serving
from genmodel.io import load_hardware, load_model, load_system
from genmodel.io._trace import read_trace

#: requests each closed-loop client sends by default (the same as a simulated estimate's), and
#: requests of an open loop
DEFAULT_REQUESTS_PER_CLIENT = REQUESTS_PER_CLIENT
DEFAULT_REQUESTS = 500


def simulate(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    concurrency: int | None = None,
    request_rate: float | None = None,
    trace: str | Path | tuple[tuple[float, int, int], ...] | None = None,
    requests_per_client: int | None = None,
    requests: int | None = None,
    warmup_requests: int = 0,
    burstiness_cv: float | None = None,
    input_spread: float = 0.0,
    output_spread: float = 0.0,
    engine: str | Engine = "vllm",
    max_num_seqs: int | None = None,
    max_batched_tokens: int | None = None,
    admission: str | None = None,
    chunked_prefill: bool | None = None,
    mixed: bool | None = None,
    step_overhead_s: float | None = None,
    seed: int = 0,
    records: bool = False,
    system: str | System | None = None,
    ideal: bool = False,
    **options: Any,
) -> SimulationResult:
    """Simulate an engine's scheduler serving a load on a deployment, step by step.

    Args:
        model: a model id or alias, a config.json path, or a ModelSpec.
        hardware: a device or system id, a Device or a System (as :func:`genmodel.estimate`).
        input_tokens, output_tokens: mean prompt and output tokens per request (not with a trace).
        concurrency: N closed-loop clients, started together (as the benchmark clients).
        request_rate: requests per second of a Poisson process (gamma with ``burstiness_cv``).
        trace: a CSV file (``arrival_s,input_tokens,output_tokens``) or its rows.
        requests_per_client: closed loop: requests per client (default 4).
        requests: total requests (closed loop: split over the clients; open loop: default 500).
        warmup_requests: closed loop: each client's first requests, left out of every figure.
        burstiness_cv: coefficient of variation of the gaps between arrivals (gamma process).
        input_spread, output_spread: lengths drawn uniformly within +-spread of the mean (0: fixed).
        engine: vllm (vLLM 0.10 V1, the default), sglang (SGLang 0.5), trtllm (TensorRT-LLM 1.0),
            or an :class:`Engine`.
        max_num_seqs, max_batched_tokens, admission, chunked_prefill, mixed, step_overhead_s:
            override the engine's knobs.
        seed: seed of the random lengths and arrival times (the same seed, the same result).
        records: keep the per-request records (``result.records``).
        system: a system id whose fabric connects the devices (as :func:`genmodel.estimate`).
        ideal: peak figures, no efficiencies or overheads.
        options: :func:`genmodel.estimate`'s plan, dtype and run options (tp, pp, ep, dp, devices,
            weight_dtype, act_dtype, kv_dtype, prefix_hit_rate, ...).

    Returns:
        The :class:`SimulationResult`; ``to_dict()`` gives the JSON keys.

    Raises:
        SpecError: bad arguments (not exactly one arrival process, an unknown engine knob value,
            a negative rate, an unreadable trace). UnknownEntryError: an unknown id or engine.
        InfeasibleError: the deployment does not fit.
    """
    kinds = [
        k
        for k, v in (("concurrency", concurrency), ("request_rate", request_rate), ("trace", trace))
        if v is not None
    ]
    if len(kinds) != 1:
        raise SpecError(
            "give exactly one of concurrency=, request_rate= or trace="
            + (f" (got {', '.join(kinds)})" if kinds else "")
        )
    arrivals, lengths = _arrivals(
        concurrency=concurrency,
        request_rate=request_rate,
        trace=trace,
        requests_per_client=requests_per_client,
        requests=requests,
        warmup_requests=warmup_requests,
        burstiness_cv=burstiness_cv,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    # the specs exactly as estimate() builds them (and its checks: plan, dtypes, one sequence fits)
    check = estimate(
        model,
        hardware,
        input_tokens=lengths[0],
        output_tokens=lengths[1],
        batch=1,
        system=system,
        ideal=ideal,
        **options,
    )
    m = load_model(model) if isinstance(model, str) else model
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    if system is not None:
        hw = (load_system(system) if isinstance(system, str) else system).with_device(hw.device)
    chosen = engine if isinstance(engine, Engine) else _preset(engine, hw.device)
    chosen = chosen.replace(
        max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
        admission=admission,
        chunked_prefill=chunked_prefill,
        mixed=mixed,
        step_overhead_s=step_overhead_s,
    )
    hw, run = profiled(hw, check.options, chosen.name)
    return simulate_serving(
        m,
        hw,
        check.plan,
        check.precision,
        engine=chosen,
        arrivals=arrivals,
        input_tokens=Lengths(mean=lengths[0], spread_frac=input_spread),
        output_tokens=Lengths(mean=lengths[1], spread_frac=output_spread),
        seed=seed,
        ideal=ideal,
        options=run,
        records=records,
    )


def _preset(name: str, device: Device) -> Engine:
    if not isinstance(name, str):
        raise SpecError(f"engine={name!r} must be one of {', '.join(ENGINES)} or an Engine")
    return engine_preset(name, device)


def _arrivals(
    *,
    concurrency: int | None,
    request_rate: float | None,
    trace: str | Path | tuple[tuple[float, int, int], ...] | None,
    requests_per_client: int | None,
    requests: int | None,
    warmup_requests: int,
    burstiness_cv: float | None,
    input_tokens: int | None,
    output_tokens: int | None,
) -> tuple[Arrivals, tuple[int, int]]:
    """The arrival process, and the (input, output) lengths to check the deployment with."""
    if trace is not None:
        if input_tokens is not None or output_tokens is not None:
            raise SpecError("a trace gives each request's lengths: drop input_tokens= and output_tokens=")
        rows = read_trace(trace) if isinstance(trace, (str, Path)) else tuple(trace)
        arrivals = Arrivals(kind="trace", trace=rows)
        return arrivals, (max(r[1] for r in rows), max(r[2] for r in rows))
    if input_tokens is None or output_tokens is None:
        raise SpecError("input_tokens= and output_tokens= are needed without a trace")
    if concurrency is not None:
        arrivals = Arrivals(
            kind="closed",
            clients=concurrency,
            requests_per_client=requests_per_client or DEFAULT_REQUESTS_PER_CLIENT,
            warmup_requests=warmup_requests,
            requests=requests,
        )
    else:
        assert request_rate is not None
        arrivals = Arrivals(
            kind="poisson" if burstiness_cv is None else "gamma",
            rate_per_s=request_rate,
            cv=1.0 if burstiness_cv is None else burstiness_cv,
            requests=DEFAULT_REQUESTS if requests is None else requests,
        )
    return arrivals, (input_tokens, output_tokens)
