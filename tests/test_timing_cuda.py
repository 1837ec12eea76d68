"""The CUDA path: faked where no GPU is (the peak-memory reset's order, auto precision by compute capability), and
run for real behind the gpu marker (tests that skip without a device; `make test-gpu` on a lent GPU)."""

import pytest
import torch
from conftest import tiny
from test_timing import FAST

from bench import env
from bench.config import compose
from bench.runner import run
from bench.timing import backends


def test_cuda_peaks_start_from_an_empty_cache(monkeypatch):
    """Faked CUDA calls (none runs here): the cache is emptied before the peaks are reset, so that the reserved
    peak of a small shape does not carry the cached blocks of a larger one timed before it."""
    import torch

    from bench.timing import measure

    calls = []
    monkeypatch.setattr(measure, "synchronize", lambda device: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 5)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 7)
    with measure.cuda_peak(torch.device("cuda")) as stats:
        calls.append("timed")
    assert calls == ["sync", "empty", "reset", "timed", "sync"]
    assert stats == {"cuda_max_allocated_bytes": 5, "cuda_max_reserved_bytes": 7}


def test_auto_precision_is_bf16_only_where_the_gpu_has_it_natively(monkeypatch):
    import torch

    from bench import env

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # emulation too
    for capability, expected in (((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert env.resolve_precision("auto", torch.device("cuda")) == expected


@pytest.mark.gpu
def test_cuda_path(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = compose(
        [
            *tiny("bert"),
            *FAST,
            "device=cuda",
            "timing.backends=[eager,fp16,bf16,int8]",
            "timing.batch_sizes=[1]",
            "timing.seq_lens=[32]",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    rows = {r["backend"]: r for r in result.latency}
    assert rows["eager"]["status"] == "ok" and rows["eager"]["memory"]["cuda_max_allocated_bytes"] > 0
    assert rows["fp16"]["status"] == "ok" and rows["int8"]["status"] == "unsupported"
    assert result.env["gpu"]["name"]


@pytest.mark.gpu
def test_cuda_auto_backends_and_peaks(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cuda = torch.device("cuda")
    auto = backends.resolve(["auto"], cuda)
    assert auto[:2] == ["eager", "fp16"] and "compile" in auto and "int8" not in auto
    assert ("bf16" in auto) == (torch.cuda.get_device_capability()[0] >= 8)
    cfg = compose(
        [
            *tiny("bert"),
            *FAST,
            "device=cuda",
            "timing.backends=[eager,fp16]",
            "timing.calibrate=true",
            "timing.batch_sizes=[8]",
            "timing.seq_lens=[128]",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    cal = result.timing["calibration"]
    assert cal["gemm_fp32_flops_per_s"] > 1e12 and cal["gemm_fp16_flops_per_s"] > cal["gemm_fp32_flops_per_s"]
    for row in result.latency:
        assert row["status"] == "ok" and 0 < row["pct_of_gemm_peak"] < 105, row
    assert result.env["machine_class"] == env.machine_class() and "-sm" in result.env["machine_class"]


@pytest.mark.gpu
def test_onnxruntime_on_cuda_times_the_graph_with_io_binding(tmp_path):
    """ONNX Runtime on CUDA: inputs and logits bound on the GPU, so the timed call holds no host copies; its
    logits agree with the fp32 model's."""
    ort = pytest.importorskip("onnxruntime")
    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs a GPU and onnxruntime-gpu")
    cfg = compose(
        [*tiny("bert"), *FAST, "device=cuda", "timing.backends=[eager,onnxruntime]", "timing.batch_sizes=[4]"],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    rows = {r["backend"]: r for r in result.latency}
    assert rows["onnxruntime"]["status"] == "ok", rows["onnxruntime"]
    assert "IO binding" in result.timing["backends"]["onnxruntime"]["note"]
    assert rows["onnxruntime"]["agreement_vs_fp32"]["argmax_agreement"] == 1.0
