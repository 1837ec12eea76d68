"""A run stays on the GPU it names: training, timing events, the record and ONNX Runtime's provider.

No GPU is here: a two-GPU machine is faked at torch.cuda's calls (nothing runs on it), which is enough to show
which device each part picks. Behind the gpu marker the same run for real (`make test-gpu` on a lent GPU).
"""

from types import SimpleNamespace

import pytest
import torch
from conftest import tiny

from bench import engine, env, gpu
from bench.config import DeviceConfig, compose
from bench.errors import ConfigError, DeviceError
from bench.timing import exported, measure, ort_calls
from bench.timing.prepared import BackendUnavailable

CARDS = {
    0: SimpleNamespace(name="GPU-ZERO", total_memory=1 << 30, major=8, minor=0, uuid="aaaa"),
    1: SimpleNamespace(name="GPU-ONE", total_memory=2 << 30, major=7, minor=5, uuid="bbbb"),
}


@pytest.fixture
def two_gpus(monkeypatch):
    """torch.cuda answering as a machine with GPU 0 (sm80) and GPU 1 (sm75); returns its call log."""
    state = {"current": 0, "log": []}

    def set_device(d):
        state["current"] = d if isinstance(d, int) else (torch.device(d).index or 0)
        state["log"].append(("set_device", state["current"]))

    def index(d=None):
        return state["current"] if d is None else (d if isinstance(d, int) else torch.device(d).index or 0)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: CARDS[index(d)])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: CARDS[index(d)].name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (CARDS[index(d)].major, 0))
    monkeypatch.setattr(torch.cuda, "current_stream", lambda d=None: f"stream of cuda:{index(d)}")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: state["log"].append(("synchronize", index(d))))
    for var in ("WORLD_SIZE", "LOCAL_RANK", "RANK"):
        monkeypatch.delenv(var, raising=False)
    return state


def test_training_runs_on_the_run_s_gpu_alone(two_gpus, tmp_path):
    """transformers on its own trains on cuda:0 with DataParallel over both GPUs (the batch doubled); the run's
    arguments train on cuda:1, one GPU, the batch as asked."""
    plain = engine.TrainingArguments(output_dir=str(tmp_path / "a"), per_device_train_batch_size=16, report_to="none")
    assert (plain.device, plain.n_gpu, plain.train_batch_size) == (torch.device("cuda", 0), 2, 32)  # the fake bites

    cfg = compose([*tiny("bert"), "task=mrpc", "device=cuda", "device.index=1", "train.precision=fp32"])
    hyper = engine.resolve_hyper(cfg)
    args = engine.training_args(cfg, hyper, torch.device("cuda", 1), "fp32", tmp_path)
    assert args.device == torch.device("cuda", 1) and args.n_gpu == 1
    assert args.train_batch_size == hyper.batch_size
    assert two_gpus["current"] == 1  # accelerate places the model and batches on the current device


def test_torchrun_keeps_accelerate_s_choice_per_rank(two_gpus, monkeypatch):
    """Under torchrun (LOCAL_RANK set, even one process) accelerate puts the Trainer in DDP on the rank's GPU:
    the run takes the same one, LOCAL_RANK modulo the GPUs it sees, and leaves the Trainer's choice alone."""
    from accelerate.utils import DistributedType

    monkeypatch.setenv("LOCAL_RANK", "1")
    args = SimpleNamespace(_n_gpu=1)
    assert gpu.hold(args, torch.device("cuda", 1), torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert ("set_device", 1) not in two_gpus["log"]
    assert env.setup_device(DeviceConfig(name="cuda")) == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES"):
        env.setup_device(DeviceConfig(name="cuda", index=1))
    monkeypatch.setenv("LOCAL_RANK", "0")  # torchrun --nproc_per_node=1: DDP all the same, on cuda:0
    with pytest.raises(DeviceError, match=r"LOCAL_RANK=0\)"):
        env.setup_device(DeviceConfig(name="cuda", index=1))
    monkeypatch.setenv("LOCAL_RANK", "3")  # a launcher that shows each rank its own GPUs: rank 3 on its 2nd
    assert env.setup_device(DeviceConfig(name="cuda")) == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(DeviceError, match="not a rank number"):
        env.setup_device(DeviceConfig(name="cuda"))
    # accelerate's own verdict counts too (a DDP state without the variable): the Trainer's device stands
    monkeypatch.delenv("LOCAL_RANK")
    ddp = SimpleNamespace(_n_gpu=1, distributed_state=SimpleNamespace(distributed_type=DistributedType.MULTI_GPU))
    assert gpu.hold(ddp, torch.device("cuda", 0), torch.device("cuda", 1)) == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="device.index=-1"):
        DeviceConfig(name="cuda", index=-1)


def test_setup_device_and_the_record_name_the_run_s_gpu(two_gpus):
    assert env.setup_device(DeviceConfig(name="cuda", index=1)) == torch.device("cuda", 1)
    two_gpus["current"] = 0  # as a Trainer built before the fix left it
    record = env.capture(device=DeviceConfig(name="cuda", index=1))
    assert record["gpu"]["name"] == "GPU-ONE" and record["gpu"]["index"] == 1 and record["gpu"]["uuid"] == "bbbb"
    assert "gpu-one" in record["machine_class"]
    assert env.capture(device=DeviceConfig(name="cuda", index=0))["gpu"]["name"] == "GPU-ZERO"
    with pytest.raises(DeviceError, match="only 2 CUDA"):
        env.setup_device(DeviceConfig(name="cuda", index=2))
    # the refused run's record names no GPU it was not given (it named the current one, GPU-ZERO)
    missing = env.capture(device=DeviceConfig(name="cuda", index=2))["gpu"]
    assert missing["missing"] and missing["name"] is None and (missing["index"], missing["count"]) == (2, 2)


def test_cuda_events_are_recorded_on_the_run_s_gpu(two_gpus, monkeypatch):
    """With another device current, events on the default stream would time the host's queueing alone."""
    recorded = []

    class Event:
        def __init__(self, enable_timing=False):
            pass

        def record(self, stream=None):
            recorded.append(stream)

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return 2.0

    monkeypatch.setattr(torch.cuda, "Event", Event)
    lat = measure.time_calls(lambda: None, torch.device("cuda", 1), 3, 0.0, 3)
    assert recorded == ["stream of cuda:1"] * 6
    assert lat.to_dict()["p50"] == pytest.approx(0.002)


def test_onnx_runtime_gpu_memory_is_not_reported_from_torch_s_counters(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append("reset"))
    with measure.cuda_peak(torch.device("cuda", 0), "its own arena") as stats:
        pass
    assert stats == {"cuda_not_measured": "its own arena"} and calls == []
    with measure.cuda_peak(torch.device("cpu"), "its own arena") as stats:
        pass
    assert stats == {}


def test_bf16_training_on_a_gpu_without_it_is_refused(two_gpus):
    assert env.resolve_precision("bf16", torch.device("cuda", 0)) == "bf16"
    assert env.resolve_precision("auto", torch.device("cuda", 1)) == "fp32"
    with pytest.raises(ConfigError, match="GPU-ONE .*emulated"):
        env.resolve_precision("bf16", torch.device("cuda", 1))
    assert gpu.native_bf16(torch.device("cuda", 0)) and not gpu.native_bf16(torch.device("cuda", 1))


def test_onnx_runtime_without_its_cuda_provider_is_unavailable_before_any_export():
    """This machine's onnxruntime is the CPU build: a CUDA row is unsupported at once, saying which build to get."""
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    reason = exported.unavailable("onnxruntime_fused", torch.device("cuda", 0))
    assert "CUDAExecutionProvider" in reason and "onnxruntime-gpu" in reason
    assert exported.unavailable("onnxruntime_fused", torch.device("cpu")) is None


def test_a_session_that_fell_back_to_the_cpu_is_not_timed_as_cuda(monkeypatch, tmp_path):
    """A CUDA provider whose libraries fail to load is dropped with a warning; the session would run on the CPU."""
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])

    class Session:
        def __init__(self, path, opts, providers):
            self.asked = providers

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", Session)
    with pytest.raises(BackendUnavailable, match="could not start CUDAExecutionProvider"):
        ort_calls._ort_session(tmp_path / "model.onnx", torch.device("cuda", 1))


def test_onnx_runtime_on_cuda_binds_its_io_refuses_fallback_and_reports_no_torch_memory(monkeypatch):
    """The CUDA build of the session, faked at ONNX Runtime's calls (the export and the rest are real): its
    rows carry no torch memory figure, and a failing call raises rather than rerunning on the CPU."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from bench import models

    calls = []

    class Session:
        def __init__(self, path, opts, providers):
            calls.append(("providers", providers))

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def disable_fallback(self):
            calls.append("no fallback")

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", Session)
    cfg = compose([*tiny("bert"), "task=rte"])
    _, model, _ = models.load(cfg.model, cfg.task, seed=1)
    prepared = exported.onnxruntime(model, torch.device("cuda", 1))
    assert calls == [("providers", [("CUDAExecutionProvider", {"device_id": 1})]), "no fallback"]
    assert "IO binding" in prepared.note and "own arena" in prepared.outside_torch


def test_a_row_of_a_runtime_outside_torch_has_its_reason_not_torch_s_peak(two_gpus, monkeypatch):
    """The shape entry passes the backend's reason on: no reset, no max_memory_allocated, the reason instead."""
    from bench.timing import runner
    from bench.timing.prepared import Prepared

    class Event:
        def __init__(self, enable_timing=False):
            pass

        def record(self, stream=None):
            pass

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return 1.0

    touched = []
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: touched.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: touched.append("read") or 1)
    cfg = compose([*tiny("bert"), "task=rte", "mode=latency", "timing.min_iterations=2", "timing.min_seconds=0"])
    logits = torch.zeros(1, 2)
    prepared = Prepared(lambda b: b, lambda ready: logits, 0, "fp32-onnx", outside_torch="its own arena")
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    entry = runner._shape_entry(cfg, prepared, {"logits": logits}, torch.device("cuda", 1), 1, [batch])
    assert entry["memory"]["cuda_not_measured"] == "its own arena" and touched == []
    assert "cuda_max_allocated_bytes" not in entry["memory"]


def test_the_gpu_build_of_onnxruntime_is_recorded(monkeypatch):
    from importlib import metadata

    versions = {"onnxruntime-gpu": "1.20.1"}

    def version(dist):
        if dist not in versions:
            raise metadata.PackageNotFoundError(dist)
        return versions[dist]

    monkeypatch.setattr(metadata, "version", version)
    assert env._version("onnxruntime") == "1.20.1 (onnxruntime-gpu)"
    versions["onnxruntime"] = "1.32.0"
    assert env._version("onnxruntime") == "1.32.0"
    assert env._version("onnx") is None


@pytest.mark.gpu
def test_a_short_fine_tune_on_cuda(tmp_path, glue_dir):
    """Two steps of training in each CUDA precision on the last GPU, scored there."""
    from bench.runner import run

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    last = torch.cuda.device_count() - 1
    for precision in ("fp16", "bf16") if gpu.native_bf16(torch.device("cuda", last)) else ("fp16",):
        cfg = compose(
            [
                *tiny("bert"),
                "task=rte",
                f"data.dir={glue_dir}",
                "data.max_train_samples=32",
                "data.max_eval_samples=32",
                "train.max_steps=2",
                "device=cuda",
                f"device.index={last}",
                f"train.precision={precision}",
            ],
            out_dir=str(tmp_path / precision),
        )
        result = run(cfg)
        assert result.status == "ok", result.error
        assert result.env["gpu"]["index"] == last and result.train["precision"] == precision
