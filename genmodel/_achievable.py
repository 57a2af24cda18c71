"""Measured achievable throughput against the datasheet peaks: the factors on the shared efficiency
fractions of a device whose matrix units (:func:`matmul_scale`) or memory (:func:`memory_scale`)
reach a smaller share of their peak in a microbenchmark than the devices those fractions were
fitted on (hardware_db/EFFICIENCY.md, "Achievable matmul throughput" and "Achievable memory
bandwidth")."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from genmodel._errors import SpecError
from genmodel._units import DTYPE_BYTES

#: Measured maximum achievable matmul FLOP/s over the dense peak of the H100 SXM, the device the
#: shared GEMM fractions were fitted on (with the A100 and H200): 794.5 of 989.4 TFLOPS in bf16 and
#: 1,402.6 of 1,978.9 in fp8 (S. Bekman, ml-engineering, compute/accelerator/README.md, "Maximum
#: Achievable Matmul FLOPS comparison table", v2: torch matmul, best shape, mean of 100 runs). Keyed
#: by whether the GEMM fraction is ``gemm_frac`` (wider than 8 bits) or ``gemm_low_precision_frac``.
REFERENCE_MATMUL_FRAC: Mapping[bool, float] = MappingProxyType({False: 794.5 / 989.4, True: 1402.6 / 1978.9})


def matmul_scale(peaks: Mapping[str, float], achievable: Mapping[str, float]) -> dict[str, float]:
    """Per precision, the factor on the GEMM and attention fractions of a device whose measured
    maximum achievable matmul throughput (``achievable``, FLOP/s) is a smaller share of its dense
    peak than the reference device's (:data:`REFERENCE_MATMUL_FRAC`); at most 1, so a device that
    reaches as much of its peak as the reference keeps the shared fractions.

    Raises:
        SpecError: an achievable figure for a precision without a peak, or above its peak.
    """
    out = {}
    for dtype, value in achievable.items():
        if dtype not in peaks or not 0 < value <= peaks[dtype]:
            raise SpecError(f"achievable[{dtype}]={value!r} must be > 0 and at most the {dtype} dense peak")
        share = value / peaks[dtype] / REFERENCE_MATMUL_FRAC[DTYPE_BYTES[dtype] <= 1]
        if share < 1:
            out[dtype] = share
    return out


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
