"""genmodel: what will this LLM do on that hardware, and which plan meets the latency targets?

An analytical (closed-form) model of LLM inference: roofline cost per operator, alpha-beta cost per
collective, capacity per memory tier, over a YAML database of hardware and model architectures.

Quick start::

    import genmodel
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, batch="max",
                            input_tokens=1000, output_tokens=1000, weight_dtype="fp8")
    est.tpot_s, est.to_dict()["memory"]
"""

from genmodel._api import (
    METRICS,
    OPTION_COLUMNS,
    CaseResult,
    ValidationReport,
    default_precision,
    estimate,
    public_cases_path,
    public_options_path,
    read_case_options,
    read_cases,
    validate,
)
from genmodel._collectives import (
    ALGORITHMS,
    allgather_time,
    allreduce_time,
    alltoall_time,
    p2p_time,
    reduce_scatter_time,
)
from genmodel._errors import GenModelError, InfeasibleError, SpecError, UnknownEntryError
from genmodel._hardware import Device, Efficiency, FabricTier, HostAttachment, Link, MemoryTier, System
from genmodel._memory import (
    MemoryExtras,
    MemoryUse,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    max_batch,
    memory_use,
    weight_bytes_per_device,
)
from genmodel._model import MlaSpec, ModelSpec, MoeSpec, count_params
from genmodel._ops import (
    MoeLayout,
    Op,
    OpTime,
    attended_pairs,
    expected_experts_touched,
    forward_ops,
    roofline,
)
from genmodel._parallel import Plan, ep_dispatch_bytes, moe_layout, plan_violations
from genmodel._phases import (
    Estimate,
    PhaseCost,
    RunOptions,
    Speculation,
    as_system,
    estimate_static,
    kv_transfer_time,
    mtp_model,
    step_cost,
)
from genmodel._units import DTYPE_BYTES
from genmodel._workload import Precision, Scenario
from genmodel.io import (
    hf_config_to_yaml,
    list_ids,
    load_device,
    load_device_yaml,
    load_hardware,
    load_hf_config,
    load_memory_tier,
    load_model,
    load_scenario,
    load_system,
)
from genmodel.report import describe_device, describe_model, describe_system

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DTYPE_BYTES",
    "METRICS",
    "OPTION_COLUMNS",
    "CaseResult",
    "Device",
    "Efficiency",
    "Estimate",
    "FabricTier",
    "GenModelError",
    "HostAttachment",
    "InfeasibleError",
    "Link",
    "MemoryExtras",
    "MemoryTier",
    "MemoryUse",
    "MlaSpec",
    "ModelSpec",
    "MoeLayout",
    "MoeSpec",
    "Op",
    "OpTime",
    "PhaseCost",
    "Plan",
    "Precision",
    "RunOptions",
    "Scenario",
    "SpecError",
    "Speculation",
    "System",
    "UnknownEntryError",
    "ValidationReport",
    "__version__",
    "allgather_time",
    "allreduce_time",
    "alltoall_time",
    "as_system",
    "attended_pairs",
    "count_params",
    "default_precision",
    "describe_device",
    "describe_model",
    "describe_system",
    "ep_dispatch_bytes",
    "estimate",
    "estimate_static",
    "expected_experts_touched",
    "forward_ops",
    "hf_config_to_yaml",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "kv_transfer_time",
    "list_ids",
    "load_device",
    "load_device_yaml",
    "load_hardware",
    "load_hf_config",
    "load_memory_tier",
    "load_model",
    "load_scenario",
    "load_system",
    "max_batch",
    "memory_use",
    "moe_layout",
    "mtp_model",
    "p2p_time",
    "plan_violations",
    "public_cases_path",
    "public_options_path",
    "read_case_options",
    "read_cases",
    "reduce_scatter_time",
    "roofline",
    "step_cost",
    "validate",
    "weight_bytes_per_device",
]
