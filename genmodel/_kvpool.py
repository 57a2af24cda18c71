"""The KV pool an engine sizes: one size for both serving models.

Modelling assumptions:
- An engine sizes its KV pool once, at start-up, after a profile run: the memory its fraction
  gives (:func:`pool_device`) less the weights and the peak of a dummy forward pass at its step's
  limits, the token budget (``max_num_batched_tokens``, or a longer prompt a step holds whole) and
  the most sequences it runs (``max_num_seqs``, the sampler's logits), whatever the load it serves
  later. So the pool does not grow when fewer sequences run, and the closed form
  (:func:`~genmodel._memory.engine_max_batch`, so ``estimate``'s ``max_running`` and the plan
  search's batch grids) and the simulation (``genmodel._simulate``'s replicas) take it from
  :func:`engine_pool` alike: the two serving models cannot disagree on the pool's capacity
  (``tests/test_pool_shared.py``).
- The activations are genmodel's term (:func:`~genmodel._sizes.activation_bytes_per_device`: the
  widest layer's working set of a chunk of at most ``MAX_BATCHED_TOKENS`` tokens and the logits of
  the sequences), not a measured peak; what else a profile run holds (the CUDA context, the
  communication buffers, an MoE model's dispatch buffers) is not counted (docs/serving-simulation.md,
  *The KV pool checked against the engines*).
- Before an engine is named (:data:`~genmodel._engines.WHOLE_SEQUENCES`) there is no profile run:
  the pool is what the running batch's own activations leave.

Sources (the profile run before the pool is sized):
- vLLM V1: ``vllm/v1/worker/gpu_worker.py`` ``Worker.determine_available_memory`` runs
  ``model_runner.profile_run()`` (a dummy forward of ``max_num_batched_tokens`` tokens and a dummy
  sampler run of ``max_num_seqs`` sequences) and gives the KV cache ``requested_memory -
  non_kv_cache_memory`` (``gpu_memory_utilization`` x the device's memory, less the weights, the
  profile's torch peak and the non-torch memory).
- SGLang 0.5: ``model_executor/model_runner.py`` ``profile_max_num_token`` (in
  ``model_runner_kv_cache_mixin.py`` from 0.5.8): the free memory after loading the weights less
  (1 - ``mem_fraction_static``) x the device's memory; genmodel subtracts its activation term of
  the engine's step as for vLLM (a departure: docs/serving-simulation.md).
- TensorRT-LLM 1.0 (PyTorch backend): ``tensorrt_llm/_torch/pyexecutor/_util.py`` ``KvCacheCreator``
  ``_cal_max_tokens`` sizes the pool after a profiling run of the engine's step:
  ``(total_gpu_memory - peak_memory + alloc_kv_tokens * kv_size_per_token) * fraction``, the
  fraction ``free_gpu_memory_fraction`` of what the weights and the run's peak leave
  (:func:`pool_device`, "free").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genmodel._engines import KvPool
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._parallel import Plan
from genmodel._sizes import activation_bytes_per_device
from genmodel._workload import Precision


def pool_device(
    device: Device, weights_bytes: float, fraction_of: str, fraction: float | None = None
) -> Device:
    """``device`` as an engine whose usable-memory fraction is a fraction of ``fraction_of`` sees it.

    "device": unchanged (vLLM's ``gpu_memory_utilization``, SGLang's ``mem_fraction_static``: a
    fraction f of the device's memory holds weights, activations and KV cache). "free": the
    fraction is of the memory the weights leave free (TensorRT-LLM's ``free_gpu_memory_fraction``),
    so the engine may use f (M - W) + W = the device's memory times f + (1 - f) W / M; the KV pool
    (usable less weights and activations) grows by (1 - f) W.

    Source: TensorRT-LLM docs, "How to Change KV Cache Behavior" (examples/kvcacheconfig): the
    default free_gpu_memory_fraction 0.9 "means TensorRT LLM will try to allocate 90% of free GPU
    memory for KV cache". ``fraction``: the engine's fraction where it is not the device's
    ``usable_memory_frac`` (:attr:`~genmodel._engines.Engine.memory_fraction`).
    """
    if fraction is not None:
        eff = dataclasses.replace(device.efficiency, usable_memory_frac=fraction)
        device = dataclasses.replace(device, efficiency=eff)
    if fraction_of == "device":
        return device
    eff = device.efficiency
    total = device.memory_capacity_bytes - device.os_reserve_bytes
    share = min(max(weights_bytes / total, 0.0), 1.0) if total > 0 else 0.0
    frac = eff.usable_memory_frac + (1 - eff.usable_memory_frac) * share
    return dataclasses.replace(device, efficiency=dataclasses.replace(eff, usable_memory_frac=frac))


@dataclass(frozen=True, slots=True, kw_only=True)
class EnginePool:
    """The KV pool an engine sizes on one device of a replica.

    Attributes:
        device: the device as the pool's memory fraction sees it (:func:`pool_device`).
        weights_bytes: the weights per device (with a draft's and redundant experts').
        activation_bytes: the profile run's activations taken off before the pool is sized; None
            where no engine is named (the running batch's own count then).
        kv_bytes: the KV cache bytes per device the pool holds (the usable memory less the weights
            and the profile's activations; without a profile, less the weights only).
    """

    device: Device
    weights_bytes: float
    activation_bytes: float | None
    kv_bytes: float


def engine_pool(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    pool: KvPool,
    *,
    weights_bytes: float,
    prompt_tokens: int,
) -> EnginePool:
    """The KV pool one replica's engine sizes (module docstring): the memory of ``pool``'s fraction
    (:func:`pool_device`) less ``weights_bytes`` and the activations of its profile run, a step of
    its token budget (or of ``prompt_tokens``, the longest prompt a step holds whole, where that is
    more) and of its most running sequences, per device. The one size both serving models use."""
    seen = pool_device(device, weights_bytes, pool.fraction_of, pool.memory_fraction)
    act = None
    if pool.profile_step is not None:
        budget, seqs = pool.profile_step
        step = {"seqs_per_replica": seqs, "prefill_tokens": max(budget, prompt_tokens)}
        act = float(activation_bytes_per_device(model, precision, plan, **step))
    kv = seen.usable_memory_bytes - weights_bytes - (act or 0.0)
    return EnginePool(device=seen, weights_bytes=weights_bytes, activation_bytes=act, kv_bytes=kv)
