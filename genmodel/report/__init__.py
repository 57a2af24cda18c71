"""Rendering results for people and programs: summaries, the JSON form of an estimate, flat rows,
human units, JSON and CSV."""

from genmodel.report._describe import (
    describe_device,
    describe_link,
    describe_memory_tier,
    describe_model,
    describe_system,
)
from genmodel.report._estimate import estimate_dict, interval_dict, phase_dict
from genmodel.report._figures import compare_figure, figure_format, sweep_figure, write_figure
from genmodel.report._plots import interval_figure, pareto_figure
from genmodel.report._render import (
    flatten,
    format_bytes,
    format_seconds,
    to_csv,
    to_json,
)
from genmodel.report._roofline import roofline_figure, roofline_points

__all__ = [
    "compare_figure",
    "describe_device",
    "describe_link",
    "describe_memory_tier",
    "describe_model",
    "describe_system",
    "estimate_dict",
    "figure_format",
    "flatten",
    "format_bytes",
    "format_seconds",
    "interval_dict",
    "interval_figure",
    "pareto_figure",
    "phase_dict",
    "roofline_figure",
    "roofline_points",
    "sweep_figure",
    "to_csv",
    "to_json",
    "write_figure",
]
