"""Reading and writing efficiency profiles (hardware_db/profiles/*.yaml, or a user's file).

A profile file names the devices and engines it is the default of (and, optionally, the benchmark
harnesses' engine configurations it was fitted under: it is the default only there) and, under
``parameters``, some or all fields of :class:`~genmodel._hardware.Efficiency`, each with its value
and how it was obtained::

    id: h200-sglang
    name: H200 SXM with SGLang
    hardware: [h200-sxm]
    engines: [sglang]
    engine_configs: [aiconfigurator]
    source: fitted by tools/fit_profiles.py on SGLang's serving cases
    parameters:
      expert_memory_frac: {value: 0.7611, how: fitted, cases: [PS062, PS064, ...]}
      request_overhead_us: {value: 162100, how: fitted, cases: [PS061, PS063, ...]}

Keys are the field names, except that a time in seconds (``*_s``) is written in microseconds
(``*_us``), as in the device files. The reading keeps the limits of :mod:`genmodel.io._db` (1 MiB,
10 aliases, ids of at most 255 characters) and the schema forbids unknown keys, naming the file and
the field.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field

from genmodel._errors import SpecError
from genmodel._profiles import HOW, PARAMETERS, Profile
from genmodel._units import US
from genmodel.io._db import catalog, check_id, listing, not_found, read_yaml, short
from genmodel.io._load import _validate
from genmodel.io._schema import Id, Source, _Strict

#: the largest number of cases one value may name
MAX_CASES = 10_000


class ParameterY(_Strict):
    """One parameter of a profile: its value (human units) and how it was obtained."""

    #: None only with ``how: device`` (the device file's value)
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    how: str = Field(pattern="^(" + "|".join(HOW) + ")$")
    #: the validation case ids a fitted value was fitted on
    cases: list[Annotated[str, Field(max_length=255)]] = Field(default=[], max_length=MAX_CASES)
    source: Source | None = None


class ProfileY(_Strict):
    id: Id
    name: str
    hardware: list[Id] = Field(default_factory=list)
    engines: list[Id] = Field(default_factory=list)
    engine_configs: list[Id] = Field(default_factory=list)
    source: Source
    parameters: dict[str, ParameterY]


def yaml_key(name: str) -> str:
    """The key of field ``name`` in a profile file: ``*_s`` is written ``*_us``."""
    return name[:-2] + "_us" if name.endswith("_s") else name


_FIELD_OF_KEY = {yaml_key(name): name for name in PARAMETERS}


def _provenance(p: ParameterY) -> str:
    text = p.how
    if p.cases:
        text += " on " + ", ".join(p.cases)
    return f"{text}: {p.source}" if p.source else text


def profile_from_yaml(y: ProfileY, where: str) -> Profile:
    """A :class:`Profile` from a validated profile file (human units -> SI).

    Raises:
        SpecError: an unknown parameter, a value missing (other than ``how: device``) or out of
            range, naming the file and the parameter.
    """
    values: dict[str, float] = {}
    provenance: dict[str, str] = {}
    for key, p in y.parameters.items():
        name = _FIELD_OF_KEY.get(key)
        if name is None:
            raise SpecError(
                f"{where}: parameters.{key[:60]}: unknown field; known: {', '.join(_FIELD_OF_KEY)}"
            )
        provenance[name] = _provenance(p)
        if p.value is None:
            if p.how != "device":
                raise SpecError(f"{where}: parameters.{key}.value: required unless how is 'device'")
            continue
        values[name] = p.value * US if key != name else p.value
    try:
        return Profile(
            id=y.id,
            name=y.name,
            values=values,
            provenance=provenance,
            hardware=tuple(y.hardware),
            engines=tuple(y.engines),
            engine_configs=tuple(y.engine_configs),
            source=y.source,
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _validated(raw: Any, where: str) -> ProfileY:
    return _validate(raw, where, ProfileY)


def read_profile_file(path: str | Path) -> Profile:
    """A profile from a YAML file (any name; its ``id`` is kept).

    Raises:
        SpecError: the file is missing, too large, not YAML, or does not match the schema.
    """
    p = Path(path)
    return profile_from_yaml(_validated(read_yaml(p, str(p)), str(p)), str(p))


@functools.cache
def _load_profile_id(name: str, db: Path | None) -> Profile:
    cat = catalog("profile", db)
    hit = cat.find(name)
    if hit is None or hit[1] != "id":
        raise not_found("profile", name, [cat])
    stem = hit[0]
    where = cat.where[stem]
    y = _validated(cat.raw(stem), where)
    if y.id != stem:
        raise SpecError(f"{where}: id={short(y.id)} must equal the file name {stem!r}")
    return profile_from_yaml(y, where)


def _is_path(name: str) -> bool:
    if name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name:
        return True
    try:
        return Path(name).is_file()
    except (OSError, ValueError):
        return False


def load_profile(name: str | Path, *, db: str | Path | None = None) -> Profile:
    """An efficiency profile by id (hardware_db/profiles/) or YAML file path.

    Raises:
        UnknownEntryError: no such profile (the message lists the closest). SpecError: a malformed
            file (named, with the field).
    """
    if isinstance(name, Path) or (isinstance(name, str) and _is_path(name)):
        return read_profile_file(name)
    return _load_profile_id(check_id("profile", name), None if db is None else Path(db))


def list_profiles(*, db: str | Path | None = None) -> list[str]:
    """Ids of the profiles in the database."""
    return list(listing("profile", None if db is None else Path(db)))


@functools.cache
def _all_profiles(db: Path | None) -> tuple[Profile, ...]:
    return tuple(_load_profile_id(stem, db) for stem in listing("profile", db))


def device_profile(
    device_id: str, engine: str | None, engine_config: str | None = None, *, db: str | Path | None = None
) -> Profile | None:
    """The database's profile of ``device_id`` run by ``engine`` under ``engine_config`` (a
    benchmark harness's configuration; None: the server as shipped), or None (the device file's values).

    Raises:
        SpecError: two profiles claim the same device and engine, or a profile file is malformed.
    """
    found = [
        p
        for p in _all_profiles(None if db is None else Path(db))
        if p.applies_to(device_id, engine, engine_config)
    ]
    if len(found) > 1:
        ids = " and ".join(p.id for p in found)
        raise SpecError(f"hardware={device_id} engine={engine}: profiles {ids} both claim it; keep one")
    return found[0] if found else None


def _number(value: float) -> float | int:
    """A value as written in a file: 4 significant digits (a fit is no more precise)."""
    if value == 0 or not math.isfinite(value):
        return value
    rounded = float(f"{value:.4g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded


def _entry(provenance: str) -> dict[str, Any]:
    """``how``, ``cases`` and ``source`` of a provenance string (``how on A, B: source``)."""
    head, _, source = provenance.partition(": ")
    how, _, cases = head.partition(" on ")
    if how not in HOW:
        return {"how": "base", "source": provenance} if len(provenance) >= 3 else {"how": "base"}
    entry: dict[str, Any] = {"how": how}
    if cases:
        entry["cases"] = cases.split(", ")
    if len(source) >= 3:
        entry["source"] = source
    return entry


def profile_to_yaml(
    profile: Profile,
    *,
    entries: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The YAML text of ``profile`` (which :func:`load_profile` reads back).

    Args:
        profile: the profile; its ``provenance`` strings become each value's ``source``.
        entries: per field, the ``how``/``cases``/``source`` to write instead (a fit's record).
    """
    params: dict[str, Any] = {}
    for name in PARAMETERS:
        given = (entries or {}).get(name)
        if name not in profile.values and name not in profile.provenance and given is None:
            continue
        entry: dict[str, Any] = {}
        if name in profile.values:
            value = profile.values[name]
            entry["value"] = _number(value / US if yaml_key(name) != name else value)
        entry.update(_entry(profile.provenance.get(name, "base")) if given is None else given)
        params[yaml_key(name)] = entry
    doc = {
        "id": profile.id,
        "name": profile.name or profile.id,
        "hardware": list(profile.hardware),
        "engines": list(profile.engines),
        **({"engine_configs": list(profile.engine_configs)} if profile.engine_configs else {}),
        "source": profile.source,
        "parameters": params,
    }
    text: str = yaml.safe_dump(doc, sort_keys=False, width=100)
    return text
