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

from typing import TYPE_CHECKING

from genmodel import _lazy

# The public names, for type checkers (``name as name`` and ``NAME = module.attribute`` are the forms
# they take as re-exported). Nothing here runs: at run time _PUBLIC below, the same names with their
# modules, gives ``__all__``, and genmodel/_lazy.py imports each name from its module on first use,
# so ``import genmodel`` (and the CLI's ``--help``) loads only what is used.
if TYPE_CHECKING:
    from genmodel import _intervals, _profiles
    from genmodel._api import attached_tier as attached_tier
    from genmodel._api import default_precision as default_precision
    from genmodel._api import estimate as estimate
    from genmodel._api import max_concurrency as max_concurrency
    from genmodel._api import memory_report as memory_report
    from genmodel._api import run_options as run_options
    from genmodel._attention import Attention as Attention
    from genmodel._attention import GroupedQueryAttention as GroupedQueryAttention
    from genmodel._attention import MultiHeadLatentAttention as MultiHeadLatentAttention
    from genmodel._attention import SlidingWindow as SlidingWindow
    from genmodel._attention import attended_pairs as attended_pairs
    from genmodel._calibrate import calibrate as calibrate
    from genmodel._calibrate import fit_profile as fit_profile
    from genmodel._calibrate import max_parameters as max_parameters
    from genmodel._calibration import Calibration as Calibration
    from genmodel._calibration import CaseFit as CaseFit
    from genmodel._calibration import ParameterFit as ParameterFit
    from genmodel._candidates import DEFAULT_RECHECK as DEFAULT_RECHECK
    from genmodel._candidates import SLO_STATISTICS as SLO_STATISTICS
    from genmodel._collectives import ALGORITHMS as ALGORITHMS
    from genmodel._collectives import allgather_time as allgather_time
    from genmodel._collectives import allreduce_time as allreduce_time
    from genmodel._collectives import alltoall_time as alltoall_time
    from genmodel._collectives import p2p_time as p2p_time
    from genmodel._collectives import reduce_scatter_time as reduce_scatter_time
    from genmodel._compare import compare as compare
    from genmodel._enginepresets import ENGINES as ENGINES
    from genmodel._enginepresets import engine_preset as engine_preset
    from genmodel._engines import Engine as Engine
    from genmodel._errors import GenModelError as GenModelError
    from genmodel._errors import InfeasibleError as InfeasibleError
    from genmodel._errors import SpecError as SpecError
    from genmodel._errors import UnknownEntryError as UnknownEntryError
    from genmodel._forwardpass import step_cost as step_cost
    from genmodel._hardware import AttachedTier as AttachedTier
    from genmodel._hardware import Device as Device
    from genmodel._hardware import Efficiency as Efficiency
    from genmodel._hardware import HostAttachment as HostAttachment
    from genmodel._hardware import Link as Link
    from genmodel._hardware import MemoryTier as MemoryTier
    from genmodel._intervals import Interval as Interval
    from genmodel._intervals import estimate_intervals as estimate_intervals
    from genmodel._memory import MemoryExtras as MemoryExtras
    from genmodel._memory import MemoryUse as MemoryUse
    from genmodel._memory import Spill as Spill
    from genmodel._memory import TierUse as TierUse
    from genmodel._memory import max_batch as max_batch
    from genmodel._memory import memory_use as memory_use
    from genmodel._memory import paged_tokens as paged_tokens
    from genmodel._model import ModelSpec as ModelSpec
    from genmodel._model import MoeSpec as MoeSpec
    from genmodel._model import count_params as count_params
    from genmodel._ops import Op as Op
    from genmodel._ops import OpTime as OpTime
    from genmodel._ops import expected_experts_touched as expected_experts_touched
    from genmodel._ops import forward_ops as forward_ops
    from genmodel._ops import roofline as roofline
    from genmodel._options import KV_BLOCK_TOKENS as KV_BLOCK_TOKENS
    from genmodel._options import NO_OFFLOAD as NO_OFFLOAD
    from genmodel._options import OPTION_SPECS as OPTION_SPECS
    from genmodel._options import Offload as Offload
    from genmodel._options import OptionSpec as OptionSpec
    from genmodel._options import RunOptions as RunOptions
    from genmodel._options import Speculation as Speculation
    from genmodel._parallel import MoeLayout as MoeLayout
    from genmodel._parallel import Plan as Plan
    from genmodel._parallel import ep_dispatch_bytes as ep_dispatch_bytes
    from genmodel._parallel import moe_layout as moe_layout
    from genmodel._parallel import plan_violations as plan_violations
    from genmodel._phases import Estimate as Estimate
    from genmodel._phases import PhaseCost as PhaseCost
    from genmodel._phases import estimate_static as estimate_static
    from genmodel._phases import kv_transfer_time as kv_transfer_time
    from genmodel._planning import DEFAULT_PREFILL_CHUNKS as DEFAULT_PREFILL_CHUNKS
    from genmodel._planning import PlanReport as PlanReport
    from genmodel._planning import plan as plan
    from genmodel._planrows import DtypeBest as DtypeBest
    from genmodel._profiles import Profile as Profile
    from genmodel._profiles import apply_profile as apply_profile
    from genmodel._profiles import fit_bounds as fit_bounds
    from genmodel._requirements import Requirements as Requirements
    from genmodel._requirements import ResourceRequirement as ResourceRequirement
    from genmodel._requirements import requirements as requirements
    from genmodel._requirements import resource_symbols as resource_symbols
    from genmodel._requirements import symbolic_step_time as symbolic_step_time
    from genmodel._search import OBJECTIVES as OBJECTIVES
    from genmodel._servingmodel import REQUESTS_PER_CLIENT as REQUESTS_PER_CLIENT
    from genmodel._servingmodel import SERVING_MODELS as SERVING_MODELS
    from genmodel._servingmodel import WARMUP_REQUESTS as WARMUP_REQUESTS
    from genmodel._servingmodel import ClosedForm as ClosedForm
    from genmodel._servingmodel import ServingModel as ServingModel
    from genmodel._servingmodel import Simulated as Simulated
    from genmodel._servingmodel import serving_model as serving_model
    from genmodel._simestimate import StepTables as StepTables
    from genmodel._simresult import SimulationResult as SimulationResult
    from genmodel._simulate_api import simulate as simulate
    from genmodel._sizes import expert_bytes_per_device as expert_bytes_per_device
    from genmodel._sizes import kv_bytes_per_sequence as kv_bytes_per_sequence
    from genmodel._sizes import kv_bytes_per_token as kv_bytes_per_token
    from genmodel._sizes import weight_bytes_per_device as weight_bytes_per_device
    from genmodel._speculation import mtp_model as mtp_model
    from genmodel._sweep import sweep as sweep
    from genmodel._system import SCALE_FACTORS as SCALE_FACTORS
    from genmodel._system import FabricTier as FabricTier
    from genmodel._system import System as System
    from genmodel._system import as_system as as_system
    from genmodel._units import DTYPE_BYTES as DTYPE_BYTES
    from genmodel._units import WEIGHT_DTYPE_BYTES as WEIGHT_DTYPE_BYTES
    from genmodel._units import WEIGHT_FORMATS as WEIGHT_FORMATS
    from genmodel._validate import METRICS as METRICS
    from genmodel._validate import OPTION_COLUMNS as OPTION_COLUMNS
    from genmodel._validate import count_cases as count_cases
    from genmodel._validate import public_cases_path as public_cases_path
    from genmodel._validate import public_options_path as public_options_path
    from genmodel._validate import read_case_options as read_case_options
    from genmodel._validate import read_cases as read_cases
    from genmodel._validate import validate as validate
    from genmodel._validate_report import CaseResult as CaseResult
    from genmodel._validate_report import ValidationReport as ValidationReport
    from genmodel._workload import LengthSpreads as LengthSpreads
    from genmodel._workload import Precision as Precision
    from genmodel._workload import Scenario as Scenario
    from genmodel.io import hf_config_to_yaml as hf_config_to_yaml
    from genmodel.io import list_ids as list_ids
    from genmodel.io import list_profiles as list_profiles
    from genmodel.io import load_device as load_device
    from genmodel.io import load_device_yaml as load_device_yaml
    from genmodel.io import load_hardware as load_hardware
    from genmodel.io import load_hf_config as load_hf_config
    from genmodel.io import load_link as load_link
    from genmodel.io import load_link_yaml as load_link_yaml
    from genmodel.io import load_memory_tier as load_memory_tier
    from genmodel.io import load_model as load_model
    from genmodel.io import load_profile as load_profile
    from genmodel.io import load_scenario as load_scenario
    from genmodel.io import load_system as load_system
    from genmodel.io import profile_to_yaml as profile_to_yaml
    from genmodel.io import table_format as table_format
    from genmodel.io import write_table as write_table
    from genmodel.report import describe_device as describe_device
    from genmodel.report import describe_link as describe_link
    from genmodel.report import describe_memory_tier as describe_memory_tier
    from genmodel.report import describe_model as describe_model
    from genmodel.report import describe_system as describe_system

    EVIDENCE_LEVELS = _intervals.EVIDENCE
    HEADLINE_METRICS = _intervals.HEADLINE
    INTERVAL_COVERAGE = _intervals.COVERAGE
    PROFILE_PARAMETERS = _profiles.PARAMETERS
    interval_evidence = _intervals.evidence

#: each public name -> its module (``module:attribute`` where it has another name there), as the
#: block above imports it (tests/test_package.py checks they agree): what the lazy ``__getattr__`` reads
_PUBLIC = {
    "attached_tier": "genmodel._api",
    "default_precision": "genmodel._api",
    "estimate": "genmodel._api",
    "max_concurrency": "genmodel._api",
    "memory_report": "genmodel._api",
    "run_options": "genmodel._api",
    "Attention": "genmodel._attention",
    "GroupedQueryAttention": "genmodel._attention",
    "MultiHeadLatentAttention": "genmodel._attention",
    "SlidingWindow": "genmodel._attention",
    "attended_pairs": "genmodel._attention",
    "calibrate": "genmodel._calibrate",
    "fit_profile": "genmodel._calibrate",
    "max_parameters": "genmodel._calibrate",
    "Calibration": "genmodel._calibration",
    "CaseFit": "genmodel._calibration",
    "ParameterFit": "genmodel._calibration",
    "DEFAULT_RECHECK": "genmodel._candidates",
    "SLO_STATISTICS": "genmodel._candidates",
    "ALGORITHMS": "genmodel._collectives",
    "allgather_time": "genmodel._collectives",
    "allreduce_time": "genmodel._collectives",
    "alltoall_time": "genmodel._collectives",
    "p2p_time": "genmodel._collectives",
    "reduce_scatter_time": "genmodel._collectives",
    "compare": "genmodel._compare",
    "ENGINES": "genmodel._enginepresets",
    "engine_preset": "genmodel._enginepresets",
    "Engine": "genmodel._engines",
    "GenModelError": "genmodel._errors",
    "InfeasibleError": "genmodel._errors",
    "SpecError": "genmodel._errors",
    "UnknownEntryError": "genmodel._errors",
    "step_cost": "genmodel._forwardpass",
    "AttachedTier": "genmodel._hardware",
    "Device": "genmodel._hardware",
    "Efficiency": "genmodel._hardware",
    "HostAttachment": "genmodel._hardware",
    "Link": "genmodel._hardware",
    "MemoryTier": "genmodel._hardware",
    "Interval": "genmodel._intervals",
    "estimate_intervals": "genmodel._intervals",
    "MemoryExtras": "genmodel._memory",
    "MemoryUse": "genmodel._memory",
    "Spill": "genmodel._memory",
    "TierUse": "genmodel._memory",
    "max_batch": "genmodel._memory",
    "memory_use": "genmodel._memory",
    "paged_tokens": "genmodel._memory",
    "ModelSpec": "genmodel._model",
    "MoeSpec": "genmodel._model",
    "count_params": "genmodel._model",
    "Op": "genmodel._ops",
    "OpTime": "genmodel._ops",
    "expected_experts_touched": "genmodel._ops",
    "forward_ops": "genmodel._ops",
    "roofline": "genmodel._ops",
    "KV_BLOCK_TOKENS": "genmodel._options",
    "NO_OFFLOAD": "genmodel._options",
    "OPTION_SPECS": "genmodel._options",
    "Offload": "genmodel._options",
    "OptionSpec": "genmodel._options",
    "RunOptions": "genmodel._options",
    "Speculation": "genmodel._options",
    "MoeLayout": "genmodel._parallel",
    "Plan": "genmodel._parallel",
    "ep_dispatch_bytes": "genmodel._parallel",
    "moe_layout": "genmodel._parallel",
    "plan_violations": "genmodel._parallel",
    "Estimate": "genmodel._phases",
    "PhaseCost": "genmodel._phases",
    "estimate_static": "genmodel._phases",
    "kv_transfer_time": "genmodel._phases",
    "DEFAULT_PREFILL_CHUNKS": "genmodel._planning",
    "PlanReport": "genmodel._planning",
    "plan": "genmodel._planning",
    "DtypeBest": "genmodel._planrows",
    "Profile": "genmodel._profiles",
    "apply_profile": "genmodel._profiles",
    "fit_bounds": "genmodel._profiles",
    "Requirements": "genmodel._requirements",
    "ResourceRequirement": "genmodel._requirements",
    "requirements": "genmodel._requirements",
    "resource_symbols": "genmodel._requirements",
    "symbolic_step_time": "genmodel._requirements",
    "OBJECTIVES": "genmodel._search",
    "REQUESTS_PER_CLIENT": "genmodel._servingmodel",
    "SERVING_MODELS": "genmodel._servingmodel",
    "WARMUP_REQUESTS": "genmodel._servingmodel",
    "ClosedForm": "genmodel._servingmodel",
    "ServingModel": "genmodel._servingmodel",
    "Simulated": "genmodel._servingmodel",
    "serving_model": "genmodel._servingmodel",
    "StepTables": "genmodel._simestimate",
    "SimulationResult": "genmodel._simresult",
    "simulate": "genmodel._simulate_api",
    "expert_bytes_per_device": "genmodel._sizes",
    "kv_bytes_per_sequence": "genmodel._sizes",
    "kv_bytes_per_token": "genmodel._sizes",
    "weight_bytes_per_device": "genmodel._sizes",
    "mtp_model": "genmodel._speculation",
    "sweep": "genmodel._sweep",
    "SCALE_FACTORS": "genmodel._system",
    "FabricTier": "genmodel._system",
    "System": "genmodel._system",
    "as_system": "genmodel._system",
    "DTYPE_BYTES": "genmodel._units",
    "WEIGHT_DTYPE_BYTES": "genmodel._units",
    "WEIGHT_FORMATS": "genmodel._units",
    "METRICS": "genmodel._validate",
    "OPTION_COLUMNS": "genmodel._validate",
    "count_cases": "genmodel._validate",
    "public_cases_path": "genmodel._validate",
    "public_options_path": "genmodel._validate",
    "read_case_options": "genmodel._validate",
    "read_cases": "genmodel._validate",
    "validate": "genmodel._validate",
    "CaseResult": "genmodel._validate_report",
    "ValidationReport": "genmodel._validate_report",
    "LengthSpreads": "genmodel._workload",
    "Precision": "genmodel._workload",
    "Scenario": "genmodel._workload",
    "hf_config_to_yaml": "genmodel.io",
    "list_ids": "genmodel.io",
    "list_profiles": "genmodel.io",
    "load_device": "genmodel.io",
    "load_device_yaml": "genmodel.io",
    "load_hardware": "genmodel.io",
    "load_hf_config": "genmodel.io",
    "load_link": "genmodel.io",
    "load_link_yaml": "genmodel.io",
    "load_memory_tier": "genmodel.io",
    "load_model": "genmodel.io",
    "load_profile": "genmodel.io",
    "load_scenario": "genmodel.io",
    "load_system": "genmodel.io",
    "profile_to_yaml": "genmodel.io",
    "table_format": "genmodel.io",
    "write_table": "genmodel.io",
    "describe_device": "genmodel.report",
    "describe_link": "genmodel.report",
    "describe_memory_tier": "genmodel.report",
    "describe_model": "genmodel.report",
    "describe_system": "genmodel.report",
    "EVIDENCE_LEVELS": "genmodel._intervals:EVIDENCE",
    "HEADLINE_METRICS": "genmodel._intervals:HEADLINE",
    "INTERVAL_COVERAGE": "genmodel._intervals:COVERAGE",
    "PROFILE_PARAMETERS": "genmodel._profiles:PARAMETERS",
    "interval_evidence": "genmodel._intervals:evidence",
}

__version__ = "0.1.0"
__getattr__, __dir__ = _lazy.attach(__name__, _PUBLIC, submodules=("io", "report"), extra=("__version__",))
