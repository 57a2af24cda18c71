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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and readers; at run time each is loaded on first use
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
    from genmodel._candidates import DEFAULT_RECHECK, SLO_STATISTICS
    from genmodel._collectives import (
        ALGORITHMS,
        allgather_time,
        allreduce_time,
        alltoall_time,
        p2p_time,
        reduce_scatter_time,
    )
    from genmodel._compare import compare
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
    from genmodel._planning import DEFAULT_PREFILL_CHUNKS, PlanReport, plan
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

#: the public names by the module that defines them, imported on first use (PEP 562), so that
#: ``import genmodel`` (and the CLI's ``--help``) loads only what is used; tests/test_package.py checks
#: that this agrees with the imports above and with ``__all__``
_LAZY: dict[str, tuple[str, ...]] = {
    "genmodel._api": (
        "attached_tier",
        "default_precision",
        "estimate",
        "max_concurrency",
        "memory_report",
        "run_options",
    ),
    "genmodel._attention": (
        "Attention",
        "GroupedQueryAttention",
        "MultiHeadLatentAttention",
        "SlidingWindow",
        "attended_pairs",
    ),
    "genmodel._calibrate": (
        "Calibration",
        "CaseFit",
        "ParameterFit",
        "calibrate",
        "fit_profile",
        "max_parameters",
    ),
    "genmodel._candidates": ("DEFAULT_RECHECK", "SLO_STATISTICS"),
    "genmodel._collectives": (
        "ALGORITHMS",
        "allgather_time",
        "allreduce_time",
        "alltoall_time",
        "p2p_time",
        "reduce_scatter_time",
    ),
    "genmodel._compare": ("compare",),
    "genmodel._engines": ("ENGINES", "Engine", "engine_preset"),
    "genmodel._errors": ("GenModelError", "InfeasibleError", "SpecError", "UnknownEntryError"),
    "genmodel._hardware": (
        "SCALE_FACTORS",
        "AttachedTier",
        "Device",
        "Efficiency",
        "FabricTier",
        "HostAttachment",
        "Link",
        "MemoryTier",
        "System",
    ),
    "genmodel._intervals": ("Interval", "estimate_intervals"),
    "genmodel._memory": (
        "MemoryExtras",
        "MemoryUse",
        "Spill",
        "TierUse",
        "max_batch",
        "memory_use",
        "paged_tokens",
    ),
    "genmodel._model": ("ModelSpec", "MoeSpec", "count_params"),
    "genmodel._ops": ("Op", "OpTime", "expected_experts_touched", "forward_ops", "roofline"),
    "genmodel._options": (
        "KV_BLOCK_TOKENS",
        "NO_OFFLOAD",
        "OPTION_SPECS",
        "Offload",
        "OptionSpec",
        "RunOptions",
        "Speculation",
    ),
    "genmodel._parallel": ("MoeLayout", "Plan", "ep_dispatch_bytes", "moe_layout", "plan_violations"),
    "genmodel._phases": (
        "Estimate",
        "PhaseCost",
        "as_system",
        "estimate_static",
        "kv_transfer_time",
        "step_cost",
    ),
    "genmodel._planning": ("DEFAULT_PREFILL_CHUNKS", "PlanReport", "plan"),
    "genmodel._planrows": ("DtypeBest",),
    "genmodel._profiles": ("Profile", "apply_profile", "fit_bounds"),
    "genmodel._requirements": (
        "Requirements",
        "ResourceRequirement",
        "requirements",
        "resource_symbols",
        "symbolic_step_time",
    ),
    "genmodel._search": ("OBJECTIVES",),
    "genmodel._servingmodel": (
        "REQUESTS_PER_CLIENT",
        "SERVING_MODELS",
        "WARMUP_REQUESTS",
        "ClosedForm",
        "ServingModel",
        "Simulated",
        "StepTables",
        "serving_model",
    ),
    "genmodel._simresult": ("SimulationResult",),
    "genmodel._simulate_api": ("simulate",),
    "genmodel._sizes": (
        "expert_bytes_per_device",
        "kv_bytes_per_sequence",
        "kv_bytes_per_token",
        "weight_bytes_per_device",
    ),
    "genmodel._speculation": ("mtp_model",),
    "genmodel._sweep": ("sweep",),
    "genmodel._units": ("DTYPE_BYTES", "WEIGHT_DTYPE_BYTES", "WEIGHT_FORMATS"),
    "genmodel._validate": (
        "METRICS",
        "OPTION_COLUMNS",
        "CaseResult",
        "ValidationReport",
        "count_cases",
        "public_cases_path",
        "public_options_path",
        "read_case_options",
        "read_cases",
        "validate",
    ),
    "genmodel._workload": ("Precision", "Scenario"),
    "genmodel.io": (
        "hf_config_to_yaml",
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
        "profile_to_yaml",
        "table_format",
        "write_table",
    ),
    "genmodel.report": (
        "describe_device",
        "describe_link",
        "describe_memory_tier",
        "describe_model",
        "describe_system",
    ),
}
#: public names that are another name in their module
_ALIASES: dict[str, tuple[str, str]] = {
    "INTERVAL_COVERAGE": ("genmodel._intervals", "COVERAGE"),
    "EVIDENCE_LEVELS": ("genmodel._intervals", "EVIDENCE"),
    "HEADLINE_METRICS": ("genmodel._intervals", "HEADLINE"),
    "interval_evidence": ("genmodel._intervals", "evidence"),
    "PROFILE_PARAMETERS": ("genmodel._profiles", "PARAMETERS"),
}
_WHERE: dict[str, tuple[str, str]] = {
    **{name: (module, name) for module, names in _LAZY.items() for name in names},
    **_ALIASES,
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept (and the subpackages
    ``io`` and ``report``, which ``import genmodel`` used to load)."""
    if name in ("io", "report"):
        return importlib.import_module(f"genmodel.{name}")
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'genmodel' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
