"""genmodel: what will this LLM do on that hardware, and which plan meets the latency targets?

An analytical (closed-form) model of LLM inference: roofline cost per operator, alpha-beta cost per
collective, capacity per memory tier, over a YAML database of hardware and model architectures.

Quick start::

    import genmodel
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, batch="max",
                            input_tokens=1000, output_tokens=1000, weight_dtype="fp8")
    est.tpot_s, genmodel.report.estimate_dict(est)["memory"]

Run options (overlap, speculation, paging, prefix cache, offload, ...) are one :class:`RunOptions`
that ``estimate``, ``plan``, ``compare``, ``memory_report`` and ``sweep`` take as ``options=``;
``estimate`` also takes them by keyword (``prefix_hit_rate=0.5``), as the CLI flags and the
validation CSV columns name them (:data:`OPTION_SPECS`).
"""

from genmodel._api import (
    attached_tier,
    default_precision,
    estimate,
    max_concurrency,
    memory_report,
    run_options,
)
from genmodel._attention import (
    Attention,
    GroupedQueryAttention,
    MultiHeadLatentAttention,
    SlidingWindow,
    attended_pairs,
)
from genmodel._calibrate import Calibration, CaseFit, ParameterFit, calibrate, fit_profile, max_parameters
from genmodel._candidates import SLO_STATISTICS
from genmodel._collectives import (
    ALGORITHMS,
    allgather_time,
    allreduce_time,
    alltoall_time,
    p2p_time,
    reduce_scatter_time,
)
from genmodel._engines import ENGINES, Engine, engine_preset
from genmodel._errors import GenModelError, InfeasibleError, SpecError, UnknownEntryError
from genmodel._hardware import (
    SCALE_FACTORS,
    AttachedTier,
    Device,
    Efficiency,
    FabricTier,
    HostAttachment,
    Link,
    MemoryTier,
    System,
)
from genmodel._intervals import COVERAGE as INTERVAL_COVERAGE
from genmodel._intervals import EVIDENCE as EVIDENCE_LEVELS
from genmodel._intervals import HEADLINE as HEADLINE_METRICS
from genmodel._intervals import Interval, estimate_intervals
from genmodel._intervals import evidence as interval_evidence
from genmodel._memory import (
    MemoryExtras,
    MemoryUse,
    Spill,
    TierUse,
    max_batch,
    memory_use,
    paged_tokens,
)
from genmodel._model import ModelSpec, MoeSpec, count_params
from genmodel._ops import (
    Op,
    OpTime,
    expected_experts_touched,
    forward_ops,
    roofline,
)
from genmodel._options import (
    KV_BLOCK_TOKENS,
    NO_OFFLOAD,
    OPTION_SPECS,
    Offload,
    OptionSpec,
    RunOptions,
    Speculation,
)
from genmodel._parallel import MoeLayout, Plan, ep_dispatch_bytes, moe_layout, plan_violations
from genmodel._phases import (
    Estimate,
    PhaseCost,
    as_system,
    estimate_static,
    kv_transfer_time,
    step_cost,
)
from genmodel._planning import DEFAULT_PREFILL_CHUNKS, DEFAULT_RECHECK, PlanReport, compare, plan
from genmodel._planrows import DtypeBest
from genmodel._profiles import PARAMETERS as PROFILE_PARAMETERS
from genmodel._profiles import Profile, apply_profile, fit_bounds
from genmodel._requirements import (
    Requirements,
    ResourceRequirement,
    requirements,
    resource_symbols,
    symbolic_step_time,
)
from genmodel._search import OBJECTIVES
from genmodel._servingmodel import (
    REQUESTS_PER_CLIENT,
    SERVING_MODELS,
    WARMUP_REQUESTS,
    ClosedForm,
    ServingModel,
    Simulated,
    StepTables,
    serving_model,
)
from genmodel._simresult import SimulationResult
from genmodel._simulate_api import simulate
from genmodel._sizes import (
    expert_bytes_per_device,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    weight_bytes_per_device,
)
from genmodel._speculation import mtp_model
from genmodel._sweep import sweep
from genmodel._units import DTYPE_BYTES, WEIGHT_DTYPE_BYTES, WEIGHT_FORMATS
from genmodel._validate import (
    METRICS,
    OPTION_COLUMNS,
    CaseResult,
    ValidationReport,
    count_cases,
    public_cases_path,
    public_options_path,
    read_case_options,
    read_cases,
    validate,
)
from genmodel._workload import Precision, Scenario
from genmodel.io import (
    hf_config_to_yaml,
    list_ids,
    list_profiles,
    load_device,
    load_device_yaml,
    load_hardware,
    load_hf_config,
    load_link,
    load_link_yaml,
    load_memory_tier,
    load_model,
    load_profile,
    load_scenario,
    load_system,
    profile_to_yaml,
    table_format,
    write_table,
)
from genmodel.report import (
    describe_device,
    describe_link,
    describe_memory_tier,
    describe_model,
    describe_system,
)

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEFAULT_PREFILL_CHUNKS",
    "DEFAULT_RECHECK",
    "DTYPE_BYTES",
    "ENGINES",
    "EVIDENCE_LEVELS",
    "HEADLINE_METRICS",
    "INTERVAL_COVERAGE",
    "KV_BLOCK_TOKENS",
    "METRICS",
    "NO_OFFLOAD",
    "OBJECTIVES",
    "OPTION_COLUMNS",
    "OPTION_SPECS",
    "PROFILE_PARAMETERS",
    "REQUESTS_PER_CLIENT",
    "SCALE_FACTORS",
    "SERVING_MODELS",
    "SLO_STATISTICS",
    "WARMUP_REQUESTS",
    "WEIGHT_DTYPE_BYTES",
    "WEIGHT_FORMATS",
    "AttachedTier",
    "Attention",
    "Calibration",
    "CaseFit",
    "CaseResult",
    "ClosedForm",
    "Device",
    "DtypeBest",
    "Efficiency",
    "Engine",
    "Estimate",
    "FabricTier",
    "GenModelError",
    "GroupedQueryAttention",
    "HostAttachment",
    "InfeasibleError",
    "Interval",
    "Link",
    "MemoryExtras",
    "MemoryTier",
    "MemoryUse",
    "ModelSpec",
    "MoeLayout",
    "MoeSpec",
    "MultiHeadLatentAttention",
    "Offload",
    "Op",
    "OpTime",
    "OptionSpec",
    "ParameterFit",
    "PhaseCost",
    "Plan",
    "PlanReport",
    "Precision",
    "Profile",
    "Requirements",
    "ResourceRequirement",
    "RunOptions",
    "Scenario",
    "ServingModel",
    "Simulated",
    "SimulationResult",
    "SlidingWindow",
    "SpecError",
    "Speculation",
    "Spill",
    "StepTables",
    "System",
    "TierUse",
    "UnknownEntryError",
    "ValidationReport",
    "__version__",
    "allgather_time",
    "allreduce_time",
    "alltoall_time",
    "apply_profile",
    "as_system",
    "attached_tier",
    "attended_pairs",
    "calibrate",
    "compare",
    "count_cases",
    "count_params",
    "default_precision",
    "describe_device",
    "describe_link",
    "describe_memory_tier",
    "describe_model",
    "describe_system",
    "engine_preset",
    "ep_dispatch_bytes",
    "estimate",
    "estimate_intervals",
    "estimate_static",
    "expected_experts_touched",
    "expert_bytes_per_device",
    "fit_bounds",
    "fit_profile",
    "forward_ops",
    "hf_config_to_yaml",
    "interval_evidence",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "kv_transfer_time",
    "list_ids",
    "list_profiles",
    "load_device",
    "load_device_yaml",
    "load_hardware",
    "load_hf_config",
    "load_link",
    "load_link_yaml",
    "load_memory_tier",
    "load_model",
    "load_profile",
    "load_scenario",
    "load_system",
    "max_batch",
    "max_concurrency",
    "max_parameters",
    "memory_report",
    "memory_use",
    "moe_layout",
    "mtp_model",
    "p2p_time",
    "paged_tokens",
    "plan",
    "plan_violations",
    "profile_to_yaml",
    "public_cases_path",
    "public_options_path",
    "read_case_options",
    "read_cases",
    "reduce_scatter_time",
    "requirements",
    "resource_symbols",
    "roofline",
    "run_options",
    "serving_model",
    "simulate",
    "step_cost",
    "sweep",
    "symbolic_step_time",
    "table_format",
    "validate",
    "weight_bytes_per_device",
    "write_table",
]
