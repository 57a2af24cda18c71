"""Schemas of the YAML files (pydantic): unknown keys and impossible values fail with their path."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genmodel._errors import SpecError
from genmodel._units import check_weight_dtype
from genmodel._workload import check_keep_rule

# no figure of a database file may be infinite or NaN (YAML spells them .inf and .nan)
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Source = Annotated[str, Field(min_length=3)]
#: the form of every id of the database (a profile's, a model's, a device's ...)
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]


def as_id(name: str, text: str) -> str:
    """``text`` in the form of an id: lowercase, each run of characters other than letters, digits,
    '.', '_' and '-' one '-', none at the ends (``My Model (v2)`` -> ``my-model-v2``).

    Raises:
        SpecError: ``name=text`` has no letter or digit.
    """
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    if not re.match(ID_PATTERN, slug):
        raise SpecError(f"{name}={text!r} has no letter or digit to make an id of")
    return slug


class _Strict(BaseModel):
    # (each schema is built when first used, not at import: a command loads a few of them)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DenseTflopsY(_Strict):
    fp32: Positive | None = None
    bf16: Positive | None = None
    fp16: Positive | None = None
    fp8: Positive | None = None
    int8: Positive | None = None
    fp4: Positive | None = None
    int4: Positive | None = None


class ComputeY(_Strict):
    dense_tflops: DenseTflopsY
    source: Source
    #: measured maximum achievable matmul TFLOPS per precision (hardware_db/EFFICIENCY.md), with its source
    achievable_tflops: DenseTflopsY | None = None
    achievable_source: Source | None = None
    #: peak softmax exponentials of the special-function units, tera per second, with its source
    exp_tera_per_s: Positive | None = None
    exp_source: Source | None = None

    @model_validator(mode="after")
    def _sourced(self) -> ComputeY:
        if (self.achievable_tflops is None) != (self.achievable_source is None):
            raise ValueError("achievable_tflops and achievable_source go together")
        if (self.exp_tera_per_s is None) != (self.exp_source is None):
            raise ValueError("exp_tera_per_s and exp_source go together")
        return self


class LocalMemoryY(_Strict):
    technology: str
    capacity_gib: Positive
    bandwidth_tb_per_s: Positive
    shared_with_host: bool = False
    os_reserve_gib: NonNegative = 0.0
    source: Source
    #: measured achievable bandwidth of a streaming benchmark (hardware_db/EFFICIENCY.md), with its source
    achievable_tb_per_s: Positive | None = None
    achievable_source: Source | None = None

    @model_validator(mode="after")
    def _sourced(self) -> LocalMemoryY:
        if (self.achievable_tb_per_s is None) != (self.achievable_source is None):
            raise ValueError("achievable_tb_per_s and achievable_source go together")
        return self


class HostY(_Strict):
    tier: Id
    link: str
    link_bandwidth_gb_per_s: Positive
    link_latency_us: NonNegative
    source: Source


class MemoryY(_Strict):
    local: LocalMemoryY
    host: HostY | None = None


class LinkY(_Strict):
    name: str
    bandwidth_gb_per_s: Positive
    latency_us: NonNegative
    domain_size: Count | None = None
    source: Source


class InterconnectY(_Strict):
    scale_up: LinkY | None = None
    scale_out: LinkY | None = None


class PowerY(_Strict):
    tdp_w: Positive
    source: Source


class PriceY(_Strict):
    usd_per_hour: Positive
    source: Source


class EfficiencyY(_Strict):
    gemm_frac: Fraction
    gemm_low_precision_frac: Fraction
    gemm_tile_tokens: Count
    #: small-M (swap-AB) kernels' token tile; absent or 0: none (hardware_db/EFFICIENCY.md)
    gemm_small_tile_tokens: Annotated[int, Field(ge=0)] = 0
    attention_frac: Fraction
    #: MLA's absorbed decode attention; absent: attention_frac (hardware_db/EFFICIENCY.md)
    mla_decode_frac: Fraction | None = None
    memory_frac: Fraction
    expert_memory_frac: Fraction = 1.0
    moe_layer_latency_us: NonNegative = 27.0
    gemm_latency_us: NonNegative = 0.0
    collective_bus_frac: Fraction
    collective_latency_us: NonNegative
    step_overhead_us: NonNegative
    request_overhead_us: NonNegative = 0.0
    usable_memory_frac: Fraction
    offload_link_frac: Fraction = 0.8
    source: Source


class PowerModeY(_Strict):
    """A power mode of the same module (Jetson nvpmodel): lower clocks, the same silicon."""

    id: Id
    name: str
    #: GPU clock of the mode over the clock the device's dense peaks are quoted at.
    compute_scale: Fraction
    #: Peak memory bandwidth at the mode's memory (EMC) clock.
    memory_bandwidth_tb_per_s: Positive
    tdp_w: Positive
    source: Source


class DeviceY(_Strict):
    id: Id
    name: str
    vendor: str
    aliases: list[Id] = []
    compute: ComputeY
    memory: MemoryY
    interconnect: InterconnectY
    power: PowerY
    price: PriceY
    efficiency: EfficiencyY
    power_modes: list[PowerModeY] = []


class FabricTierY(_Strict):
    name: str
    level: str = Field(pattern=r"^(scale_up|scale_out)$")
    topology: str = Field(pattern=r"^(switch|mesh|ring)$")
    domain_devices: Count | None = None
    bandwidth_gb_per_s: Positive
    links: Count | None = None
    latency_us: NonNegative
    bus_frac: Fraction | None = None
    nvls_bus_frac: Annotated[float, Field(gt=0, le=2, allow_inf_nan=False)] | None = None
    source: Source


class SystemY(_Strict):
    id: Id
    name: str
    device: Id
    aliases: list[Id] = []
    devices_per_node: Count
    max_devices: Count | None = None
    fabric: list[FabricTierY] = Field(min_length=1)
    comm_overlap_frac: float = Field(default=0.0, ge=0, le=1)
    source: Source


class TierLinkY(_Strict):
    name: str
    bandwidth_gb_per_s: Positive
    latency_ns: NonNegative


class LinkEntryY(_Strict):
    """A standard link (hardware_db/links/): a bus or network port, per direction."""

    id: Id
    name: str
    kind: str = Field(pattern=r"^(pcie|cxl|c2c|nvlink|ethernet|infiniband)$")
    aliases: list[Id] = []
    bandwidth_gb_per_s: Positive
    latency_us: NonNegative
    source: Source


class MemoryTierY(_Strict):
    id: Id
    name: str
    medium: str = Field(pattern=r"^(ddr|cxl|nvme)$")
    aliases: list[Id] = []
    capacity_gib: Positive
    bandwidth_gb_per_s: Positive
    latency_ns: NonNegative
    #: the link the tier sits behind: inline, or the id of a hardware_db/links/ entry
    link: TierLinkY | Id | None = None
    power_w: Positive | None = None
    source: Source


class HFConfigY(_Strict):
    """The subset of a HuggingFace config.json genmodel reads (names as HF spells them).

    Each attention kind (:mod:`genmodel._attention`) has its keys here, and
    ``io._hfconfig.attention_from_hf_config`` maps them to its class.
    """

    model_type: str | None = None
    architectures: list[str] = []
    hidden_size: Count
    intermediate_size: Count | None = None
    num_hidden_layers: Count
    # attention of every kind: query heads; grouped-query attention (MHA/GQA/MQA): KV heads, head
    # size, q/k/v biases
    num_attention_heads: Count
    num_key_value_heads: Count | None = None
    head_dim: Count | None = None
    vocab_size: Count
    tie_word_embeddings: bool = False
    max_position_embeddings: Count | None = None
    attention_bias: bool = False
    torch_dtype: str | None = None
    # sliding-window layers (Mistral: every layer; Qwen2: from max_window_layers on; transformers'
    # ``layer_types``, one "sliding_attention" or "full_attention" per layer, as gpt-oss spells them)
    sliding_window: Count | None = None
    use_sliding_window: bool | None = None
    max_window_layers: Annotated[int, Field(ge=0)] | None = None
    layer_types: list[str] | None = None
    # mixture of experts (Mixtral, Qwen-MoE, DeepSeek spell them differently)
    num_local_experts: Count | None = None
    num_experts: Count | None = None
    n_routed_experts: Count | None = None
    num_experts_per_tok: Count | None = None
    experts_per_token: Count | None = None  # gpt-oss's second spelling of num_experts_per_tok
    moe_intermediate_size: Count | None = None
    shared_expert_intermediate_size: Annotated[int, Field(ge=0)] | None = None
    n_shared_experts: Annotated[int, Field(ge=0)] | None = None
    first_k_dense_replace: Annotated[int, Field(ge=0)] | None = None
    moe_layer_freq: Count | None = None
    decoder_sparse_step: Count | None = None
    mlp_only_layers: list[int] = []
    norm_topk_prob: bool | None = None
    # multi-head latent attention (DeepSeek)
    q_lora_rank: Annotated[int, Field(ge=0)] | None = None
    kv_lora_rank: Count | None = None
    qk_nope_head_dim: Count | None = None
    qk_rope_head_dim: Count | None = None
    v_head_dim: Count | None = None
    num_nextn_predict_layers: Annotated[int, Field(ge=0)] | None = None


class HFConfigLooseY(HFConfigY):
    """A user's config.json: keys genmodel does not use are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class CheckpointY(_Strict):
    """A published checkpoint of a quantised weight precision and the modules it keeps in another
    precision (``exclude_modules`` of its ``hf_quant_config.json``): module or class -> dtype."""

    checkpoint: str
    keep: dict[str, str]
    source: Source


class ModelY(_Strict):
    id: Id
    name: str
    aliases: list[Id] = []
    source: Source
    config: HFConfigY
    #: by weight precision (fp4, ...), the published checkpoint whose kept modules that precision runs with
    checkpoints: dict[str, CheckpointY] = {}

    def kept_modules(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """:attr:`~genmodel._model.ModelSpec.kept_modules` of this file.

        Raises:
            SpecError: ``checkpoints.fp4.keep: module=...`` for an unknown module or dtype.
        """
        return tuple(
            (
                check_weight_dtype("checkpoints", w),
                check_keep_rule(f"checkpoints.{w}.keep", tuple(c.keep.items())),
            )
            for w, c in self.checkpoints.items()
        )


class ScenarioY(_Strict):
    id: Id
    name: str
    input_tokens: Count
    output_tokens: Count
    ttft_slo_ms: Positive | None = None
    tpot_slo_ms: Positive | None = None
    source: Source


#: Upper bounds of a config's sizes: 10x or more beyond the largest published model (hidden 25,600,
#: 160 layers, 128 heads, head_dim 512, vocabulary 262,144, 384 experts, 10M context), so a real
#: config always passes and a typo (``hidden_size=10**12``) is refused before a formula sees it.
HF_CONFIG_MAX = MappingProxyType(
    {
        "hidden_size": 1 << 18,
        "intermediate_size": 1 << 20,
        "num_hidden_layers": 1 << 12,
        "num_attention_heads": 1 << 12,
        "num_key_value_heads": 1 << 12,
        "head_dim": 1 << 12,
        "vocab_size": 1 << 22,
        "max_position_embeddings": 1 << 30,
        "sliding_window": 1 << 30,
        "max_window_layers": 1 << 12,
        "num_local_experts": 1 << 14,
        "num_experts": 1 << 14,
        "n_routed_experts": 1 << 14,
        "num_experts_per_tok": 1 << 14,
        "experts_per_token": 1 << 14,
        "moe_intermediate_size": 1 << 20,
        "shared_expert_intermediate_size": 1 << 20,
        "n_shared_experts": 1 << 10,
        "first_k_dense_replace": 1 << 12,
        "moe_layer_freq": 1 << 12,
        "decoder_sparse_step": 1 << 12,
        "q_lora_rank": 1 << 16,
        "kv_lora_rank": 1 << 16,
        "qk_nope_head_dim": 1 << 12,
        "qk_rope_head_dim": 1 << 12,
        "v_head_dim": 1 << 12,
        "num_nextn_predict_layers": 1 << 12,
    }
)


def hf_config_violations(c: HFConfigY) -> list[str]:
    """Each size of ``c`` beyond :data:`HF_CONFIG_MAX`, as ``name=value must be <= limit``."""
    out = []
    for name, limit in HF_CONFIG_MAX.items():
        value = getattr(c, name, None)
        if isinstance(value, int) and value > limit:
            digits = str(value)
            shown = digits if len(digits) <= 20 else f"{digits[:6]}...({len(digits)} digits)"
            out.append(f"{name}={shown} must be <= {limit}")
    if len(c.mlp_only_layers) > HF_CONFIG_MAX["num_hidden_layers"]:
        out.append(f"mlp_only_layers (length {len(c.mlp_only_layers)}) must list at most one entry per layer")
    if c.layer_types is not None and len(c.layer_types) > HF_CONFIG_MAX["num_hidden_layers"]:
        out.append(f"layer_types (length {len(c.layer_types)}) must list at most one entry per layer")
    return out
