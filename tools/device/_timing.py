"""GPU time of a callable from CUDA-graph replays, shared by the device scripts of this folder."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def graph_time(fn: Callable[[], object], reps: int = 10) -> float:
    """GPU seconds per call of ``fn``: two warm-up calls on a side stream, one capture, one replay,
    then ``reps`` replays between CUDA events. Without a GPU, the wall time of one call."""
    if not torch.cuda.is_available():
        fn()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    del graph
    return start.elapsed_time(end) / 1e3 / reps
