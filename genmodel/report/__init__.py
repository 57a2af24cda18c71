"""Rendering results for people and programs: summaries, the JSON form of an estimate, flat rows,
human units, JSON and CSV.

Each name, listed for type checkers in the ``if TYPE_CHECKING:`` block below and with its module in
``_PUBLIC``, is imported from that module on first use (PEP 562, genmodel/_lazy.py), so that
``from genmodel.report import format_bytes`` does not load the estimate's JSON form and the model
beneath it.
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
    from genmodel.report._figures import new_file_mode as new_file_mode
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

#: each public name -> its module (``module:attribute`` where it has another name there), as the
#: block above imports it (tests/test_package.py checks they agree): what the lazy ``__getattr__`` reads
_PUBLIC = {
    "describe_device": "genmodel.report._describe",
    "describe_link": "genmodel.report._describe",
    "describe_memory_tier": "genmodel.report._describe",
    "describe_model": "genmodel.report._describe",
    "describe_system": "genmodel.report._describe",
    "estimate_dict": "genmodel.report._estimate",
    "interval_dict": "genmodel.report._estimate",
    "phase_dict": "genmodel.report._estimate",
    "compare_figure": "genmodel.report._figures",
    "figure_format": "genmodel.report._figures",
    "new_file_mode": "genmodel.report._figures",
    "sweep_figure": "genmodel.report._figures",
    "write_figure": "genmodel.report._figures",
    "interval_figure": "genmodel.report._plots",
    "pareto_figure": "genmodel.report._plots",
    "flatten": "genmodel.report._render",
    "format_bytes": "genmodel.report._render",
    "format_seconds": "genmodel.report._render",
    "to_csv": "genmodel.report._render",
    "to_json": "genmodel.report._render",
    "roofline_figure": "genmodel.report._roofline",
    "roofline_points": "genmodel.report._roofline",
}

__getattr__, __dir__ = _lazy.attach(__name__, _PUBLIC)
