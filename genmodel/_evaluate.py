"""The evaluator: a step's operators timed fast, with the same numbers as the plain formulas.

:mod:`genmodel._ops` writes each formula once, as plain arithmetic (:func:`~genmodel._ops.forward_ops`
for the operators of a step, :func:`~genmodel._ops.roofline_step` for their times and sums). This
module evaluates the same formulas the way a plan search needs them evaluated, millions of
candidates a second, and gives the same numbers:

- Over NumPy arrays (a search's batch grid) the GEMMs over the step's token rows are timed as one
  block, their row padding computed once, and the step's sums run over the operators' times
  stacked into arrays, in groups small enough to stay below glibc's mmap threshold. Element by
  element every operation is the one the plain formula does, in the same order: the figures are
  the same to the last bit.
- Over plain numbers the sums run in a loop without the helpers' type dispatch (the same
  comparisons and additions).
- Within :func:`reusing_steps`, a step whose inputs (by value) were already evaluated reuses its
  operators and their times; only the routed experts, the one operator that depends on the MoE
  layout (:func:`~genmodel._ops.experts_op`), is made again. A plan search evaluates the same
  one-request prefill for every layout with the same tp, and the same decode step over its batch
  grid for every expert-parallel degree of a tp and dp (one-dimensional float64 arrays are keyed
  by their bytes; a few such steps are kept at a time). Such a step also keeps the sums of the
  operators before the experts (without routed experts, the whole step's sums, read-only) and
  the chance that no token routes to an expert slot, and :func:`reused` keeps the
  tensor-parallel collectives' times by their message: the same values, made once.

Anything else (SymPy expressions, mixed shapes) runs through the plain formulas themselves.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Hashable, Sequence
from contextvars import ContextVar
from typing import Any

from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._ops import (
    Op,
    OpTime,
    Rates,
    StepRoofline,
    experts_op,
    forward_ops,
)
from genmodel._parallel import MoeLayout
from genmodel._units import Num
from genmodel._workload import Precision

#: largest array the stacked sums make at once: below glibc's 128 KiB mmap threshold, above
#: which each temporary is mapped and unmapped again, a page fault per 4 KiB
_GROUP_BYTES = 96 * 1024


def time_step(
    ops: Sequence[Op],
    device: Device,
    precision: Precision,
    *,
    known: Sequence[OpTime | None] = (),
    prefix: Prefix | None = None,
) -> StepRoofline:
    """:func:`~genmodel._ops.roofline_step` of ``ops``: the same numbers, evaluated faster.

    Args:
        ops: the step's operators, in order.
        device: the device they run on.
        precision: the precisions they run in.
        known: times already made for the operators at the same places (None: not known), as
            :func:`~genmodel._ops.roofline` gives them on this device and precision.
        prefix: the sums of the first ``prefix.count`` of ``known`` (all known), kept for the
            next step with the same ones (:class:`Prefix`).

    Returns:
        The step's :class:`~genmodel._ops.StepRoofline`.
    """
    rates = _rates(device, precision)
    times = _block_times(ops, rates) if not known else None
    if times is None:
        given = [*known[: len(ops)], *[None] * (len(ops) - len(known))]
        times = [
            t or rates.time(op, rates.padding(op.rows) if op.kind == "gemm" else 1.0)
            for t, op in zip(given, ops, strict=True)
        ]
    compute = [t.compute_s for t in times]
    memory = [t.memory_s for t in times]
    sums = _float_sums(times, compute, memory, prefix) or _stacked_sums(times, compute, memory, prefix)
    return sums or StepRoofline.of(times)


#: :meth:`~genmodel._ops.Rates.of`, kept for the few devices and precisions a search runs
#: (frozen values; a search times several steps per layout)
_rates = functools.lru_cache(maxsize=16)(Rates.of)


#: plain Python numbers (a field the formulas leave a number, as 0 for no KV bytes)
_PLAIN = (float, int)


def _float_arrays(values: Sequence[object], shape: tuple[int, ...] | None = None) -> bool:
    """Whether every value is a float64 NumPy array, all of one shape (``shape`` if given)."""
    np = sys.modules.get("numpy")  # not loaded: no value is one of its arrays (and a step of plain
    if np is None or not values or {type(v) for v in values} != {np.ndarray}:  # numbers never loads it)
        return False
    kinds = {(v.dtype.char, v.shape) for v in values}  # type: ignore[attr-defined]
    return len(kinds) == 1 and kinds.pop()[0] == "d" and (shape is None or values[0].shape == shape)  # type: ignore[attr-defined]


def _block_times(ops: Sequence[Op], rates: Rates) -> list[OpTime] | None:
    """The operators' roofline times, the GEMMs over the first GEMM's token rows timed as one
    block (their fields stacked, one row per GEMM) with the rows' padding computed once; None
    unless those rows are a one-dimensional float64 NumPy array that at least two GEMMs share,
    and the GEMMs' fields are numbers or arrays of that shape, their bytes not all numbers."""
    first = next((op for op in ops if op.kind == "gemm"), None)
    if first is None or not _float_arrays([first.rows]) or first.rows.ndim != 1:  # type: ignore[union-attr]
        return None
    rows: Any = first.rows
    # the routed experts stream at their own rate (Rates.time), so never in the block
    places = [i for i, op in enumerate(ops) if op.name != "experts" and _in_block(op, rows)]
    if len(places) < 2:
        return None
    block = rates.time(
        Op(
            "gemm",
            "gemm",
            *_stack([ops[i] for i in places], rows.shape),
            rows=rows,
            calls=_calls([ops[i] for i in places]),
        ),
        rates.padding(rows),
    )
    compute: Any = block.compute_s  # one row per GEMM
    memory: Any = block.memory_s
    times: list[OpTime | None] = [None] * len(ops)
    for j, i in enumerate(places):
        times[i] = OpTime(ops[i], compute[j], memory[j])
    return [
        t if t is not None else rates.time(op, rates.padding(op.rows) if op.kind == "gemm" else 1.0)
        for t, op in zip(times, ops, strict=True)
    ]


def _in_block(op: Op, rows: Any) -> bool:
    """Whether ``op`` is a GEMM in the step's precision over ``rows`` (the same values) whose
    fields are numbers or float64 arrays of the rows' shape, its bytes not all numbers (the plain
    formula's memory time is then an array of that shape, as the block's row is)."""
    import numpy as np

    if op.kind != "gemm" or op.dtype or not (op.rows is rows or _float_arrays([op.rows], rows.shape)):
        return False  # (a GEMM in a kept precision has its own rate: timed on its own)
    fields = (op.flops, op.weight_bytes, op.act_bytes, op.kv_bytes)
    arrays = [v for v in fields if type(v) not in _PLAIN]
    if not _float_arrays(arrays, rows.shape) or {type(v) for v in fields[1:]} <= {float, int}:
        return False
    return op.rows is rows or bool(np.array_equal(op.rows, rows))


def _calls(ops: Sequence[Op]) -> Any:
    """The kernels each of ``ops`` runs (plain numbers), one row per operator."""
    import numpy as np

    return np.array([float(op.calls) for op in ops])[:, None]


def _stack(ops: Sequence[Op], shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
    """(flops, weight bytes, activation bytes, KV bytes) of ``ops`` (as :func:`_in_block` takes
    them), one row per operator: a column where every operator has a plain number, else rows of
    ``shape``."""
    import numpy as np

    out = []
    for name in ("flops", "weight_bytes", "act_bytes", "kv_bytes"):
        values = [getattr(op, name) for op in ops]
        if {type(v) for v in values} <= {float, int}:
            out.append(np.array(values, dtype=float)[:, None])
        else:
            out.append(stacked([np.full(shape, float(v)) if type(v) in _PLAIN else v for v in values]))
    return out[0], out[1], out[2], out[3]


def _float_sums(
    times: Sequence[OpTime], compute: Sequence[Any], memory: Sequence[Any], prefix: Prefix | None = None
) -> StepRoofline | None:
    """The step's sums over plain floats (:meth:`~genmodel._ops.StepRoofline.of`'s additions and
    comparisons, in order), from ``prefix``'s sums where it has them (made here where it has none
    yet); None unless every time is a float."""
    reuse = prefix is not None and 1 < prefix.count < len(compute)
    # (the prefix's times are the same floats as when its sums were made: only the others to check)
    start = prefix.count if reuse and prefix is not None and prefix.sums is not None else 0
    if not {*map(type, compute[start:]), *map(type, memory[start:])} <= {float}:
        return None
    sums: tuple[list[Any], Num] = ([0.0] * 4, 0.0)
    first = 0
    if reuse and prefix is not None:
        first = prefix.count
        if prefix.sums is None:
            prefix.sums = _add_floats(sums, times[:first], compute[:first], memory[:first])
        sums = prefix.sums
    (compute_s, memory_s, compute_bound_s, memory_bound_s), attention_s = _add_floats(
        sums, times[first:], compute[first:], memory[first:]
    )
    return StepRoofline(tuple(times), compute_s, memory_s, compute_bound_s, memory_bound_s, attention_s)


def _add_floats(
    sums: tuple[list[Any], Num], times: Sequence[OpTime], compute: Sequence[Any], memory: Sequence[Any]
) -> tuple[list[Any], Num]:
    """``sums`` ((compute, memory, compute-bound, memory-bound totals), attention total) with the
    operators' float times added one after another."""
    (compute_s, memory_s, compute_bound_s, memory_bound_s), attention_s = sums
    for t, c, m in zip(times, compute, memory, strict=True):
        compute_s += c
        memory_s += m
        if c >= m:  # (adding the other's 0.0 leaves a sum as it is)
            compute_bound_s += c
        else:
            memory_bound_s += m
        if t.op.kind == "attention":
            attention_s += c if c >= m else m
    return [compute_s, memory_s, compute_bound_s, memory_bound_s], attention_s


class Prefix:
    """The running sums of a step's first ``count`` operators (times that steps with the same
    inputs share), made once (:func:`_stacked_sums` over arrays, :func:`_float_sums` over floats)
    and added to by every such step: the sums run row after row, so starting from them gives the
    same figures as adding every row again."""

    __slots__ = ("count", "sums")

    def __init__(self, count: int) -> None:
        self.count = count
        #: (compute, memory, compute-bound, memory-bound totals; attention total), once made
        self.sums: tuple[list[Any], Num] | None = None


def _stacked_sums(
    times: Sequence[OpTime], compute: list[Num], memory: list[Num], prefix: Prefix | None = None
) -> StepRoofline | None:
    """The step's sums with the operators' times stacked into arrays, added row after row (the
    operators' order), in groups of at most :data:`_GROUP_BYTES`, from ``prefix``'s sums where it
    has them; None unless every time is a float64 NumPy array, all of one shape."""
    reuse = prefix is not None and 1 < prefix.count < len(compute)  # (the sums made here are new arrays)
    # the prefix's times were checked when its sums were made (the same arrays, never written):
    # then only the others, and one of the prefix's for their common shape
    start = prefix.count if reuse and prefix is not None and prefix.sums is not None else 0
    if not _float_arrays([*compute[start:], *memory[start:], compute[0]]):
        return None
    first, totals = 0, [None] * 4
    attention_s: Num = 0.0
    if reuse and prefix is not None:
        first = prefix.count
        if prefix.sums is None:
            prefix.sums = (
                _add_rows([None] * 4, compute[:first], memory[:first]),
                _attention(times[:first], 0.0),
            )
        totals, attention_s = list(prefix.sums[0]), prefix.sums[1]
    totals = _add_rows(totals, compute[first:], memory[first:])
    attention_s = _attention(times[first:], attention_s)
    return StepRoofline(tuple(times), totals[0], totals[1], totals[2], totals[3], attention_s)


def _add_rows(totals: list[Any], compute: list[Any], memory: list[Any]) -> list[Any]:
    """``totals`` (compute, memory, compute-bound, memory-bound; None: nothing yet) with the
    operators' times added row after row, in groups of at most :data:`_GROUP_BYTES`."""
    import numpy as np

    totals = list(totals)
    rows = max(1, _GROUP_BYTES // max(8 * compute[0].size, 1)) if compute else 1  # operators per group
    for start in range(0, len(compute), rows):
        c, m = stacked(compute[start : start + rows]), stacked(memory[start : start + rows])
        bound = c >= m
        for i, stack in enumerate((c, m, np.where(bound, c, 0.0), np.where(bound, 0.0, m))):
            so_far = totals[i]
            if so_far is not None:  # (its first row plus the sums so far: the sum of the two as
                stack[0] += so_far  # the rows after them add to it, without stacking them anew)
            totals[i] = _sum_rows(stack)
    return totals


def _attention(times: Sequence[OpTime], so_far: Num) -> Num:
    """``so_far`` plus the attention operators' times of ``times``, one after another."""
    import numpy as np

    for t in times:
        if t.op.kind == "attention":
            so_far = so_far + np.maximum(t.compute_s, t.memory_s)
    return so_far


def stacked(arrays: Sequence[Any]) -> Any:
    """``np.array(arrays)`` of NumPy arrays of one shape and dtype: one row per array, the same
    values; one-dimensional arrays put end to end and reshaped (a copy either way, but without
    ``np.array``'s walk of a nested sequence: a search stacks a few hundred lists per layout)."""
    import numpy as np

    if not arrays:
        return np.array(arrays, dtype=float)
    first = arrays[0]
    if first.ndim == 1:
        return np.concatenate(arrays).reshape(len(arrays), first.shape[0])
    return np.array(arrays)


def _sum_rows(values: Any) -> Any:
    """values[0] + values[1] + ... in that order (as adding the operators one by one)."""
    import numpy as np

    if values.ndim == 2 and values.shape[1] > 1 and values.flags.c_contiguous:
        # a reduction across the slow axis adds row after row (NumPy sums pairwise only along
        # the fast axis), which is the operator-by-operator order
        return np.add.reduce(values, 0)  # (the axis by position: keywords cost a parse)
    total = values[0]
    for row in values[1:]:
        total = total + row
    return total


#: a kept step: its operators, the routed experts' place among them, the times of the others, the
#: sums of the operators before the experts (:class:`Prefix`; steps over arrays with experts), the
#: chances that no token routes to an expert slot (``missed`` of :func:`~genmodel._ops.experts_op`),
#: and the step's roofline when no operator is made again (no routed experts; None with them)
_Step = tuple[
    list[Op], int | None, tuple[OpTime | None, ...], "Prefix | None", dict[Any, Any], "StepRoofline | None"
]

#: steps over arrays a :class:`StepCache` keeps at once (the least recently used goes first): a
#: plan search evaluates the layouts of one tp (and batch grid) one after another, and each field
#: of a step over a batch grid takes several kilobytes
_ARRAY_STEPS = 8


class StepCache:
    """Steps already evaluated (:func:`step_operators` on plain numbers, or with one-dimensional
    float64 arrays: a search's batch grid), by the value of their inputs but the MoE layout: their
    operators, the routed experts' place among them, and the operators' times. Steps over arrays
    are kept :data:`_ARRAY_STEPS` at a time."""

    def __init__(self) -> None:
        self._steps: dict[Hashable, _Step] = {}
        self._array_steps: dict[Hashable, _Step] = {}
        self._values: dict[Hashable, Any] = {}
        self._hashes: list[tuple[object, int]] = []  # the specs seen (a few), with their hashes
        #: what the layers above keep for as long as this search's steps (the mixed steps'
        #: operator rows of genmodel._interleave), by name: the search's state stays the search's
        self.attached: dict[str, Any] = {}

    def key(self, objects: tuple[object, ...], values: tuple[Hashable, ...]) -> _Key:
        """The key of these specs (each hashed once, the first time it is seen: a deep hash of a
        model or device takes microseconds, and a search asks for the same few thousands of
        times) and values."""
        hashes = []
        for spec in objects:
            for seen, kept in self._hashes:  # noqa: B007 (the one found is used after the loop)
                if seen is spec:
                    break
            else:
                kept = hash(spec)
                self._hashes.append((spec, kept))
            hashes.append(kept)
        return _Key(objects, values, hash((*hashes, values)))

    def step_key(
        self, specs: tuple[object, ...], flags: tuple[bool, bool], numbers: Sequence[object]
    ) -> _Key | None:
        """The key :func:`step_operators` keeps a step under: its ``specs`` (model, precision,
        device), ``flags`` (split_new_tokens, absorb_mla) and ``numbers`` (num_seqs, new_tokens,
        past_tokens, tp, cp, kv_read_frac) by value; None when a number is neither a plain number
        nor a one-dimensional float64 array (such a step is not kept)."""
        values = _value_key(numbers)
        return None if values is None else self.key(specs, (*flags, *values))

    def value(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value ``make()`` gave for ``key`` before, else ``make()``, kept (a few at a time:
        the least recently used goes first)."""
        hit = self._values.pop(key, _MISSING)
        if hit is _MISSING:
            hit = make()
            if len(self._values) >= _VALUES:
                del self._values[next(iter(self._values))]
        self._values[key] = hit
        return hit

    def get(self, key: Hashable) -> _Step | None:
        """The step evaluated with these inputs, if any."""
        hit = self._steps.get(key)
        if hit is None:  # (the least recently used goes first: a hit moves to the end)
            hit = self._array_steps.pop(key, None)
            if hit is not None:
                self._array_steps[key] = hit
        return hit

    def forget(self, key: Hashable) -> None:
        """Let the step kept under ``key`` go (if kept), its arrays with it."""
        self._steps.pop(key, None)
        self._array_steps.pop(key, None)

    def put(self, key: Hashable, ops: list[Op], roof: StepRoofline, *, arrays: bool = False) -> None:
        """Keep a step evaluated with these inputs (the times of all its operators but the
        routed experts); ``arrays``: some input is an array."""
        names = [op.name for op in ops]
        experts = names.index("experts") if "experts" in names else None
        known = (
            tuple(roof.times)
            if experts is None
            else (*roof.times[:experts], None, *roof.times[experts + 1 :])
        )
        whole = None
        if experts is None:  # every operator the same: the step's sums too (shared: never written)
            whole = roof
            _read_only(*roof.sums())
        # the operators before the experts are the same in every such step: their sums, once
        step: _Step = (ops, experts, known, None if experts is None else Prefix(experts), {}, whole)
        if not arrays:
            self._steps[key] = step
            return
        if len(self._array_steps) >= _ARRAY_STEPS:
            del self._array_steps[next(iter(self._array_steps))]
        self._array_steps[key] = step


def _read_only(*values: object) -> None:
    """Mark the NumPy arrays among ``values`` read-only (a kept step's, shared by its reuses)."""
    np = sys.modules.get("numpy")  # (not loaded: none of them is an array)
    for v in values:
        if np is not None and type(v) is np.ndarray:
            v.flags.writeable = False  # type: ignore[attr-defined]


class _Key:
    """A step's inputs as a cache key, by value, hashed once (:meth:`StepCache.key`): the specs
    (model, precision, device; frozen values) with the hashes the cache keeps for them, compared
    first by identity (a search passes the same objects throughout), and the other inputs."""

    __slots__ = ("_hash", "objects", "values")

    def __init__(self, objects: tuple[object, ...], values: tuple[Hashable, ...], hashed: int) -> None:
        self.objects = objects
        self.values = values
        self._hash = hashed

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Key) or self._hash != other._hash:
            return False
        for a, b in zip(self.objects, other.objects, strict=True):
            if a is not b and a != b:
                return False
        return self.values == other.values


class _Bytes(bytes):
    """An array's bytes as a key: equal by all of them, hashed by their length and a few of them
    at each end and in the middle (a search's keys hash kilobytes of a batch grid's steps per
    layout; equal keys have equal hashes all the same, and unequal ones that collide are told apart
    by their bytes)."""

    __slots__ = ()

    def __hash__(self) -> int:
        n = len(self)
        middle = n // 2
        return hash((n, self[:32], self[middle : middle + 32], self[-32:]))


def _value_key(numbers: Sequence[object]) -> tuple[Hashable, ...] | None:
    """The inputs by value (with their types: 1 and 1.0 are two keys), or None when one is neither a
    plain number nor a one-dimensional float64 array."""
    import numpy as np

    key: list[Hashable] = []
    for x in numbers:
        if type(x) in (float, int):
            key.append((type(x), x))
        elif type(x) is np.ndarray and x.dtype.char == "d" and x.ndim == 1:
            key.append((np.ndarray, x.shape, _Bytes(x.tobytes())))
        else:
            return None
    return tuple(key)


#: values a :class:`StepCache` keeps besides steps (:func:`reused`): a search's layouts of one tp
#: and batch grid come one after another
_VALUES = 16
_MISSING = object()


def reused(names: tuple[Hashable, ...], system: object, number: Num, make: Callable[[], Any]) -> Any:
    """Within :func:`reusing_steps`: what ``make()`` gave before for these ``names``, ``system``
    and ``number`` (a plain number or a one-dimensional float64 array), by value, else
    ``make()``, kept; anything else (no cache, another type) is made. A search's layouts of one tp
    that differ in their MoE layout time the same tensor-parallel collectives."""
    cache = _REUSED.get()
    values = None if cache is None else _value_key((number,))
    if cache is None or values is None:
        return make()
    return cache.value(cache.key((system,), (*names, *values)), make)


#: the steps reused by :func:`step_operators` (None: none), as :func:`reusing_steps` sets them
_REUSED: ContextVar[StepCache | None] = ContextVar("genmodel_reused_steps", default=None)


def active_cache() -> StepCache | None:
    """The steps :func:`reusing_steps` reuses here (None: none)."""
    return _REUSED.get()


class reusing_steps:
    """Within the block, :func:`step_operators` keeps the steps it evaluates on plain numbers (or
    one-dimensional float64 arrays) in ``cache`` and reuses them (None: no reuse). A plan search
    opens one for its whole run (and one per layout's steps: a class, not a generator, so that
    entering one costs a call, not a generator's set-up)."""

    __slots__ = ("_cache", "_token")

    def __init__(self, cache: StepCache | None) -> None:
        self._cache = cache

    def __enter__(self) -> None:
        self._token = _REUSED.set(self._cache)

    def __exit__(self, *exc: object) -> None:
        _REUSED.reset(self._token)


def step_operators(
    model: ModelSpec,
    precision: Precision,
    device: Device,
    *,
    num_seqs: Num,
    new_tokens: Num,
    past_tokens: Num,
    tp: Num,
    cp: Num,
    split_new_tokens: bool,
    moe: MoeLayout | None,
    absorb_mla: bool,
    kv_read_frac: Num,
) -> tuple[list[Op], StepRoofline]:
    """:func:`~genmodel._ops.forward_ops` (arguments as there) and their :func:`time_step`.

    Within :func:`reusing_steps`, a step on plain numbers (or one-dimensional float64 arrays) with
    the same inputs as one evaluated before, but perhaps the MoE layout, reuses that step's
    operators and their times (the same objects, so the same figures); the routed experts are
    made again for ``moe``.
    """
    cache = _REUSED.get()
    numbers = (num_seqs, new_tokens, past_tokens, tp, cp, kv_read_frac)
    key = (
        None
        if cache is None
        else cache.step_key((model, precision, device), (split_new_tokens, absorb_mla), numbers)
    )
    if cache is not None and key is not None:
        hit = cache.get(key)
        if hit is not None:
            cached, experts, known, prefix, missed, whole = hit
            ops = list(cached)
            if whole is not None:  # (no operator to make again: the same sums, made once)
                return ops, whole
            if experts is not None:
                ops[experts] = experts_op(
                    model,
                    precision,
                    num_seqs=num_seqs,
                    new_tokens=new_tokens,
                    tp=tp,
                    cp=cp,
                    split_new_tokens=split_new_tokens,
                    moe=moe,
                    missed=missed,
                )
            return ops, time_step(ops, device, precision, known=known, prefix=prefix)
    ops = forward_ops(
        model,
        precision,
        num_seqs=num_seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        tp=tp,
        cp=cp,
        split_new_tokens=split_new_tokens,
        moe=moe,
        absorb_mla=absorb_mla,
        kv_read_frac=kv_read_frac,
    )
    roof = time_step(ops, device, precision)
    if cache is not None and key is not None:
        cache.put(key, ops, roof, arrays=not all(type(x) in (float, int) for x in numbers))
    return ops, roof
