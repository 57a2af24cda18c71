"""Rendering results for people and programs: summaries, the JSON form of an estimate, flat rows,
human units, JSON and CSV.

Each name, listed once in the ``if TYPE_CHECKING:`` block below, is imported from its module on first use
(PEP 562, genmodel/_lazy.py), so that ``from genmodel.report import format_bytes`` does not load the
estimate's JSON form and the model beneath it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genmodel import _lazy

if TYPE_CHECKING:
    from genmodel.report._describe import describe_device as describe_device
    from genmodel.report._describe import describe_link as describe_link
    from genmodel.report._describe import describe_memory_tier as describe_memory_tier
    from genmodel.report._describe import describe_model as describe_model
    from genmodel.report._describe import describe_system as describe_system
    from genmodel.report._estimate import estimate_dict as estimate_dict
    from genmodel.report._estimate import interval_dict as interval_dict
    from genmodel.report._estimate import phase_dict as phase_dict
    from genmodel.report._figures import compare_figure as compare_figure
    from genmodel.report._figures import figure_format as figure_format
    from genmodel.report._figures import sweep_figure as sweep_figure
    from genmodel.report._figures import write_figure as write_figure
    from genmodel.report._plots import interval_figure as interval_figure
    from genmodel.report._plots import pareto_figure as pareto_figure
    from genmodel.report._render import flatten as flatten
    from genmodel.report._render import format_bytes as format_bytes
    from genmodel.report._render import format_seconds as format_seconds
    from genmodel.report._render import to_csv as to_csv
    from genmodel.report._render import to_json as to_json
    from genmodel.report._roofline import roofline_figure as roofline_figure
    from genmodel.report._roofline import roofline_points as roofline_points

__getattr__, __dir__ = _lazy.attach(__name__)
