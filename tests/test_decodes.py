"""The plan search's decode sides: a layout's step evaluated over the union of the batch grids of
the layouts that differ only in their ep, its own points taken, is the step over its own grid; and
the decode steps of a dense model's layouts of one tp, evaluated as one, are each layout's own."""

from __future__ import annotations

import collections
from collections.abc import Hashable

import numpy as np
import pytest

import genmodel
import genmodel._decodes
from genmodel._decodes import DENSE_BATCHES, EpDecodes, batch_grid, decode_side
from genmodel._enginepresets import as_engine
from genmodel._evaluate import StepCache
from genmodel._recheck import closed_form_wave
from genmodel._search import layouts
from genmodel._together import prime_steps

#: speculative decoding (a verify step and draft steps) and two microbatches (their count per batch)
_SPLIT = genmodel.RunOptions(speculation=genmodel.Speculation(draft_tokens=2), overlap_microbatches=2)
#: speculative decoding with a draft model
_DRAFTED = genmodel.RunOptions(
    speculation=genmodel.Speculation(draft_tokens=3, draft_model=genmodel.load_model("llama-3.2-1b"))
)


@pytest.mark.parametrize(
    ("model", "hardware", "devices", "dtype", "options"),
    [
        ("deepseek-v3", "h200-sxm", 24, "fp8", genmodel.RunOptions()),
        ("deepseek-v3", "ascend-910c", 48, "int8", genmodel.RunOptions()),
        ("deepseek-v3", "ascend-910c", 48, "int8", _SPLIT),
    ],
)
def test_a_step_over_the_ep_union_grid_is_each_layouts_own_to_the_last_bit(
    model: str, hardware: str, devices: int, dtype: str, options: genmodel.RunOptions
) -> None:
    m, system = genmodel.load_model(model), genmodel.load_hardware(hardware)
    precision = genmodel.default_precision(dtype, None, None)
    work = [(devices, plan, why) for plan, why in layouts(m, system, devices)]
    decodes = EpDecodes(m, system, work, (4096, 1024), StepCache())
    tops: dict[tuple[int, ...], list[float]] = collections.defaultdict(list)
    for i, (_, plan, why) in enumerate(work):
        if why:
            continue
        shared = decodes.get(i, precision, options)
        alone = decode_side(m, system, plan, precision, 4096, 1024, options)
        assert shared.system == alone.system and shared.most == alone.most
        if alone.batch is None:
            assert shared.batch is None and shared.step_s is None
            continue
        assert shared.batch.tobytes() == alone.batch.tobytes()
        assert shared.step_s.dtype == alone.step_s.dtype and shared.step_s.tobytes() == alone.step_s.tobytes()
        tops[(plan.tp, plan.pp, plan.dp)].append(float(alone.batch[-1]))
    # the case has runs of layouts whose grids differ: a shorter dense run, and another tail
    differ = [each for each in tops.values() if len(set(each)) > 1]
    assert any(max(each) <= DENSE_BATCHES for each in differ)
    assert any(min(each) > DENSE_BATCHES for each in differ)


@pytest.mark.parametrize(
    ("model", "hardware", "devices", "engine", "options", "dtype"),
    [
        ("llama-3.1-70b", "h200-sxm", 8, "vllm", genmodel.RunOptions(), "fp8"),  # graphs pad the steps
        ("llama-3.1-70b", "h100-sxm", 16, "sglang", genmodel.RunOptions(overlap_microbatches=2), "fp8"),
        ("qwen3-32b", "h100-sxm", 8, None, genmodel.RunOptions(), "fp8"),  # no wave: the plain grid
        ("llama-3.1-70b", "h100-sxm", 8, None, _DRAFTED, "fp8"),  # speculation: not made together
        ("llama-3.1-405b", "b200", 8, "vllm", genmodel.RunOptions(), "fp4"),  # the LM head kept in bf16
    ],
)
def test_the_decode_steps_of_a_dense_models_layouts_made_together_are_each_layouts_own(
    model: str,
    hardware: str,
    devices: int,
    engine: str | None,
    options: genmodel.RunOptions,
    dtype: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, system = genmodel.load_model(model), genmodel.load_hardware(hardware)
    precision = genmodel.default_precision(dtype, None, None, model=m)
    assert (dtype == "fp4") == bool(precision.keep_modules)
    wave = None if engine is None else closed_form_wave(as_engine(engine, system.device), None)
    pool = None if wave is None else wave.pool
    work = [(devices, plan, why) for plan, why in layouts(m, system, devices)]
    kept: list[int] = []
    primed: list[Hashable] = []

    def counted(*args: object, **kwargs: object) -> list[Hashable]:
        keys = prime_steps(*args, **kwargs)  # type: ignore[arg-type]
        kept.append(len(keys))
        primed.extend(keys)
        return keys

    monkeypatch.setattr(genmodel._decodes, "prime_steps", counted)
    cache = StepCache()
    decodes = EpDecodes(m, system, work, (2000, 300), cache, pool, wave)
    for i, (_, plan, why) in enumerate(work):
        if why:
            continue
        shared = decodes.get(i, precision, options)
        alone = decode_side(m, system, plan, precision, 2000, 300, options, pool=pool, wave=wave)
        assert (shared.system, shared.most) == (alone.system, alone.most)
        if alone.batch is None:
            assert shared.batch is None
            continue
        assert shared.batch.tobytes() == alone.batch.tobytes()
        assert shared.step_s.dtype == alone.step_s.dtype and shared.step_s.tobytes() == alone.step_s.tobytes()
        for name in ("compute_s", "memory_s", "comm_s", "time_s"):
            assert np.array_equal(getattr(shared.terms, name), getattr(alone.terms, name)), name
        for a, b in zip(shared.terms.ops, alone.terms.ops, strict=True):  # (a mixed step's operators)
            assert a.op.name == b.op.name
            for x, y in [(a.compute_s, b.compute_s), (a.memory_s, b.memory_s)] + [
                (getattr(a.op, f), getattr(b.op, f))
                for f in ("flops", "weight_bytes", "act_bytes", "kv_bytes")
            ]:
                assert type(x) is type(y) and np.shape(x) == np.shape(y) and np.array_equal(x, y)
    if options.speculation is None:
        assert sum(kept) > 2  # (steps were made together)
        assert all(cache.get(key) is None for key in primed)  # (each let go once its layout had it)
    else:
        assert not kept


def _numpy_grid(most: float) -> np.ndarray:
    """The batch grid as NumPy's geomspace and unique make it."""
    top = int(most)
    dense = np.arange(1, min(top, DENSE_BATCHES) + 1, dtype=float)
    if top <= DENSE_BATCHES:
        return dense
    tail = np.unique(np.round(np.geomspace(DENSE_BATCHES, top, genmodel._decodes._TAIL_POINTS + 1)[1:]))
    return np.concatenate([dense, tail])


def test_the_batch_grid_is_numpys_geometric_tail_to_the_last_bit() -> None:
    rng = np.random.default_rng(7)
    tops = [1.0, 2.5, 1023.0, 1024.0, 1024.9, 1025.0, 1026.0, 1040.0, 1057.0, 2048.0, 5e5, 1e7]
    tops += [float(t) for t in rng.integers(1025, 200_000, 400)]
    tops += [float(t) for t in rng.integers(1025, 1100, 60)]  # (short tails: rounded points repeat)
    for most in tops:
        grid, expected = batch_grid(most), _numpy_grid(most)
        assert grid.dtype == expected.dtype and grid.tobytes() == expected.tobytes(), most
    for most in tops[4:]:  # (and its points before rounding)
        points = genmodel._decodes._geometric(float(DENSE_BATCHES), float(int(most)), 33)
        assert points.tobytes() == np.geomspace(DENSE_BATCHES, int(most), 33).tobytes(), most


def test_a_grids_padded_rows_are_padded_rows_point_by_point() -> None:
    from genmodel._interleave import _LAST_GRID, grid_padded_rows, padded_rows

    pads_of = [(), (1,), (1, 2, 4, 8), (1, 2, 4, 8, 16, 24, 32, 512), tuple(range(8, 1025, 8)), (4096,)]
    for most in (1.0, 3.0, 7.0, 8.0, 9.0, 600.0, 1024.0, 1500.0, 5e4):
        grid = batch_grid(most)
        grid.flags.writeable = False  # (a search's grids are read-only, and remembered as such)
        for pads in pads_of:
            _LAST_GRID[0] = None
            rows, scale = padded_rows(grid, pads)  # type: ignore[misc]
            _LAST_GRID[0] = None
            fast = grid_padded_rows(grid, pads)
            assert np.asarray(fast[0]).tobytes() == np.asarray(rows).tobytes(), (most, pads)
            scales = [np.broadcast_to(x, grid.shape).tobytes() for x in (fast[1], scale)]
            same = scales[0] == scales[1]
            assert same, (most, pads)
            assert type(fast[1]) is type(scale)
            again = grid_padded_rows(grid, pads)  # (remembered: the same arrays)
            assert again[0] is fast[0] and again[1] is fast[1]
