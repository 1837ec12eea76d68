"""The measuring itself: timed calls, peak memory, FLOPs by tracing, and the machine's GEMM peak."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import psutil
import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from .. import gpu
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


def time_calls(
    fn: Callable[[], Any], device: torch.device, min_iterations: int, min_seconds: float, max_iterations: int
) -> Latency:
    """Time calls until both `min_iterations` and `min_seconds` are reached (at most `max_iterations`).

    On CUDA each call is timed with CUDA events (device time, no host clock skew); on CPU with perf_counter.
    """
    samples = []
    cuda = device.type == "cuda"
    if cuda:  # recorded on the run's GPU's stream: on another device's they would time only the host's queueing
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        stream = gpu.stream(device)
    start = time.perf_counter()
    while len(samples) < max_iterations and (
        len(samples) < min_iterations or time.perf_counter() - start < min_seconds
    ):
        if cuda:
            begin.record(stream)
            fn()
            end.record(stream)
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
def cuda_peak(device: torch.device, outside_torch: Optional[str] = None) -> Iterator[Dict[str, Any]]:
    """max_memory_allocated / max_memory_reserved over the block, after a reset. `outside_torch`: why the block's
    device memory is not torch's to count (a runtime with its own allocator): no figure, that reason instead."""
    stats: Dict[str, Any] = {}
    if device.type != "cuda" or outside_torch:
        if device.type == "cuda":
            stats["cuda_not_measured"] = outside_torch
        yield stats
        return
    synchronize(device)
    # a reset sets the peaks to what is held now: the cached blocks of an earlier, larger shape would count here
    torch.cuda.empty_cache()
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


def _best_time(fn: Callable[[], Any], device: torch.device, seconds: float) -> float:
    for _ in range(3):
        fn()
    synchronize(device)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - t)
    return best


# (rows, inner, cols) of the calibration matmuls: a square one, and BERT's widest layer at batch 8 x seq 128
# (1024 tokens x 768 -> 3072), whichever the machine's kernels run faster. On GPU, a large square one.
CPU_SHAPES = ((1024, 1024, 1024), (1024, 768, 3072))
CUDA_SHAPES = ((8192, 8192, 8192),)


def gemm_peak(
    device: torch.device,
    dtype: torch.dtype,
    seconds: float = 1.0,
    autocast: bool = False,
    shapes: Tuple[Tuple[int, int, int], ...] | None = None,
) -> float:
    """Dense matmul throughput in FLOP/s, best of a few calls per shape, best over the shapes.

    `autocast` times fp32 inputs under torch.autocast(dtype), which is the arithmetic the CPU bf16 backend
    runs (casts included); otherwise inputs are `dtype` and the plain matmul is timed, as the fp32, and
    the CUDA fp16/bf16 backends (whose weights are converted) run.
    """
    shapes = shapes or (CUDA_SHAPES if device.type == "cuda" else CPU_SHAPES)
    best_rate = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, n, device=device)
        if autocast:

            def fn(a=a, b=b):
                with torch.autocast(device_type=device.type, dtype=dtype):
                    return torch.matmul(a, b)
        else:
            a, b = a.to(dtype), b.to(dtype)
            fn = lambda a=a, b=b: torch.matmul(a, b)  # noqa: E731
        with torch.inference_mode():
            best = _best_time(fn, device, seconds / len(shapes))
        best_rate = max(best_rate, 2.0 * m * k * n / best)
    return best_rate


# What each backend's % of peak stands against; None with the reason where no peak means anything.
def peak_key(backend: str, dtype: str, device: torch.device, emulated: str | None) -> Tuple[str | None, str]:
    if emulated:
        return None, f"no % of peak: {emulated}"
    if "int8" in dtype:
        return (
            None,
            "no % of peak: int8 kernels do integer arithmetic, there is no floating-point peak to stand against",
        )
    if "onnx" in dtype:
        return None, "no % of peak: ONNX Runtime runs its own kernels, not the torch GEMM the peak was measured with"
    if "openvino" in dtype:
        return None, "no % of peak: OpenVINO runs its own kernels, not the torch GEMM the peak was measured with"
    if "bf16" in dtype:
        return ("gemm_bf16_autocast_flops_per_s" if device.type == "cpu" else "gemm_bf16_flops_per_s"), ""
    if "fp16" in dtype:
        return "gemm_fp16_flops_per_s", ""
    return "gemm_fp32_flops_per_s", ""


def calibrate(device: torch.device, seconds: float = 1.0, native_bf16: bool = True) -> Dict[str, float]:
    """The GEMM peaks the backends' percentages stand against, measured now, in this process.

    bf16 on a CPU without AVX512-BF16/AMX is not calibrated: an emulated peak is not a peak (issue #10 saw
    "1,857 % of peak" from it).
    """
    out = {"gemm_fp32_flops_per_s": gemm_peak(device, torch.float32, seconds)}
    if device.type == "cuda":
        out["gemm_fp16_flops_per_s"] = gemm_peak(device, torch.float16, seconds)
        if native_bf16:
            out["gemm_bf16_flops_per_s"] = gemm_peak(device, torch.bfloat16, seconds)
        torch.cuda.empty_cache()  # its large matrices go back, not held in this process's cache beside the runs
    elif native_bf16:
        out["gemm_bf16_autocast_flops_per_s"] = gemm_peak(device, torch.bfloat16, seconds, autocast=True)
    return out
