"""An ONNX backend's export folder (hundreds of MB for BERT-base) never outlives its run: removed after a latency
run, and when the export or the session fails."""

import pytest
import torch
from conftest import tiny
from test_timing import FAST

from bench.config import compose
from bench.runner import run
from bench.timing import backends


def _record_onnx_folders(monkeypatch):
    """Every bench-onnx-* folder the backend makes, wherever the temporary folder is."""
    import tempfile

    made, mkdtemp = [], tempfile.mkdtemp

    def recording(*args, **kwargs):
        path = mkdtemp(*args, **kwargs)
        if "bench-onnx-" in path:
            made.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    return made


def test_onnx_latency_run_leaves_no_temporary_folder(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import os
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # other processes' folders in /tmp do not count
    made = _record_onnx_folders(monkeypatch)
    cfg = compose(
        [*tiny("bert"), *FAST, "timing.backends=[onnxruntime]", "timing.batch_sizes=[1]", "timing.seq_lens=[16]"],
        out_dir=str(tmp_path / "run"),
    )
    result = run(cfg)
    assert result.status == "ok", result.failures
    assert made and not [p for p in made if os.path.exists(p)]  # the export happened, and its folder went
    assert not list(scratch.glob("bench-onnx-*"))
    assert result.timing["backends"]["onnxruntime"]["weight_bytes"] > 0  # measured before the files went


@pytest.mark.parametrize("failing", ["export", "session"])
def test_onnx_backend_removes_its_folder_on_failure(failing, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import os

    import onnxruntime as ort

    from bench import models

    def boom(*args, **kwargs):
        raise RuntimeError(f"{failing} broke")

    made = _record_onnx_folders(monkeypatch)
    if failing == "export":
        monkeypatch.setattr(torch.onnx, "export", boom)
    else:
        monkeypatch.setattr(ort, "InferenceSession", boom)
    cfg = compose(tiny("bert"))
    model = models.build_random(cfg.model, cfg.task)
    with pytest.raises((RuntimeError, backends.BackendUnavailable), match=f"{failing} broke"):
        backends.onnxruntime(model, torch.device("cpu"))
    assert made and not [p for p in made if os.path.exists(p)]
