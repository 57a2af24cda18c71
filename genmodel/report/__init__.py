"""Rendering results for people and programs: summaries, flat rows, human units, JSON and CSV."""

from genmodel.report._describe import (
    describe_device,
    describe_link,
    describe_memory_tier,
    describe_model,
    describe_system,
)
from genmodel.report._plots import pareto_figure
from genmodel.report._render import (
    flatten,
    format_bytes,
    format_seconds,
    to_csv,
    to_json,
)

__all__ = [
    "describe_device",
    "describe_link",
    "describe_memory_tier",
    "describe_model",
    "describe_system",
    "flatten",
    "format_bytes",
    "format_seconds",
    "pareto_figure",
    "to_csv",
    "to_json",
]
