"""Shared fixtures and options of the genmodel test suite."""

from __future__ import annotations

import pytest
from hypothesis import settings

# Property tests stay quick on a 2-core CI machine; no per-example deadline (first calls load YAML).
settings.register_profile("genmodel", max_examples=100, deadline=None)
settings.load_profile("genmodel")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from the current code instead of comparing against them",
    )
