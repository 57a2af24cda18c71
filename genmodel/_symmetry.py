"""Replicas a serving simulation need not step one by one: those whose schedule another repeats.

Modelling assumptions: none of its own; this is bookkeeping that leaves every figure as it was.
- Closed-loop clients are dealt round-robin to the replicas (client c to replica c mod dp), and a
  replica's scheduler sees only its own requests and, in lockstep (attention-DP replicas of an MoE
  model), the group's step time and the group's mean tokens per rank
  (:func:`~genmodel._lockstep.group_tokens`). Two replicas whose clients send the same numbers of
  requests, all of one input and one output length, therefore run the same schedule: every request
  of one is admitted, computed and completed at the same times as its counterpart in the other
  (the j-th request of its k-th client), and ties (requests completing in the same step) break the
  same way, since request ids keep the clients' order on both.
- So the simulation steps one replica of each such class (its representative, the lowest index),
  counts each representative as many times as its class has replicas where the group's mean tokens
  are taken, and copies the representatives' request times and replica figures to the rest.
  Random lengths, open-loop arrivals and timelines (which sample the whole group) step every replica.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from genmodel._scheduler import Replica, Requests

#: the per-request fields a finished simulation reports (:mod:`genmodel._simfigures`)
_COPIED = ("arrival_s", "scheduled_s", "first_token_s", "finish_s", "preemptions")


@dataclass(frozen=True, slots=True)
class ReplicaClasses:
    """Per replica, the replica whose schedule it repeats (itself for a representative)."""

    representative: tuple[int, ...]

    @property
    def representatives(self) -> list[int]:
        """The replicas the simulation steps, in index order."""
        return [r for r, q in enumerate(self.representative) if r == q]

    def weights(self) -> dict[int, int]:
        """Replicas per class, by representative."""
        out: dict[int, int] = {}
        for q in self.representative:
            out[q] = out.get(q, 0) + 1
        return out

    def expand(
        self,
        req: Requests,
        made: dict[int, Replica],
        spans: list[tuple[float, float]],
        steps: list[int],
        starts: np.ndarray,
        client_of: np.ndarray,
        *,
        lockstep: bool,
    ) -> tuple[list[Replica], list[tuple[float, float]], int]:
        """After the representatives ran: every request's times and every replica as if each had
        been stepped, with the groups' spans and the steps in all.

        Args:
            made: the representatives' replicas by index.
            spans, steps: per group the simulation ran (one group in lockstep, else one per
                representative, in index order).
            starts, client_of: each client's first request, and each request's client.
        """
        dp = len(self.representative)
        rep = np.asarray(self.representative, dtype=np.int64)
        clients = len(starts) - 1
        c = np.arange(clients)
        twin = rep[c % dp] + (c // dp) * dp  # the same client of the representative replica
        rid = np.arange(len(client_of))
        source = starts[twin[client_of]] + (rid - starts[client_of])
        for name in _COPIED:
            setattr(req, name, np.asarray(getattr(req, name))[source].tolist())
        req.replica = (client_of % dp).tolist()
        replicas = []
        for r, q in enumerate(self.representative):
            if r == q:
                replicas.append(made[r])
                continue
            twin_replica = copy.copy(made[q])  # (its figures are read, never changed, from here)
            twin_replica.index = r
            replicas.append(twin_replica)
        if lockstep:
            return replicas, spans, steps[0]
        position = {q: i for i, q in enumerate(sorted(made))}
        per_replica = [position[q] for q in self.representative]
        return replicas, [spans[i] for i in per_replica], sum(steps[i] for i in per_replica)


def replica_classes(
    per_client: list[int], dp: int, input_tokens: np.ndarray, output_tokens: np.ndarray
) -> ReplicaClasses | None:
    """The classes of ``dp`` replicas with the same schedule under closed-loop clients sending
    ``per_client`` requests each (module docstring), or None when each must be stepped (lengths
    that vary, one replica, or no two replicas alike)."""
    if dp < 2 or len(input_tokens) == 0:
        return None
    if input_tokens.min() != input_tokens.max() or output_tokens.min() != output_tokens.max():
        return None
    first: dict[tuple[int, ...], int] = {}
    representative = []
    for r in range(dp):
        key = tuple(per_client[r::dp])
        representative.append(first.setdefault(key, r))
    if len(first) == dp:
        return None
    return ReplicaClasses(tuple(representative))
