"""The plan search's decode sides: a layout's step evaluated over the union of the batch grids of
the layouts that differ only in their ep, its own points taken, is the step over its own grid."""

from __future__ import annotations

import collections

import pytest

import genmodel
from genmodel._decodes import DENSE_BATCHES, EpDecodes, decode_side
from genmodel._evaluate import StepCache
from genmodel._search import layouts

#: speculative decoding (a verify step and draft steps) and two microbatches (their count per batch)
_SPLIT = genmodel.RunOptions(speculation=genmodel.Speculation(draft_tokens=2), overlap_microbatches=2)


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
