"""Reading the hardware database, model architectures, scenarios and HuggingFace config.json files.

This is the only place genmodel touches files. Human units of the YAML files (GiB, TB/s, us) are
converted here, once, to the SI units of the core specs. Files are looked up by id (the file stem)
first, then by alias; every error names the file and the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from genmodel._attention import FullAttention, GroupedQueryAttention, MultiHeadLatentAttention
from genmodel._errors import SpecError, UnknownEntryError
from genmodel._hardware import Device, Efficiency, FabricTier, HostAttachment, Link, MemoryTier, System
from genmodel._model import ModelSpec, MoeSpec
from genmodel._units import GB, MS, NS, TB, TFLOP, US, GiB
from genmodel._workload import Scenario
from genmodel.io._schema import (
    DeviceY,
    HFConfigLooseY,
    HFConfigY,
    LinkEntryY,
    LinkY,
    MemoryTierY,
    ModelY,
    ScenarioY,
    SystemY,
)

if TYPE_CHECKING:
    from importlib.abc import Traversable

_Y = TypeVar("_Y", bound=BaseModel)

try:  # the C parser is ~10x faster; fall back where PyYAML was built without libyaml
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def _data_dir(package: str) -> Traversable:
    return resources.files(package)


_DIRS = {
    "hardware": "genmodel.hardware_db.devices",
    "memory tier": "genmodel.hardware_db.memory",
    "link": "genmodel.hardware_db.links",
    "system": "genmodel.hardware_db.systems",
    "model": "genmodel.workloads.models",
    "scenario": "genmodel.workloads.scenarios",
}


def _display(path: Traversable | Path) -> str:
    parts = Path(str(path)).parts
    for anchor in ("hardware_db", "workloads"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) :])
    return str(path)


def format_validation_error(where: str, err: ValidationError) -> str:
    """One line per problem: ``file: field.path: what is wrong (got value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{where}: {loc}: unknown field")
        elif e["type"] == "missing":
            lines.append(f"{where}: {loc}: required field is missing")
        else:
            lines.append(f"{where}: {loc}={e.get('input')!r}: {e['msg']}")
    return "; ".join(lines)


def _parse_yaml(path: Traversable | Path, schema: type[_Y]) -> _Y:
    where = _display(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(where, exc)) from None


def _files(kind: str) -> Iterator[Traversable]:
    for entry in sorted(_data_dir(_DIRS[kind]).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            yield entry


def _stem(entry: Traversable) -> str:
    return entry.name.removesuffix(".yaml")


def _raw_entries(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, unvalidated mapping) of every file of ``kind``: for indexes built before validation."""
    for entry in _files(kind):
        raw = yaml.load(entry.read_text(encoding="utf-8"), Loader=_Loader)
        yield _stem(entry), raw if isinstance(raw, dict) else {}


@functools.cache
def _aliases(kind: str) -> dict[str, str]:
    """alias -> id for every file of ``kind`` (parses all of them: used only on a miss)."""
    out: dict[str, str] = {}
    for stem, raw in _raw_entries(kind):
        for alias in raw.get("aliases", []):
            out[str(alias)] = stem
    return out


def list_ids(kind: str) -> list[str]:
    """Ids of every entry of ``kind``: 'hardware' (devices), 'power mode', 'system', 'memory tier',
    'link', 'model' or 'scenario'."""
    if kind == "power mode":
        return list(_power_modes())
    return [_stem(e) for e in _files(kind)]


@functools.cache
def _power_modes() -> dict[str, str]:
    """power-mode id -> the id of the device file that lists it."""
    out: dict[str, str] = {}
    for stem, raw in _raw_entries("hardware"):
        for mode in raw.get("power_modes") or []:
            if isinstance(mode, dict) and isinstance(mode.get("id"), str):
                out[mode["id"]] = stem
    return out


def _find(kind: str, name: str) -> Traversable | None:
    """The file of ``kind`` with that id or alias (either in any case), or None."""
    directory = _data_dir(_DIRS[kind])
    for candidate in (name, name.lower()):
        entry = directory.joinpath(f"{candidate}.yaml")
        if entry.is_file():
            return entry
    target = _aliases(kind).get(name.lower()) or _aliases(kind).get(name)
    return None if target is None else directory.joinpath(f"{target}.yaml")


def _resolve(kind: str, name: str) -> Traversable:
    entry = _find(kind, name)
    if entry is None:
        raise UnknownEntryError(kind, name, list_ids(kind), _aliases(kind))
    return entry


def _load_entry(kind: str, name: str, schema: type[_Y]) -> _Y:
    """Find the file of ``kind`` named by id or alias, validate it, and check its id is its name."""
    path = _resolve(kind, name)
    y = _parse_yaml(path, schema)
    declared = getattr(y, "id", None)
    if declared != _stem(path):
        raise SpecError(f"{_display(path)}: id={declared!r} must equal the file name {_stem(path)!r}")
    return y


def _link(y: LinkY) -> Link:
    return Link(
        name=y.name,
        bandwidth_bytes_per_s=y.bandwidth_gb_per_s * GB,
        latency_s=y.latency_us * US,
        num_domain_devices=y.domain_size,
    )


def device_from_yaml(y: DeviceY) -> Device:
    """Convert a validated device file to a :class:`Device` (human units -> SI)."""
    peaks = {k: v * TFLOP for k, v in y.compute.dense_tflops.model_dump().items() if v is not None}
    mem = y.memory.local
    host = None
    if y.memory.host is not None:
        h = y.memory.host
        host = HostAttachment(
            tier_id=h.tier,
            link=Link(
                name=h.link,
                bandwidth_bytes_per_s=h.link_bandwidth_gb_per_s * GB,
                latency_s=h.link_latency_us * US,
            ),
        )
    e = y.efficiency
    return Device(
        id=y.id,
        name=y.name,
        vendor=y.vendor,
        peak_flops_per_s=peaks,
        memory_technology=mem.technology,
        memory_capacity_bytes=mem.capacity_gib * GiB,
        memory_bandwidth_bytes_per_s=mem.bandwidth_tb_per_s * TB,
        shared_with_host=mem.shared_with_host,
        os_reserve_bytes=mem.os_reserve_gib * GiB,
        host=host,
        scale_up=None if y.interconnect.scale_up is None else _link(y.interconnect.scale_up),
        scale_out=None if y.interconnect.scale_out is None else _link(y.interconnect.scale_out),
        tdp_w=y.power.tdp_w,
        usd_per_hour=y.price.usd_per_hour,
        efficiency=Efficiency(
            gemm_frac=e.gemm_frac,
            gemm_low_precision_frac=e.gemm_low_precision_frac,
            gemm_tile_tokens=e.gemm_tile_tokens,
            attention_frac=e.attention_frac,
            memory_frac=e.memory_frac,
            collective_bus_frac=e.collective_bus_frac,
            collective_latency_s=e.collective_latency_us * US,
            step_overhead_s=e.step_overhead_us * US,
            usable_memory_frac=e.usable_memory_frac,
            offload_link_frac=e.offload_link_frac,
        ),
    )


@functools.cache
def load_device_yaml(name: str) -> DeviceY:
    """The validated YAML of a device, by id or alias."""
    y = _load_entry("hardware", name, DeviceY)
    return y


@functools.cache
def load_device(name: str) -> Device:
    """A device from hardware_db/devices/, by id or alias.

    Raises:
        UnknownEntryError: no such id or alias (the message lists the closest).
        SpecError: the file is malformed (the message names the file and field).
    """
    base = _power_modes().get(name.lower()) if _find("hardware", name) is None else None
    y = load_device_yaml(base or name)
    try:
        device = device_from_yaml(y)
    except SpecError as exc:
        raise SpecError(f"{_display(_resolve('hardware', base or name))}: {exc}") from None
    if base is None:
        return device
    mode = next(m for m in y.power_modes if m.id == name.lower())
    return dataclasses.replace(
        device,
        id=mode.id,
        name=mode.name,
        peak_flops_per_s={k: v * mode.compute_scale for k, v in device.peak_flops_per_s.items()},
        memory_bandwidth_bytes_per_s=mode.memory_bandwidth_tb_per_s * TB,
        tdp_w=mode.tdp_w,
    )


def _is_device(name: str) -> bool:
    return _find("hardware", name) is not None or name.lower() in _power_modes()


@functools.cache
def load_system(name: str) -> System:
    """A system (devices, nodes and fabric tiers) from hardware_db/systems/, by id or alias.

    Raises:
        UnknownEntryError: no such system. SpecError: the file or its device is malformed.
    """
    y = _load_entry("system", name, SystemY)
    where = _display(_resolve("system", name))
    try:
        tiers = tuple(
            FabricTier(
                name=t.name,
                level=t.level,
                topology=t.topology,
                bandwidth_bytes_per_s=t.bandwidth_gb_per_s * GB,
                latency_s=t.latency_us * US,
                num_domain_devices=t.domain_devices,
                num_links=t.links,
                bus_frac=t.bus_frac,
            )
            for t in y.fabric
        )
        return System(
            id=y.id,
            name=y.name,
            device=load_device(y.device),
            fabric=tiers,
            num_node_devices=y.devices_per_node,
            max_devices=y.max_devices,
            comm_overlap_frac=y.comm_overlap_frac,
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


@functools.cache
def _usual_systems() -> dict[str, str]:
    """device id -> the id of the (first) system built from it."""
    out: dict[str, str] = {}
    for stem, raw in _raw_entries("system"):
        device = raw.get("device")
        if isinstance(device, str):
            out.setdefault(device, stem)
    return out


def load_hardware(name: str) -> System:
    """A system by system id; for a device id, the system built from it (e.g. h100-sxm ->
    dgx-h100), or, where the database has none, the one its own links imply (``System.of_device``).

    Raises:
        UnknownEntryError: neither a device nor a system has that id or alias.
    """
    if _is_device(name):
        device = load_device(name)
        usual = _usual_systems().get(device.id)
        return System.of_device(device) if usual is None else load_system(usual)
    if _find("system", name) is not None:
        return load_system(name)
    known = list_ids("hardware") + list_ids("power mode") + list_ids("system")
    aliases = {**_aliases("hardware"), **_aliases("system")}
    raise UnknownEntryError("hardware", name, known, aliases)


@functools.cache
def load_link_yaml(name: str) -> LinkEntryY:
    """The validated YAML of a standard link (hardware_db/links/), by id or alias."""
    return _load_entry("link", name, LinkEntryY)


def load_link(name: str) -> Link:
    """A standard link (PCIe, CXL, NVLink-C2C, Ethernet) from hardware_db/links/, by id or alias."""
    y = load_link_yaml(name)
    return Link(name=y.name, bandwidth_bytes_per_s=y.bandwidth_gb_per_s * GB, latency_s=y.latency_us * US)


@functools.cache
def load_memory_tier(name: str) -> MemoryTier:
    """A memory tier (host DDR, CXL expander, NVMe) from hardware_db/memory/, by id."""
    y = _load_entry("memory tier", name, MemoryTierY)
    link = None
    if isinstance(y.link, str):
        link = load_link(y.link)
    elif y.link is not None:
        link = Link(
            name=y.link.name,
            bandwidth_bytes_per_s=y.link.bandwidth_gb_per_s * GB,
            latency_s=y.link.latency_ns * NS,
        )
    return MemoryTier(
        id=y.id,
        name=y.name,
        medium=y.medium,
        capacity_bytes=y.capacity_gib * GiB,
        bandwidth_bytes_per_s=y.bandwidth_gb_per_s * GB,
        latency_s=y.latency_ns * NS,
        link=link,
        power_w=y.power_w,
    )


def _layer_is_moe(c: HFConfigY, layer: int, num_experts: int | None) -> bool:
    if num_experts is None or layer in c.mlp_only_layers:
        return False
    if c.first_k_dense_replace is not None:  # DeepSeek
        return layer >= c.first_k_dense_replace and layer % (c.moe_layer_freq or 1) == 0
    step = c.decoder_sparse_step or 1  # Qwen-MoE
    return (layer + 1) % step == 0


def attention_from_hf_config(c: HFConfigY, *, model_id: str) -> FullAttention:
    """The attention kind of a HuggingFace config.json: MLA when ``kv_lora_rank`` is set (DeepSeek),
    else grouped-query attention (MHA and MQA included).

    Raises:
        SpecError: an MLA config lacks a head size, or head_dim is missing and cannot be derived.
    """
    heads = c.num_attention_heads
    if c.kv_lora_rank is not None:
        missing = [k for k in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim") if getattr(c, k) is None]
        if missing:
            raise SpecError(f"model {model_id}: MLA config (kv_lora_rank set) lacks {', '.join(missing)}")
        assert c.qk_nope_head_dim and c.qk_rope_head_dim and c.v_head_dim
        return MultiHeadLatentAttention(
            num_attention_heads=heads,
            q_lora_rank=c.q_lora_rank or 0,
            kv_lora_rank=c.kv_lora_rank,
            qk_nope_head_dim=c.qk_nope_head_dim,
            qk_rope_head_dim=c.qk_rope_head_dim,
            v_head_dim=c.v_head_dim,
        )
    if c.head_dim is not None:
        head_dim = c.head_dim
    else:
        if c.hidden_size % heads:
            raise SpecError(
                f"model {model_id}: head_dim is missing and num_attention_heads={heads} does not "
                f"divide hidden_size={c.hidden_size}"
            )
        head_dim = c.hidden_size // heads
    try:
        return GroupedQueryAttention(
            num_attention_heads=heads,
            num_kv_heads=c.num_key_value_heads or heads,
            head_dim=head_dim,
            qkv_bias=c.attention_bias,
        )
    except SpecError as e:
        raise SpecError(f"model {model_id}: {e}") from e


def model_from_hf_config(c: HFConfigY, *, model_id: str, name: str = "", source: str = "") -> ModelSpec:
    """Build a :class:`ModelSpec` from the fields of a HuggingFace config.json.

    Reads the Llama, Mistral/Mixtral, Qwen2/Qwen2.5/Qwen3, Qwen-MoE and DeepSeek-V2/V3 spellings.

    Raises:
        SpecError: a field the architecture needs is missing (named, with ``model_id``).
    """
    moe = _moe_from_hf(c, model_id)
    attention = attention_from_hf_config(c, model_id=model_id)
    window, n_swa = _sliding_window_from_hf(c)
    if c.intermediate_size is None and (moe is None or moe.num_dense_layers):
        raise SpecError(f"model {model_id}: intermediate_size is required for dense layers")
    return ModelSpec(
        id=model_id,
        name=name or model_id,
        hidden_size=c.hidden_size,
        num_layers=c.num_hidden_layers,
        attention=attention,
        intermediate_size=c.intermediate_size or (moe.expert_intermediate_size if moe else 1),
        vocab_size=c.vocab_size,
        tie_word_embeddings=c.tie_word_embeddings,
        sliding_window=window if n_swa else None,
        num_sliding_window_layers=n_swa,
        max_position_embeddings=c.max_position_embeddings,
        moe=moe,
        num_mtp_layers=c.num_nextn_predict_layers or 0,
        source=source,
    )


def _moe_from_hf(c: HFConfigY, model_id: str) -> MoeSpec | None:
    """The mixture of experts (Mixtral, Qwen-MoE and DeepSeek spellings), or None for a dense model."""
    num_experts = c.num_local_experts or c.num_experts or c.n_routed_experts
    if num_experts is None:
        return None
    if c.num_experts_per_tok is None:
        raise SpecError(f"model {model_id}: num_experts_per_tok is required for an MoE config")
    expert_ff = c.moe_intermediate_size or c.intermediate_size
    if expert_ff is None:
        raise SpecError(f"model {model_id}: moe_intermediate_size or intermediate_size is required")
    shared = c.shared_expert_intermediate_size or 0
    if c.n_shared_experts:
        shared = c.n_shared_experts * expert_ff
    n_moe = sum(_layer_is_moe(c, i, num_experts) for i in range(c.num_hidden_layers))
    return MoeSpec(
        num_experts=num_experts,
        num_experts_per_tok=c.num_experts_per_tok,
        expert_intermediate_size=expert_ff,
        shared_intermediate_size=shared,
        num_dense_layers=c.num_hidden_layers - n_moe,
    )


def _sliding_window_from_hf(c: HFConfigY) -> tuple[int | None, int]:
    """(window in tokens, layers that use it): Mistral-style (window set, every layer) or
    Qwen2-style (use_sliding_window, layers from max_window_layers on); (None, 0) for none."""
    window, n_swa = None, 0
    if c.sliding_window is not None and c.use_sliding_window is not False:
        window = c.sliding_window
        start = c.max_window_layers if c.use_sliding_window and c.max_window_layers is not None else 0
        n_swa = max(0, c.num_hidden_layers - start)
        if c.max_position_embeddings is not None and window >= c.max_position_embeddings:
            window, n_swa = None, 0  # a window as long as the context changes nothing
    return window, n_swa


@functools.cache
def load_model_yaml(name: str) -> ModelY:
    """The validated YAML of a model architecture, by id or alias."""
    y = _load_entry("model", name, ModelY)
    return y


@functools.cache
def _load_model_id(name: str) -> ModelSpec:
    y = load_model_yaml(name)
    try:
        return model_from_hf_config(y.config, model_id=y.id, name=y.name, source=y.source)
    except SpecError as exc:
        raise SpecError(f"{_display(_resolve('model', name))}: {exc}") from None


def load_hf_config(path: str | Path, *, model_id: str | None = None) -> ModelSpec:
    """A model from a HuggingFace ``config.json`` file (keys genmodel does not use are ignored).

    Raises:
        SpecError: the file is missing, not JSON, or lacks or mistypes a needed field.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{p}: expected a JSON object, got {type(raw).__name__}")
    if isinstance(raw.get("text_config"), dict):  # multimodal wrappers keep the LM under text_config
        raw = {**raw["text_config"], "architectures": raw.get("architectures", [])}
    try:
        config = HFConfigLooseY.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(str(p), exc)) from None
    name = model_id or (p.parent.name if p.name == "config.json" else p.stem)
    try:
        return model_from_hf_config(config, model_id=name, name=name, source=str(p))
    except SpecError as exc:
        raise SpecError(f"{p}: {exc}") from None


def load_model(name: str) -> ModelSpec:
    """A model by id or alias from workloads/models/, or from a config.json path.

    A name that ends in ``.json`` or names an existing file or directory is read as a HuggingFace
    config (a directory means its ``config.json``).
    """
    p = Path(name)
    if name.endswith(".json") or p.is_file():
        return load_hf_config(p)
    if p.is_dir() and (p / "config.json").is_file():
        return load_hf_config(p / "config.json", model_id=p.name)
    return _load_model_id(name)


@functools.cache
def load_scenario(name: str) -> Scenario:
    """A scenario preset from workloads/scenarios/, by id."""
    y = _load_entry("scenario", name, ScenarioY)
    return Scenario(
        id=y.id,
        name=y.name,
        input_tokens=y.input_tokens,
        output_tokens=y.output_tokens,
        ttft_slo_s=None if y.ttft_slo_ms is None else y.ttft_slo_ms * MS,
        tpot_slo_s=None if y.tpot_slo_ms is None else y.tpot_slo_ms * MS,
        source=y.source,
    )


def read_yaml_file(path: str | Path, schema: type[_Y]) -> _Y:
    """Validate any YAML file against one of the schemas (used by tests and ``hw show FILE``)."""
    return _parse_yaml(Path(path), schema)


def hf_config_to_yaml(path: str | Path, *, model_id: str | None = None) -> str:
    """A workloads/models YAML document for a HuggingFace config.json (only the keys genmodel reads).

    The file is validated first, so the YAML it returns loads back to the same model.
    """
    p = Path(path)
    spec = load_hf_config(p, model_id=model_id)
    raw = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(raw.get("text_config"), dict):
        raw = {**raw["text_config"], "architectures": raw.get("architectures", [])}
    known = HFConfigY.model_fields
    config = {k: v for k, v in raw.items() if k in known and v is not None}
    doc = {
        "id": spec.id.lower().replace(" ", "-"),
        "name": spec.name,
        "aliases": [],
        "source": f"imported from {p} by genmodel models import",
        "config": config,
    }
    text: str = yaml.safe_dump(doc, sort_keys=False)
    return text
