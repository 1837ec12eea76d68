"""The build store of a latency run: an exported or fused graph is built once per run and reused by the backends
that start from it (in child processes too), keyed by the weights, never reused half-made, and gone when the run
ends however it ends (the backends themselves: test_exported_backends.py)."""

import copy
import os
import tempfile

import pytest
import torch
from conftest import tiny
from test_exported_backends import FAST, _batch, _logits, _model, needs_ort

from bench.config import compose
from bench.runner import run
from bench.timing import onnx_store


@needs_ort
@pytest.mark.slow
def test_backends_in_child_processes_share_the_store(tmp_path, monkeypatch):
    """Measured the way a run measures (a spawned process per backend), the int8 graph still reuses the fused one:
    the children find the store through the environment they inherit; no folder stays behind."""

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))  # the children's temporary folders too
    fast = [o for o in FAST if not o.startswith("timing.isolate")]
    cfg = compose(
        [*tiny("bert"), *fast, "timing.isolate=true", "timing.backends=[onnxruntime_fused,onnxruntime_int8]"],
        out_dir=str(tmp_path / "run"),
    )
    result = run(cfg)
    assert result.status == "ok", result.failures
    facts = result.timing["backends"]
    assert "reused" not in facts["onnxruntime_fused"]["build"]
    assert facts["onnxruntime_int8"]["build"]["reused"] == ["export-eager-attention", "fused"]
    assert not os.environ.get(onnx_store.STORE_ENV) and not list(scratch.glob("bench-onnx-*"))


def test_the_store_is_keyed_by_the_weights():
    bert = _model("bert")
    same = copy.deepcopy(bert)
    assert onnx_store.model_digest(bert) == onnx_store.model_digest(same)
    with torch.no_grad():
        next(same.parameters()).view(-1)[0] += 1e-3  # one weight moved: another model, another graph
    assert onnx_store.model_digest(bert) != onnx_store.model_digest(same)
    assert onnx_store.model_digest(bert) != onnx_store.model_digest(_model("mobilebert"))
    other_config = copy.deepcopy(bert)
    other_config.config.layer_norm_eps = 1e-5  # the same weights, another graph
    assert onnx_store.model_digest(bert) != onnx_store.model_digest(other_config)


@needs_ort
def test_two_models_in_one_store_keep_their_own_graphs():
    bert, mobilebert = _model("bert"), _model("mobilebert")
    with onnx_store.shared_builds():
        first, _ = _logits("onnxruntime_fused", bert, _batch(bert))
        other, _ = _logits("onnxruntime_fused", mobilebert, _batch(mobilebert))
        again, _ = _logits("onnxruntime_int8", bert, _batch(bert))
    assert "reused" not in first.build and "reused" not in other.build
    assert again.build["reused"] == ["export-eager-attention", "fused"]


def test_the_store_goes_and_the_variable_is_put_back_however_the_run_ends(monkeypatch):
    monkeypatch.setenv(onnx_store.STORE_ENV, "1:/left/in/a/shell")  # not this process's run: not trusted
    assert onnx_store._store_root() is None
    with pytest.raises(RuntimeError, match="run broke"):
        with onnx_store.shared_builds() as store:
            assert onnx_store._store_root() == store and store.is_dir()
            with onnx_store.shared_builds() as inner:  # a run inside the run: the same store
                assert inner == store
            raise RuntimeError("run broke")
    assert not store.exists() and os.environ[onnx_store.STORE_ENV] == "1:/left/in/a/shell"


def test_a_step_that_broke_half_way_is_made_again_not_reused(tmp_path):
    calls = []

    def broken(out):
        (out / "graph.onnx").write_text("half")
        raise RuntimeError("killed half-way")

    def whole(out):
        calls.append(out)
        (out / "graph.onnx").write_text("whole")
        return {"export_s": 1.5}

    store = tmp_path / "store"
    with pytest.raises(RuntimeError):
        onnx_store._step(tmp_path, store, "export", broken)
    folder, stats, reused = onnx_store._step(tmp_path, store, "export", whole)
    assert not reused and (folder / "graph.onnx").read_text() == "whole" and stats == {"export_s": 1.5}
    again, stats, reused = onnx_store._step(tmp_path, store, "export", whole)
    assert reused and again == folder and stats == {"export_s": 1.5} and len(calls) == 1
    assert not list(store.glob("*.part"))


@needs_ort
def test_a_reused_graph_is_the_one_a_fresh_build_gives(monkeypatch):
    """int8 built on the fused graph another backend left in the store gives what a fresh int8 build gives."""
    bert = _model("bert")
    batch = _batch(bert)
    alone, fresh = _logits("onnxruntime_int8", bert, batch)  # no store: everything made in its own folder
    with onnx_store.shared_builds() as store:
        fused, _ = _logits("onnxruntime_fused", bert, batch)
        int8, reused = _logits("onnxruntime_int8", bert, batch)
        channel, _ = _logits("onnxruntime_int8_channel", bert, batch)
        assert store.is_dir() and "reused" not in fused.build
        assert not list(store.rglob("*-inferred.onnx"))  # the quantiser's stray copy is not left in the store
    assert int8.build["reused"] == ["export-eager-attention", "fused"] and torch.equal(reused, fresh)
    assert channel.build["reused"] == ["export-eager-attention", "fused"] and channel.build["per_channel"]
    assert int8.weight_bytes == alone.weight_bytes  # the reused graph's size is the graph's, nothing beside it
    assert not store.exists() and not os.environ.get(onnx_store.STORE_ENV)
