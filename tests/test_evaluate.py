"""genmodel._evaluate: the evaluator gives the plain formulas' numbers (bit for bit) on random
operator lists and on real steps, reuses steps by the value of their inputs, and specs are
hashable values (so no cache needs an object's id; tests/test_complexity.py checks that
none does)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import genmodel
from genmodel import MoeLayout, Op, Plan, Precision, RunOptions, forward_ops
from genmodel._evaluate import StepCache, reusing_steps, stacked, step_operators, time_step
from genmodel._ops import StepRoofline, roofline_step

GRID = 6  # elements of the arrays of the random operator lists
PRECISIONS = [Precision(), Precision(weight_dtype="fp8", act_dtype="fp8"), Precision(kv_dtype="fp8")]
DEVICES = ["h100-sxm", "ascend-910c", "jetson-orin-nano-8gb"]


def _same(a: Any, b: Any) -> bool:
    """The same numbers, with the same shape (0.0 and -0.0 alike)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _assert_same_roofline(fast: StepRoofline, plain: StepRoofline) -> None:
    assert len(fast.times) == len(plain.times)
    for f, p in zip(fast.times, plain.times, strict=True):
        assert f.op is p.op
        assert _same(f.compute_s, p.compute_s), f.op.name
        assert _same(f.memory_s, p.memory_s), f.op.name
    for name in ("compute_s", "memory_s", "compute_bound_s", "memory_bound_s", "attention_s"):
        assert _same(getattr(fast, name), getattr(plain, name)), name


# ---- random operator lists ------------------------------------------------------------------------

_numbers = st.one_of(
    st.just(0),
    st.integers(min_value=0, max_value=2**45),
    st.floats(min_value=0.0, max_value=1e17, allow_nan=False, allow_infinity=False),
)
_rows_values = st.lists(st.integers(min_value=1, max_value=5000).map(float), min_size=GRID, max_size=GRID)


@st.composite
def _op_lists(draw: st.DrawFn) -> list[Op]:
    """Operators as the formulas make them: fields plain numbers or float64 arrays of one shape
    (now and then another shape), GEMM rows the step's rows (the same array or an equal copy),
    other rows, or a number."""
    arrays = draw(st.booleans())
    shared = np.array(draw(_rows_values))

    def array() -> Any:
        values = np.array(draw(_rows_values)) * draw(st.floats(min_value=1e-3, max_value=1e12))
        return values[:, None] if draw(st.integers(0, 15)) == 0 else values  # another shape

    def field() -> Any:
        return array() if arrays and draw(st.booleans()) else draw(_numbers)

    def rows() -> Any:
        if not arrays:
            return draw(st.sampled_from([0, 1.0, 7.0, 300.0, 4096.0]))
        return draw(st.sampled_from([shared, shared.copy(), np.array(draw(_rows_values)), 64.0]))

    ops = []
    for i in range(draw(st.integers(min_value=0, max_value=14))):
        kind = draw(st.sampled_from(["gemm", "gemm", "attention", "elementwise"]))
        fields = [field() for _ in range(4)]
        ops.append(Op(f"op{i}", kind, *fields, rows=rows() if kind == "gemm" else 0))
    return ops


@given(ops=_op_lists(), device=st.sampled_from(DEVICES), precision=st.sampled_from(PRECISIONS))
def test_the_evaluator_equals_the_plain_roofline_on_random_operator_lists(
    ops: list[Op], device: str, precision: Precision
) -> None:
    d = genmodel.load_device(device)
    _assert_same_roofline(time_step(ops, d, precision), roofline_step(ops, d, precision))


def test_the_evaluator_times_a_real_decode_step_as_one_block_with_the_plain_numbers() -> None:
    # the case the evaluator is for: a step over a batch grid, many GEMMs over the same rows
    m, d = genmodel.load_model("deepseek-v3"), genmodel.load_device("ascend-910c")
    seqs = np.arange(1.0, 300.0)
    ops = forward_ops(m, Precision(), num_seqs=seqs, new_tokens=1, past_tokens=5000.0, absorb_mla=True)
    assert sum(op.kind == "gemm" for op in ops) > 5
    _assert_same_roofline(time_step(ops, d, Precision()), roofline_step(ops, d, Precision()))


def test_known_times_are_used_as_given() -> None:
    m, d = genmodel.load_model("llama-3.1-8b"), genmodel.load_device("h100-sxm")
    ops = forward_ops(m, Precision(), num_seqs=2.0, new_tokens=100, past_tokens=0)
    plain = roofline_step(ops, d, Precision())
    known = [None, *plain.times[1:]]
    _assert_same_roofline(time_step(ops, d, Precision(), known=known), plain)
    doubled = [None, *(dataclasses.replace(t, memory_s=2 * t.memory_s) for t in plain.times[1:])]
    assert time_step(ops, d, Precision(), known=doubled).memory_s > plain.memory_s


def test_symbolic_operators_take_the_plain_formulas() -> None:
    b = sympy.Symbol("b", positive=True)
    m, d = genmodel.load_model("mixtral-8x7b"), genmodel.load_device("h100-sxm")
    ops = forward_ops(m, Precision(), num_seqs=b, new_tokens=1, past_tokens=1000)
    fast, plain = time_step(ops, d, Precision()), roofline_step(ops, d, Precision())
    for name in ("compute_s", "memory_s", "compute_bound_s", "memory_bound_s", "attention_s"):
        assert getattr(fast, name) == getattr(plain, name)


# ---- whole steps, and their reuse ---------------------------------------------------------------

_MODELS = ["llama-3.1-8b", "qwen3-32b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3"]


@st.composite
def _steps(draw: st.DrawFn) -> dict[str, Any]:
    model = genmodel.load_model(draw(st.sampled_from(_MODELS)))
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    if draw(st.booleans()):
        num_seqs: Any = np.array(draw(st.lists(st.integers(1, 4096).map(float), min_size=1, max_size=40)))
    else:
        num_seqs = draw(st.sampled_from([1.0, 1, 3.0, 64.0]))
    prefill = draw(st.booleans())
    return {
        "model": model,
        "precision": draw(st.sampled_from(PRECISIONS)),
        "device": genmodel.load_device(draw(st.sampled_from(DEVICES))),
        "num_seqs": num_seqs,
        "new_tokens": draw(st.integers(1, 8192)) if prefill else draw(st.sampled_from([1, 2, 4])),
        "past_tokens": draw(st.sampled_from([0, 0.0, 511.0, 4096, 100_000.5])),
        "tp": tp,
        "cp": draw(st.sampled_from([1, 2])),
        "split_new_tokens": prefill,
        "absorb_mla": not prefill,
        "kv_read_frac": draw(st.sampled_from([1.0, 0.25])),
        "layouts": [
            None if model.moe is None else _layout(tp, draw(st.integers(0, 3)), draw(st.integers(0, 2)))
            for _ in range(2)
        ],
    }


def _layout(tp: int, dp_exp: int, redundant: int) -> MoeLayout:
    dp = 2**dp_exp
    return MoeLayout(tp=tp, dp=dp, ep=tp * dp, redundant_experts=redundant)


@given(step=_steps())
def test_step_operators_equal_the_plain_path_with_and_without_reuse(step: dict[str, Any]) -> None:
    layouts = step.pop("layouts")
    model, precision, device = step.pop("model"), step.pop("precision"), step.pop("device")
    cache = StepCache()
    for moe in layouts:  # the second reuses the first's operators, but for the routed experts
        plain_ops = forward_ops(model, precision, moe=moe, **step)
        plain = roofline_step(plain_ops, device, precision)
        for reuse in (None, cache, cache):
            with reusing_steps(reuse):
                ops, roof = step_operators(model, precision, device, moe=moe, **step)
            assert [op.name for op in ops] == [op.name for op in plain_ops]
            for op, expected in zip(ops, plain_ops, strict=True):
                for name in ("flops", "weight_bytes", "act_bytes", "kv_bytes", "rows"):
                    assert _same(getattr(op, name), getattr(expected, name)), (op.name, name)
            for t, expected_t in zip(roof.times, plain.times, strict=True):
                assert _same(t.compute_s, expected_t.compute_s) and _same(t.memory_s, expected_t.memory_s)
            for name in ("compute_s", "memory_s", "compute_bound_s", "memory_bound_s", "attention_s"):
                assert _same(getattr(roof, name), getattr(plain, name)), name


def _prefill(model: Any, device: Any, moe: MoeLayout | None = None) -> list[Op]:
    return step_operators(
        model,
        Precision(),
        device,
        num_seqs=1.0,
        new_tokens=2000,
        past_tokens=0,
        tp=1,
        cp=1,
        split_new_tokens=True,
        moe=moe,
        absorb_mla=False,
        kv_read_frac=1.0,
    )[0]


def test_steps_are_reused_by_the_value_of_their_inputs_and_only_within_the_block() -> None:
    model, device = genmodel.load_model("qwen3-30b-a3b"), genmodel.load_device("h100-sxm")
    cache = StepCache()
    reused = [op.name != "experts" for op in _prefill(model, device)]  # the experts are made again
    assert reused.count(False) == 1
    with reusing_steps(cache):
        first = _prefill(model, device)
        equal = _prefill(copy.deepcopy(model), copy.deepcopy(device))  # equal values
        assert [a is b for a, b in zip(first, equal, strict=True)] == reused
        other_layout = _prefill(model, device, MoeLayout(dp=2, ep=2))
        assert [a is b for a, b in zip(first, other_layout, strict=True)] == reused
        faster = dataclasses.replace(
            device, memory_bandwidth_bytes_per_s=2 * device.memory_bandwidth_bytes_per_s
        )
        assert _prefill(model, faster)[0] is not first[0]  # another device: made again
    assert _prefill(model, device)[0] is not first[0]  # outside the block: no reuse


def test_a_search_with_reused_steps_equals_one_without() -> None:
    import collections

    from genmodel._search import Slo, _evaluate, layouts  # (the search's per-layout evaluation)

    m, system = genmodel.load_model("qwen3-30b-a3b"), genmodel.load_hardware("h100-sxm")
    precision, cache = genmodel.default_precision("fp8", None, None), StepCache()
    count = 0
    for plan, why in layouts(m, system, 8):
        if why:
            continue
        args = (m, system, plan, precision, 2000, 300, Slo(), RunOptions(), collections.Counter())
        shared_layout, shared = _evaluate(*args, cache=cache)
        alone_layout, alone = _evaluate(*args)
        assert shared_layout == alone_layout
        assert shared.keys() == alone.keys() and all(_same(shared[k], alone[k]) for k in alone)
        count += 1
    assert count > 3


# ---- specs are values -----------------------------------------------------------------------------


def test_specs_are_hashable_values() -> None:
    specs = [
        genmodel.load_device("h100-sxm"),
        genmodel.load_hardware("cloudmatrix384"),
        genmodel.load_model("deepseek-v3"),
        Precision(weight_dtype="fp8"),
        Plan(tp=2, dp=4, ep=8),
        RunOptions(prefill_chunk=512),
        MoeLayout(tp=2, dp=2, ep=4),
    ]
    for spec in specs:
        twin = copy.deepcopy(spec)
        assert twin is not spec and twin == spec and hash(twin) == hash(spec)
    device = genmodel.load_device("h100-sxm")
    assert device.peak_flops_per_s == dict(device.peak_flops_per_s)  # still a mapping
    assert hash(dataclasses.replace(device, peak_flops_per_s={"bf16": 1e15})) != hash(device)
    assert len({*specs, *map(copy.deepcopy, specs)}) == len(specs)


@pytest.mark.parametrize("shape", [(GRID,), (GRID, 3)])
def test_the_stacked_sums_add_in_the_operators_order(shape: tuple[int, ...]) -> None:
    # values whose sum depends on the order of the additions: 1e16 + 1 + 1 - 1e16 is 0 added in
    # order (each 1 is lost against 1e16), 2 otherwise
    d = genmodel.load_device("h100-sxm")
    rate = d.memory_bandwidth_bytes_per_s * d.efficiency.memory_frac
    big, one = np.full(shape, 1e16 * rate), np.full(shape, rate)
    ops = [Op(f"e{i}", "elementwise", 0, 0, v, 0) for i, v in enumerate([big, one, one, -big])]
    fast, plain = time_step(ops, d, Precision()), roofline_step(ops, d, Precision())
    assert _same(fast.memory_s, plain.memory_s)


def test_steps_over_arrays_are_reused_by_value_a_few_at_a_time() -> None:
    from genmodel._evaluate import _ARRAY_STEPS

    model, device = genmodel.load_model("qwen3-30b-a3b"), genmodel.load_device("h100-sxm")
    cache = StepCache()

    def decode(batch: np.ndarray, moe: MoeLayout | None = None) -> list[Op]:
        with reusing_steps(cache):
            return step_operators(
                model,
                Precision(),
                device,
                num_seqs=batch,
                new_tokens=1,
                past_tokens=2000.0,
                tp=1,
                cp=1,
                split_new_tokens=False,
                moe=moe,
                absorb_mla=True,
                kv_read_frac=1.0,
            )[0]

    grid = np.arange(1.0, 257.0)
    first = decode(grid)
    again = decode(grid.copy(), MoeLayout(tp=1, dp=2, ep=2))  # the same values: reused but the experts
    assert [a is b for a, b in zip(first, again, strict=True)].count(False) == 1
    for n in range(_ARRAY_STEPS - 1):  # other grids, but the first used last: it stays
        decode(np.arange(1.0, 300.0 + n))
    assert decode(grid)[0] is first[0]
    for n in range(_ARRAY_STEPS):  # as many other grids push it out
        decode(np.arange(1.0, 400.0 + n))
    assert all(a is not b for a, b in zip(first, decode(grid), strict=True))


def test_array_keys_are_equal_exactly_when_the_arrays_are() -> None:
    from genmodel._evaluate import _value_key

    grid = np.arange(1.0, 2001.0)
    other = grid.copy()
    other[500] += 1.0  # (bytes other than those the hash reads: ends and middle)
    other[1500] += 0.5
    a, b, c = _value_key([grid, 1]), _value_key([grid.copy(), 1]), _value_key([other, 1])
    assert a == b and hash(a) == hash(b)
    assert a != c and hash(a) == hash(c)  # (the hash agrees, the key does not)
    assert _value_key([grid[:-1], 1]) != a and _value_key([grid, 1.0]) != a


@pytest.mark.parametrize("shape", [(5,), (1,), (0,), (2, 3)])
def test_stacked_rows_are_np_array_s(shape: tuple[int, ...]) -> None:
    """Stacking a step's arrays end to end gives np.array's rows, the same bytes and shape (1-D:
    put end to end; others, and none at all, np.array itself)."""
    rng = np.random.default_rng(1)
    rows = [rng.standard_normal(shape) for _ in range(4)]
    assert stacked(rows).shape == np.array(rows).shape
    assert stacked(rows).tobytes() == np.array(rows).tobytes()
    assert stacked([]).shape == (0,) and stacked([]).dtype == np.float64
