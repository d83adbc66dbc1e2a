"""ONNX Runtime sessions and per-call timing for the benchmarks of single hand-built graphs."""

import time

import numpy as np
import onnxruntime as ort


def cpu_session(model: bytes, threads: int) -> ort.InferenceSession:
    """A CPU-provider session with `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def p50_us(session: ort.InferenceSession, feeds: dict, calls: int, warmup: int) -> float:
    """Median microseconds of `session.run` over `calls` calls after `warmup` calls."""
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        session.run(None, feeds)
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e6)
