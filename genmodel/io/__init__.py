"""Reading YAML specs and HuggingFace config.json files, writing result tables: the only file I/O in
genmodel."""

from genmodel.io._db import MAX_ID_CHARS, MAX_YAML_ALIASES, MAX_YAML_BYTES
from genmodel.io._hfconfig import model_from_hf_config
from genmodel.io._load import (
    MAX_JSON_BYTES,
    device_from_yaml,
    format_validation_error,
    hf_config_to_yaml,
    list_ids,
    load_device,
    load_device_yaml,
    load_hardware,
    load_hf_config,
    load_link,
    load_link_yaml,
    load_memory_tier,
    load_model,
    load_model_yaml,
    load_scenario,
    load_system,
    read_yaml_file,
)
from genmodel.io._profiles import (
    device_profile,
    list_profiles,
    load_profile,
    profile_to_yaml,
    read_profile_file,
)
from genmodel.io._schema import ID_PATTERN
from genmodel.io._tables import table_format, write_table

__all__ = [
    "ID_PATTERN",
    "MAX_ID_CHARS",
    "MAX_JSON_BYTES",
    "MAX_YAML_ALIASES",
    "MAX_YAML_BYTES",
    "device_from_yaml",
    "device_profile",
    "format_validation_error",
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
    "load_model_yaml",
    "load_profile",
    "load_scenario",
    "load_system",
    "model_from_hf_config",
    "profile_to_yaml",
    "read_profile_file",
    "read_yaml_file",
    "table_format",
    "write_table",
]
