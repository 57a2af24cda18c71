"""Rendering results for people and programs: summaries, the JSON form of an estimate, flat rows,
human units, JSON and CSV.

Each name is imported from its module on first use (PEP 562), so that ``from genmodel.report import
format_bytes`` does not load the estimate's JSON form and the model beneath it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: the public names by the module that defines them
_LAZY: dict[str, tuple[str, ...]] = {
    "genmodel.report._describe": (
        "describe_device",
        "describe_link",
        "describe_memory_tier",
        "describe_model",
        "describe_system",
    ),
    "genmodel.report._estimate": ("estimate_dict", "interval_dict", "phase_dict"),
    "genmodel.report._figures": ("compare_figure", "figure_format", "sweep_figure", "write_figure"),
    "genmodel.report._plots": ("interval_figure", "pareto_figure"),
    "genmodel.report._render": ("flatten", "format_bytes", "format_seconds", "to_csv", "to_json"),
    "genmodel.report._roofline": ("roofline_figure", "roofline_points"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept."""
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'genmodel.report' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
