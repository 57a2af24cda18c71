"""Attention-DP ranks of an MoE model in lockstep: the tokens each rank's step runs and whether a
decode step replays a CUDA graph, by the engine's rules.

Modelling assumptions:
- The ranks share the MoE layers' collectives, so each step every rank knows the others' tokens
  (the engines all-gather them) and steps with them; the group's step takes the slowest rank's
  time (:mod:`genmodel._simulate`). What the group's step does to each rank is the engine's
  (``Engine.dp_graph_sync``, ``Engine.dp_pad_tokens``, each preset's ``source``):
- vLLM ("own", "max"): every step, each rank's tokens padded to its CUDA-graph size and then to the
  largest rank's (``get_dp_padding``); every rank runs that many token rows, and the routed experts
  see them all (the padding rows route as tokens do). Prefill and mixed steps too.
- SGLang ("all-decode", "max-len"): a decode step replays a graph only when every rank decodes or
  is idle; then every rank, an idle one too, replays the graph of the largest rank's batch (padded
  up to a captured size) and the experts see that many rows per rank (MAX_LEN). Otherwise (a prompt
  on any rank, or a batch above the graph limit) the step is eager; a decode-only group's eager step
  pads every rank to the largest rank's tokens when their sum exceeds half of the largest's x dp
  (MAX_LEN), else each rank runs its own (SUM_LEN; an idle rank none).
- TensorRT-LLM ("all-decode-equal"): a decode step replays a graph only when every rank's batch is
  generation-only and every rank decodes as many sequences (an idle rank its one dummy request);
  with ``graph_pad_sizes`` (``enable_padding``) every rank is first padded up from the largest's
  batch, so a generation-only group with its largest batch within the graph limit is graphed.
  Otherwise the decode-only ranks step eagerly: at least their kernels' host launches, as a prompt's
  step (``prefill_launch_s``). No padding of tokens beyond that.
- The routed experts' time of a rank is that of the group's mean tokens per rank
  (:func:`group_tokens`); padding makes the load uniform, the padded rows for each rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodel._engines import Engine, idle_rank_tokens
from genmodel._stepcost import StepCostTable


@dataclass(frozen=True, slots=True)
class Lockstep:
    """What the group makes of one rank's step (:meth:`StepCostTable.step_s`'s keywords):
    ``group`` the mean tokens per rank the routed experts see (None: the rank's own, a uniform
    load); ``rows`` the token rows every rank runs (None: its own); ``eager`` whether a decode-only
    step runs without a CUDA graph (None: the engine's own rule on its own batch)."""

    group: float | None = None
    rows: int | None = None
    eager: bool | None = None


#: a rank alone, or a group whose ranks each follow their own rules
ALONE = Lockstep()


def group_tokens(tokens: list[int], weights: list[int] | None = None, idle: int = 0) -> float | None:
    """The mean tokens per rank of replicas in lockstep, which set the routed experts' time of each
    (their tokens are spread over the expert-parallel group); None for a lone replica or a uniform
    load, whose own tokens are the mean. ``weights``: how many ranks each entry stands for (None:
    one each); ``idle``: the tokens a rank without work sends (the engine's
    :func:`~genmodel._engines.idle_rank_tokens`: SGLang's idle ranks send none outside a graph, so
    the mean may be below one token)."""
    if idle:
        tokens = [t or idle for t in tokens]
    if len(tokens) == 1 or min(tokens) == max(tokens):
        return None
    if weights is None:
        return sum(tokens) / len(tokens)
    total = sum(w * t for w, t in zip(weights, tokens, strict=True))  # (exact: integers)
    return total / sum(weights)


def lockstep(
    engine: Engine,
    table: StepCostTable,
    steps: list[tuple[int, bool]],
    weights: list[int] | None = None,
) -> Lockstep:
    """What a group of attention-DP ranks in lockstep makes of each rank's step (module docstring).

    Args:
        engine, table: the ranks' engine (its ``dp_graph_sync`` and ``dp_pad_tokens``) and step
            table (its graph limit, graphed sizes and padding).
        steps: per rank (or class of ranks alike), (the tokens of its planned step, whether it holds
            prompt tokens); a rank without work has 0 tokens (it sends the engine's idle tokens).
        weights: how many ranks each entry stands for (None: one each).
    """
    if len(steps) < 2:
        return ALONE
    idle = idle_rank_tokens(engine)
    tokens = [t or idle for t, _ in steps]
    decode = not any(prompt for _, prompt in steps)
    most = max(tokens)
    if decode and engine.dp_graph_sync != "own" and most > 0:
        graphed = _graphed_group(engine, table, tokens, most)
        if graphed is not None:
            return graphed
    # not graphed as a group: under "all-decode*" every decode-only rank steps eagerly
    eager = None if engine.dp_graph_sync == "own" else True
    if engine.dp_pad_tokens == "max":
        padded = [t if prompt else _own_rows(table, t) for t, (_, prompt) in zip(tokens, steps, strict=True)]
        return Lockstep(rows=max(padded), eager=eager)
    if engine.dp_pad_tokens == "max-len" and decode:
        w = [1] * len(tokens) if weights is None else weights
        if 2 * sum(n * t for n, t in zip(w, tokens, strict=True)) > most * sum(w):
            return Lockstep(rows=most, eager=eager)
    return Lockstep(group=group_tokens(tokens, weights), eager=eager)


def _own_rows(table: StepCostTable, seqs: int) -> int:
    """The rows a decode-only step of ``seqs`` sequences runs by the engine's own rule (its graph's
    padded batch, or itself when eager)."""
    return seqs if table.eager_decode(seqs) else table.padded_decode(seqs)


def _graphed_group(engine: Engine, table: StepCostTable, tokens: list[int], most: int) -> Lockstep | None:
    """A decode-only group's graphed step under ``dp_graph_sync`` "all-decode" or
    "all-decode-equal", or None when it runs eagerly."""
    if table.graph_pad:  # every rank padded up from the largest's batch, if the graphs reach it
        if most > table.graph_max_decode:
            return None
        return Lockstep(rows=table.padded_decode(most), eager=False)
    if engine.dp_graph_sync == "all-decode-equal" and min(tokens) != most:
        return None
    if table.eager_decode(most):
        return None
    return Lockstep(rows=most, eager=False)
