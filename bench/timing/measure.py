"""The measuring itself: timed calls, peak memory, FLOPs by tracing, and the machine's GEMM peak."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Tuple

import psutil
import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from .stats import Latency


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(fn: Callable[[], Any], device: torch.device, runs: int) -> float:
    """Run `fn` `runs` times (at least once); returns the first call's time (lazy init, compilation)."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    first = time.perf_counter() - t0
    for _ in range(runs - 1):
        fn()
    synchronize(device)
    return first


def time_calls(fn: Callable[[], Any], device: torch.device, min_iterations: int, min_seconds: float,
               max_iterations: int) -> Latency:
    """Time calls until both `min_iterations` and `min_seconds` are reached (at most `max_iterations`).

    On CUDA each call is timed with CUDA events (device time, no host clock skew); on CPU with perf_counter.
    """
    samples = []
    cuda = device.type == "cuda"
    if cuda:
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start = time.perf_counter()
    while len(samples) < max_iterations and (len(samples) < min_iterations or time.perf_counter() - start < min_seconds):
        if cuda:
            begin.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(begin.elapsed_time(end) / 1000.0)
        else:
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
    return Latency.from_values(samples)


class RssSampler:
    """Peak resident memory of this process, sampled on a thread while a block runs."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.peak = 0
        self._proc = psutil.Process()
        self._stop = threading.Event()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    @contextmanager
    def watch(self) -> Iterator["RssSampler"]:
        self.peak = self._proc.memory_info().rss
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.clear()


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


@contextmanager
def cuda_peak(device: torch.device) -> Iterator[Dict[str, int]]:
    """max_memory_allocated / max_memory_reserved over the block, after a reset."""
    stats: Dict[str, int] = {}
    if device.type != "cuda":
        yield stats
        return
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield stats
    synchronize(device)
    stats["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    stats["cuda_max_reserved_bytes"] = torch.cuda.max_memory_reserved(device)


def _sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query, key, value)


# torch's table covers the CUDA attention kernels but not the CPU one, which would count attention as free
_EXTRA_FLOPS = {
    op: _sdpa_flops  # FlopCounterMode wraps it to receive shapes
    for name in ("_scaled_dot_product_flash_attention_for_cpu",)
    if (op := getattr(torch.ops.aten, name, None)) is not None and op not in flop_counter.flop_registry
}


def count_flops(model: torch.nn.Module, batch: Dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward, counted by tracing the aten ops (2 per multiply-add, matmuls and attention)."""
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOPS)
    with torch.inference_mode(), counter:
        model(**batch)
    return int(counter.get_total_flops())


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int | None = None, seconds: float = 1.0) -> float:
    """Dense square matmul throughput in FLOP/s: the yardstick that lets two machines' results stand side by side."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        torch.matmul(a, b)
    synchronize(device)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def calibrate(device: torch.device, seconds: float = 1.0) -> Dict[str, float]:
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device.type == "cuda":
        dtypes["fp16"] = torch.float16
    return {f"gemm_{name}_flops_per_s": gemm_peak(device, dt, seconds=seconds) for name, dt in dtypes.items()}
