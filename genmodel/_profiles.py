"""Efficiency profiles: named, sourced values of :class:`Efficiency` for a platform and software stack.

A profile sets some or all of the fields of :class:`Efficiency` (the fractions of peak real kernels
reach, and the fixed costs); a field it does not set keeps the device's own value (the ``efficiency``
section of its hardware_db file, whose values the ``default`` profile documents). Profiles are
generic over ``dataclasses.fields(Efficiency)``: a field added there is a profile parameter, with
fit bounds from its name (:func:`fit_bounds`), with no change here.

Each value records how it was obtained (``fitted`` on named cases, ``sourced`` from a publication,
``default``: the shared value, ``device``: the device file's value, ``base``: kept from the profile a
fit started from).

Modelling assumptions: the efficiencies of a platform depend on its software stack (kernels, CUDA
graphs, scheduler), so a profile names the devices and engines it was measured on; applied to any
other device it is an extrapolation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from genmodel._errors import SpecError
from genmodel._hardware import Device, Efficiency, FrozenMap
from genmodel._system import System

#: Every field of :class:`Efficiency`, in order: the parameters a profile may set.
PARAMETERS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Efficiency))
#: How a profile value may have been obtained.
HOW = ("fitted", "sourced", "default", "device", "base", "estimate")
#: Parameters a fit leaves alone whatever their sensitivity: integers (an instruction shape) and
#: engine settings that are configured, not measured.
NOT_FITTED = ("gemm_tile_tokens", "gemm_small_tile_tokens", "usable_memory_frac")

# Physically sane ranges a fit may move a parameter in (SI units). Below the low end a kernel would
# be slower than a naive one on the same hardware; above the high end faster than any published one.
_BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        # cuBLAS/CUTLASS large GEMMs: 60-85 % of dense peak; inference shapes lower
        "gemm_frac": (0.3, 0.9),
        # fp8/int8/fp4 GEMMs: the peak doubles, feeds and epilogues do not (Hopper fp8 ~ 0.5)
        "gemm_low_precision_frac": (0.2, 0.9),
        # FlashAttention-2/3: 35-75 % of peak forward
        "attention_frac": (0.2, 0.9),
        # MLA decode kernels (128 heads over a shared latent): 35-70 % of peak (CUTLASS MLA on
        # SM100 to FlashMLA on H800)
        "mla_decode_frac": (0.2, 0.9),
        # decode streaming kernels: 40-92 % of HBM/LPDDR peak (STREAM reaches ~90 %)
        "memory_frac": (0.4, 0.95),
        # routed experts against other streaming kernels: grouped GEMMs over thin expert slices
        # and a few tokens each lose occupancy and spend time permuting and combining (0.2-1)
        "expert_memory_frac": (0.2, 1.0),
        # one MoE layer's fused routed-expert kernel chain beyond its weight streaming: 0 (one
        # persistent kernel) to 100 us (an un-graphed chain of a dozen launches); published
        # fused-MoE timings at one token give 23-33 us on Hopper
        "moe_layer_latency_s": (0.0, 1e-4),
        # one dense GEMM kernel beyond its weight streaming: 0 (hidden by programmatic dependent
        # launch or fused kernels) to 30 us; cuBLAS in a CUDA graph on an H200 measured 5.7 us
        # (validation/device_runs, hardware_db/EFFICIENCY.md)
        "gemm_latency_s": (0.0, 3e-5),
        # NCCL bus bandwidth: 60-95 % of the per-direction link figure
        "collective_bus_frac": (0.3, 0.98),
        # one collective call: 1 us (launch) to 100 us (an un-graphed, multi-node call)
        "collective_latency_s": (1e-6, 1e-4),
        # one forward step's host overhead: CUDA-graph C++ runtimes ~0.1 ms, Python engines 1-5 ms
        "step_overhead_s": (1e-5, 1e-2),
        # one request's time in the serving frontend (HTTP, tokenisation, detokenisation,
        # streaming): 0 (an in-process benchmark) to 0.5 s (a Python API server under load)
        "request_overhead_s": (0.0, 0.5),
        # pinned-memory copies over PCIe/C2C/CXL: 60-90 % of the link
        "offload_link_frac": (0.3, 0.95),
    }
)
# by suffix, for a field the table does not name
_SUFFIX_BOUNDS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("_frac", (0.1, 1.0)),
    ("_s", (0.0, 5e-2)),
)


def fit_bounds(name: str) -> tuple[float, float] | None:
    """The range a fit may move parameter ``name`` in (SI units), or None when it is not fitted.

    Raises:
        SpecError: ``name`` is not a field of :class:`Efficiency`.
    """
    check_parameter(name)
    if name in NOT_FITTED:
        return None
    if name in _BOUNDS:
        return _BOUNDS[name]
    if _is_int(name):
        return None
    return next((b for suffix, b in _SUFFIX_BOUNDS if name.endswith(suffix)), (0.0, 1.0))


def _is_int(name: str) -> bool:
    return isinstance(getattr(Efficiency(), name), int) and not isinstance(getattr(Efficiency(), name), bool)


def check_parameter(name: str) -> str:
    """``name`` if it is a field of :class:`Efficiency`.

    Raises:
        SpecError: it is not (the message lists the fields).
    """
    if name not in PARAMETERS:
        raise SpecError(f"parameter={name!r} must be one of {', '.join(PARAMETERS)}")
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """Values of some fields of :class:`Efficiency`, named and sourced.

    Attributes:
        id: the profile's name (``h200-sglang``) or the file it was read from.
        name: a human-readable title.
        values: field of :class:`Efficiency` -> value in SI units; fields absent keep the device's.
        provenance: field -> how the value was obtained (``fitted on P05, P06``, ``sourced: ...``).
        hardware: device ids this profile is the default of (with ``engines``).
        engines: engines (vllm, sglang, trtllm) the profile was measured with; empty: any.
        engine_configs: the benchmark harnesses' engine configurations (a validation row's
            ``engine_config``: ``aiconfigurator``, whose generated servers run behind NVIDIA
            Dynamo's frontend) the profile was fitted under; it is the default only there. Empty:
            any, a server run as its engine ships it included.
        source: where the profile as a whole comes from (the fit command, the publications).
    """

    id: str
    name: str = ""
    values: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)
    hardware: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    engine_configs: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            check_parameter(name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise SpecError(f"profile {self.id}: {name}={value!r} must be a finite number")
            if _is_int(name) and not float(value).is_integer():
                raise SpecError(f"profile {self.id}: {name}={value!r} must be an integer")
        values: dict[str, Any] = {k: int(v) if _is_int(k) else float(v) for k, v in self.values.items()}
        try:
            dataclasses.replace(Efficiency(), **values)  # the ranges Efficiency itself checks
        except SpecError as exc:
            raise SpecError(f"profile {self.id}: {exc}") from None
        object.__setattr__(self, "values", FrozenMap(values))
        object.__setattr__(self, "provenance", FrozenMap(dict(self.provenance)))
        object.__setattr__(self, "hardware", tuple(self.hardware))
        object.__setattr__(self, "engines", tuple(self.engines))
        object.__setattr__(self, "engine_configs", tuple(self.engine_configs))

    def efficiency(self, base: Efficiency) -> Efficiency:
        """``base`` with this profile's values."""
        values: dict[str, Any] = dict(self.values)
        return dataclasses.replace(base, **values) if values else base

    def with_values(self, values: Mapping[str, float], *, how: str, profile_id: str | None = None) -> Profile:
        """This profile with ``values`` replaced (each recorded as obtained ``how``)."""
        provenance = {**self.provenance, **dict.fromkeys(values, how)}
        return dataclasses.replace(
            self, id=profile_id or self.id, values={**self.values, **values}, provenance=provenance
        )

    def made_for_others(self, device_ids: Iterable[str]) -> list[str]:
        """The devices of ``device_ids`` this profile was not made for (in their order, once
        each): applied to them it is an extrapolation. Empty where it names no device (a base
        profile such as ``default``, made for any)."""
        if not self.hardware:
            return []
        return [d for d in dict.fromkeys(device_ids) if d not in self.hardware]

    def applies_to(self, device_id: str, engine: str | None, engine_config: str | None = None) -> bool:
        """Whether this is the profile of ``device_id`` run by ``engine`` (None: no engine named)
        under ``engine_config`` (None: the server as the engine ships it)."""
        if device_id not in self.hardware:
            return False
        if self.engine_configs and engine_config not in self.engine_configs:
            return False
        return not self.engines or (engine is not None and engine in self.engines)


_H = TypeVar("_H", Device, System)


def apply_profile(hardware: _H, profile: Profile | None) -> _H:
    """``hardware`` (a Device or System) with ``profile``'s efficiencies; None: unchanged."""
    if profile is None or not profile.values:
        return hardware
    if isinstance(hardware, System):
        device = hardware.device
        return hardware.with_device(
            dataclasses.replace(device, efficiency=profile.efficiency(device.efficiency))
        )
    return dataclasses.replace(hardware, efficiency=profile.efficiency(hardware.efficiency))
