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
    CaseResult,
    ValidationReport,
    default_precision,
    estimate,
    public_cases_path,
    read_cases,
    validate,
)
from genmodel._errors import GenModelError, InfeasibleError, SpecError, UnknownEntryError
from genmodel._hardware import Device, Efficiency, HostAttachment, Link, MemoryTier
from genmodel._memory import (
    MemoryUse,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    max_batch,
    memory_use,
    weight_bytes_per_device,
)
from genmodel._model import MlaSpec, ModelSpec, MoeSpec, count_params
from genmodel._ops import (
    Op,
    OpTime,
    attended_pairs,
    expected_experts_touched,
    forward_ops,
    roofline,
)
from genmodel._parallel import Plan, allreduce_time, plan_violations
from genmodel._phases import Estimate, PhaseCost, estimate_static, step_cost
from genmodel._units import DTYPE_BYTES
from genmodel._workload import Precision, Scenario
from genmodel.io import (
    hf_config_to_yaml,
    list_ids,
    load_device,
    load_device_yaml,
    load_hf_config,
    load_memory_tier,
    load_model,
    load_scenario,
)
from genmodel.report import describe_device, describe_model

__version__ = "0.1.0"

__all__ = [
    "DTYPE_BYTES",
    "METRICS",
    "CaseResult",
    "Device",
    "Efficiency",
    "Estimate",
    "GenModelError",
    "HostAttachment",
    "InfeasibleError",
    "Link",
    "MemoryTier",
    "MemoryUse",
    "MlaSpec",
    "ModelSpec",
    "MoeSpec",
    "Op",
    "OpTime",
    "PhaseCost",
    "Plan",
    "Precision",
    "Scenario",
    "SpecError",
    "UnknownEntryError",
    "ValidationReport",
    "__version__",
    "allreduce_time",
    "attended_pairs",
    "count_params",
    "default_precision",
    "describe_device",
    "describe_model",
    "estimate",
    "estimate_static",
    "expected_experts_touched",
    "forward_ops",
    "hf_config_to_yaml",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "list_ids",
    "load_device",
    "load_device_yaml",
    "load_hf_config",
    "load_memory_tier",
    "load_model",
    "load_scenario",
    "max_batch",
    "memory_use",
    "plan_violations",
    "public_cases_path",
    "read_cases",
    "roofline",
    "step_cost",
    "validate",
    "weight_bytes_per_device",
]
