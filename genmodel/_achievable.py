"""Measured achievable memory bandwidth: the factor on the memory fractions of a device whose
memory reaches a smaller share of its peak in a streaming benchmark than the devices the shared
``memory_frac`` was fitted on (the memory counterpart of ``genmodel._hardware.matmul_scale``;
hardware_db/EFFICIENCY.md, "Achievable memory bandwidth")."""

from __future__ import annotations

from genmodel._errors import SpecError

#: Measured STREAM triad bandwidth over the peak memory bandwidth of the A100 SXM4 80GB, the lowest
#: such share among the devices the shared ``memory_frac`` was fitted on (A100, H100, H200): 1.70 of
#: 2.039 TB/s (83.4 %; H100 SXM 2.97 of 3.35, 88.7 %; H200 4.15 of 4.8, 86.5 %). One instrument for
#: all of them: BabelStream (CUDA or HIP backend, default arrays, repeated runs) as the Azure
#: AI-benchmarking-guide runs it on Azure ND VMs (github.com/Azure/AI-benchmarking-guide,
#: Azure_Results/*.md, "HBM Bandwidth"). The fit saw that spread, so only a smaller share scales.
REFERENCE_MEMORY_FRAC = 1.70 / 2.039


def memory_scale(peak: float, achievable: float | None) -> float:
    """The factor on the memory fractions of a device whose measured achievable memory bandwidth
    (``achievable``, B/s; None: no measurement) is a smaller share of its ``peak`` than
    :data:`REFERENCE_MEMORY_FRAC`; at most 1, so a device that reaches as much keeps them.

    Raises:
        SpecError: an achievable bandwidth above the peak, or not positive.
    """
    if achievable is None:
        return 1.0
    if not 0 < achievable <= peak:
        raise SpecError(
            f"achievable memory bandwidth {achievable!r} must be > 0 and at most the peak {peak!r}"
        )
    return min(1.0, achievable / peak / REFERENCE_MEMORY_FRAC)
