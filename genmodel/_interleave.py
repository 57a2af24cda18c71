"""Serving closed form: the prompts a decode phase shares its steps with, and a padded decode batch.

Modelling assumptions (a term of :func:`~genmodel._servingpoint.serving_point`, with an engine's wave):
- A request's TPOT is its decode phase over its O-1 tokens, (e2e - TTFT) / (O-1), as the serving
  simulation measures it: the mean time of the steps it decodes in. Those steps are the bare
  decode steps t(B) and the steps that carry the other clients' prompts, so the decode phase
  holds, per other request, the time that request's prompt adds to the steps, D. The steady
  state's engine spends (O-1) t(B) / B + D on each request (the rate X = B / ((O-1) t + B D),
  the prefill share rho = X D, ITL = t (1 - rho/N) / (1 - rho)); a request's own prefill, in
  its TTFT, is still the lone prompt's P and the queue's M/D/1 wait.
- Prompts come in groups: the clients of a closed loop come back in the groups their prompts were
  prefilled in (:mod:`genmodel._wave`), g = min(B, m) prompts a step (m the prompts the engine's
  token budget holds, B the running batch, at least one). A step of g prompts takes
  S(g) = max(P, S(m) g / m) (:func:`~genmodel._wave.group_step_s`): the weight reads and launches
  of a lone prompt are paid once for the group, so D = S(g) / g, where the steady state without
  the wave counts a lone prefill P per request.
- An engine that mixes (vLLM, TensorRT-LLM) runs a group's prompts in a decode step, as one
  forward: each operator's roofline is that of the two together, max(c_d + c_p, m_d + m_p - w),
  the weight reads w paid once (:func:`mixed_saving_s`, the simulation's mixed step), and one step
  overhead. The time this saves against a decode step and a prefill step run apart comes off
  S(g): D = (S(g) - saved) / g. The saving counts where the group finds another request
  decoding, min(1, B - g): a lone group (N <= m) decodes, finishes and comes back together, so
  its step holds no other decode (one client: D = P). The decode step's operators are those of
  the running batch (padded, as below, for a whole batch), one prompt's those of the full step
  S(m) over its m prompts (compute and activations per prompt, weight reads once). An engine that
  does not mix (SGLang without mixed chunk) runs the group's prefill step between decode steps:
  nothing saved.
- CUDA-graph padding (vLLM, SGLang: ``Engine.graph_pad_sizes``): a graphed decode step of n
  sequences replays the graph of the least captured size at least n, its GEMMs, norms, LM head
  and collectives over the padded rows and attention over the n sequences (the simulation's step,
  :mod:`genmodel._stepcost`): the decode step of the padded size with the n sequences' context
  (their summed context spread over the padded rows, exact for full attention). A mean running
  batch between two whole batches takes the line between their padded steps (the batch is the
  one or the other, as often as its fraction says).
- A step that carries prompt tokens runs eagerly where the engine graphs only decode steps
  (:mod:`genmodel._hostcost`): it takes at least the host time H of launching its kernels and the
  step overhead, as the simulation's step does (:mod:`genmodel._stepcost`). A group's prompts run
  in k such steps (a prompt's passes when a step holds one, else one step), so the time they add
  to the others' decode is at least k (H + overhead), less the k decode steps t(B) they carry
  where the engine mixes (with the saving's share min(1, B - g)): D = max(D's GPU time, that / g).
  A decode batch whose prompts keep arriving then runs at the mixed step's host floor, not its
  GPU time.
- Not modelled: the budget a mixed step's decode tokens take (vLLM), which splits prompts over
  more steps; the padding of a mixed step's decode part (mixed steps run eagerly).

A plan search evaluates these terms for every layout over its batch grid: :class:`MixedSteps`
keeps each decode operator's saving (the layouts of one tp share all their operators but the
routed experts) and :func:`decode_steps` a grid's padded rows, so a layout makes only its own
operators' (the same numbers, to the last bit).

Source: derived from the simulation's scheduler and step cost (:mod:`genmodel._stepcost`: a mixed
step's per-operator roofline, graphs padded to a captured size; the capture lists from the
engines' source, ``genmodel._eagerkernels``), checked against the simulation on its grid of
deployments (tools/serving_agreement.py), not fitted to measurements.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from genmodel._engines import Engine
from genmodel._evaluate import StepCache, stacked
from genmodel._memory import MemoryUse
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import StepTerms, prefill_pass
from genmodel._system import System
from genmodel._units import maximum
from genmodel._wave import Wave, group_step_s, prefill_passes
from genmodel._workload import Precision

#: one prompt's prefill, operator by operator: their names, and their compute, memory and weight-read
#: times (seconds, columns; summed over the pieces of a chunked prompt)
PromptOps = tuple[tuple[str, ...], Any, Any, Any]


def group_terms(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    wave: Wave,
    input_tokens: int,
    options: RunOptions,
    memory: MemoryUse | None = None,
) -> tuple[int, StepTerms]:
    """m, the prompts a step of the wave's engine holds (:meth:`~genmodel._wave.Wave.prompts_per_step`),
    and the prefill of m prompts: the step :func:`~genmodel._serving.full_step_s` times."""
    m = wave.prompts_per_step(input_tokens)
    terms, _ = prefill_pass(
        model,
        system,
        plan,
        precision,
        num_seqs=float(m),
        input_tokens=input_tokens,
        options=options,
        memory=memory,
        need_longest=False,  # (the longest piece is not needed: a step's time is the whole prefill)
    )
    return m, terms


def prompt_ops(terms: StepTerms, prompts: int = 1, seen: dict[int, Any] | None = None) -> PromptOps:
    """One prompt's prefill by operator name (:data:`PromptOps`), from the ``terms`` of a prefill
    of ``prompts`` prompts (:func:`group_terms`): their compute and activation bytes over the
    prompts, their weight reads once. ``seen``: the three figures of the operators in each place
    made last (:class:`MixedSteps`), kept for the operator found there again."""
    import numpy as np

    rows: dict[str, int] = {}  # each name's row (its first operator's place)
    sums: tuple[list[float], list[float], list[float]] = ([], [], [])
    compute, memory, weights = sums
    for i, t in enumerate(terms.ops):
        made = None if seen is None else seen.get(i)
        if made is None or made[0] is not t:
            made = (t, float(t.compute_s), float(t.memory_s), float(_weight_s(t)))
            if seen is not None:
                seen[i] = made
        row = rows.setdefault(t.op.name, len(compute))
        if row == len(compute):  # (each name's sums start from 0.0, as they always did)
            compute.append(0.0)
            memory.append(0.0)
            weights.append(0.0)
        compute[row] += made[1]
        memory[row] += made[2]
        weights[row] += made[3]
    c, m, w = (np.array(values, dtype=float).reshape(-1, 1) for values in sums)
    return tuple(rows), c / prompts, w + (m - w) / prompts, w


def _weight_s(t: Any) -> Any:
    """The part of an operator's memory time that reads its weights (its bytes' share)."""
    op = t.op
    return t.memory_s * op.weight_bytes / maximum(op.bytes, 1e-300)


def mixed_saving_s(decode: StepTerms, prompt: PromptOps, group: Any, at: Any = None) -> Any:
    """What one step of the decode batch of ``decode`` and ``group`` prompts (``prompt``: one
    prompt's :func:`prompt_ops`) saves against a decode step and a step of those prompts run
    apart: per operator, max(c_d, m_d) + max(c_p, m_p) - max(c_d + c_p, m_d + m_p - w), with the
    prompts' compute and activation bytes g times one prompt's, their weight reads once, w the
    reads both do; and one step overhead. An array over the batches of ``decode`` (``at``: those
    of its points to take), or of one."""
    import numpy as np

    rows, ops = _shared_ops(decode, prompt[0])
    shape = np.shape(decode.time_s)
    c_d, m_d, w_d = _decode_reads(ops, math.prod(shape))
    if at is not None:
        c_d, m_d, w_d = c_d[:, at], m_d[:, at], w_d[:, at]
    _, c_1, m_1, w_p = prompt
    apart = _op_savings(c_d, m_d, w_d, (c_1[rows], m_1[rows], w_p[rows]), group)
    return _summed(apart, decode.overhead_s, shape, at)


def _shared_ops(decode: StepTerms, names: tuple[str, ...]) -> tuple[list[int], list[Any]]:
    """The decode step's operators that a prompt's step shares (an elementwise operator reads no
    weights and computes nothing: it saves nothing; the others: none shared), and their rows in
    the prompt's operators ``names``."""
    place = {name: i for i, name in enumerate(names)}
    ops = [t for t in decode.ops if t.op.kind != "elementwise" and t.op.name in place]
    return [place[t.op.name] for t in ops], ops


def _decode_reads(ops: list[Any], size: int) -> tuple[Any, Any, Any]:
    """The decode operators' compute, memory and weight-read times (their bytes' share of the
    memory time), stacked: one row per operator, ``size`` points."""
    import numpy as np

    if _plain_reads(ops, size):
        # (the search's steps: the same conversions and operations on each point, stacked at once;
        # the activation bytes plus the KV bytes of the operators that read the cache, a float64
        # plus the int 0 elsewhere being the float itself)
        c_d = stacked([t.compute_s for t in ops])  # (float64 arrays of one shape: _plain_reads)
        m_d = stacked([t.memory_s for t in ops])
        moved = stacked([t.op.act_bytes for t in ops])
        for i, t in enumerate(ops):
            if type(t.op.kv_bytes) is np.ndarray:
                moved[i] += t.op.kv_bytes
        read = np.array([t.op.weight_bytes for t in ops], dtype=float).reshape(-1, 1)
        moved += read
        np.maximum(moved, 1e-300, out=moved)
        w_d = read * m_d
        w_d /= moved
        return c_d, m_d, w_d
    c_d, m_d, w_d, bytes_d = (np.empty((len(ops), size)) for _ in range(4))
    for i, t in enumerate(ops):
        op = t.op
        c_d[i], m_d[i] = np.reshape(t.compute_s, -1), np.reshape(t.memory_s, -1)
        w_d[i], bytes_d[i] = np.reshape(op.weight_bytes, -1), np.reshape(op.act_bytes + op.kv_bytes, -1)
    bytes_d += w_d
    np.maximum(bytes_d, 1e-300, out=bytes_d)
    w_d *= m_d
    w_d /= bytes_d  # the decode operators' weight reads: their share of the memory time
    return c_d, m_d, w_d


def _plain_reads(ops: list[Any], size: int) -> bool:
    """Whether :func:`_decode_reads` stacks the operators' figures at once (a search's steps):
    their weight reads plain numbers, their compute and memory times and activation bytes float64
    arrays of ``size`` points, their KV bytes the int 0 or arrays of that shape."""
    import numpy as np

    shape = (size,)
    for t in ops:
        op = t.op
        kv = op.kv_bytes
        if type(op.weight_bytes) not in (int, float) or not (
            (type(kv) is int and kv == 0) or (type(kv) is np.ndarray and kv.shape == shape)
        ):
            return False
        for x in (t.compute_s, t.memory_s, op.act_bytes):
            if type(x) is not np.ndarray or x.shape != shape or x.dtype.char != "d":
                return False
    return True


def _op_saving(t: Any, size: int, figures: tuple[float, float, float, float]) -> Any:
    """One decode operator's saving (:func:`_decode_reads` and :func:`_op_savings`: the same
    operations, on its row and one prompt's three figures and the group, as numbers)."""
    import numpy as np

    op = t.op
    c_d, m_d = (
        x if type(x) is np.ndarray and x.shape == (size,) and x.dtype.char == "d" else _row(x, size)
        for x in (t.compute_s, t.memory_s)
    )
    read = np.asarray(op.weight_bytes, dtype=float)
    w_d = read * m_d / np.maximum(np.asarray(op.act_bytes + op.kv_bytes, dtype=float) + read, 1e-300)
    c_1, m_1, w_p, group = figures
    c_p = group * c_1
    m_p = w_p + group * (m_1 - w_p)
    apart = np.maximum(c_d, m_d)
    apart += max(c_p, m_p)
    apart -= np.maximum(c_d + c_p, m_d + m_p - np.minimum(w_d, w_p))
    return apart


def _row(x: Any, size: int) -> Any:
    """``x`` as ``size`` float64 points."""
    import numpy as np

    return np.broadcast_to(np.asarray(x, dtype=float), (size,))


def _op_savings(c_d: Any, m_d: Any, w_d: Any, prompt: tuple[Any, Any, Any], group: Any) -> Any:
    """Each operator's saving (rows; :func:`mixed_saving_s`) from its decode times and one
    prompt's (c_1, m_1, w_p: columns, or one operator's numbers) with ``group`` prompts."""
    import numpy as np

    c_1, m_1, w_p = prompt
    # (a search's group is one float: the same products as with it as a one-point array)
    g = group if type(group) is float else np.reshape(np.asarray(group, dtype=float), -1)
    c_p = g * c_1
    m_p = w_p + g * (m_1 - w_p)
    apart = np.maximum(c_d, m_d)
    apart += np.maximum(c_p, m_p)
    both = np.maximum(c_d + c_p, m_d + m_p - np.minimum(w_d, w_p))
    apart -= both  # less the two together, each operator's roofline
    return apart


def _summed(apart: Any, overhead_s: Any, shape: tuple[int, ...], at: Any) -> Any:
    """The operators' savings ``apart`` (rows, over the step's ``shape`` or its points ``at``)
    summed, and one step overhead."""
    import numpy as np

    saved = np.add.reduce(apart, 0)  # (apart.sum(axis=0), without its wrapper)
    if type(overhead_s) is float or np.ndim(overhead_s) == 0:  # (one number: the same sums)
        return saved + float(overhead_s)
    overhead = np.broadcast_to(np.asarray(overhead_s, dtype=float), shape).reshape(-1)
    return saved + (overhead if at is None else overhead[at])


class MixedSteps:
    """A plan search's mixed-step savings (:func:`mixed_saving_s`) over its layouts' batch grids,
    each operator's made once. The layouts of one tp share their decode step's operators but the
    routed experts (the same objects: :class:`~genmodel._evaluate.StepCache`), and those of the
    prefill of a group's prompts; an operator's saving over the grid is then the same array for
    each of them, and a prefill operator's figures the same numbers: the last made of each
    operator name (with the prompt's three figures and the group; a prefill's, of each place),
    kept for the same operator found again (the layouts of one tp come one after another).

    The saving counts only where the group finds another request decoding, B > m, where g = m
    (:func:`interleaved_prefill_s`), so the rows are made with g = m at every point: at the
    points where B <= m they differ from :func:`mixed_saving_s`'s but are multiplied by zero; at
    the others they are the same operations on the same numbers, summed in the same order (the
    rows stacked and indexed as :func:`mixed_saving_s` stacks and indexes them)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Any, tuple[float, float, float, float], Any]] = {}
        self.seen: dict[int, Any] = {}  # the prefill operators' figures (prompt_ops), by place

    def saving_s(self, decode: StepTerms, prompt: PromptOps, per_step: int, at: Any = None) -> Any:
        """:func:`mixed_saving_s` of ``per_step`` prompts at the points of ``decode`` (``at``)."""
        import numpy as np

        names, c_1, m_1, w_p = prompt
        places, ops = _shared_ops(decode, names)
        group = [float(per_step)] * len(names)  # (one prompt's three figures and the group: the key)
        figures = list(zip(c_1[:, 0].tolist(), m_1[:, 0].tolist(), w_p[:, 0].tolist(), group, strict=True))
        shape = _time_shape(decode)
        size = math.prod(shape)  # (np.prod of a tuple: microseconds a layout)
        kept = self._rows
        made: list[Any] = []
        missing: list[int] = []
        for j, t in enumerate(ops):
            hit = kept.get(t.op.name)
            if hit is not None and hit[0] is t and hit[1] == figures[places[j]] and len(hit[2]) == size:
                made.append(hit[2])
            else:
                made.append(None)
                missing.append(j)
        if len(missing) == 1:  # (the routed experts of a layout of a tp seen before)
            j = missing[0]
            made[j] = _op_saving(ops[j], size, figures[places[j]])
        elif missing:
            c_d, m_d, w_d = _decode_reads([ops[j] for j in missing], size)
            rows = [places[j] for j in missing]
            new = _op_savings(c_d, m_d, w_d, (c_1[rows], m_1[rows], w_p[rows]), float(per_step))
            for row, j in zip(new, missing, strict=True):
                made[j] = row
        for j in missing:
            kept[ops[j].op.name] = (ops[j], figures[places[j]], made[j])
        if len(missing) > 1 and len(missing) == len(ops):  # (all made here: those rows, in order)
            stacked = new
        else:
            stacked = np.array(made) if made else np.zeros((0, size))  # (rows: C order, as _decode_reads)
        return _summed(stacked if at is None else stacked[:, at], decode.overhead_s, shape, at)


def _time_shape(terms: StepTerms) -> tuple[int, ...]:
    """``np.shape(terms.time_s)``, read from its terms' shapes where they are float64 arrays of
    one shape and plain numbers (a search's decode step: its time's sum not made again)."""
    import numpy as np

    shape: tuple[int, ...] = ()
    for x in (terms.compute_bound_s, terms.memory_bound_s, terms.comm_s, terms.offload_s, terms.overhead_s):
        if type(x) is np.ndarray and x.dtype.char == "d" and (not shape or x.shape == shape):
            shape = x.shape
        elif type(x) is not float and type(x) is not int:
            return np.shape(terms.time_s)
    return shape


def mixed_steps(cache: StepCache | None) -> MixedSteps | None:
    """The :class:`MixedSteps` of the search whose steps ``cache`` keeps, attached to it (None: no
    search)."""
    if cache is None:
        return None
    steps: MixedSteps | None = cache.attached.get("mixed_steps")
    if steps is None:
        steps = cache.attached["mixed_steps"] = MixedSteps()
    return steps


def interleaved_prefill_s(
    wave: Wave,
    batch: Any,
    input_tokens: int,
    prefill_s: float,
    full_step_s: float,
    mixed: tuple[StepTerms, PromptOps, Any] | None = None,
    steps: MixedSteps | None = None,
    host: tuple[float, int, Any] | None = None,
) -> Any:
    """D at the running batches ``batch`` (module docstring): a step of a group's g = min(B, m)
    prompts, S(g), less what the group saves sharing a decode step, over g. ``mixed``: the decode
    step at ``batch``, one prompt's :func:`prompt_ops` and the points of the step to take (None:
    the engine does not mix, nothing saved); the saving counts where the group finds another
    request decoding, min(1, B - g) (a lone group, N <= m, decodes and comes back together: its
    steps hold no other decode); a lone prompt of k passes (m = 1, ``host``'s passes) mixes each
    of its k chunks into a decode step of its own, weights read once for both: k savings of a mean
    chunk, as the simulation's mixed steps run it. ``steps``: a search's savings made so far
    (:class:`MixedSteps`). ``host``: (an eager step's floor H + the step overhead, a prompt's
    passes, the decode step t(B) at ``batch``) where the engine runs a step with prompt tokens
    eagerly (None: no floor): the group's k steps (its prompt's passes when m = 1, else one) take
    at least k (H + overhead), so D is at least that over g, less the k decode steps they carry
    where they mix (the same share min(1, B - g)). An array as ``batch`` is, or a number."""
    import numpy as np

    m = wave.prompts_per_step(input_tokens)
    b = np.atleast_1d(np.asarray(batch, dtype=float))
    g = np.minimum(np.maximum(b, 1.0), float(m))
    saved: Any = 0.0
    mixes = mixed is not None and wave.mixed
    if mixes and b.max() > m:  # (else no group finds another decoding)
        decode, prompt, at = mixed  # type: ignore[misc]
        # a prompt of k passes (m = 1) mixes k steps, each its chunk and a decode step: k savings
        chunks = host[1] if host is not None and m == 1 else 1
        if chunks > 1:
            prompt = (prompt[0], *(a / chunks for a in prompt[1:]))  # (a mean chunk's operators)
        if steps is None:
            shares = mixed_saving_s(decode, prompt, g, at)
        else:  # (a search's: g = m where it counts, B > m)
            shares = steps.saving_s(decode, prompt, m, at)
        saved = chunks * shares * np.clip(b - g, 0.0, 1.0)
    added = np.maximum(group_step_s(g, prefill_s, full_step_s, m) - saved, 0.0)
    if host is not None and host[0] > 0:
        eager_step_s, passes, step_s = host
        k = float(passes if m == 1 else 1)
        carried = np.clip(b - g, 0.0, 1.0) * np.reshape(np.asarray(step_s, dtype=float), -1) if mixes else 0.0
        added = np.maximum(added, k * (eager_step_s - carried))
    out = added / g
    return out if np.ndim(batch) else float(out[0])


def interleaving(
    run: tuple[ModelSpec, System, Plan, Precision, RunOptions, MemoryUse | None],
    wave: Wave | None,
    input_tokens: int,
    prefill_s: float,
    eager_step_s: float = 0.0,
) -> tuple[float, Callable[[float, StepTerms, float], float | None]]:
    """The estimate's S(m) (the GPU's time; 0 without a wave) and D at a running batch given its
    decode step (:func:`decode_steps`' operators) and that step's time t(B) (None without a wave:
    a lone prefill P), for ``run`` (model, system, plan, precision, options, memory), one prompt's
    ``prefill_s`` and an eager step's floor, H + the step overhead (0: none)."""
    if wave is None:
        return 0.0, lambda batch, decode, step_s: None
    model, system, plan, precision, options, memory = run
    m, group = group_terms(model, system, plan, precision, wave, input_tokens, options, memory)
    full_s = prefill_s if m == 1 else float(group.time_s)
    prompt = prompt_ops(group, m)
    passes = prefill_passes(input_tokens, options)

    def shared_at(batch: float, decode: StepTerms, step_s: float) -> float | None:
        mixed = (decode, prompt, None) if wave.mixed else None
        host = (eager_step_s, passes, step_s)
        return float(interleaved_prefill_s(wave, batch, input_tokens, prefill_s, full_s, mixed, host=host))

    return full_s, shared_at


def graph_pads(wave: Wave | None, model: ModelSpec, plan: Plan) -> tuple[int, ...]:
    """The decode batch sizes the engine of ``wave`` captures and pads a graphed batch up to, on
    the plan's server (``Engine.cuda_graphs``: those up to its graph limit), ascending; () where
    it does not pad."""
    if wave is None or wave.engine is None:
        return ()
    return _captured(wave.engine, plan.server_gpus(moe=model.moe is not None))


@functools.lru_cache(maxsize=64)
def _captured(engine: Engine, tp: int) -> tuple[int, ...]:
    """:func:`graph_pads` of ``engine`` on a server of ``tp`` GPUs (a search asks per layout)."""
    limit, _, pads = engine.cuda_graphs(tp)
    return tuple(sorted(p for p in set(pads) if limit is None or p <= limit))


#: the last read-only batch grid :func:`decode_steps` padded (a search's layouts of one grid come
#: one after another), its pads, and the rows and context scales it took
_LAST_GRID: list[tuple[Any, tuple[int, ...], Any, Any] | None] = [None]


def decode_steps(
    step_at: Callable[[Any, Any], StepTerms],
    batch: Any,
    pads: tuple[int, ...],
    plain: StepTerms | None = None,
    padded: tuple[Any, Any] | None = None,
) -> tuple[Any, StepTerms]:
    """The decode steps at the running batches ``batch`` (a number or an array), a batch up to the
    largest of ``pads`` run at the captured size that pads it (module docstring), and the step
    whose operators a mixed step shares: ``step_at(rows, context_scale)`` is the decode step of
    ``rows`` sequences at the mean context times ``context_scale``; ``plain``: the step at
    ``batch`` itself, if made. Whole batches take their padded step (and its operators); a mean
    batch between two whole ones the line between their padded steps (and the plain step's
    operators). ``padded``: what :func:`padded_rows` gave for ``batch`` and ``pads``, if made
    (a search's grid; ``plain`` is then not used)."""
    import numpy as np

    if padded is None:
        padded = padded_rows(batch, pads)
        if padded is not None and padded[0] is batch and plain is not None:  # (none graphed)
            return plain.time_s, plain
    if padded is not None:
        terms = step_at(*padded)
        return terms.time_s, terms
    b = np.atleast_1d(np.asarray(batch, dtype=float))
    inside = _inside(b, pads)

    def rows_of(n: Any) -> Any:
        return _padded(n, inside, pads)

    terms = step_at(batch, 1.0) if plain is None else plain
    lo, hi = np.maximum(np.floor(b), 1.0), np.ceil(b)
    at_lo = np.broadcast_to(step_at(rows_of(lo), lo / rows_of(lo)).time_s, b.shape)
    at_hi = np.broadcast_to(step_at(rows_of(hi), hi / rows_of(hi)).time_s, b.shape)
    out = np.where(inside, at_lo + (b - lo) * (at_hi - at_lo), np.broadcast_to(terms.time_s, b.shape))
    return (out if np.ndim(batch) else float(out[0])), terms


def _inside(b: Any, pads: tuple[int, ...]) -> Any:
    """Where the running batches ``b`` (an array) run a captured graph: at least one sequence
    (below one: as it is) and at most the largest of ``pads`` once rounded up."""
    import numpy as np

    return (b >= 1) & (np.ceil(b) <= (pads[-1] if pads else 0))


def _padded(n: Any, inside: Any, pads: tuple[int, ...]) -> Any:
    """The rows a graphed step of ``n`` sequences runs: the least of ``pads`` at least n where
    ``inside``, else n."""
    import numpy as np

    captured = np.asarray(pads, dtype=float)
    return np.where(inside, captured[np.minimum(np.searchsorted(captured, n), len(captured) - 1)], n)


def padded_rows(batch: Any, pads: tuple[int, ...]) -> tuple[Any, Any] | None:
    """The (rows, context scale) at which :func:`decode_steps` evaluates the decode step of the
    running batches ``batch`` (a number or an array) padded to ``pads``: its ``step_at``
    arguments, of the same shape; ``(batch, 1.0)`` itself where no batch runs a captured graph;
    None where a batch is not whole (interpolated). A read-only one-dimensional grid (a search's,
    shared, never written) is remembered, so its layouts that follow pad it once."""
    import numpy as np

    last = _LAST_GRID[0]
    if last is not None and last[0] is batch and last[1] == pads:
        return last[2], last[3]
    b = np.atleast_1d(np.asarray(batch, dtype=float))
    inside = _inside(b, pads)
    if not inside.any():
        return batch, 1.0
    if not (np.floor(b) == b).all():
        return None
    rows = _padded(b, inside, pads)
    if type(batch) is np.ndarray and batch.ndim == 1 and batch.base is None and not batch.flags.writeable:
        _LAST_GRID[0] = (batch, pads, rows, b / rows)
    if np.ndim(batch):
        return rows, b / rows
    return rows[0], b[0] / rows[0]


def grid_padded_rows(grid: Any, pads: tuple[int, ...]) -> tuple[Any, Any]:
    """:func:`padded_rows` of a search's batch grid (:func:`~genmodel._decodes.batch_grid`:
    ascending whole batches from 1, read-only): the same rows and context scales, with the graphed
    batches found as the grid's first points (those up to the largest pad), not point by point."""
    import numpy as np

    last = _LAST_GRID[0]
    if last is not None and last[0] is grid and last[1] == pads:
        return last[2], last[3]
    inside = int(np.searchsorted(grid, pads[-1], side="right")) if pads else 0  # (whole: B <= the pad)
    if not inside:
        return grid, 1.0
    captured = np.asarray(pads, dtype=float)
    rows = grid.copy()
    rows[:inside] = captured[np.searchsorted(captured, grid[:inside])]  # (the least pad at least B)
    scale = grid / rows
    _LAST_GRID[0] = (grid, pads, rows, scale)
    return rows, scale
