"""A simulation as an estimate: what every caller that simulates a deployment and reports it as
an :class:`~genmodel._phases.Estimate` shares (the simulated serving model,
:class:`~genmodel._servingmodel.Simulated`; the plan search's re-check; requirements on the
simulation; ``simulate`` by id): the step-cost tables the simulations of one deployment reuse
(:class:`StepTables`), the prompt and output lengths a simulation draws (:func:`length_draws`), and
a simulation's means put in the closed form's estimate (:func:`simulated_estimate`), or the note of
a fall back to the closed form (:func:`fallback_note`, :func:`with_note`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from genmodel._engines import Engine, eager_block_kernels
from genmodel._errors import SpecError
from genmodel._forwardpass import StepSpecs
from genmodel._phases import Estimate, ServingState
from genmodel._workload import LengthSpreads

if TYPE_CHECKING:  # (the simulation is imported where it runs: a static estimate does not load it)
    from genmodel._arrivals import Lengths
    from genmodel._simresult import SimulationResult
    from genmodel._stepcost import StepCostTable


@dataclass(slots=True)
class StepTables:
    """Step-cost tables by deployment, to reuse across simulations of the same deployment (one
    validation run holds one). Keys are values (the specs are hashable), never ids."""

    tables: dict[tuple[object, ...], StepCostTable] = field(default_factory=dict)

    def get(
        self,
        specs: StepSpecs,
        *,
        engine: Engine,
        input_tokens: int,
        running: int,
    ) -> StepCostTable:
        """The table of this deployment on ``engine`` (its step overhead and prefill launches)
        covering the most tokens a step holds: the token budget (or a lone prompt of
        ``input_tokens`` over it) and the decode tokens of ``running`` sequences. Built when missing
        or too small; its grid has every step size, so a larger one gives the same costs."""
        from genmodel._stepcost import StepCostTable

        overhead_s, prefill_launch_s = engine.step_overhead_s, engine.prefill_launch_s
        tokens_max = max(engine.max_batched_tokens, input_tokens) + running
        blocks = eager_block_kernels(engine)
        key = (specs, overhead_s, prefill_launch_s, blocks)
        table = self.tables.get(key)
        if table is None or table.tokens_max < tokens_max:
            table = self.tables[key] = StepCostTable.build(
                specs,
                tokens_max=tokens_max,
                overhead_s=overhead_s,
                prefill_launch_s=prefill_launch_s,
                eager_blocks=blocks,
            )
        return table


def simulated_estimate(closed: Estimate, sim: SimulationResult) -> Estimate:
    """The closed-form serving estimate ``closed`` with the simulation's means and serving state.

    ``ttft_s``, ``tpot_s`` and ``serving`` (decode_batch = the mean running batch,
    request_rate_per_s, queue_wait_s = the mean time before a request's prefill is scheduled,
    prefill_busy_frac = rate per replica x one prefill) come from ``sim``; the phases' breakdown
    and ``memory`` stay the closed form's.
    """
    assert closed.serving is not None
    rate_per_replica = sim.request_rate_per_s / closed.plan.dp
    serving = ServingState(
        concurrency=closed.serving.concurrency,
        decode_batch=sim.mean_running_batch,
        request_rate_per_s=sim.request_rate_per_s,
        prefill_busy_frac=min(rate_per_replica * closed.prefill.time_s, 1.0),
        queue_wait_s=sim.queue_s,
        request_overhead_s=sim.request_overhead_s,
        kv_limited=sim.preemptions > 0
        or sim.kv_refusals > 0
        or sim.kv_peak_bytes_per_device >= 0.95 * sim.kv_capacity_bytes_per_device,
        max_running=closed.serving.max_running,
        serving_model="simulated",
        engine=sim.engine.name,
    )
    return dataclasses.replace(closed, ttft_s=sim.ttft_s.mean, tpot_s=sim.tpot_s.mean, serving=serving)


def length_draws(spreads: LengthSpreads, input_tokens: int, output_tokens: int) -> tuple[Lengths, Lengths]:
    """The simulation's prompt and output lengths (:func:`~genmodel._simulate.simulate_serving`'s
    ``input_tokens`` and ``output_tokens``): means ``input_tokens`` and ``output_tokens``, each
    drawn within its spread of ``spreads``."""
    from genmodel._arrivals import Lengths

    return (
        Lengths(mean=input_tokens, spread_frac=spreads.input_spread),
        Lengths(mean=output_tokens, spread_frac=spreads.output_spread),
    )


def fallback_note(exc: SpecError) -> str:
    """The note of a simulated estimate that fell back to the closed form, and why."""
    return f"serving='simulated' fell back to the closed-form steady state: {exc}"


def with_note(est: Estimate, note: str) -> Estimate:
    """``est`` with ``note`` in its serving state's notes (a fall back to the closed form)."""
    if not note or est.serving is None:
        return est
    return dataclasses.replace(est, serving=dataclasses.replace(est.serving, notes=note))
