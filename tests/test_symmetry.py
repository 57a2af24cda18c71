"""Replicas whose schedule another repeats are stepped once (genmodel._symmetry): every figure and
record must be what stepping each replica gives, to the last bit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genmodel
from genmodel import _simulate
from genmodel._lockstep import group_tokens
from genmodel._symmetry import replica_classes

MOE = {"model": "qwen3-30b-a3b", "hardware": "h200-sxm", "tp": 1, "dp": 4, "ep": 4}
DENSE = {"model": "llama-3.2-1b", "hardware": "h100-sxm", "dp": 4}


def _same(a: genmodel.SimulationResult, b: genmodel.SimulationResult) -> list[str]:
    """The fields (and record columns) in which two results differ, elapsed time aside."""
    differ = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "elapsed_s":
            continue
        if f.name == "records":
            for g in dataclasses.fields(x):
                u, v = getattr(x, g.name), getattr(y, g.name)
                if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v, equal_nan=True)):
                    differ.append(f"records.{g.name}")
        elif x != y:
            differ.append(f.name)
    return differ


def _both(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[Any, Any]:
    """The simulation as it runs (classes of replicas stepped once) and with every replica stepped."""
    args = {"input_tokens": 600, "output_tokens": 60, "records": True, **kwargs}
    fast = genmodel.simulate(**args)
    with monkeypatch.context() as m:
        m.setattr(_simulate, "replica_classes", lambda *a: None)
        slow = genmodel.simulate(**args)
    return fast, slow


@pytest.mark.parametrize(
    "kwargs",
    [
        {**MOE, "concurrency": 30, "requests_per_client": 3, "warmup_requests": 1},  # lockstep, 2 classes
        {**MOE, "concurrency": 32, "requests_per_client": 2, "engine": "sglang"},  # lockstep, 1 class
        {**MOE, "concurrency": 9, "requests": 22, "max_num_seqs": 2},  # uneven clients, queueing
        {**DENSE, "concurrency": 13, "requests_per_client": 3, "warmup_requests": 1},  # independent
        {**DENSE, "concurrency": 6, "requests_per_client": 2, "engine": "trtllm"},  # 2 replicas idle
        {  # the KV pool overflows: preemptions (on-demand admission) on both replicas
            "model": "llama-3.1-8b",
            "hardware": "rtx-4090",
            "dp": 2,
            "concurrency": 120,
            "requests_per_client": 2,
            "input_tokens": 3000,
            "output_tokens": 1000,
        },
    ],
)
def test_stepping_one_replica_per_class_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    fast, slow = _both(monkeypatch, **kwargs)
    assert _same(fast, slow) == []
    assert fast.records is not None and len(set(fast.records.replica.tolist())) > 1
    if kwargs["model"] == "llama-3.1-8b":
        assert fast.preemptions > 0


def test_replicas_are_classed_by_their_clients_requests() -> None:
    same = np.full(10, 100)
    # 10 clients of 3 requests on 4 replicas: replicas 0 and 1 have 3 clients, 2 and 3 two
    classes = replica_classes([3] * 10, 4, same, same)
    assert classes is not None and classes.representative == (0, 0, 2, 2)
    assert classes.representatives == [0, 2] and classes.weights() == {0: 2, 2: 2}
    # uneven requests per client split the classes further
    classes = replica_classes([2, 1, 1, 1, 1, 1], 3, np.full(7, 100), np.full(7, 100))
    assert classes is not None and classes.representative == (0, 1, 1)
    assert replica_classes([3] * 10, 4, np.arange(30), same) is None  # lengths vary
    assert replica_classes([3] * 10, 1, same, same) is None  # one replica
    assert replica_classes([1, 2, 3, 4], 4, same, same) is None  # no two alike


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 50)), min_size=1, max_size=12))
def test_weighted_group_tokens_equal_the_repeated_list(entries: list[tuple[int, int]]) -> None:
    tokens = [t for t, _ in entries]
    weights = [w for _, w in entries]
    repeated = [t for t, w in entries for _ in range(w)]
    if len(entries) == 1 and weights[0] > 1:
        assert group_tokens(tokens, weights) is None and group_tokens(repeated) is None
    else:
        assert group_tokens(tokens, weights) == group_tokens(repeated)
