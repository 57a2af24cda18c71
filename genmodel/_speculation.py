"""Speculative decoding and multi-token prediction: what one decode step costs per output token.

Modelling assumptions:
- Speculative decoding (Leviathan et al., "Fast Inference from Transformers via Speculative
  Decoding", ICML 2023; DeepSeek-V3 MTP): k draft steps (a draft model, or the target's MTP block)
  then one verify step of the target over k+1 tokens per sequence; with per-token acceptance a, a
  step yields (1 - a^(k+1)) / (1 - a) tokens, and the time per output token is the step's time
  over that.
- A draft runs on the target's devices, one pipeline stage (a draft is small), expert-parallel
  only if it has experts.
- DeepSeek's MTP block is one more transformer block of the target's shape (DeepSeek-V3 report,
  Sec. 2.2): a one-layer model with the target's attention and MoE, no dense layers and no
  sliding window; it shares the target's embedding and LM head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, TypeVar

from genmodel._errors import SpecError
from genmodel._model import ModelSpec
from genmodel._parallel import Plan


class Draft(Protocol):
    """What speculation needs of its options (the run options' ``Speculation``)."""

    @property
    def draft_tokens(self) -> int:
        """k: tokens drafted per step."""
        ...

    @property
    def draft_model(self) -> ModelSpec | None:
        """The draft model; None for the target's own MTP block."""
        ...

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a verify step yields."""
        ...


_Pass = TypeVar("_Pass", bound="Pass")


class Pass(Protocol):
    """A forward pass's cost terms that add up and scale (``StepTerms``)."""

    def plus(self: _Pass, other: _Pass, /) -> _Pass:
        """Two passes one after the other."""
        ...

    def scaled(self: _Pass, factor: float, /) -> _Pass:
        """Every time times ``factor``."""
        ...


def draft_model(model: ModelSpec, spec: Draft) -> ModelSpec:
    """The model that drafts for ``model``: the given draft, or the target's MTP block.

    Raises:
        SpecError: no draft model is given and the target has no MTP block.
    """
    return mtp_model(model) if spec.draft_model is None else spec.draft_model


def speculative_step(
    run: Callable[[ModelSpec, Plan, int], _Pass], model: ModelSpec, plan: Plan, spec: Draft
) -> _Pass:
    """One decode step per output token with speculation: the verify pass of ``model`` over k+1
    tokens plus k draft passes, over the tokens a step yields (Leviathan et al. 2023, Eq. 1).

    Args:
        run: the cost of one decode pass of a model under a plan with this many new tokens per
            sequence.
        model: the target.
        plan: the target's plan; the draft runs on one stage of it.
        spec: draft tokens, draft model (or MTP) and the expected tokens per step.

    Raises:
        SpecError: no draft model is given and the target has no MTP block.
    """
    draft = draft_model(model, spec)
    step = run(model, plan, spec.draft_tokens + 1)  # the verify pass
    draft_plan = dataclasses.replace(plan, pp=1, ep=plan.ep if draft.moe is not None else 1)
    one_draft = run(draft, draft_plan, 1)
    for _ in range(spec.draft_tokens):
        step = step.plus(one_draft)
    return step.scaled(1 / spec.tokens_per_step)


def mtp_model(model: ModelSpec) -> ModelSpec:
    """The target's multi-token-prediction block as a one-layer model (DeepSeek-V3 report, Sec. 2.2).

    Raises:
        SpecError: the model has no MTP block.
    """
    if not model.num_mtp_layers:
        raise SpecError(
            f"model={model.id} has no multi-token-prediction block (num_mtp_layers=0); give a draft model"
        )
    moe = None if model.moe is None else dataclasses.replace(model.moe, num_dense_layers=0)
    return dataclasses.replace(
        model,
        id=f"{model.id}-mtp",
        num_layers=model.num_mtp_layers,
        num_sliding_window_layers=0,
        sliding_window=None,
        moe=moe,
        num_mtp_layers=0,
    )
