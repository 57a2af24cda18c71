"""Steps made together: a plan search's decode steps of several layouts evaluated as one.

The layouts of one tensor-parallel degree run the same operators over different batch grids
(their pipeline and data-parallel degrees size the grid and split the sequences). Each step's
Python work (making the operators, timing them, summing) is the same whatever the grid's length,
so :func:`prime_steps` evaluates the steps of several layouts as one step over their inputs put
end to end, and keeps each layout's part (its arrays' slices) in the search's
:class:`~genmodel._evaluate.StepCache`, under the key the layout's own step has: the layout then
finds its step made (:func:`~genmodel._evaluate.step_operators`).

The formulas work element by element (the same operations, in the same order, on each point
whatever the other points are), and the step's sums add the operators one after another
(:mod:`genmodel._evaluate`), so each part holds the same figures, to the last bit, as a step made
over the layout's own grid. Only models without routed experts are made together (a step with
them makes its experts again for each layout's MoE layout).
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Hashable, Sequence
from typing import Any

from genmodel._evaluate import StepCache, active_cache, time_step
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._ops import Op, OpTime, StepRoofline, forward_ops
from genmodel._units import Num
from genmodel._workload import Precision

#: plain Python numbers
_PLAIN = (float, int)


def prime_steps(
    model: ModelSpec,
    precision: Precision,
    device: Device,
    inputs: Sequence[tuple[Any, Num]],
    *,
    new_tokens: Num,
    tp: Num,
    cp: Num,
    split_new_tokens: bool,
    absorb_mla: bool,
    kv_read_frac: Num,
) -> list[Hashable]:
    """Within :func:`~genmodel._evaluate.reusing_steps`, the steps of a model without routed
    experts at several ``inputs`` (num_seqs: one-dimensional float64 arrays; past_tokens: arrays
    of their shapes, or one number for all), the other arguments as
    :func:`~genmodel._evaluate.step_operators` takes them, evaluated as one step over the inputs
    put end to end, and each one's part kept as that function keeps a step (module docstring).

    Returns:
        The keys of the steps kept, in the order of ``inputs``: none for fewer than two not kept
        yet, or for inputs of another kind.
    """
    cache = active_cache()
    if cache is None or model.moe is not None:
        return []
    numbers = (new_tokens, tp, cp, kv_read_frac)
    todo = _unkept(cache, (model, precision, device), (split_new_tokens, absorb_mla), inputs, numbers)
    joined = _end_to_end(todo)
    if joined is None:
        return []
    ops = forward_ops(
        model,
        precision,
        num_seqs=joined[0],
        new_tokens=new_tokens,
        past_tokens=joined[1],
        tp=tp,
        cp=cp,
        split_new_tokens=split_new_tokens,
        moe=None,
        absorb_mla=absorb_mla,
        kv_read_frac=kv_read_frac,
    )
    ends = list(itertools.accumulate(len(seqs) for _, seqs, _ in todo))
    parts = _parts(time_step(ops, device, precision), list(zip([0, *ends[:-1]], ends, strict=True)))
    if parts is None:
        return []
    for (key, _, _), part in zip(todo, parts, strict=True):
        cache.put(key, [t.op for t in part.times], part, arrays=True)
    return [key for key, _, _ in todo]


def _unkept(
    cache: StepCache,
    specs: tuple[object, ...],
    flags: tuple[bool, bool],
    inputs: Sequence[tuple[Any, Num]],
    numbers: tuple[Num, Num, Num, Num],
) -> list[tuple[Hashable, Any, Num]]:
    """The (key, num_seqs, past_tokens) of the steps of ``inputs`` that ``cache`` does not keep yet
    (:func:`prime_steps`: ``specs`` its model, precision and device, ``flags`` its
    split_new_tokens and absorb_mla, ``numbers`` its new_tokens, tp, cp and kv_read_frac, keyed
    as :func:`~genmodel._evaluate.step_operators` keys a step); none unless every num_seqs is a
    one-dimensional float64 array (and every past_tokens a number or one)."""
    import numpy as np

    new_tokens, tp, cp, kv_read_frac = numbers
    todo: list[tuple[Hashable, Any, Num]] = []
    for seqs, past in inputs:
        key = cache.step_key(specs, flags, (seqs, new_tokens, past, tp, cp, kv_read_frac))
        if key is None or type(seqs) is not np.ndarray:
            return []
        if cache.get(key) is None:
            todo.append((key, seqs, past))
    return todo


def _end_to_end(todo: list[tuple[Hashable, Any, Num]]) -> tuple[Any, Num] | None:
    """The num_seqs of the steps of ``todo`` (:func:`_unkept`) put end to end, and their
    past_tokens likewise (or the number they all share); None for fewer than two steps, or past
    tokens that are neither all one number nor all arrays of their num_seqs' shapes."""
    import numpy as np

    if len(todo) < 2:
        return None
    pasts = [past for _, _, past in todo]
    seqs = np.concatenate([s for _, s, _ in todo])
    if all(type(p) is type(pasts[0]) and type(p) in _PLAIN and p == pasts[0] for p in pasts):
        return seqs, pasts[0]
    if all(np.shape(p) == np.shape(s) for _, s, p in todo):
        return seqs, np.concatenate(pasts)
    return None


#: the fields of an operator, in the order :class:`~genmodel._ops.Op` takes them (one call)
_op_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(Op)))


def _parts(roof: StepRoofline, bounds: Sequence[tuple[int, int]]) -> list[StepRoofline] | None:
    """The points ``start:stop`` of ``roof`` for each of ``bounds`` (consecutive, from 0): its
    arrays' slices (:func:`prime_steps`); None unless every array of it (its operators' fields
    and times, its sums) holds one figure per point."""
    import numpy as np

    size = bounds[-1][1]
    # per operator: its fields and times, and the places of the arrays among them
    kept: list[tuple[list[Any], list[int]]] = []
    shapes: set[tuple[int, ...]] = set()
    for t in roof.times:
        values = [*_op_fields(t.op), t.compute_s, t.memory_s]
        places = [i for i, v in enumerate(values) if type(v) is np.ndarray]
        shapes.update([values[i].shape for i in places])
        kept.append((values, places))
    sums: list[Any] = list(roof.sums())
    at = [i for i, v in enumerate(sums) if type(v) is np.ndarray]
    shapes.update([sums[i].shape for i in at])
    if not shapes <= {(size,)}:
        return None
    out = []
    for start, stop in bounds:
        times = []
        for values, places in kept:
            cut = list(values)
            for i in places:
                cut[i] = cut[i][start:stop]
            times.append(OpTime(Op(*cut[:-2]), cut[-2], cut[-1]))
        part = list(sums)
        for i in at:
            part[i] = part[i][start:stop]
        out.append(StepRoofline(tuple(times), *part))
    return out
