"""The wave of a benchmark's clients started together: the term the steady state leaves out.

Modelling assumptions (fixed lengths; N closed-loop clients per replica, all sending their first
request at time 0, as the benchmark clients and the serving simulation start them):
- The engine admits prompts in FCFS order while its token budget T allows: m = max(1, floor(T / I))
  whole prompts of I tokens a step (a prompt over the budget runs over several steps, one at a
  time). A step of g <= m prompts takes S(g) = max(P, S(m) g / m), from one prompt's prefill
  P = S(1) and a full step S(m): the roofline of a step whose weight reads and launches, P's, are
  paid once while its compute grows with the prompts it holds (S(m)'s share; exact where one
  prompt is bound by memory or launches and m by compute, but for the per-step overhead, which
  the share scales down; the line from P to S(m) is the convex bound above it).
- The first wave (the burst): the k-th prompt's first token comes at the end of step ceil(k / m),
  so its TTFT is ceil(k / m) full steps (the last step holds the r = N - m floor(N / m) prompts
  left). Averaged over k = 1..N, with q = floor(N / m):
  (S(m) m q (q + 1) / 2 + r (q S(m) + S(r))) / N; for N <= m, S(N): one step holds the wave.
- What follows the burst depends on whether the engine mixes prefill and decode in a step:
  - Not mixed (SGLang without mixed chunk: a step that prefills runs no decode): every waiting
    prompt is prefilled before the next decode step, so the N clients decode in lockstep, finish
    in the same step and send their next requests together: every round is a burst (the wave
    persists).
  - Mixed (vLLM, TensorRT-LLM): the first prompts decode while the others prefill, so the clients
    finish in the groups their prompts were prefilled in, and come back in those groups: a request
    waits for its group's step, S(min(N, m)), where the steady state counts a lone prefill P
    (the wave decays to groups, one step's worth of prompts). Its wait for the queue ahead stays
    the steady state's (:func:`~genmodel._servingpoint.serving_point`). Where one step holds all N
    prompts (N <= m) the one group decodes, finishes and comes back together: every round is a
    burst.
- The measured rounds are the client's requests after its warm-up, W + 1..R. A burst is measured
  when the engine keeps it (not mixed), else only in the first measured round when that round
  starts synchronised: W = 0, or a client that restarts its clients together after the warm-up
  (:attr:`BenchmarkClient.restart_after_warmup`).
- A burst round's TTFT is the larger of the burst and the steady state's less its wait for a
  decode step under way (both describe the same queue once the prefills saturate the replica; a
  burst starts into an empty engine, so no step is under way); a group round's is the steady
  state's plus S(min(N, m)) - P. The mean over the measured rounds is what the wave adds to the steady TTFT.
  It vanishes for one client (S(1) = P, an empty queue) and grows with the clients.
- Overlap scheduler (TensorRT-LLM, ``Engine.overlap_scheduler``): the batch of a step is chosen
  while the step before it runs, so a request waits for the step under way when it arrives as
  well. Of the G = ceil(N / m) groups of a round (N > m) all but the first come back while the
  step of the group ahead of them runs and wait for it, S(min(N - m, m)), the first for a decode
  step under way: that step is their queue, which the steady state's M/D/1 queue estimates too, so
  the wait is the larger of the two; a lone group (N <= m), and the burst, find the engine empty
  and wait for nothing (:func:`overlap_wait_s`).
- Release after launch (TensorRT-LLM, SGLang, ``Engine.release_after_launch`` with the overlap
  scheduler): a step's tokens leave the engine once the next step is launched, which for a step
  holding a prompt (eager) is its host launch time H later. A first token waits H when the step
  after its prefill holds another prompt: in a burst round, every prompt but those of the burst's
  last step, (N - r') / N of them (r' the prompts of the last step); in a group round (mixed) a
  group's step is followed by decode steps, the next group being one step or more behind (the
  simulation agrees: a mixed engine's first tokens wait only in the burst round)
  (:func:`release_wait_s`). The wait is added to TTFT after the steady state is solved, as the
  frontend's time is (the load is not reduced), and, as the wave, not to a KV-limited state; the
  last tokens wait as long, inside e2e.
- The client's reply (``Engine.reply_latency_s``, Z): a closed-loop client's next request reaches
  the scheduler Z after its last token left, a think time in the closed loop (the steady state
  solves N = X (Z + TTFT + (O-1) ITL), :func:`~genmodel._servingpoint.serving_point`), and the same legs
  lie before its first token, so Z is in every TTFT too, as the simulation counts it.
- Spread lengths (:attr:`Wave.in_step` False: lengths drawn within +- a fraction, as the
  simulation's ``input_spread`` / ``output_spread`` draw them): the clients finish at different
  steps, so the groups and the bursts of later rounds break up; a round that starts together (the
  first, or the restart's) is still a burst, the others are the steady state's (the simulation
  agrees: on 126 rungs of drawn deployments with +-10 % lengths, the mean |log(closed form /
  simulation)| of TTFT 0.50 -> 0.14, more than 3x apart 22 -> 2, within 25 % 73 -> 104).
- Not modelled: the budget that a mixed engine's decode tokens take (vLLM) and the slower decay of
  the groups it causes, the decode tokens' time in a group's step, and the wave of a KV-limited
  state (its TTFT is the queue for memory, Little's law).

Source: derived from the scheduler the simulation runs (:mod:`genmodel._scheduler`: FCFS admission
under the token budget, prefill steps without decode where the engine does not mix) for clients
started together; checked against that simulation on a grid of deployments (tests/test_wave.py,
tools/serving_agreement.py), not fitted to measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from genmodel._eagerkernels import EagerBlockKernels
from genmodel._engines import (
    WHOLE_SEQUENCES,
    Engine,
    KvPool,
    eager_block_kernels,
    idle_rank_tokens,
    rank_engine,
)
from genmodel._errors import SpecError, require_ints
from genmodel._hostcost import eager_host_s
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import prefill_chunking
from genmodel._units import Num, ceil, floor, maximum, minimum, where
from genmodel._workload import Precision

#: a ratio of clients a rounding error from an integer counts as that integer in the wave's step
#: counts (ceil, floor of N / m): the search's clients come out of arithmetic (Little's law at a
#: running batch), 8 x (1 + 1e-16) for the estimate's 8, and a ceil there would count a step more
_ROUNDING = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarkClient:
    """How the closed-loop clients of a benchmark send and measure their requests.

    Attributes:
        requests_per_client: requests each client sends, warm-up included (at least).
        warmup_requests: each client's first requests, left out of the means.
        measured_requests_min: the fewest requests measured over all clients: a client sends
            max(requests_per_client, warmup_requests + ceil(measured_requests_min / N)) (the
            re-check's rule; 0: always ``requests_per_client``).
        restart_after_warmup: the clients wait for the warm-up to finish and start the measured
            phase together, a second burst (False: each client goes straight on).
        replays_warmup_prompts: with the restart, each client's first measured requests send
            the prompts of its warm-up again (perf_analyzer's restarted workers walk its input
            data from the start: :func:`~genmodel._simfigures.replay_warmup_prompts`); an engine
            with ``prefix_caching`` finds them cached (the closed form: :mod:`genmodel._replay`).
    """

    requests_per_client: int
    warmup_requests: int
    measured_requests_min: int = 0
    restart_after_warmup: bool = False
    replays_warmup_prompts: bool = False

    def __post_init__(self) -> None:
        require_ints(requests_per_client=self.requests_per_client)
        require_ints(
            minimum=0,
            warmup_requests=self.warmup_requests,
            measured_requests_min=self.measured_requests_min,
        )
        if self.warmup_requests >= self.requests_per_client:
            raise SpecError(
                f"warmup_requests={self.warmup_requests} must be below "
                f"requests_per_client={self.requests_per_client} (no request would be measured)"
            )

    def requests(self, clients: Num) -> Num:
        """Requests each of ``clients`` clients sends, warm-up included."""
        if not self.measured_requests_min:
            return self.requests_per_client + 0 * clients
        most = self.warmup_requests + ceil(self.measured_requests_min / clients * (1 - _ROUNDING))
        return maximum(most, float(self.requests_per_client))


@dataclass(frozen=True, slots=True, kw_only=True)
class Wave:
    """The engine's admission (token budget, mixed steps) and the benchmark client that starts the wave.

    Attributes:
        budget_tokens: the engine's token budget for prompts per step, T (``max_batched_tokens``,
            or ``max_prefill_tokens`` where that is smaller).
        mixed: prefill and decode share a step (False: prefill steps run no decode, and the wave
            persists).
        client: how the clients send and measure their requests.
        overlap: the engine chooses a step's batch while the step before it runs
            (``Engine.overlap_scheduler``): an arrival waits for the step under way as well.
        prefill_launch_s: the engine's host time per kernel launch of a step with prefill tokens
            (``Engine.prefill_launch_s``): the closed form's prefill takes at least the launches
            of an eager forward (:mod:`genmodel._hostcost`).
        eager_blocks: the engine's own kernel counts per architecture
            (``genmodel._engines.eager_block_kernels``); () = the generic count.
        pool: the engine's KV pool (``Engine.kv_pool``): what a running sequence holds of it, and
            what its memory fraction is a fraction of.
        release_after_launch: with ``overlap``, a step's tokens leave once the next step is
            launched (``Engine.release_after_launch``): a first token followed by an eager prompt
            step waits for its host launch (:func:`release_wait_s`).
        reply_latency_s: a closed-loop client's reply (``Engine.reply_latency_s``): a think time
            of the closed loop, and in every TTFT.
        prefix_caching: the engine's prefix cache is on (``Engine.prefix_caching``): a prompt the
            client replays after its warm-up is a cache hit (:func:`replay_hit_tokens`).
        block_tokens: tokens per KV-cache block (``Engine.kv_block_tokens``): a hit is whole blocks.
        in_step: the requests' lengths are fixed, so the clients stay in step (the bursts and
            groups above); False (lengths drawn within a spread): they fall out of step after a
            round that starts together, and a later round is the steady state's.
        engine: the engine the wave was made of (:meth:`of`), whose per-rank knobs
            :meth:`on_ranks` takes and whose CUDA graphs :meth:`eager_decode` reads; None: the
            wave is the same on every plan, and every decode step is graphed.
    """

    budget_tokens: int
    mixed: bool
    client: BenchmarkClient
    overlap: bool = False
    prefill_launch_s: float = 0.0
    pool: KvPool = WHOLE_SEQUENCES
    eager_blocks: tuple[EagerBlockKernels, ...] = ()
    release_after_launch: bool = False
    reply_latency_s: float = 0.0
    prefix_caching: bool = False
    block_tokens: int = 16
    in_step: bool = True
    engine: Engine | None = None

    @classmethod
    def of(cls, engine: Engine, client: BenchmarkClient, *, in_step: bool = True) -> Wave:
        """The wave of ``client`` on ``engine`` (``in_step``: :attr:`in_step`)."""
        budget = engine.max_batched_tokens
        if engine.max_prefill_tokens is not None:  # SGLang: further prompts only within it
            budget = min(budget, engine.max_prefill_tokens)
        return cls(
            budget_tokens=budget,
            mixed=engine.mixed,
            client=client,
            overlap=engine.overlap_scheduler,
            prefill_launch_s=engine.prefill_launch_s,
            pool=engine.kv_pool,
            eager_blocks=eager_block_kernels(engine),
            release_after_launch=engine.release_after_launch,
            reply_latency_s=engine.reply_latency_s,
            prefix_caching=engine.prefix_caching,
            block_tokens=engine.kv_block_tokens,
            in_step=in_step,
            engine=engine,
        )

    def on_ranks(self, *, moe: bool, dp: int) -> Wave:
        """The wave on each of ``dp`` replicas: those of an MoE model's attention DP run the
        engine's per-rank knobs (:func:`~genmodel._engines.rank_engine`: SGLang's chunk over the DP
        size and its lower ``new_token_ratio``), as the simulation runs them; else this wave."""
        if self.engine is None:
            return self
        ranked = rank_engine(self.engine, moe=moe, dp=dp)
        return self if ranked is self.engine else Wave.of(ranked, self.client, in_step=self.in_step)

    def ranked(self, moe: bool, dp: int, memo: dict[int, Wave]) -> Wave:
        """:meth:`on_ranks`, each DP size's made once in ``memo`` (a search asks for every layout)."""
        wave = memo.get(dp)
        if wave is None:
            wave = memo[dp] = self.on_ranks(moe=moe, dp=dp)
        return wave

    def eager_decode(self, batch: float, tp: int) -> bool:
        """Whether the engine runs a decode step of ``batch`` sequences (rounded) without a CUDA
        graph on a server of ``tp`` GPUs (``Engine.eager_decode``); never without an engine."""
        return self.engine is not None and self.engine.eager_decode(batch, tp)

    def decode_only_batch(self, batch: float, whole: float) -> float:
        """The sequences a decode-only step holds, whose CUDA graph it replays (:meth:`eager_decode`),
        at a mean running batch ``batch`` of a replica that runs at most ``whole`` (its clients, or
        the fewer its pool or its budget admits). In step (fixed lengths) the clients come back in
        the groups they were prefilled in and the steps holding their prompts are eager steps of
        their own (costed apart), so a decode-only step holds every group: ``whole``, where the
        mean falls below it by the steps holding prompts and the time a group spends out of the
        engine (its reply). Out of step (spread lengths) the clients come back one by one and a
        decode-only step holds the mean's upper neighbour, ``batch``, rounded up there.

        Source: the simulation's scheduler for clients in step (``genmodel._scheduler``): TensorRT-LLM's
        defaults (graphs 1-32, 64, 128), Llama-3.1-8B fp8 TP2 H200, 128/128, 64 clients: every
        decode step of 64 graphed (TPOT 3.7 ms), where the mean running batch of 63 sent the closed
        form's to the eager floor (26 ms)."""
        return whole if self.in_step else batch

    def idle_ranks(self, tokens: float, *, prefill: bool, busy: float, tp: int) -> tuple[float, bool]:
        """Attention-DP ranks of an MoE model in lockstep, a share ``busy`` (< 1) of them running
        ``tokens`` each (a prompt's, or a decode batch's) and the rest idle: (the tokens each idle
        rank sends the routed experts, whether the busy ranks' decode step runs without a CUDA
        graph), by the engine's rules between ranks (``dp_graph_sync``, ``dp_pad_tokens``), as
        the simulation applies them (genmodel._lockstep): vLLM pads every rank to the largest's
        tokens; SGLang replays a graphed decode step's graph on every rank, and pads an eager
        decode step to the largest when the busy ranks are more than half (MAX_LEN), else the idle
        ranks send none; TensorRT-LLM's idle rank decodes a dummy sequence, its decode step graphed
        only when the busy ranks' batch equals that (or the engine pads), eager otherwise."""
        engine = self.engine
        idle = float(idle_rank_tokens(engine))
        if engine is None:
            return idle, False
        sync = engine.dp_graph_sync
        eager = not prefill and engine.eager_decode(tokens, tp)
        if not prefill and sync != "own":
            graphed = not engine.eager_decode(max(tokens, idle), tp) and (
                bool(engine.graph_pad_sizes) or sync == "all-decode" or round(tokens) == idle
            )
            if graphed:  # every rank, the idle ones too, at the busy ranks' (padded) batch
                return tokens, False
            eager = True
        if engine.dp_pad_tokens == "max" or (
            engine.dp_pad_tokens == "max-len" and not prefill and 2 * busy > 1
        ):
            return tokens, eager
        return idle, eager

    def prompts_per_step(self, input_tokens: int) -> int:
        """m: whole prompts of ``input_tokens`` a step holds (at least one)."""
        return max(1, self.budget_tokens // input_tokens)


def group_step_s(group: Num, prefill_s: float, full_step_s: float, per_step: int) -> Num:
    """S(g): a step of ``group`` prompts (at least one, at most ``per_step``), max(P, S(m) g / m):
    one prompt's prefill (its weight reads and launches, paid once a step), or the full step's
    share of the compute (module docstring)."""
    g = minimum(maximum(group, 1.0), float(per_step))
    if per_step == 1:
        return prefill_s + 0 * g
    return maximum(prefill_s, full_step_s * g / per_step)


def burst_ttft_s(clients: Num, prefill_s: float, full_step_s: float, per_step: int) -> Num:
    """Mean TTFT of N prompts sent together (module docstring): the k-th waits for ceil(k / m) steps."""
    m = per_step
    q = floor(clients / m * (1 + _ROUNDING))  # full steps
    r = clients - q * m  # prompts in the last, partial step
    last = group_step_s(r, prefill_s, full_step_s, m)
    return (full_step_s * m * q * (q + 1) / 2 + r * (q * full_step_s + last)) / clients


def wave_extra_s(
    wave: Wave,
    clients: Num,
    input_tokens: int,
    prefill_s: float,
    full_step_s: float,
    steady_ttft_s: Num,
    step_wait_s: Num = 0.0,
) -> Num:
    """What the wave adds to the steady state's mean TTFT over the client's measured requests
    (module docstring): the mean of its rounds (:func:`round_ttfts_s`) less the steady TTFT; 0 for
    one client.

    Args:
        wave: the engine's admission and the benchmark client.
        clients: N, clients per replica (a float or an array).
        input_tokens: I, prompt tokens per request.
        prefill_s: P, one prompt's prefill.
        full_step_s: S(m), a step of m = :meth:`Wave.prompts_per_step` prompts (``prefill_s``
            is taken for m = 1).
        steady_ttft_s: the steady state's mean TTFT (:func:`~genmodel._servingpoint.serving_point`).
        step_wait_s: the part of it that waits for the decode step under way, which a round
            that starts into an empty engine does not (:func:`round_ttfts_s`).
    """
    burst, later = round_ttfts_s(
        wave, clients, input_tokens, prefill_s, full_step_s, steady_ttft_s, step_wait_s
    )
    return measured_rounds_mean(wave, clients, burst, later) - steady_ttft_s


def measured_rounds_mean(wave: Wave, clients: Num, burst: Num, later: Num) -> Num:
    """The mean over the client's measured rounds of a figure that is ``burst`` in a burst round
    and ``later`` in the others: one measured round is the burst (the first, or the restart's after
    the warm-up); none where the warm-up took it and the clients go on without a restart; every
    round of an engine that does not mix (each round is a burst again, ``burst``)."""
    client = wave.client
    if not wave.mixed and wave.in_step:
        return burst
    if client.warmup_requests and not client.restart_after_warmup:
        return later  # (the burst was the warm-up's)
    measured = client.requests(clients) - client.warmup_requests
    return (burst + (measured - 1) * later) / measured


def overlap_wait_s(
    wave: Wave,
    clients: Num,
    input_tokens: int,
    prefill_s: float,
    full_step_s: float,
    wait_s: Num = 0.0,
    step_wait_s: Num = 0.0,
) -> Num:
    """What the overlap scheduler adds to the wait of a group that comes back in a group round of
    a mixed engine (module docstring), beyond the steady state's ``wait_s`` (its queue and its
    ``step_wait_s`` for a decode step under way): the batch of a step is chosen while the step
    before it runs, so of the G = ceil(N / m) groups of a round all but the first come back while
    the step of the group ahead of them runs and wait for it, S(min(N - m, m)), the first for a
    decode step under way; that step is their queue, as the steady state's is, so the wait is the
    larger of the two. 0 for a lone group (N <= m: it comes back to an empty engine) and without
    the overlap scheduler.

    Args:
        wave: the engine's admission and the benchmark client.
        clients: N, clients per replica.
        input_tokens: I, prompt tokens per request.
        prefill_s, full_step_s: P and S(m), as :func:`wave_extra_s` takes them.
        wait_s: the steady state's wait before a request's prefill (TTFT less P).
        step_wait_s: the part of it that waits for a decode step under way.
    """
    if not wave.overlap or not wave.mixed:
        return 0.0 * clients  # (not mixed: every round is a burst into an empty engine)
    m = wave.prompts_per_step(input_tokens)
    if m == 1:
        full_step_s = prefill_s
    groups = ceil(clients / m * (1 - _ROUNDING))
    next_group = group_step_s(minimum(clients - m, float(m)), prefill_s, full_step_s, m)
    ahead = (groups - 1) / groups * next_group + step_wait_s / groups
    return (clients > m) * (maximum(wait_s, ahead) - wait_s)


def release_wait_s(wave: Wave, clients: Num, input_tokens: int, host_s: Num) -> Num:
    """How long a first token waits, on average over the measured rounds, for the launch of the
    step after its own when the engine sends a step's tokens only once the next step is launched
    (:attr:`Wave.release_after_launch` with the overlap scheduler; module docstring): ``host_s``
    for a prompt of a burst round but those of its last step, whose next step holds the burst's
    next prompts (and runs eagerly); nothing in a group round. 0 for an engine without the rule or
    without a host floor, and for one client.

    Args:
        wave: the engine's admission and the benchmark client.
        clients: N, clients per replica.
        input_tokens: I, prompt tokens per request.
        host_s: H, the host launch time of an eager step (:func:`~genmodel._hostcost.eager_host_s`).

    Source: the release rule the simulation runs (:meth:`~genmodel._scheduler.Replica.plan`: a
    step's first tokens leave when the next step is launched, its host launch time later when it
    holds a prompt) applied to the wave's bursts (module docstring).
    """
    return measured_rounds_mean(wave, clients, *release_rounds_s(wave, clients, input_tokens, host_s))


def round_ttfts_s(
    wave: Wave,
    clients: Num,
    input_tokens: int,
    prefill_s: float,
    full_step_s: float,
    steady_ttft_s: Num,
    step_wait_s: Num = 0.0,
) -> tuple[Num, Num]:
    """(a burst round's mean TTFT, a later round's), the steady TTFT included (module docstring).

    A burst round's is the larger of the burst and the steady state's queue: its TTFT less
    ``step_wait_s``, the wait for a decode step under way, since a burst starts into an empty
    engine. A later round of an engine that does not mix is a burst again; of a mixed one it is
    a burst too where one step holds all N prompts (N <= m: the clients decode, finish and come
    back together, into an empty engine), else the steady state's TTFT plus its group's step and,
    with the overlap scheduler, the step of the group ahead (:func:`overlap_wait_s`).
    """
    m = wave.prompts_per_step(input_tokens)
    if m == 1:
        full_step_s = prefill_s
    burst = maximum(burst_ttft_s(clients, prefill_s, full_step_s, m), steady_ttft_s - step_wait_s)
    if not wave.in_step:  # spread lengths break the groups up: a round after the burst is steady
        return burst, steady_ttft_s
    if not wave.mixed:
        return burst, burst
    group = group_step_s(minimum(clients, float(m)), prefill_s, full_step_s, m) - prefill_s
    later = steady_ttft_s + group
    if wave.overlap:
        wait_s = steady_ttft_s - prefill_s  # the steady state's queue and step under way
        later = later + overlap_wait_s(
            wave, clients, input_tokens, prefill_s, full_step_s, wait_s, step_wait_s
        )
    return burst, where(clients <= m, burst, later)


def replay_hit_tokens(wave: Wave, input_tokens: int) -> int:
    """Prompt tokens a replayed warm-up prompt finds in the engine's prefix cache: its whole KV
    blocks within all but its last token (as :func:`~genmodel._simfigures.replay_warmup_prompts`
    gives them); 0 where the client replays nothing or the engine caches no prefixes."""
    client = wave.client
    if not (wave.prefix_caching and client.replays_warmup_prompts and client.warmup_requests):
        return 0
    return (input_tokens - 1) // wave.block_tokens * wave.block_tokens


def replay_rounds(
    wave: Wave, clients: float, input_tokens: int, output_tokens: int, capacity_tokens: float
) -> int:
    """Measured rounds that replay the warm-up's prompts and find them cached: the first W (the
    warm-up's requests) of the client's measured rounds, each while the KV a replica has filled
    since it started (the warm-up's prompts and outputs, then each replayed round's uncached tail
    and output) is within its pool of ``capacity_tokens`` (the engine evicts cached blocks only
    when it has no other left: :func:`~genmodel._simfigures.replay_warmup_prompts`). 0 where
    :func:`replay_hit_tokens` is 0. Scalars (an estimate; the plan search's client replays nothing)."""
    hit = replay_hit_tokens(wave, input_tokens)
    if not hit:
        return 0
    client = wave.client
    measured = int(client.requests(clients)) - client.warmup_requests
    filled = clients * client.warmup_requests * (input_tokens + output_tokens)
    rounds = 0
    while rounds < min(client.warmup_requests, measured) and filled <= capacity_tokens:
        rounds += 1
        filled += clients * (input_tokens - hit + output_tokens)
    return rounds


def replayed_mean_s(
    wave: Wave, clients: float, rounds: int, together: bool, fresh: tuple[Num, Num], replayed: tuple[Num, Num]
) -> Num:
    """The mean over the measured rounds of a client that restarts after its warm-up and replays
    it (:func:`replay_rounds`: the first ``rounds`` measured rounds), of a figure whose (burst
    round, later round) values are ``fresh`` for fresh prompts and ``replayed`` for replayed ones
    (:func:`round_ttfts_s`): the restart's burst is a replayed round; where one step holds every
    replayed prompt (``together``) the clients stay synchronised, so the replayed rounds are
    bursts; the first round of fresh prompts after them is a burst of the groups the replayed
    prompts ran in (``fresh``'s burst round), all the clients where one step held them."""
    client = wave.client
    measured = int(client.requests(clients)) - client.warmup_requests
    fresh_burst, fresh_later = fresh
    replay_burst, replay_later = replayed
    total = replay_burst + (rounds - 1) * (replay_burst if together else replay_later)
    if measured > rounds:  # (``fresh``'s burst: the replay's groups', :func:`genmodel._replay._after_groups`)
        total = total + fresh_burst + (measured - rounds - 1) * fresh_later
    return total / measured


def release_rounds_s(wave: Wave, clients: Num, input_tokens: int, host_s: Num) -> tuple[Num, Num]:
    """(a burst round's, a later round's) mean wait of a first token for the next step's launch
    (:func:`release_wait_s`, round by round): in a burst round ``host_s`` for the prompts but
    those of its last step, whose next step holds the burst's next prompts; a later round of an
    engine that does not mix is a burst, of a mixed one waits for nothing. 0 for an engine without
    the rule (and for H = 0, an engine without a host floor)."""
    if not (wave.release_after_launch and wave.overlap):
        return 0.0 * clients, 0.0 * clients
    m = wave.prompts_per_step(input_tokens)
    last = clients - m * (ceil(clients / m * (1 - _ROUNDING)) - 1)  # prompts in the burst's last step
    burst = host_s * (clients - last) / clients  # the prompts whose step a prompt step follows
    return burst, (0.0 * clients if wave.mixed or not wave.in_step else burst)


def eager_prefill(
    model: ModelSpec,
    plan: Plan,
    precision: Precision,
    wave: Wave | None,
    input_tokens: int,
    options: RunOptions,
    prefill_s: float,
    step_overhead_s: float,
) -> tuple[float, float]:
    """(H, the request's prefill at least its eager passes): H is the host time of launching an
    eager forward's kernels on the wave's engine (:func:`~genmodel._hostcost.eager_host_s`; 0
    without a wave or a host floor), and each of the prompt's passes takes at least H and the
    per-step overhead. One formula for the estimate and the plan search."""
    if wave is None:
        return 0.0, prefill_s
    host_s = eager_host_s(model, plan, precision, launch_s=wave.prefill_launch_s, blocks=wave.eager_blocks)
    if not host_s:
        return 0.0, prefill_s
    passes = prefill_passes(input_tokens, options)
    return host_s, max(prefill_s, passes * (host_s + step_overhead_s))


def engine_chunked(wave: Wave | None, input_tokens: int, options: RunOptions) -> RunOptions:
    """``options`` with the prefill chunk the wave's engine runs one prompt in: an engine that
    chunks prompts (``Engine.chunked_prefill``) takes at most its token budget of a prompt a step
    (``max_batched_tokens``, each attention-DP rank's where :meth:`Wave.on_ranks` divided it, as
    SGLang's ``chunked_prefill_size // dp_size``), so a prompt over it runs over several passes,
    each an eager step with its weight reads and host launches, as the simulation's scheduler
    takes chunks (``genmodel._scheduler``: ``min(todo, budget)``); a smaller chunk given in the
    options stays. Unchanged without an engine, for one that does not chunk, or a prompt within
    the budget."""
    if wave is None or wave.engine is None or not wave.engine.chunked_prefill:
        return options
    cached, chunk = prefill_chunking(input_tokens, options)
    budget = wave.engine.max_batched_tokens
    if input_tokens - cached <= budget or chunk <= budget:
        return options
    return replace(options, prefill_chunk=budget)


def prefill_passes(input_tokens: int, options: RunOptions) -> int:
    """The passes of one prompt's prefill, ceil((input_tokens - cached) / chunk)
    (:func:`~genmodel._phases.prefill_chunking`)."""
    cached, chunk = prefill_chunking(input_tokens, options)
    return -(-(input_tokens - cached) // chunk)


def one_shot_ttft_s(
    wave: Wave,
    clients: float,
    running: float,
    rate_per_s: float,
    itl_s: float,
    input_tokens: int,
    output_tokens: int,
    prefill_s: float,
    full_step_s: float,
) -> float:
    """Mean TTFT of N requests sent at once, one a client (no closed loop: ``vllm bench serve``
    with all its prompts at once), where the KV memory runs at most K = ``running`` of them.

    The first K are a burst (:func:`burst_ttft_s`); the first of them to finish, the first step's,
    does so T1 = S(min(K, m)) + (O-1) ITL after the start, and from then on the replica completes
    X = ``rate_per_s`` requests a second at K running, each completion admitting the next waiting
    request: the i-th of the N - K waiting ones (i = 0, 1, ...) starts at T1 + i / X and has its
    first token a prefill P later. The mean over all N:
    (K burst(K) + (N - K) (T1 + P) + (N - K) (N - K - 1) / (2 X)) / N. (A closed loop instead
    queues every request behind all N - K waiting ones, Little's law: about twice this.)

    Source: FCFS admission as memory frees (:mod:`genmodel._scheduler`), for one request a client.
    """
    m = wave.prompts_per_step(input_tokens)
    if m == 1:
        full_step_s = prefill_s
    k = min(running, clients)
    waiting = clients - k
    first = float(group_step_s(min(k, float(m)), prefill_s, full_step_s, m)) + (output_tokens - 1) * itl_s
    burst = float(burst_ttft_s(k, prefill_s, full_step_s, m))
    queue = waiting * (first + prefill_s) + waiting * (waiting - 1) / (2 * rate_per_s)
    return (k * burst + queue) / clients


def one_shot_itl_s(wave: Wave, clients: float, running: float, itl_s: float, step_s: float) -> float:
    """Mean ITL of N requests sent at once, one a client, where the KV memory runs K = ``running``
    < N of them (:func:`one_shot_ttft_s`): ``itl_s`` (the steady state's at K, with the waiting
    prompts' prefills in the decode) until the last waiting request is admitted; after it the K
    running ones drain with no prompt left to prefill, at the bare step t(K) (an upper bound: the
    batch shrinks as they finish). Admitted one per completion, they are spread over their
    progress, so about K (O-1) / 2 of the N (O-1) tokens come in the drain, and the mean over the
    requests is ITL - K / (2 N) (ITL - t). A closed loop (more than one request a client) keeps
    ``itl_s``.

    Source: FCFS admission as memory frees (:mod:`genmodel._scheduler`): no prefill after the last
    admission.
    """
    if wave.client.requests(clients) != 1 or running >= clients:
        return itl_s
    return itl_s - running / (2 * clients) * max(itl_s - step_s, 0.0)
