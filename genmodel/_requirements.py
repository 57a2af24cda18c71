"""``genmodel.requirements``: the inverse problem by id, on top of the solver in :mod:`genmodel._inverse`.

Modelling assumptions: none of its own. It resolves its arguments to specs (model, system, plan,
precisions, run options, load, serving model and engine) exactly as :func:`genmodel.estimate` does,
and hands them to :func:`~genmodel._inverse.solve_requirements`, which works on specs alone: the
closed forms in :mod:`genmodel._symbolic`, the capacity pre-solve in :mod:`genmodel._capacity`, the
simulated solve under load in :mod:`genmodel._reqsim`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genmodel._api import estimate, profiled
from genmodel._capacity import Deployment, ResourceRequirement
from genmodel._enginepresets import ENGINES
from genmodel._engines import Engine
from genmodel._errors import InfeasibleError
from genmodel._hardware import Device
from genmodel._inverse import Requirements, check_quantiles, check_request, solve_requirements
from genmodel._model import ModelSpec
from genmodel._scalars import plain_scalars
from genmodel._servingmodel import SERVING_MODELS, ServingSpec, Simulated, check_serving
from genmodel._symbolic import RESOURCES, SYMBOL_NAMES, X_MAX, resource_symbols, symbolic_step_time
from genmodel._system import System, as_system
from genmodel.io import load_hardware, load_model, load_system

__all__ = [
    "RESOURCES",
    "SYMBOL_NAMES",
    "Requirements",
    "ResourceRequirement",
    "requirements",
    "resource_symbols",
    "symbolic_step_time",
]


@plain_scalars
def requirements(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    resources: Sequence[str] = tuple(RESOURCES),
    ttft_quantile: float | None = None,
    tpot_quantile: float | None = None,
    serving: str = SERVING_MODELS[0],
    engine: str | Engine = ENGINES[0],
    max_num_seqs: int | None = None,
    max_batched_tokens: int | None = None,
    admission: str | None = None,
    overlap_scheduler: bool | None = None,
    requests_per_client: int | None = None,
    warmup_requests: int | None = None,
    warmup_restart: bool = True,
    **estimate_kwargs: Any,
) -> Requirements:
    """The least FLOP/s, memory bandwidth, memory capacity or link bandwidth that meets the targets.

    Each resource is varied alone (the others at the platform's figures) through
    :meth:`System.scaled`; the requirement is solved on the closed form
    (:func:`~genmodel._symbolic.symbolic_latencies`) and verified on the estimate, so
    :func:`~genmodel.estimate` on the platform scaled by the returned factor meets every target (and
    1e-9 less misses the binding one). Method: :mod:`genmodel._inverse`. Under load
    (``concurrency``) with ``serving="simulated"`` (the default, as :func:`~genmodel.estimate`'s),
    it is solved on the engine's simulated scheduler instead, by bracketing and bisection to 1 %
    (:mod:`genmodel._reqsim`): :func:`~genmodel.simulate` on the scaled platform meets every target
    at its statistic, and 1 % less misses one.

    Args:
        model: a model id, alias, config.json path, or ModelSpec.
        hardware: a device or system id, a Device or a System.
        input_tokens: prompt tokens per request.
        output_tokens: generated tokens per request.
        ttft_slo_s: TTFT target in seconds (the static batch's prefill; serving mode: the mean).
        tpot_slo_s: TPOT target in seconds (mean decode step).
        resources: which of flops, memory_bandwidth, memory_capacity, scale_up_bandwidth and
            scale_out_bandwidth to solve for.
        ttft_quantile, tpot_quantile: None (the mean), or the quantile a target bounds (0.99: the
            p99), as in :func:`~genmodel.plan`. A static batch's requests prefill together and
            decode in lockstep, so every percentile is the batch's one TTFT (TPOT). Under load
            the simulation gives each request's figures; the closed form (``serving="closed-form"``)
            predicts means only, and there a quantile is refused.
        serving: with ``concurrency``, the serving model the targets are judged on: "simulated"
            (the default, as :func:`~genmodel.estimate`'s) or "closed-form" (the steady state and
            the wave of the clients started together).
        engine: the engine whose scheduler is simulated (vllm, the default; sglang, trtllm; or an
            :class:`Engine`); under load it also picks the device's efficiency profile.
        max_num_seqs, max_batched_tokens, admission, overlap_scheduler: override the engine's
            knobs, as :func:`~genmodel.simulate` takes them (None: the preset's).
        requests_per_client, warmup_requests, warmup_restart: the simulated clients, as
            :func:`~genmodel.estimate` takes them.
        estimate_kwargs: :func:`~genmodel.estimate`'s plan, batch (or concurrency), dtype and run
            options. ``batch="max"`` is resolved on the platform and then held fixed.

    When the deployment does not fit the platform (not even one sequence, or not the explicit
    batch), the memory_capacity requirement is solved first (and always reported), and every other
    resource is solved on the platform with that capacity
    (:attr:`Requirements.memory_capacity_assumed_factor`): ``estimate`` on
    ``System.scaled(memory_capacity=that factor, <resource>=its factor)`` fits and meets the targets.

    Returns:
        :class:`Requirements`: per resource the platform's figure, the required one and their
        ratio, the binding resources, and the closed forms of TTFT and TPOT.

    Raises:
        SpecError: no target for a latency resource, an unknown resource, a bad target, a
            quantile with ``concurrency`` on the closed form (or on a plan the simulation does not
            cover: pipeline or context parallelism, ...), or estimate's own argument errors.
        InfeasibleError: the plan cannot run with any amount of memory (divisibility, too many
            devices), or not even one sequence fits and ``batch="max"`` gives no size to solve the
            capacity for (give an explicit batch).
    """
    check_request(ttft_slo_s, tpot_slo_s, resources)  # before any id is resolved
    check_serving(serving)
    concurrency = estimate_kwargs.get("concurrency")
    check_quantiles(ttft_quantile, tpot_quantile, concurrency, simulated=serving == "simulated")
    knobs = {
        "max_num_seqs": max_num_seqs,
        "max_batched_tokens": max_batched_tokens,
        "admission": admission,
        "overlap_scheduler": overlap_scheduler,
    }
    spec = ServingSpec(
        engine=engine,
        knobs=tuple(knobs.items()),
        requests_per_client=requests_per_client,
        warmup_requests=warmup_requests,
        warmup_restart=warmup_restart,
    )
    if concurrency is None:
        spec.check_closed_loop("a static batch", engine=False)
    deployment, served = _deployment(model, hardware, input_tokens, output_tokens, estimate_kwargs, spec)
    return solve_requirements(
        deployment,
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        resources=resources,
        ttft_quantile=ttft_quantile,
        tpot_quantile=tpot_quantile,
        simulated=served if serving == "simulated" else None,
    )


def _deployment(
    model: str | ModelSpec,
    hardware: str | Device | System,
    input_tokens: int,
    output_tokens: int,
    estimate_kwargs: Mapping[str, Any],
    spec: ServingSpec,
) -> tuple[Deployment, Simulated]:
    """The specs ``estimate`` would run: ids through the database loaders, the plan, precisions and
    run options as :func:`~genmodel.estimate` resolves them (one closed-form estimate, which also
    raises its own argument errors), and the engine and benchmark client of ``spec`` that a
    simulated estimate runs.

    Raises:
        SpecError, UnknownEntryError: estimate's argument errors, a client count it refuses.
        InfeasibleError: estimate's own, when the plan cannot run even with unlimited memory.
    """
    m = model if isinstance(model, ModelSpec) else load_model(model)  # (load_model names a wrong type)
    kwargs = dict(estimate_kwargs)
    chosen = kwargs.pop("system", None)
    lengths: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    system = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    if chosen is not None:
        system = (load_system(chosen) if isinstance(chosen, str) else chosen).with_device(system.device)
    engine = spec.engine_on(system.device)
    # (resolves the specs without a simulation; under load the engine picks the profile)
    kwargs.update(engine=engine, serving="closed-form")
    try:
        resolved = estimate(m, hardware, system=chosen, **lengths, **kwargs)
    except InfeasibleError as failure:
        # it does not fit the platform: the same specs with unlimited memory (one sequence for
        # batch="max"); the solver then finds the capacity it needs
        probe = {**kwargs, "batch": 1} if kwargs.get("batch") == "max" else kwargs
        try:
            resolved = estimate(m, system.scaled(memory_capacity=X_MAX), **lengths, **probe)
        except InfeasibleError:
            raise failure from None
    # the profile estimate applied (named, or the device's own for the serving engine)
    system, _ = profiled(system, resolved.options, None)
    batch = kwargs.get("batch")
    served = Simulated(engine=engine, client=spec.client())
    # under load, the wave of the clients started together: the closed form's term for it
    wave = None if kwargs.get("concurrency") is None else served.wave
    deployment = Deployment(
        model=m,
        system=system,
        plan=resolved.plan,
        precision=resolved.precision,
        options=resolved.options,
        **lengths,
        batch=1 if batch is None else batch,
        concurrency=kwargs.get("concurrency"),
        ideal=bool(kwargs.get("ideal", False)),
        wave=wave,
    )
    return deployment, served
