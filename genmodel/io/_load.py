"""Reading the hardware database, model architectures, scenarios and HuggingFace config.json files.

This is the only place genmodel touches files. Human units of the YAML files (GiB, TB/s, us) are
converted here, once, to the SI units of the core specs. Entries are looked up by id (the file stem)
or alias in an index of the database (``genmodel.io._db``: size and alias limits, one line naming a
malformed file, a name claimed by two files refused); every error names the file and the field.

Every loader takes ``db``: a folder laid out like the shipped database (``hardware_db/`` and
``workloads/``), or None for the database shipped with genmodel.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from genmodel._achievable import matmul_scale, memory_scale
from genmodel._errors import SpecError, UnknownEntryError
from genmodel._hardware import Device, Efficiency, HostAttachment, Link, MemoryTier
from genmodel._model import ModelSpec
from genmodel._system import FabricTier, System
from genmodel._units import GB, MS, NS, TB, TFLOP, US, GiB
from genmodel._workload import Scenario
from genmodel.io._db import (
    Catalog,
    catalog,
    check_id,
    duplicate,
    listing,
    not_found,
    read_text,
    read_yaml,
    short,
)
from genmodel.io._hfconfig import model_from_hf_config
from genmodel.io._schema import (
    DenseTflopsY,
    DeviceY,
    HFConfigLooseY,
    HFConfigY,
    LinkEntryY,
    LinkY,
    MemoryTierY,
    ModelY,
    ScenarioY,
    SystemY,
    as_id,
    hf_config_violations,
)

_Y = TypeVar("_Y", bound=BaseModel)

#: The largest config.json read (bytes); published ones are a few kB.
MAX_JSON_BYTES = 4 << 20

# the most problems one message lists
_MAX_PROBLEMS = 8
# pydantic error types whose bound is in ctx, and the comparison they mean
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def format_validation_error(where: str, err: ValidationError) -> str:
    """One line per problem: ``file: field.path: what is wrong`` or ``file: field.path=value must ...``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        bound = next(
            (e.get("ctx", {}).get(k) for k in ("gt", "ge", "lt", "le") if k in e.get("ctx", {})), None
        )
        if e["type"] == "extra_forbidden":
            lines.append(f"{where}: {loc}: unknown field")
        elif e["type"] == "missing":
            lines.append(f"{where}: {loc}: required field is missing")
        elif e["type"] in _BOUNDS and bound is not None:
            lines.append(f"{where}: {loc}={short(e.get('input'))} must be {_BOUNDS[e['type']]} {bound}")
        else:
            lines.append(f"{where}: {loc}={short(e.get('input'))}: {e['msg']}")
    if len(lines) > _MAX_PROBLEMS:  # a file of 100k unknown keys stays one readable line
        lines[_MAX_PROBLEMS:] = [f"and {len(lines) - _MAX_PROBLEMS} more problems"]
    return "; ".join(lines)


def _validate(raw: Any, where: str, schema: type[_Y]) -> _Y:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(where, exc)) from None
    except RecursionError:  # a self-referencing alias (&a [*a]) pydantic did not catch
        raise SpecError(f"{where}: a value refers to itself (YAML anchor and alias)") from None


def _check_sizes(config: HFConfigY, where: str) -> None:
    """Refuse absurd sizes (``hidden_size=10**12``) before any formula sees them."""
    problems = hf_config_violations(config)
    if problems:
        raise SpecError(f"{where}: {'; '.join(problems)}")


def _db(db: str | Path | None) -> Path | None:
    return None if db is None else Path(db)


def list_ids(kind: str, *, db: str | Path | None = None) -> list[str]:
    """Ids of every entry of ``kind``: 'hardware' (devices), 'power mode', 'system', 'memory tier',
    'link', 'model' or 'scenario'.

    Only the file names are read, except for power modes (listed inside the device files; a device
    file that cannot be read contributes none).
    """
    if kind == "power mode":
        return catalog("hardware", _db(db)).names("power mode")
    return list(listing(kind, _db(db)))


def _entry(kind: str, name: str, db: str | Path | None, *, modes: bool = False) -> tuple[Catalog, str, str]:
    """(index, stem, role) of the file of ``kind`` that claims ``name`` as id, alias or (with
    ``modes``) power mode.

    Raises:
        UnknownEntryError: no file claims it. SpecError: two files do, or the id is too long.
    """
    check_id(kind, name)
    cat = catalog(kind, _db(db))
    hit = cat.find(name)
    if hit is None or (hit[1] == "power mode" and not modes):
        raise not_found(kind, name, [cat], roles=("id", "power mode") if modes else ("id",))
    return cat, hit[0], hit[1]


def _load_entry(kind: str, name: str, schema: type[_Y], db: str | Path | None) -> _Y:
    """Find the file of ``kind`` named by id or alias, validate it, and check its id is its name."""
    cat, stem, _ = _entry(kind, name, db)
    y = _validate(cat.raw(stem), cat.where[stem], schema)
    declared = getattr(y, "id", None)
    if declared != stem:
        raise SpecError(f"{cat.where[stem]}: id={short(declared)} must equal the file name {stem!r}")
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
    achieved = (y.compute.achievable_tflops or DenseTflopsY()).model_dump(exclude_none=True)
    scale = matmul_scale(peaks, {k: v * TFLOP for k, v in achieved.items()})
    mem = y.memory.local
    achieved_bw = None if mem.achievable_tb_per_s is None else mem.achievable_tb_per_s * TB
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
        matmul_scale=scale,
        memory_scale=memory_scale(mem.bandwidth_tb_per_s * TB, achieved_bw),
        exp_per_s=(y.compute.exp_tera_per_s or 0.0) * TFLOP,  # tera per second
        efficiency=Efficiency(
            gemm_frac=e.gemm_frac,
            gemm_low_precision_frac=e.gemm_low_precision_frac,
            gemm_tile_tokens=e.gemm_tile_tokens,
            gemm_small_tile_tokens=e.gemm_small_tile_tokens,
            attention_frac=e.attention_frac,
            mla_decode_frac=e.attention_frac if e.mla_decode_frac is None else e.mla_decode_frac,
            memory_frac=e.memory_frac,
            expert_memory_frac=e.expert_memory_frac,
            moe_layer_latency_s=e.moe_layer_latency_us * US,
            gemm_latency_s=e.gemm_latency_us * US,
            collective_bus_frac=e.collective_bus_frac,
            collective_latency_s=e.collective_latency_us * US,
            step_overhead_s=e.step_overhead_us * US,
            request_overhead_s=e.request_overhead_us * US,
            usable_memory_frac=e.usable_memory_frac,
            offload_link_frac=e.offload_link_frac,
        ),
    )


@functools.cache
def load_device_yaml(name: str, *, db: str | Path | None = None) -> DeviceY:
    """The validated YAML of a device, by id or alias (not a power mode: see :func:`load_device`)."""
    return _load_entry("hardware", name, DeviceY, db)


@functools.cache
def load_device(name: str, *, db: str | Path | None = None) -> Device:
    """A device from hardware_db/devices/, by id, alias or power-mode id.

    Raises:
        UnknownEntryError: no such id or alias (the message lists the closest).
        SpecError: the file is malformed, or two files claim the name (the message names the files).
    """
    cat, stem, role = _entry("hardware", name, db, modes=True)
    y = load_device_yaml(stem, db=db)
    try:
        device = device_from_yaml(y)
    except SpecError as exc:
        raise SpecError(f"{cat.where[stem]}: {exc}") from None
    if role != "power mode":
        return device
    mode = next(m for m in y.power_modes if m.id in (name, name.lower()))
    return dataclasses.replace(
        device,
        id=mode.id,
        name=mode.name,
        peak_flops_per_s={k: v * mode.compute_scale for k, v in device.peak_flops_per_s.items()},
        memory_bandwidth_bytes_per_s=mode.memory_bandwidth_tb_per_s * TB,
        tdp_w=mode.tdp_w,
    )


@functools.cache
def load_system(name: str, *, db: str | Path | None = None) -> System:
    """A system (devices, nodes and fabric tiers) from hardware_db/systems/, by id or alias.

    Raises:
        UnknownEntryError: no such system. SpecError: the file is malformed, or names a device that
        is not in the database (the message names the file).
    """
    y = _load_entry("system", name, SystemY, db)
    where = catalog("system", _db(db)).where[y.id]
    try:
        device = load_device(y.device, db=db)
    except UnknownEntryError as exc:
        raise SpecError(f"{where}: device: {exc}") from None
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
                nvls_bus_frac=t.nvls_bus_frac,
            )
            for t in y.fabric
        )
        return System(
            id=y.id,
            name=y.name,
            device=device,
            fabric=tiers,
            num_node_devices=y.devices_per_node,
            max_devices=y.max_devices,
            comm_overlap_frac=y.comm_overlap_frac,
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


@functools.cache
def _usual_systems(db: Path | None) -> dict[str, str]:
    """device id -> the id of the (first) system built from it.

    Every system file is needed to answer, so any of them that cannot be read, or that names a
    device the database lacks, is an error naming it (not a silent fall back to the bare device).
    """
    systems, devices = catalog("system", db), catalog("hardware", db)
    out: dict[str, str] = {}
    for stem in systems.files:
        doc = systems.document(stem)
        if doc.problem is not None:
            raise SpecError(doc.problem)
        name = doc.device
        if name is None:
            raise SpecError(f"{systems.where[stem]}: device: required field is missing")
        if name in devices.files:  # the usual spelling: a device id, no other file to read
            out.setdefault(name, stem)
            continue
        hit = devices.find(name)
        if hit is None:
            raise SpecError(f"{systems.where[stem]}: device: {not_found('hardware', name, [devices])}")
        device_stem, role, key = hit
        out.setdefault(key if role == "power mode" else device_stem, stem)
    return out


@functools.cache
def load_hardware(name: str, *, db: str | Path | None = None) -> System:
    """A system by system id; for a device id, the system built from it (e.g. h100-sxm ->
    dgx-h100), or, where the database has none, the one its own links imply (``System.of_device``).

    Raises:
        UnknownEntryError: neither a device nor a system has that id or alias.
        SpecError: a device and a system both claim the name, or a file needed is malformed.
    """
    check_id("hardware", name)
    devices, systems = catalog("hardware", _db(db)), catalog("system", _db(db))
    device_hit, system_hit = devices.find(name), systems.find(name)
    if device_hit is not None and system_hit is not None:
        owners = [
            (devices.where[device_hit[0]], device_hit[1]),
            (systems.where[system_hit[0]], system_hit[1]),
        ]
        raise duplicate("hardware", name, owners)
    if device_hit is not None:
        device = load_device(name, db=db)
        usual = _usual_systems(_db(db)).get(device.id)
        return System.of_device(device) if usual is None else load_system(usual, db=db)
    if system_hit is not None:
        return load_system(name, db=db)
    raise not_found("hardware", name, [devices, systems], roles=("id", "power mode"))


@functools.cache
def load_link_yaml(name: str, *, db: str | Path | None = None) -> LinkEntryY:
    """The validated YAML of a standard link (hardware_db/links/), by id or alias."""
    return _load_entry("link", name, LinkEntryY, db)


def load_link(name: str, *, db: str | Path | None = None) -> Link:
    """A standard link (PCIe, CXL, NVLink-C2C, Ethernet) from hardware_db/links/, by id or alias."""
    y = load_link_yaml(name, db=db)
    return Link(name=y.name, bandwidth_bytes_per_s=y.bandwidth_gb_per_s * GB, latency_s=y.latency_us * US)


@functools.cache
def load_memory_tier(name: str, *, db: str | Path | None = None) -> MemoryTier:
    """A memory tier (host DDR, CXL expander, NVMe) from hardware_db/memory/, by id or alias.

    Raises:
        UnknownEntryError: no such tier. SpecError: the file is malformed, or names a link that is
        not in the database (the message names the file).
    """
    y = _load_entry("memory tier", name, MemoryTierY, db)
    link = None
    if isinstance(y.link, str):
        try:
            link = load_link(y.link, db=db)
        except UnknownEntryError as exc:
            raise SpecError(f"{catalog('memory tier', _db(db)).where[y.id]}: link: {exc}") from None
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


@functools.cache
def load_model_yaml(name: str, *, db: str | Path | None = None) -> ModelY:
    """The validated YAML of a model architecture, by id or alias."""
    y = _load_entry("model", name, ModelY, db)
    _check_sizes(y.config, f"{catalog('model', _db(db)).where[y.id]}: config")
    return y


@functools.cache
def _load_model_id(name: str, db: str | Path | None) -> ModelSpec:
    y = load_model_yaml(name, db=db)
    try:
        model = model_from_hf_config(y.config, model_id=y.id, name=y.name, source=y.source)
        return dataclasses.replace(model, kept_modules=y.kept_modules())
    except SpecError as exc:
        raise SpecError(f"{catalog('model', _db(db)).where[y.id]}: {exc}") from None


def _read_hf_json(p: Path) -> dict[str, Any]:
    """The mapping of a config.json (a multimodal wrapper's ``text_config`` unwrapped), within limits:
    at most ``MAX_JSON_BYTES``, nested no deeper than Python's recursion limit."""
    text = read_text(p, str(p), limit=MAX_JSON_BYTES)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}: not valid JSON: {exc}") from None
    except RecursionError:
        raise SpecError(f"{p}: not valid JSON for genmodel: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SpecError(f"{p}: not valid JSON for genmodel: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{p}: expected a JSON object, got {type(raw).__name__}")
    if isinstance(raw.get("text_config"), dict):  # multimodal wrappers keep the LM under text_config
        raw = {**raw["text_config"], "architectures": raw.get("architectures", [])}
    return raw


def load_hf_config(path: str | Path, *, model_id: str | None = None) -> ModelSpec:
    """A model from a HuggingFace ``config.json`` file (keys genmodel does not use are ignored).

    Raises:
        SpecError: the file is missing, larger than ``MAX_JSON_BYTES``, not JSON, nested too deeply,
        lacks or mistypes a needed field, or gives an absurd size (``hidden_size=10**12``).
    """
    p = Path(path)
    raw = _read_hf_json(p)
    try:
        config = HFConfigLooseY.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(str(p), exc)) from None
    _check_sizes(config, str(p))
    name = model_id or (p.parent.name if p.name == "config.json" else p.stem)
    try:
        return model_from_hf_config(config, model_id=name, name=name, source=str(p))
    except SpecError as exc:
        raise SpecError(f"{p}: {exc}") from None


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL: not a file
        return False


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def load_model(name: str, *, db: str | Path | None = None) -> ModelSpec:
    """A model by id or alias from workloads/models/, or from a config.json path.

    A name that ends in ``.json`` or names an existing file or directory is read as a HuggingFace
    config (a directory means its ``config.json``).

    Raises:
        UnknownEntryError: no such id or alias. SpecError: a malformed file (named), or an id longer
        than ``MAX_ID_CHARS`` characters.
    """
    if isinstance(name, str):  # a path may be longer than an id: test it first
        p = Path(name)
        if name.endswith(".json") or _is_file(p):
            return load_hf_config(p)
        if _is_dir(p):
            if _is_file(p / "config.json"):
                return load_hf_config(p / "config.json", model_id=p.name)
            try:  # a folder that happens to bear a model's id is still that id
                return _load_model_id(check_id("model", name), db)
            except UnknownEntryError:
                raise SpecError(f"model={name!r} is a directory with no config.json in it") from None
    return _load_model_id(check_id("model", name), db)


@functools.cache
def load_scenario(name: str, *, db: str | Path | None = None) -> Scenario:
    """A scenario preset from workloads/scenarios/, by id."""
    y = _load_entry("scenario", name, ScenarioY, db)
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
    """Validate any YAML file against one of the schemas (used by tests and ``hw show FILE``).

    Raises:
        SpecError: the file is missing, larger than ``MAX_YAML_BYTES``, holds more than
        ``MAX_YAML_ALIASES`` alias references, is not YAML or does not match ``schema``.
    """
    p = Path(path)
    return _validate(read_yaml(p, str(p)), str(p), schema)


def hf_config_to_yaml(path: str | Path, *, model_id: str | None = None) -> str:
    """A workloads/models YAML document for a HuggingFace config.json (only the keys genmodel reads).

    ``path`` is the file or the folder holding it. The file is validated first, so the YAML it
    returns loads back to the same model (its id, ``model_id`` or the file's name, made one: as_id).
    """
    p = Path(path)
    if _is_dir(p):
        p = p / "config.json"
    spec = load_hf_config(p, model_id=model_id)
    raw = _read_hf_json(p)
    known = HFConfigY.model_fields
    config = {k: v for k, v in raw.items() if k in known and v is not None}
    doc = {
        "id": as_id("model_id", spec.id),
        "name": spec.name,
        "aliases": [],
        "source": f"imported from {p} by genmodel models import",
        "config": config,
    }
    text: str = yaml.safe_dump(doc, sort_keys=False)
    return text
