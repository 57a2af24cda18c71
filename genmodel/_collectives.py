"""Collective communication cost: alpha-beta per algorithm and per fabric tier, hierarchical.

Modelling assumptions:
- Alpha-beta (Hockney): a message of S bytes over a link of bandwidth B with hop latency alpha takes
  alpha + S/B. B is the tier's per-device, per-direction bandwidth times its bus-bandwidth
  efficiency; every collective call also pays a fixed launch/synchronisation cost c (the device's
  ``collective_latency_s``), once.
- Algorithms over n devices on one tier (Thakur, Rabenseifner, Gropp, "Optimization of Collective
  Communication Operations in MPICH", IJHPCA 2005; NCCL's ring and tree algorithms):
  ring all-reduce 2(n-1) alpha + 2(n-1)/n S/B; tree all-reduce 2 ceil(log2 n) alpha + 2 S/B
  (pipelined reduce then broadcast); direct ("two-shot") all-reduce 2 alpha + 2(n-1)/n S/B (a
  reduce-scatter and an all-gather in one step each, every peer at once, as on a switch or mesh);
  reduce-scatter and all-gather are half an all-reduce (ring (n-1) alpha + (n-1)/n S/B).
  ``nvls`` (the default) is NCCL's default on a switch that reduces in the fabric (NVLink SHARP,
  NCCL >= 2.17, H100/H200/B200 NVSwitch): a flat all-reduce of at least :data:`NVLS_MIN_BYTES`
  over a group of at least :data:`NVLS_MIN_GROUP` on a tier with ``nvls_bus_frac`` runs at that
  bus bandwidth, 2(n-1) alpha + 2(n-1)/n S/(line x nvls_bus_frac); anything else (smaller
  messages or groups, reduce-scatter, all-gather, the hierarchical steps, a tier without it) runs
  as ring. The hop latency is charged as for ring
  because NCCL itself uses ring (LL protocol) for messages up to ~1 MB and NVLS from ~2 MB on 8x
  H100 (github.com/NVIDIA/nccl-tests/issues/309), so small messages keep ring's cost.
  ``auto`` takes the fastest of all four, as NCCL's tuner does.
- A group larger than the innermost domain is hierarchical (groups are packed: domain by domain):
  all-reduce = reduce-scatter inside the domain, all-reduce of S/D across domains (D parallel
  rings, one per device's NIC), all-gather inside; all-gather = inter-domain gather of S/D, then
  intra-domain gather of S (reduce-scatter the reverse).
- All-to-all is direct (every pair at once): the bytes for peers inside the domain use the scale-up
  tier, the rest the outer tier, concurrently; the slower of the two bounds it.
- A mesh tier gives each device one link per peer: a group of n uses n-1 of its links.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from genmodel._errors import SpecError
from genmodel._system import FabricTier, System
from genmodel._units import Num, check_amount, maximum, minimum

#: Algorithms an all-reduce, reduce-scatter or all-gather may use.
ALGORITHMS = ("nvls", "ring", "tree", "direct", "auto")

#: Smallest group whose all-reduce gets a tier's NVLS bus bandwidth. On 8x H100 with NCCL_ALGO=NVLS
#: the busbw equals ring's (365-370 GB/s) for 2-4 GPUs and rises to 420, 440, 460, 480 GB/s for 5-8
#: (github.com/NVIDIA/nccl/issues/1455); the systems' nvls_bus_frac figures are 8-GPU figures, so a
#: smaller group is costed as ring (for 5-7 GPUs an underestimate of the gain).
NVLS_MIN_GROUP = 8

#: Smallest message (bytes) costed with NVLS. The serving engines reduce TP messages up to their
#: custom kernels' workspace over peer-to-peer NVLink themselves and hand only larger ones to NCCL:
#: TensorRT-LLM's AUTO strategy falls back to NCCL above getMaxRequiredWorkspaceSize, 8 MB for TP > 2
#: (cpp/tensorrt_llm/common/customAllReduceUtils.h; 64 MiB in later releases), vLLM's and SGLang's
#: custom all-reduce take up to 8 MiB; NCCL itself picks ring below ~2 MB (nccl-tests/issues/309).
#: A long prefill's messages (8192 tokens x 8192 x 2 bytes = 134 MB) are well above either.
NVLS_MIN_BYTES = 8e6


def _check(algorithm: str, message_bytes: Num, num_devices: int) -> None:
    if algorithm not in ALGORITHMS:
        raise SpecError(f"algorithm={algorithm!r} must be one of {', '.join(ALGORITHMS)}")
    _check_group(message_bytes, num_devices)


def _check_group(
    message_bytes: Num, num_devices: int, name: str = "message_bytes", devices: str = "num_devices"
) -> None:
    check_amount(name, message_bytes)
    if not num_devices >= 1:
        raise SpecError(f"{devices}={num_devices!r} must be >= 1")


def _choose(
    algorithm: str,
    *,
    ring: Callable[[], Num],
    tree: Callable[[], Num],
    direct: Callable[[], Num],
    nvls: Callable[[], Num] | None = None,
) -> Num:
    """The time of the named algorithm, or the fastest for "auto" (as NCCL's tuner picks); each
    time is evaluated only if it is needed (a plan search times collectives over whole arrays).
    ``nvls`` None: no in-switch reduction here, so "nvls" is ring."""
    times = {"ring": ring, "tree": tree, "direct": direct, "nvls": ring if nvls is None else nvls}
    if algorithm in times:
        return times[algorithm]()
    best = minimum(ring(), minimum(tree(), direct()))
    return best if nvls is None else minimum(best, nvls())


def _zero(message_bytes: Num, system: System) -> Num:
    # zero seconds that still carries the argument's type (array, symbol, quantity)
    return 0 * message_bytes / system.device.memory_bandwidth_bytes_per_s


def _bandwidth(system: System, tier: FabricTier, n: int) -> float:
    return tier.group_bandwidth_bytes_per_s(n) * system.bus_frac(tier)


def _nvls_bandwidth(system: System, tier: FabricTier, n: int) -> float | None:
    """Bus bandwidth of an in-switch (NVLS) all-reduce over n devices on ``tier``, or None."""
    if tier.nvls_bus_frac is None or n < NVLS_MIN_GROUP:
        return None
    # never below the tier's ring bus bandwidth (NCCL's tuner would take ring then)
    return tier.bandwidth_bytes_per_s * max(tier.nvls_bus_frac, system.bus_frac(tier))


def _flat_allreduce(message_bytes: Num, n: int, system: System, tier: FabricTier, algorithm: str) -> Num:
    b = _bandwidth(system, tier, n)
    a = tier.latency_s
    b_nvls = _nvls_bandwidth(system, tier, n)

    def ring_s(size: Num, bandwidth: float) -> Num:
        return 2 * (n - 1) * a + 2 * (n - 1) / n * size / bandwidth

    def ring() -> Num:
        return ring_s(message_bytes, b)

    def nvls() -> Num:
        # the engines' own P2P kernels (ring's cost) up to NVLS_MIN_BYTES, then NVLS, never below
        # the cost of the largest message they keep (time grows with the message):
        # min(ring(S), max(nvls(S), ring(T))) is ring(S) for S < T and the NVLS time above
        assert b_nvls is not None
        return minimum(ring(), maximum(ring_s(message_bytes, b_nvls), ring_s(NVLS_MIN_BYTES, b)))

    return _choose(
        algorithm,
        ring=ring,
        tree=lambda: 2 * math.ceil(math.log2(n)) * a + 2 * message_bytes / b,
        direct=lambda: 2 * a + 2 * (n - 1) / n * message_bytes / b,
        nvls=None if b_nvls is None else nvls,
    )


def _flat_half(message_bytes: Num, n: int, system: System, tier: FabricTier, algorithm: str) -> Num:
    # reduce-scatter or all-gather of a full-size message: half an all-reduce's traffic
    b = _bandwidth(system, tier, n)
    a = tier.latency_s
    volume = (n - 1) / n * message_bytes / b
    return _choose(
        algorithm,
        ring=lambda: (n - 1) * a + volume,
        tree=lambda: math.ceil(math.log2(n)) * a + message_bytes / b,
        direct=lambda: a + volume,
    )


def _split(system: System, n: int, level: int) -> tuple[int, int] | None:
    """(domain size, domains) when a group of n at tier ``level`` spans that tier's domain."""
    tier = system.fabric[level]
    domain = tier.num_domain_devices
    if domain is None or n <= domain or level == len(system.fabric) - 1:
        return None
    return domain, math.ceil(n / domain)


def _allreduce(message_bytes: Num, n: int, system: System, level: int, algorithm: str) -> Num:
    tier = system.fabric[level]
    split = _split(system, n, level)
    if split is None:
        return _flat_allreduce(message_bytes, n, system, tier, algorithm)
    domain, domains = split
    inner = 2 * _flat_half(message_bytes, domain, system, tier, algorithm)
    return inner + _allreduce(message_bytes / domain, domains, system, level + 1, algorithm)


def _gather(message_bytes: Num, n: int, system: System, level: int, algorithm: str) -> Num:
    tier = system.fabric[level]
    split = _split(system, n, level)
    if split is None:
        return _flat_half(message_bytes, n, system, tier, algorithm)
    domain, domains = split
    inner = _flat_half(message_bytes, domain, system, tier, algorithm)
    return inner + _gather(message_bytes / domain, domains, system, level + 1, algorithm)


def allreduce_time(message_bytes: Num, num_devices: int, system: System, *, algorithm: str = "nvls") -> Num:
    """Time of one all-reduce of ``message_bytes`` (per device) over ``num_devices`` devices.

    One tier: c + ring 2(n-1) alpha + 2(n-1)/n S/B (or nvls, tree, direct, auto; module
    docstring; nvls is ring with the tier's NVLS bus bandwidth where it has one).
    Spanning domains of D: c + RS(S, D) + AR(S/D, n/D on the next tier) + AG(S, D).
    Zero for one device. Source: Thakur et al. 2005, Sec. 4; NCCL's hierarchical (2D) all-reduce.

    Raises:
        SpecError: message_bytes not finite or negative, num_devices < 1, or an unknown algorithm.
    """
    _check(algorithm, message_bytes, num_devices)
    if num_devices <= 1:
        return _zero(message_bytes, system)
    return system.device.efficiency.collective_latency_s + _allreduce(
        message_bytes, num_devices, system, 0, algorithm
    )


def reduce_scatter_time(
    message_bytes: Num, num_devices: int, system: System, *, algorithm: str = "ring"
) -> Num:
    """Time of one reduce-scatter of a ``message_bytes`` buffer (each device keeps 1/n of it).

    One tier, ring: c + (n-1) alpha + (n-1)/n S/B; hierarchical as :func:`allgather_time`.

    Raises:
        SpecError: as :func:`allgather_time`.
    """
    return allgather_time(message_bytes, num_devices, system, algorithm=algorithm)


def allgather_time(message_bytes: Num, num_devices: int, system: System, *, algorithm: str = "ring") -> Num:
    """Time of one all-gather whose gathered result is ``message_bytes`` on every device.

    One tier, ring: c + (n-1) alpha + (n-1)/n S/B. Spanning domains of D: the inter-domain gather of
    S/D (one ring per device's NIC) then the intra-domain gather of S.

    Raises:
        SpecError: message_bytes not finite or negative, num_devices < 1, or an unknown algorithm.
    """
    _check(algorithm, message_bytes, num_devices)
    if num_devices <= 1:
        return _zero(message_bytes, system)
    return system.device.efficiency.collective_latency_s + _gather(
        message_bytes, num_devices, system, 0, algorithm
    )


def alltoall_time(
    send_bytes: Num,
    num_devices: int,
    system: System,
    *,
    scale_out_bytes: Num | None = None,
) -> Num:
    """Time of one direct all-to-all in which each device sends ``send_bytes`` to its peers.

    Args:
        send_bytes: bytes one device sends to the other n-1 devices (its own share excluded).
        num_devices: devices in the group (packed into domains).
        system: the fabric.
        scale_out_bytes: bytes that leave the innermost domain. By default the remote peers'
            share, send_bytes * (n - D)/(n - 1), and the rest stays inside. When given (expert-
            parallel dispatch: a token crosses to a remote domain once and is forwarded there),
            every byte of ``send_bytes`` also crosses the scale-up tier once.

    Returns:
        c + alpha + max(intra / B_up, inter / B_out), the two tiers working at once; one tier:
        c + alpha + S / B.

    Raises:
        SpecError: send_bytes or scale_out_bytes not finite or negative, or num_devices < 1.
    """
    _check_group(send_bytes, num_devices, "send_bytes")
    if scale_out_bytes is not None:
        check_amount("scale_out_bytes", scale_out_bytes)
    n = num_devices
    if n <= 1:
        return _zero(send_bytes, system)
    c = system.device.efficiency.collective_latency_s
    level = system.tier_index(n)
    if level == 0:
        tier = system.fabric[0]
        return c + tier.latency_s + send_bytes / _bandwidth(system, tier, n)
    inner, outer = system.fabric[0], system.fabric[level]
    domain = inner.num_domain_devices
    assert domain is not None  # every tier but the last has one
    inter = send_bytes * (n - domain) / (n - 1) if scale_out_bytes is None else scale_out_bytes
    intra = send_bytes - inter if scale_out_bytes is None else send_bytes
    intra_s = intra / _bandwidth(system, inner, domain)
    inter_s = inter / _bandwidth(system, outer, math.ceil(n / domain))
    return c + outer.latency_s + maximum(intra_s, inter_s)


def p2p_time(message_bytes: Num, system: System, *, group_devices: int) -> Num:
    """Time to send ``message_bytes`` to one peer, over the tier a group of ``group_devices`` needs.

    c + alpha + S / B_pair, with B_pair one link of a mesh or the whole port of a switch.

    Raises:
        SpecError: message_bytes not finite or negative, or group_devices < 1.
    """
    _check_group(message_bytes, group_devices, devices="group_devices")
    tier = system.tier_for(group_devices)
    b = tier.peer_bandwidth_bytes_per_s() * system.bus_frac(tier)
    return system.device.efficiency.collective_latency_s + tier.latency_s + message_bytes / b
