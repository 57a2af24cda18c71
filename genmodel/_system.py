"""Systems: how devices are put together, as tiers of fabric between them.

Modelling assumptions:
- A system is one kind of device in every position and the tiers of fabric between them,
  innermost first: an NVLink/XGMI/HCCS/UB scale-up domain, then InfiniBand/RoCE/Ethernet between
  domains. Each tier is seen from one device: its per-direction bandwidth, a per-hop latency, the
  devices it reaches and its topology (switched, a full mesh of direct links, or a ring).
- A device alone implies its usual system, built from its own scale-up and scale-out links
  (:meth:`System.of_device`); a device without links runs alone.
- What a collective reaches of a tier's bandwidth is the tier's own bus fraction where the system
  file gives one, else the device's ``efficiency.collective_bus_frac``.
- Every quantity is in SI base units (bytes, B/s, s); ``genmodel.io`` converts from the human units
  of the YAML files. Specs are values: equal specs compare and hash equal, so caches key on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genmodel._errors import SpecError
from genmodel._hardware import Device, Link, check_fraction, check_positive
from genmodel._units import GB

_LEVELS = ("scale_up", "scale_out")
_TOPOLOGIES = ("switch", "mesh", "ring")


@dataclass(frozen=True, slots=True, kw_only=True)
class FabricTier:
    """One tier of a system's fabric, as seen from one device.

    Attributes:
        name: what the fabric is (e.g. "NVLink 4 via NVSwitch").
        level: "scale_up" (inside a domain) or "scale_out" (between domains).
        topology: "switch" (every pair at the full per-device bandwidth), "mesh" (a direct link to
            each peer, so a group of n uses n-1 of the ``num_links`` links) or "ring".
        bandwidth_bytes_per_s: per device, per direction, all links of the tier together.
        latency_s: one message hop.
        num_domain_devices: devices reachable on this tier (None: unbounded, the outermost tier).
        num_links: links per device (needed for a mesh).
        bus_frac: fraction of the bandwidth a large collective reaches; None uses the device's
            ``efficiency.collective_bus_frac``.
        nvls_bus_frac: the bus bandwidth (nccl-tests busbw, 2(n-1)/n S / t) of a large all-reduce
            reduced inside the switch (NVLink SHARP, NCCL's NVLS algorithm) over a full 8-GPU
            group, as a fraction of ``bandwidth_bytes_per_s``; may exceed 1, since the switch
            reduces and a device moves (1 + 1/n) S instead of 2(n-1)/n S. None: the switch does
            not reduce (or no figure is known).
    """

    name: str
    level: str = "scale_up"
    topology: str = "switch"
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    num_domain_devices: int | None = None
    num_links: int | None = None
    bus_frac: float | None = None
    nvls_bus_frac: float | None = None

    def __post_init__(self) -> None:
        owner = f"fabric tier {self.name!r}"
        if self.level not in _LEVELS:
            raise SpecError(f"{owner}.level={self.level!r} must be one of {', '.join(_LEVELS)}")
        if self.topology not in _TOPOLOGIES:
            raise SpecError(f"{owner}.topology={self.topology!r} must be one of {', '.join(_TOPOLOGIES)}")
        check_positive(owner, bandwidth_bytes_per_s=self.bandwidth_bytes_per_s)
        if self.latency_s < 0:
            raise SpecError(f"{owner}.latency_s={self.latency_s!r} must be >= 0")
        for name in ("num_domain_devices", "num_links"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SpecError(f"{owner}.{name}={value!r} must be >= 1")
        if self.topology == "mesh" and self.num_links is None:
            raise SpecError(f"{owner}: topology='mesh' needs num_links")
        if self.bus_frac is not None:
            check_fraction(owner, bus_frac=self.bus_frac)
        if self.nvls_bus_frac is not None:
            if self.topology != "switch":
                raise SpecError(f"{owner}: nvls_bus_frac needs topology='switch'")
            if not 0 < self.nvls_bus_frac <= 2:
                raise SpecError(f"{owner}.nvls_bus_frac={self.nvls_bus_frac!r} must be in (0, 2]")

    def group_bandwidth_bytes_per_s(self, group_devices: int) -> float:
        """Per-device bandwidth a collective over ``group_devices`` devices can use on this tier.

        A mesh gives each device one link per peer, so a group of n uses n-1 of its links.
        """
        if self.topology == "mesh":
            assert self.num_links is not None
            return (
                self.bandwidth_bytes_per_s * min(max(group_devices - 1, 1), self.num_links) / self.num_links
            )
        return self.bandwidth_bytes_per_s

    def peer_bandwidth_bytes_per_s(self) -> float:
        """Bandwidth between one pair of devices (one link of a mesh; the whole port elsewhere)."""
        return self.group_bandwidth_bytes_per_s(2)

    @classmethod
    def of_link(cls, link: Link, *, level: str) -> FabricTier:
        """A switched tier with the link's bandwidth, latency and domain."""
        return cls(
            name=link.name,
            level=level,
            bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
            latency_s=link.latency_s,
            num_domain_devices=link.num_domain_devices,
        )


#: The figures :meth:`System.scaled` multiplies (its keyword names): sweeps and requirements use them.
SCALE_FACTORS = ("flops", "memory_bandwidth", "memory_capacity", "scale_up_bandwidth", "scale_out_bandwidth")


@dataclass(frozen=True, slots=True, kw_only=True)
class System:
    """Devices put together: nodes, the fabric tiers between them, and the default overlap.

    Attributes:
        id: the system id (the device id for a system implied by a bare device).
        device: the accelerator every position holds.
        fabric: tiers innermost first; every tier but the last has a domain size, increasing.
        num_node_devices: devices per node (server, tray or board).
        max_devices: the largest deployment the fabric is built for (None: unbounded).
        comm_overlap_frac: default fraction of communication hidden behind compute.
    """

    id: str
    name: str = ""
    device: Device
    fabric: tuple[FabricTier, ...]
    num_node_devices: int = 1
    max_devices: int | None = None
    comm_overlap_frac: float = 0.0

    def __post_init__(self) -> None:
        owner = f"system {self.id}"
        object.__setattr__(self, "fabric", tuple(self.fabric))
        if not self.fabric:
            raise SpecError(f"{owner}: fabric is empty; at least one tier is needed")
        previous = 0
        for i, tier in enumerate(self.fabric[:-1]):
            domain = tier.num_domain_devices
            if domain is None or domain <= previous:
                raise SpecError(
                    f"{owner}: fabric[{i}].num_domain_devices={domain!r} must be set and grow outward"
                )
            previous = domain
        if self.num_node_devices < 1:
            raise SpecError(f"{owner}.num_node_devices={self.num_node_devices!r} must be >= 1")
        if self.max_devices is not None and self.max_devices < 1:
            raise SpecError(f"{owner}.max_devices={self.max_devices!r} must be >= 1")
        if not 0 <= self.comm_overlap_frac <= 1:
            raise SpecError(f"{owner}.comm_overlap_frac={self.comm_overlap_frac!r} must be in [0, 1]")

    @classmethod
    def of_device(cls, device: Device) -> System:
        """The usual system of a device: its own scale-up domain, then its scale-out link.

        Raises:
            SpecError: the device has no link at all (it can only run alone).
        """
        tiers: list[FabricTier] = []
        if device.scale_up is not None:
            tiers.append(FabricTier.of_link(device.scale_up, level="scale_up"))
        if device.scale_out is not None and (not tiers or tiers[-1].num_domain_devices is not None):
            out = FabricTier.of_link(device.scale_out, level="scale_out")
            tiers.append(dataclasses.replace(out, num_domain_devices=None))
        if not tiers:
            # a device without links runs alone: a one-device "fabric" that no collective uses
            tiers.append(
                FabricTier(
                    name="none",
                    bandwidth_bytes_per_s=device.memory_bandwidth_bytes_per_s,
                    num_domain_devices=1,
                )
            )
            return cls(id=device.id, name=device.name, device=device, fabric=tuple(tiers), max_devices=1)
        domain = tiers[0].num_domain_devices if tiers[0].level == "scale_up" else 1
        # without a scale-out link the scale-up domain is as far as the devices reach
        limit = tiers[-1].num_domain_devices
        return cls(
            id=device.id,
            name=device.name,
            device=device,
            fabric=tuple(tiers),
            num_node_devices=domain or 1,
            max_devices=limit,
        )

    def fabric_note(self, devices: int) -> str | None:
        """What a deployment of ``devices`` takes the fabric between nodes to be, where no system
        file describes it: a system made from a bare device's own links (:meth:`of_device`) whose
        deployment spans more than one node; None otherwise.

        Such a deployment is taken as nodes of the device's scale-up domain joined by the device
        file's ``network.scale_out`` link, with no limit on their number (a system file sets
        ``max_devices``); the note says so, since nothing in the database vouches for it.
        """
        if self.id != self.device.id or devices <= self.num_node_devices:
            return None
        outer = self.fabric[-1]
        nodes = -(-devices // self.num_node_devices)
        per_node = f"nodes of {self.num_node_devices}" if self.num_node_devices > 1 else "nodes of one"
        return (
            f"{self.device.id} has no system in hardware_db: its {devices} devices are taken as {nodes} "
            f"{per_node} joined by its scale-out link, {outer.name}: "
            f"{outer.bandwidth_bytes_per_s / GB:g} GB/s per device, with no limit on their number"
        )

    def tier_index(self, group_devices: int) -> int:
        """Index of the innermost tier whose domain holds ``group_devices`` devices (packed)."""
        for i, tier in enumerate(self.fabric):
            if tier.num_domain_devices is None or group_devices <= tier.num_domain_devices:
                return i
        return len(self.fabric) - 1

    def tier_for(self, group_devices: int) -> FabricTier:
        """The innermost tier a group of ``group_devices`` packed devices fits in."""
        return self.fabric[self.tier_index(group_devices)]

    def bus_frac(self, tier: FabricTier) -> float:
        """Bus-bandwidth efficiency on ``tier`` (the tier's own, else the device's)."""
        return self.device.efficiency.collective_bus_frac if tier.bus_frac is None else tier.bus_frac

    def with_device(self, device: Device) -> System:
        """The same fabric around another device (e.g. one with edited figures)."""
        return dataclasses.replace(self, device=device)

    def scaled(
        self,
        *,
        flops: float = 1.0,
        memory_bandwidth: float = 1.0,
        memory_capacity: float = 1.0,
        scale_up_bandwidth: float = 1.0,
        scale_out_bandwidth: float = 1.0,
    ) -> System:
        """The same system with its figures multiplied: what-if studies, sweeps and requirements.

        Args:
            flops: factor on every precision's peak FLOP/s and on the exponential rate.
            memory_bandwidth: factor on the device memory bandwidth.
            memory_capacity: factor on the device memory capacity (the OS reserve is kept).
            scale_up_bandwidth: factor on the bandwidth of every scale-up tier.
            scale_out_bandwidth: factor on the bandwidth of every scale-out tier.

        Raises:
            SpecError: a factor is not positive.
        """
        factors = {
            "flops": flops,
            "memory_bandwidth": memory_bandwidth,
            "memory_capacity": memory_capacity,
            "scale_up_bandwidth": scale_up_bandwidth,
            "scale_out_bandwidth": scale_out_bandwidth,
        }
        check_positive(f"system {self.id}.scaled", **factors)
        d = self.device
        device = dataclasses.replace(
            d,
            peak_flops_per_s={k: v * flops for k, v in d.peak_flops_per_s.items()},
            exp_per_s=d.exp_per_s * flops,
            memory_bandwidth_bytes_per_s=d.memory_bandwidth_bytes_per_s * memory_bandwidth,
            memory_capacity_bytes=d.os_reserve_bytes
            + (d.memory_capacity_bytes - d.os_reserve_bytes) * memory_capacity,
        )
        by_level = {"scale_up": scale_up_bandwidth, "scale_out": scale_out_bandwidth}
        fabric = tuple(
            dataclasses.replace(t, bandwidth_bytes_per_s=t.bandwidth_bytes_per_s * by_level[t.level])
            for t in self.fabric
        )
        return dataclasses.replace(self, device=device, fabric=fabric)

    def ideal(self) -> System:
        """Every efficiency 1: the device's, and each tier's bus-bandwidth fraction."""
        return dataclasses.replace(
            self,
            device=self.device.ideal(),
            fabric=tuple(dataclasses.replace(t, bus_frac=1.0) for t in self.fabric),
        )


def as_system(hardware: System | Device) -> System:
    """A system as given, or the usual system a bare device implies.

    Raises:
        SpecError: ``hardware`` is neither (an id is resolved before: ``load_hardware``).
    """
    if isinstance(hardware, System):
        return hardware
    if isinstance(hardware, Device):
        return System.of_device(hardware)
    raise SpecError(f"hardware={hardware!r} must be an id (a string), a Device or a System")
