"""Reading YAML specs and HuggingFace config.json files: the only file I/O in genmodel."""

from genmodel.io._load import (
    device_from_yaml,
    format_validation_error,
    hf_config_to_yaml,
    list_ids,
    load_device,
    load_device_yaml,
    load_hardware,
    load_hf_config,
    load_memory_tier,
    load_model,
    load_model_yaml,
    load_scenario,
    load_system,
    model_from_hf_config,
    read_yaml_file,
)

__all__ = [
    "device_from_yaml",
    "format_validation_error",
    "hf_config_to_yaml",
    "list_ids",
    "load_device",
    "load_device_yaml",
    "load_hardware",
    "load_hf_config",
    "load_memory_tier",
    "load_model",
    "load_model_yaml",
    "load_scenario",
    "load_system",
    "model_from_hf_config",
    "read_yaml_file",
]
