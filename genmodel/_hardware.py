"""Hardware specifications: devices, the links between them and the memory tiers behind them.

Modelling assumptions:
- A device is described by dense (not 2:4 sparse) peak FLOP/s per precision, one local memory
  (HBM, GDDR or unified LPDDR) with a capacity and a peak bandwidth, an optional host memory tier
  reached over a link (PCIe, NVLink-C2C), a scale-up fabric (NVLink, XGMI, HCCS, UB, PCIe) and a
  scale-out fabric (InfiniBand, RoCE, Ethernet).
- Peaks and efficiencies are kept apart: :class:`Efficiency` holds the fractions of peak that real
  kernels reach, so ``Device.ideal()`` gives the pure roofline bound.
- Every quantity is in SI base units (bytes, B/s, FLOP/s, s, W); ``genmodel.io`` converts from the
  human units of the YAML files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from genmodel._errors import SpecError
from genmodel._units import DTYPE_BYTES, check_dtype

# When a device has no units for a precision, the GEMM runs in the next wider one it has
# (e.g. fp8 weights on an A100 are dequantised and multiplied in fp16, as vLLM's Marlin kernels do).
_COMPUTE_FALLBACK: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "fp4": ("fp4", "fp8", "bf16", "fp16", "fp32"),
        "int4": ("int4", "int8", "fp16", "bf16", "fp32"),
        "fp8": ("fp8", "bf16", "fp16", "fp32"),
        "int8": ("int8", "fp16", "bf16", "fp32"),
        "bf16": ("bf16", "fp16", "fp32"),
        "fp16": ("fp16", "bf16", "fp32"),
        "fp32": ("fp32",),
    }
)


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise SpecError(f"{owner}.{name}={value!r} must be > 0")


def _fraction(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0 < value <= 1:
            raise SpecError(f"{owner}.{name}={value!r} must be in (0, 1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A fabric or bus: per-direction bandwidth per device, a per-hop latency and a domain size."""

    name: str
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    #: Devices that reach each other over this link without leaving it (None: unbounded).
    num_domain_devices: int | None = None

    def __post_init__(self) -> None:
        _positive(f"link {self.name!r}", bandwidth_bytes_per_s=self.bandwidth_bytes_per_s)
        if self.latency_s < 0:
            raise SpecError(f"link {self.name!r}.latency_s={self.latency_s!r} must be >= 0")
        if self.num_domain_devices is not None and self.num_domain_devices < 1:
            raise SpecError(f"link {self.name!r}.num_domain_devices={self.num_domain_devices!r} must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryTier:
    """A memory tier outside the device: host DDR, a CXL expander or an NVMe drive."""

    id: str
    name: str
    medium: str
    capacity_bytes: float
    bandwidth_bytes_per_s: float
    latency_s: float
    #: The link the tier sits behind (CXL, PCIe); None when the device's own host link is the path.
    link: Link | None = None
    power_w: float | None = None

    def __post_init__(self) -> None:
        if self.medium not in ("ddr", "cxl", "nvme"):
            raise SpecError(f"memory tier {self.id}: medium={self.medium!r} must be ddr, cxl or nvme")
        _positive(
            f"memory tier {self.id}",
            capacity_bytes=self.capacity_bytes,
            bandwidth_bytes_per_s=self.bandwidth_bytes_per_s,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostAttachment:
    """How a device reaches its host memory tier."""

    tier_id: str
    link: Link


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """Fractions of peak that real kernels reach, and fixed costs; see hardware_db/EFFICIENCY.md.

    Attributes:
        gemm_frac: fraction of dense peak FLOP/s a large 16/32-bit GEMM reaches.
        gemm_low_precision_frac: the same for 8- and 4-bit GEMMs (their peak doubles, but operand
            feeds, epilogues and the power limit do not, so they reach a smaller fraction).
        gemm_tile_tokens: GEMM row tile; a GEMM over M tokens computes ceil(M/tile)*tile rows.
        attention_frac: fraction of peak FLOP/s a fused (flash) attention kernel reaches.
        memory_frac: fraction of peak memory bandwidth a streaming kernel reaches.
        collective_bus_frac: fraction of link bandwidth a collective reaches (NCCL bus bandwidth).
        collective_latency_s: fixed cost of one collective call (launch and synchronisation).
        step_overhead_s: fixed cost of one forward step (scheduling, sampling, launches).
        usable_memory_frac: fraction of device memory the serving engine may use.
    """

    gemm_frac: float = 0.7
    gemm_low_precision_frac: float = 0.5
    gemm_tile_tokens: int = 64
    attention_frac: float = 0.5
    memory_frac: float = 0.7
    collective_bus_frac: float = 0.8
    collective_latency_s: float = 8e-6
    step_overhead_s: float = 1.5e-3
    usable_memory_frac: float = 0.9

    def __post_init__(self) -> None:
        _fraction(
            "efficiency",
            gemm_frac=self.gemm_frac,
            gemm_low_precision_frac=self.gemm_low_precision_frac,
            attention_frac=self.attention_frac,
            memory_frac=self.memory_frac,
            collective_bus_frac=self.collective_bus_frac,
            usable_memory_frac=self.usable_memory_frac,
        )
        if self.gemm_tile_tokens < 1:
            raise SpecError(f"efficiency.gemm_tile_tokens={self.gemm_tile_tokens!r} must be >= 1")
        for name in ("collective_latency_s", "step_overhead_s"):
            if getattr(self, name) < 0:
                raise SpecError(f"efficiency.{name}={getattr(self, name)!r} must be >= 0")


IDEAL_EFFICIENCY = Efficiency(
    gemm_frac=1.0,
    gemm_low_precision_frac=1.0,
    gemm_tile_tokens=1,
    attention_frac=1.0,
    memory_frac=1.0,
    collective_bus_frac=1.0,
    collective_latency_s=0.0,
    step_overhead_s=0.0,
    usable_memory_frac=1.0,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """One accelerator (GPU, NPU, SoC) and how it connects to memory and to its peers."""

    id: str
    name: str
    vendor: str = ""
    #: Dense peak FLOP/s (or OP/s) per precision, only for precisions the matrix units run natively.
    peak_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    memory_technology: str = "HBM"
    memory_capacity_bytes: float
    memory_bandwidth_bytes_per_s: float
    #: Unified memory shared with the host CPU and OS (Jetson); the reserve is not usable.
    shared_with_host: bool = False
    os_reserve_bytes: float = 0.0
    host: HostAttachment | None = None
    scale_up: Link | None = None
    scale_out: Link | None = None
    tdp_w: float | None = None
    usd_per_hour: float | None = None
    efficiency: Efficiency = Efficiency()

    def __post_init__(self) -> None:
        owner = f"device {self.id}"
        _positive(
            owner,
            memory_capacity_bytes=self.memory_capacity_bytes,
            memory_bandwidth_bytes_per_s=self.memory_bandwidth_bytes_per_s,
        )
        if not self.peak_flops_per_s:
            raise SpecError(f"{owner}: peak_flops_per_s is empty; at least one precision is needed")
        for dtype, value in self.peak_flops_per_s.items():
            check_dtype(f"{owner}.peak_flops_per_s", dtype)
            _positive(owner, **{f"peak_flops_per_s[{dtype}]": value})
        if not 0 <= self.os_reserve_bytes < self.memory_capacity_bytes:
            raise SpecError(
                f"{owner}.os_reserve_bytes={self.os_reserve_bytes!r} must be >= 0 and below "
                f"memory_capacity_bytes={self.memory_capacity_bytes!r}"
            )
        object.__setattr__(self, "peak_flops_per_s", MappingProxyType(dict(self.peak_flops_per_s)))

    def compute_dtype(self, dtype: str) -> str:
        """The precision a GEMM requested in ``dtype`` actually runs in on this device."""
        for candidate in _COMPUTE_FALLBACK[check_dtype("dtype", dtype)]:
            if candidate in self.peak_flops_per_s:
                return candidate
        # no unit as wide as asked: the widest the device has (emulating wider math is slower still)
        return max(self.peak_flops_per_s, key=lambda d: (DTYPE_BYTES[d], self.peak_flops_per_s[d]))

    def peak_for(self, dtype: str) -> float:
        """Dense peak FLOP/s for a GEMM requested in ``dtype`` (after fallback)."""
        return self.peak_flops_per_s[self.compute_dtype(dtype)]

    @property
    def usable_memory_bytes(self) -> float:
        """Bytes the serving engine may use: (capacity - OS reserve) x usable fraction."""
        return (self.memory_capacity_bytes - self.os_reserve_bytes) * self.efficiency.usable_memory_frac

    def ideal(self) -> Device:
        """The same device with every efficiency 1 and no fixed overheads (pure roofline)."""
        return dataclasses.replace(self, efficiency=IDEAL_EFFICIENCY)
