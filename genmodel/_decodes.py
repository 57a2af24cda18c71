"""The plan search's decode side: the batch grid of a layout and one decode step over all of it.

- Running batch sizes per replica (:func:`batch_grid`): every integer up to :data:`DENSE_BATCHES`,
  then a geometric tail up to the most sequences that fit.
- With an engine's wave, a graphed decode batch runs at the captured size it is padded to
  (:func:`~genmodel._interleave.decode_steps`, evaluated in place of the plain step), and the
  step's terms are kept for the mixed steps that share its operators.
- The layouts that differ only in their expert-parallel degree (the same tp, pp and dp) fit a few
  sequences more or less each (the experts' share of the memory differs), so their grids differ
  by a few points at the end (a shorter dense run, another tail). :class:`EpDecodes` evaluates the
  decode step of each of them over the union of their grids and takes each layout's own points
  from it: every operator but the routed experts is then the same step for all of them (reused
  from the :class:`~genmodel._evaluate.StepCache`, not made again for each grid). The step's
  formulas work element by element on the batch array (the same operations on each point whatever
  the other points are), so a point's figure is the same bits on either grid.
- A dense model's layouts of one tp run the same operators over their own grids: the decode
  steps of a few of them are evaluated as one over their inputs put end to end
  (:func:`~genmodel._together.prime_steps`), each layout then finding its own step made, the
  same bits (:meth:`EpDecodes._prime`), and letting it go once it has it: the joint step's
  arrays (the parts are their slices) go with the last of its layouts, not at the search's end
  (half the search's peak memory, and the heap's pages it would fault in again).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from genmodel._engines import WHOLE_SEQUENCES, KvPool
from genmodel._errors import InfeasibleError
from genmodel._evaluate import StepCache, reusing_steps
from genmodel._forwardpass import microbatches
from genmodel._interleave import decode_steps, graph_pads, grid_padded_rows
from genmodel._memory import MemoryExtras, engine_max_batch
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import decode_pass, mean_decode_context, prepare
from genmodel._system import System
from genmodel._together import prime_steps
from genmodel._units import divided
from genmodel._wave import Wave
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np

#: running batch sizes evaluated per replica: every integer up to this, then a geometric tail
DENSE_BATCHES = 1024
_TAIL_POINTS = 32
#: the most layouts of one tp whose decode steps are evaluated as one (:meth:`EpDecodes._prime`):
#: half the steps over arrays a :class:`~genmodel._evaluate.StepCache` keeps
_PRIMED = 4


def batch_grid(most: float) -> np.ndarray[Any, Any]:
    """Running batch sizes per replica: 1, 2, ... up to DENSE_BATCHES, then geometric up to ``most``
    (the tail's points rounded to whole batches, each once)."""
    import numpy as np

    top = math.floor(most)
    dense = np.arange(1, min(top, DENSE_BATCHES) + 1, dtype=float)
    if top <= DENSE_BATCHES:
        return dense
    tail = np.round(_geometric(float(DENSE_BATCHES), float(top), _TAIL_POINTS + 1)[1:])
    if bool((tail[1:] >= tail[:-1]).all()):  # (ascending: each value once, as np.unique keeps it)
        tail = tail[np.concatenate(([True], tail[1:] != tail[:-1]))]
    else:
        tail = np.unique(tail)
    return np.concatenate([dense, tail])


def _geometric(start: float, stop: float, num: int) -> np.ndarray[Any, Any]:
    """``num`` points from ``start`` to ``stop`` (both > 0, num >= 2) evenly spaced in log10,
    the endpoints exact: the operations of ``numpy.geomspace`` (and its ``linspace``) in their
    order, without its general dtype, sign and shape handling (a search makes a grid per layout;
    tests/test_decodes.py compares the two)."""
    import numpy as np

    low, high = np.log10(start), np.log10(stop)
    exponents = np.arange(num, dtype=float)
    exponents *= (high - low) / (num - 1)
    exponents += low
    exponents[-1] = high
    out: np.ndarray[Any, Any] = np.power(10.0, exponents)
    out[0], out[-1] = start, stop
    return out


#: the system a layout runs and the most sequences that fit (None: not even one): :func:`_fit`
_Fit = tuple[System, int | None]


class Decode(NamedTuple):
    """What a layout and precision run the same whatever the prefill chunk: the system the run
    takes, the most sequences that fit (None: not even one), the batch grid and its decode steps
    (padded to the engine's CUDA graphs: :func:`~genmodel._interleave.decode_steps`), with the
    step's operators (``terms``, over ``terms_at``'s points of them, None: all) that a mixed step
    shares."""

    system: System
    most: int | None
    batch: np.ndarray[Any, Any] | None = None
    step_s: Any = None
    terms: Any = None
    terms_at: Any = None


def _prepare(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    lengths: tuple[int, int],
    options: RunOptions,
) -> tuple[System, MemoryExtras]:
    """:func:`~genmodel._phases.prepare` of a layout serving requests of ``lengths``."""
    return prepare(
        model,
        system,
        plan,
        precision,
        input_tokens=lengths[0],
        output_tokens=lengths[1],
        ideal=False,
        options=options,
    )


def _fit(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    lengths: tuple[int, int],
    options: RunOptions,
    pool: KvPool | None = None,
    prepared: tuple[System, MemoryExtras] | None = None,
) -> _Fit:
    """The system a layout runs (:func:`~genmodel._phases.prepare`; ``prepared``: what it gave, if
    made) and the most sequences that fit (None: not even one whole sequence); with ``pool``, in
    the engine's KV pool, each running sequence holding what its admission keeps
    (:func:`~genmodel._memory.engine_max_batch`)."""
    input_tokens, output_tokens = lengths
    run_system, extras = prepared or _prepare(model, system, plan, precision, lengths, options)
    try:  # the engine's pool, each sequence holding what its admission keeps; without one, whole ones
        most = engine_max_batch(
            model,
            run_system.device,
            plan,
            precision,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            pool=pool or WHOLE_SEQUENCES,
            extras=extras,
        )[1]
    except InfeasibleError:
        return run_system, None
    return run_system, most


def _grid(most: int, dp: int, grids: dict[int, np.ndarray[Any, Any]] | None) -> np.ndarray[Any, Any]:
    """The batch grid of ``most`` sequences over ``dp`` replicas, shared through ``grids`` (by
    its largest batch; never written)."""
    if grids is None:
        return batch_grid(most / dp)
    top = math.floor(most / dp)  # layouts with as many sequences per replica share one grid
    if top not in grids:
        grids[top] = batch_grid(most / dp)
        grids[top].flags.writeable = False  # shared by every layout with this grid
    return grids[top]


def _step(
    model: ModelSpec,
    plan: Plan,
    precision: Precision,
    run_system: System,
    batch: np.ndarray[Any, Any],
    lengths: tuple[int, int],
    options: RunOptions,
    cache: StepCache | None,
    wave: Wave | None = None,
    padded: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """The decode step's time over ``batch`` (the mean context of ``lengths``), padded to the
    CUDA graphs of the engine of ``wave`` (``padded``: its rows and context scale, if made:
    :func:`~genmodel._interleave.padded_rows`), and its terms."""
    past = mean_decode_context(*lengths)

    def step_at(seqs: Any, scale: Any) -> Any:
        return decode_pass(
            model, run_system, plan, precision, num_seqs=seqs, past_tokens=past * scale, options=options
        )

    with reusing_steps(cache):  # layouts of one tp and grid share the step's operators but the experts
        return decode_steps(step_at, batch, graph_pads(wave, model, plan), padded=padded)


def decode_side(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    input_tokens: int,
    output_tokens: int,
    options: RunOptions,
    grids: dict[int, np.ndarray[Any, Any]] | None = None,
    batches: np.ndarray[Any, Any] | None = None,
    cache: StepCache | None = None,
    pool: KvPool | None = None,
    wave: Wave | None = None,
    fit: _Fit | None = None,
    padded: tuple[Any, Any] | None = None,
) -> Decode:
    """One layout's decode side: the memory bound, the running batches (``batches``, else the
    batch grid, shared through ``grids``: by their largest batch, never written) and one decode
    step over all of them. Nothing here reads ``options.prefill_chunk``, so the chunk sizes of a
    search share it. ``pool``: as :func:`_fit` takes it; ``wave``: the engine whose CUDA graphs
    pad the step; ``fit``: what :func:`_fit` gave, if made, and ``padded`` the grid's padded rows
    and context scales (:func:`~genmodel._interleave.padded_rows`; with ``fit`` only)."""
    lengths = (input_tokens, output_tokens)
    run_system, most = fit or _fit(model, system, plan, precision, lengths, options, pool)
    if most is None:
        return Decode(run_system, None)
    batch = batches if batches is not None else _grid(most, plan.dp, grids)
    step_s, terms = _step(model, plan, precision, run_system, batch, lengths, options, cache, wave, padded)
    return Decode(run_system, most, batch, step_s, terms)


class EpDecodes:
    """The decode sides of a search's layouts, made for each run of layouts that differ only in
    their ep (consecutive in the search's work) over the union of their batch grids, or (a dense
    model) with the steps of the next layouts of one tp (module docstring), when first asked for."""

    def __init__(
        self,
        model: ModelSpec,
        system: System,
        work: Sequence[tuple[int, Plan, list[str]]],
        lengths: tuple[int, int],
        cache: StepCache | None,
        pool: KvPool | None = None,
        wave: Wave | None = None,
    ) -> None:
        self._model, self._system, self._work, self._lengths, self._cache = (
            model,
            system,
            work,
            lengths,
            cache,
        )
        self._pool = pool  # the engine's KV pool (_fit)
        self._wave = wave  # the engine whose CUDA graphs pad a decode step (_step)
        self._ranked: dict[int, Wave] = {}  # the wave on each DP size's ranks (Wave.on_ranks)
        #: what prepare gave the layouts of each size, with the options it took (_prepared)
        self._prepared: dict[int, tuple[RunOptions, tuple[System, MemoryExtras]]] = {}
        self._grids: dict[int, np.ndarray[Any, Any]] = {}
        self._made: dict[tuple[int, Precision], Decode] = {}
        #: what _prime made for the layouts of one tp, by layout and precision: the options it
        #: took, the fit (_fit), the grid's padded rows and context scales (padded_rows) and the
        #: key of the decode step it made for the layout (None: none made)
        self._primed: dict[tuple[int, Precision], tuple[RunOptions, _Fit, Any, Hashable | None]] = {}

    def get(self, index: int, precision: Precision, options: RunOptions) -> Decode:
        """The decode side of ``work[index]`` (a layout that can run) in ``precision``."""
        if self._model.moe is None:  # (one layout per tp, pp and dp: their steps made together)
            plan = self._work[index][1]
            primed = self._primed.pop((index, precision), None)
            if primed is None or not (primed[0] is options or primed[0] == options):
                self._prime(index, precision, options)
                primed = self._primed.pop((index, precision))
            side = decode_side(
                self._model,
                self._system,
                plan,
                precision,
                *self._lengths,
                options,
                self._grids,
                None,
                self._cache,
                *self._on_ranks(plan),
                fit=primed[1],
                padded=primed[2],
            )
            if primed[3] is not None and self._cache is not None:  # (its step, made for it alone:
                self._cache.forget(primed[3])  # the joint step's memory goes with its last layout)
            return side
        made = self._made.pop((index, precision), None)
        if made is not None:
            return made
        group = self._group(index)
        pool = self._on_ranks(self._work[index][1])[0]  # (the group's layouts share their dp)
        fits = [self._fit(self._work[i][1], precision, options, pool) for i in group]
        grids = [
            None if most is None else _grid(most, self._work[i][1].dp, self._grids)
            for i, (_, most) in zip(group, fits, strict=True)
        ]
        union = _union([g for g in grids if g is not None])
        for i, (run_system, most), grid in zip(group, fits, grids, strict=True):
            self._made[(i, precision)] = self._side(i, precision, options, run_system, most, grid, union)
        return self._made.pop((index, precision))

    def _prime(self, index: int, precision: Precision, options: RunOptions) -> None:
        """The fits and padded grids (:func:`~genmodel._interleave.padded_rows`) of ``work[index]``
        (a dense model's layout) and of the next layouts that can run with the same size and tp
        (up to :data:`_PRIMED` in all), kept for them, and their decode steps evaluated as one
        (:func:`~genmodel._evaluate.prime_steps`; :func:`_step` then finds each of them made): the
        figures each layout would make alone, with one step's Python work."""
        size, plan, _ = self._work[index]
        group = [index]
        while len(group) < _PRIMED and group[-1] + 1 < len(self._work):
            s, p, why = self._work[group[-1] + 1]
            if why or s != size or (p.tp, p.cp) != (plan.tp, plan.cp):
                break
            group.append(group[-1] + 1)
        past = mean_decode_context(*self._lengths)
        inputs = []
        made: dict[tuple[int, Precision], tuple[RunOptions, _Fit, Any]] = {}
        for i in group:
            p = self._work[i][1]
            pool, wave = self._on_ranks(p)
            fit = self._fit(p, precision, options, pool)
            padded = None
            if fit[1] is not None:
                padded = grid_padded_rows(_grid(fit[1], p.dp, self._grids), graph_pads(wave, self._model, p))
            made[(i, precision)] = options, fit, padded
            if padded is not None:  # (the decode step's inputs, as decode_pass gives step_terms them)
                micro, m = microbatches(p, options, padded[0], 1)
                inputs.append((i, fit[0].device, divided(padded[0], micro, m), past * padded[1]))
        keys: dict[int, Hashable] = {}
        if options.speculation is None and inputs:  # (speculation: decode_pass's own steps)
            device = inputs[0][1]
            together = [(i, seqs, at) for i, d, seqs, at in inputs if d is device or d == device]
            with reusing_steps(self._cache):
                kept = prime_steps(
                    self._model,
                    precision,
                    device,
                    [(seqs, at) for _, seqs, at in together],
                    new_tokens=1,
                    tp=plan.tp,
                    cp=plan.cp,
                    split_new_tokens=False,
                    absorb_mla=True,
                    kv_read_frac=options.sparse_attention_frac,
                )
            if len(kept) == len(together):  # (each one's step made here)
                keys = {i: key for (i, _, _), key in zip(together, kept, strict=True)}
        for (i, prec), value in made.items():
            self._primed[(i, prec)] = (*value, keys.get(i))

    def _fit(self, plan: Plan, precision: Precision, options: RunOptions, pool: KvPool | None) -> _Fit:
        """:func:`_fit` of a layout of the search's work, with what
        :func:`~genmodel._phases.prepare` gives every layout of its size (its system and memory
        extras depend on the options, the lengths and the size only), made once: the search has
        already found that the layout can run (its violations, which prepare checks, are none)."""
        size = plan.num_devices
        kept = self._prepared.get(size)
        if kept is None or not (kept[0] is options or kept[0] == options):
            made = _prepare(self._model, self._system, plan, precision, self._lengths, options)
            kept = self._prepared[size] = options, made
        return _fit(self._model, self._system, plan, precision, self._lengths, options, pool, kept[1])

    def _on_ranks(self, plan: Plan) -> tuple[KvPool | None, Wave | None]:
        """The KV pool and the wave of ``plan``'s ranks: an MoE model's attention-DP ranks run the
        engine's per-rank knobs (:meth:`~genmodel._wave.Wave.on_ranks`), as the estimate has them."""
        if self._wave is None:
            return self._pool, None
        wave = self._wave.ranked(self._model.moe is not None, plan.dp, self._ranked)
        return (self._pool if wave is self._wave else wave.pool), wave

    def _group(self, index: int) -> list[int]:
        """The layouts that can run next to ``work[index]`` differing only in their ep."""
        size, plan, _ = self._work[index]

        def sibling(i: int) -> bool:
            s, p, why = self._work[i]
            return not why and s == size and (p.tp, p.pp, p.dp, p.cp) == (plan.tp, plan.pp, plan.dp, plan.cp)

        first, last = index, index
        while first > 0 and sibling(first - 1):
            first -= 1
        while last + 1 < len(self._work) and sibling(last + 1):
            last += 1
        return list(range(first, last + 1))

    def _side(
        self,
        index: int,
        precision: Precision,
        options: RunOptions,
        run_system: System,
        most: int | None,
        grid: np.ndarray[Any, Any] | None,
        union: np.ndarray[Any, Any] | None,
    ) -> Decode:
        """One layout's decode side, its step evaluated over ``union`` and its own points taken."""
        import numpy as np

        if most is None or grid is None:
            return Decode(run_system, None)
        plan = self._work[index][1]
        args = (self._model, plan, precision, run_system)
        rest = (self._lengths, options, self._cache, self._on_ranks(plan)[1])
        if union is None or union is grid:
            return Decode(run_system, most, grid, *_step(*args, grid, *rest))
        step_s, terms = _step(*args, union, *rest)
        if type(step_s) is not np.ndarray or step_s.shape != union.shape:  # (not one figure per point)
            return Decode(run_system, most, grid, *_step(*args, grid, *rest))
        at = np.searchsorted(union, grid)
        return Decode(run_system, most, grid, step_s[at], terms, at)


def _union(grids: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any] | None:
    """The sorted union of ``grids`` (the longest one itself when it holds all the others; None:
    no grid)."""
    import numpy as np

    if not grids:
        return None
    longest = max(grids, key=len)
    if all(g is longest or (len(g) <= len(longest) and np.array_equal(longest[: len(g)], g)) for g in grids):
        return longest
    union = np.unique(np.concatenate(grids))
    union.flags.writeable = False
    return union
