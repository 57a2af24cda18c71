"""Hardware specifications: devices, the links between them and the memory tiers behind them.

How devices are put together (systems and their fabric tiers) is :mod:`genmodel._system`.

Modelling assumptions:
- A device is described by dense (not 2:4 sparse) peak FLOP/s per precision, one local memory
  (HBM, GDDR or unified LPDDR) with a capacity and a peak bandwidth, an optional host memory tier
  reached over a link (PCIe, NVLink-C2C), a scale-up fabric (NVLink, XGMI, HCCS, UB, PCIe) and a
  scale-out fabric (InfiniBand, RoCE, Ethernet).
- Peaks and efficiencies are kept apart: :class:`Efficiency` holds the fractions of peak that real
  kernels reach, so ``Device.ideal()`` gives the pure roofline bound.
- Every quantity is in SI base units (bytes, B/s, FLOP/s, s, W); ``genmodel.io`` converts from the
  human units of the YAML files.
- Specs are values: equal specs compare and hash equal, so caches key on them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from genmodel._errors import SpecError, require_ints
from genmodel._units import DTYPE_BYTES, TFLOP, check_dtype

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

_K = TypeVar("_K")
_V = TypeVar("_V")


class FrozenMap(Mapping[_K, _V], Generic[_K, _V]):
    """A read-only mapping that hashes by its items (a dict's copy, so a spec holding one is a
    hashable value; equal to any mapping with the same items)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[_K, _V]) -> None:
        self._items = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: _K) -> _V:
        return self._items[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


def _infinite(value: float) -> bool:
    # NaN fails every comparison already; a symbol (requirements' solve) is never a float
    return isinstance(value, float) and math.isinf(value)


def check_positive(owner: str, **values: float) -> None:
    """Raise :class:`SpecError` (``owner.name=value must be > 0 and finite``) unless each value is."""
    for name, value in values.items():
        if not value > 0 or _infinite(value):
            raise SpecError(f"{owner}.{name}={value!r} must be > 0 and finite")


def check_fraction(owner: str, **values: float) -> None:
    """Raise :class:`SpecError` (``owner.name=value must be in (0, 1]``) unless each value is."""
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
        check_positive(f"link {self.name!r}", bandwidth_bytes_per_s=self.bandwidth_bytes_per_s)
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
        check_positive(
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
class AttachedTier:
    """``count`` identical memory tiers (e.g. four CXL expanders) that a node's devices offload to.

    The devices of a node share the tiers' capacity and bandwidth; each device reaches them over
    its own host link (PCIe, NVLink-C2C), which caps its share. A device without a host link
    (Jetson) reaches an NVMe drive over the drive's own link only.
    """

    tier: MemoryTier
    count: int = 1

    def __post_init__(self) -> None:
        require_ints(where=f"memory tier {self.tier.id}: ", count=self.count)

    @property
    def label(self) -> str:
        """The tier id, with the count when there are several (``cxl-x:4``)."""
        return self.tier.id if self.count == 1 else f"{self.tier.id}:{self.count}"

    def path(self, device: Device) -> Link | None:
        """The device's link towards the tier (None: the tier's own link is the only path).

        Raises:
            SpecError: the device cannot reach a tier of this kind.
        """
        medium = self.tier.medium
        if device.host is not None:
            return device.host.link
        if medium == "nvme" and self.tier.link is not None:
            return None
        why = (
            "its memory is the host memory (unified)"
            if device.shared_with_host and medium == "ddr"
            else "it has no host link in hardware_db"
        )
        raise SpecError(
            f"hardware={device.id} cannot offload to memory tier={self.tier.id} ({medium}): {why}"
        )

    def capacity_per_device(self, sharing: int) -> float:
        """Bytes of the tiers each of ``sharing`` devices may use."""
        return self.tier.capacity_bytes * self.count / max(sharing, 1)

    def bandwidth_per_device(self, device: Device, sharing: int) -> float:
        """Achieved bytes/s one device moves to or from the tiers while ``sharing`` devices do.

        min(device's host link, (tier bandwidth, capped by the tier's own link) x count / sharing),
        times the device's ``offload_link_frac``.
        """
        own = self.tier.bandwidth_bytes_per_s
        if self.tier.link is not None:
            own = min(own, self.tier.link.bandwidth_bytes_per_s)
        share = own * self.count / max(sharing, 1)
        path = self.path(device)
        if path is not None:
            share = min(share, path.bandwidth_bytes_per_s)
        return share * device.efficiency.offload_link_frac

    def latency_s(self, device: Device) -> float:
        """One access: the path's latency, the tier link's and the tier's own."""
        path = self.path(device)
        link = self.tier.link
        hops = (0.0 if path is None else path.latency_s) + (0.0 if link is None else link.latency_s)
        return hops + self.tier.latency_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """Fractions of peak that real kernels reach, and fixed costs; see hardware_db/EFFICIENCY.md.

    Attributes:
        gemm_frac: fraction of dense peak FLOP/s a large 16/32-bit GEMM reaches.
        gemm_low_precision_frac: the same for 8- and 4-bit GEMMs (their peak doubles, but operand
            feeds, epilogues and the power limit do not, so they reach a smaller fraction).
        gemm_tile_tokens: GEMM row tile; a GEMM over M tokens computes ceil(M/tile)*tile rows.
        gemm_small_tile_tokens: token tile of the small-M kernels that run a GEMM of at most that
            many tokens with its operands swapped (the weights on the instruction's 64-row side,
            the tokens on its narrow N side): such a GEMM computes this many token rows; 0: none,
            every GEMM pads to ``gemm_tile_tokens``.
        attention_frac: fraction of peak FLOP/s a fused (flash) attention kernel reaches.
        mla_decode_frac: the same for MLA's absorbed decode attention (every query head of a
            sequence against one shared latent cache: a different kernel, FlashMLA, CUTLASS MLA or
            TRT-LLM's, than a prefill's flash attention); the device file's published timing of it,
            else its ``attention_frac`` (hardware_db/EFFICIENCY.md).
        memory_frac: fraction of peak memory bandwidth a streaming kernel reaches.
        expert_memory_frac: fraction of ``memory_frac``'s bandwidth the routed experts of an MoE
            layer reach (grouped or fused expert GEMMs over small per-expert weight slices and
            few tokens each: occupancy, permutation and combine); 1 = as every other kernel.
        moe_layer_latency_s: fixed time of one MoE layer's fused routed-expert kernel chain
            (routing, token alignment, two grouped GEMMs, activation, combine) beyond streaming its
            weights: what a decode step at a few tokens pays once per MoE layer.
        gemm_latency_s: fixed time of one dense GEMM kernel beyond streaming its weights (ramp-up
            and tail of a memory-bound GEMM, in a CUDA graph): what every projection of a decode
            step pays once per layer, and what makes a small per-device slice (tensor parallel)
            stream below the bandwidth a large one reaches.
        collective_bus_frac: fraction of link bandwidth a collective reaches (NCCL bus bandwidth).
        collective_latency_s: fixed cost of one collective call (launch and synchronisation).
        step_overhead_s: fixed cost of one forward step (scheduling, sampling, launches).
        request_overhead_s: fixed time one served request spends outside the forward steps (the
            serving frontend: HTTP, tokenisation, scheduling, detokenisation, streaming), added
            once to its TTFT and end-to-end latency under load (``concurrency``, ``simulate``);
            not to a static estimate, whose figures are the engine's own.
        usable_memory_frac: fraction of device memory the serving engine may use.
        offload_link_frac: fraction of a host link's (PCIe, C2C, CXL) bandwidth a bulk copy to or
            from an offload tier reaches.
    """

    gemm_frac: float = 0.7
    gemm_low_precision_frac: float = 0.5
    gemm_tile_tokens: int = 64
    gemm_small_tile_tokens: int = 0
    attention_frac: float = 0.5
    mla_decode_frac: float = 0.5
    memory_frac: float = 0.7
    expert_memory_frac: float = 1.0
    moe_layer_latency_s: float = 27e-6
    gemm_latency_s: float = 0.0
    collective_bus_frac: float = 0.8
    collective_latency_s: float = 8e-6
    step_overhead_s: float = 1.5e-3
    request_overhead_s: float = 0.0
    usable_memory_frac: float = 0.9
    offload_link_frac: float = 0.8

    def __post_init__(self) -> None:
        check_fraction(
            "efficiency",
            offload_link_frac=self.offload_link_frac,
            gemm_frac=self.gemm_frac,
            gemm_low_precision_frac=self.gemm_low_precision_frac,
            attention_frac=self.attention_frac,
            mla_decode_frac=self.mla_decode_frac,
            memory_frac=self.memory_frac,
            expert_memory_frac=self.expert_memory_frac,
            collective_bus_frac=self.collective_bus_frac,
            usable_memory_frac=self.usable_memory_frac,
        )
        if self.gemm_tile_tokens < 1:
            raise SpecError(f"efficiency.gemm_tile_tokens={self.gemm_tile_tokens!r} must be >= 1")
        small = self.gemm_small_tile_tokens
        if small < 0 or 0 < self.gemm_tile_tokens <= small:
            raise SpecError(
                f"efficiency.gemm_small_tile_tokens={self.gemm_small_tile_tokens!r} must be 0 or"
                f" between 1 and gemm_tile_tokens={self.gemm_tile_tokens!r} (exclusive)"
            )
        for name in (
            "moe_layer_latency_s",
            "gemm_latency_s",
            "collective_latency_s",
            "step_overhead_s",
            "request_overhead_s",
        ):
            if not getattr(self, name) >= 0 or _infinite(getattr(self, name)):
                raise SpecError(f"efficiency.{name}={getattr(self, name)!r} must be >= 0 and finite")


IDEAL_EFFICIENCY = Efficiency(
    gemm_frac=1.0,
    gemm_low_precision_frac=1.0,
    gemm_tile_tokens=1,
    gemm_small_tile_tokens=0,
    attention_frac=1.0,
    mla_decode_frac=1.0,
    memory_frac=1.0,
    expert_memory_frac=1.0,
    moe_layer_latency_s=0.0,
    gemm_latency_s=0.0,
    collective_bus_frac=1.0,
    collective_latency_s=0.0,
    step_overhead_s=0.0,
    request_overhead_s=0.0,
    usable_memory_frac=1.0,
    offload_link_frac=1.0,
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
    #: Per precision, the factor on the GEMM and attention fractions from the device's measured
    #: achievable matmul throughput (:func:`genmodel._achievable.matmul_scale`); a precision not
    #: listed (or without a peak): 1.
    matmul_scale: Mapping[str, float] = field(default_factory=dict)
    #: The factor on the memory fractions from the device's measured achievable memory bandwidth
    #: (:func:`genmodel._achievable.memory_scale`); 1 without a measurement.
    memory_scale: float = 1.0
    exp_per_s: float = 0.0  # peak softmax exponentials/s of the special-function units (0: not given)

    def __post_init__(self) -> None:
        owner = f"device {self.id}"
        check_positive(
            owner,
            memory_capacity_bytes=self.memory_capacity_bytes,
            memory_bandwidth_bytes_per_s=self.memory_bandwidth_bytes_per_s,
        )
        if not self.peak_flops_per_s:
            raise SpecError(f"{owner}: peak_flops_per_s is empty; at least one precision is needed")
        for dtype, value in self.peak_flops_per_s.items():
            check_dtype(f"{owner}.peak_flops_per_s", dtype)
            check_positive(owner, **{f"peak_flops_per_s[{dtype}]": value})
        if not 0 <= self.os_reserve_bytes < self.memory_capacity_bytes:
            raise SpecError(
                f"{owner}.os_reserve_bytes={self.os_reserve_bytes!r} must be >= 0 and below "
                f"memory_capacity_bytes={self.memory_capacity_bytes!r}"
            )
        if self.tdp_w is not None and (not self.tdp_w > 0 or _infinite(self.tdp_w)):
            raise SpecError(f"{owner}.tdp_w={self.tdp_w!r} must be > 0 and finite (watts)")
        if self.usd_per_hour is not None and (not self.usd_per_hour >= 0 or _infinite(self.usd_per_hour)):
            raise SpecError(f"{owner}.usd_per_hour={self.usd_per_hour!r} must be >= 0 and finite")
        for dtype, scale in self.matmul_scale.items():
            if not 0 < scale <= 1:
                raise SpecError(f"{owner}.matmul_scale[{dtype}]={scale!r} must be in (0, 1]")
        if not 0 < self.memory_scale <= 1:
            raise SpecError(f"{owner}.memory_scale={self.memory_scale!r} must be in (0, 1]")
        object.__setattr__(self, "peak_flops_per_s", FrozenMap(self.peak_flops_per_s))
        object.__setattr__(self, "matmul_scale", FrozenMap(self.matmul_scale))

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

    def compute_note(self, dtype: str, what: str = "GEMMs") -> str | None:
        """What is assumed when this device has no units for ``dtype``; None when it has.

        A wider unit (fp8 on an A100: bf16) runs the math with the operands upcast, while the
        tensors keep their ``dtype`` size in memory and in transfers (weight-only quantisation,
        vLLM's Marlin kernels). Without a wider unit the widest one the device has sets the
        peak, an optimistic bound on emulated math.

        Args:
            dtype: the precision asked for.
            what: what runs in it, for the message ("GEMMs", "attention").
        """
        used = self.compute_dtype(dtype)
        if used == dtype:
            return None
        unit = "TOPS" if used.startswith("int") else "TFLOP/s"
        peak = f"the dense {used} peak of {self.peak_flops_per_s[used] / TFLOP:,.0f} {unit}"
        head = f"{dtype} is not native on {self.id}: {what} in {dtype}"
        if DTYPE_BYTES[used] > DTYPE_BYTES[dtype]:
            return f"{head} run in {used} (operands upcast; tensors keep their {dtype} size), at {peak}"
        if DTYPE_BYTES[used] == DTYPE_BYTES[dtype]:
            return f"{head} run in {used}, at {peak}"
        return f"{head} are costed at {peak}, its widest unit: an optimistic bound on emulated {dtype}"

    @property
    def usable_memory_bytes(self) -> float:
        """Bytes the serving engine may use: (capacity - OS reserve) x usable fraction."""
        return (self.memory_capacity_bytes - self.os_reserve_bytes) * self.efficiency.usable_memory_frac

    def ideal(self) -> Device:
        """The same device with every efficiency 1 and no fixed overheads (pure roofline)."""
        return dataclasses.replace(self, efficiency=IDEAL_EFFICIENCY, matmul_scale={}, memory_scale=1.0)
