"""The exported-graph backends: ONNX Runtime fused and int8, OpenVINO; what they build, skip and leave behind."""

import copy
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny

from bench import env, models
from bench.config import compose
from bench.runner import run
from bench.timing import backends, exported, onnx_store

FAST = [
    "mode=latency",
    "timing.min_seconds=0",
    "timing.min_iterations=3",
    "timing.warmup_runs=1",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.flops=false",
    "timing.batch_sizes=[2]",
    "timing.seq_lens=[16]",
]
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
HAVE_OV = HAVE_ORT and importlib.util.find_spec("openvino") is not None
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="the [onnx] extra is not installed")
needs_ov = pytest.mark.skipif(not HAVE_OV, reason="the [openvino] extra is not installed")


def _model(family: str):
    cfg = compose(tiny(family))
    return models.build_random(cfg.model, cfg.task).eval()


def _batch(model):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (4, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[2:, 18:] = 0  # padded rows: the fused attention must honour the mask
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {k: v for k, v in batch.items() if k in backends.accepted_inputs(model)}


def _logits(name, model, batch):
    prepared = backends.prepare(name, copy.deepcopy(model), torch.device("cpu"))
    return prepared, torch.as_tensor(prepared.forward(prepared.convert(batch)))


def _hide(monkeypatch, *packages):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in packages else real(name, *a))


def test_a_missing_runtime_is_left_out_of_auto_with_its_reason(monkeypatch, tmp_path):
    _hide(monkeypatch, "openvino", "onnxruntime")
    cpu = torch.device("cpu")
    auto = backends.auto(cpu)
    assert not {"onnxruntime", "onnxruntime_fused", "onnxruntime_int8", "openvino"} & set(auto)
    left = backends.left_out(cpu)
    assert "pip install -e '.[openvino]'" in left["openvino"] and "onnxruntime" in left["onnxruntime_int8"]
    # named explicitly, a missing runtime is a row with its reason, not an error: the grid goes on
    result = run(
        compose([*tiny("bert"), *FAST, "timing.backends=[auto,openvino,onnxruntime_int8]"], out_dir=str(tmp_path))
    )
    rows = {r["backend"]: r for r in result.latency}
    assert rows["eager"]["status"] == "ok"
    assert rows["openvino"]["status"] == "unsupported" and "openvino, not installed" in rows["openvino"]["error"]
    assert rows["onnxruntime_int8"]["status"] == "unsupported" and "pip install" in rows["onnxruntime_int8"]["error"]
    assert result.timing["backends_left_out"] == left


def test_installed_runtimes_are_in_auto_on_cpu_only():
    auto = backends.auto(torch.device("cpu"))
    for name in exported.CPU_RUNTIMES:
        assert (name in auto) is (exported.missing(name) is None)
    assert backends.left_out(torch.device("cuda")) == {}  # auto on a GPU never lists the CPU runtimes


@needs_ov
@pytest.mark.parametrize("name", ["onnxruntime_int8", "openvino"])
def test_cpu_runtimes_refuse_a_gpu(name):
    with pytest.raises(backends.BackendUnavailable, match="CPU backend"):
        backends.prepare(name, _model("bert"), torch.device("cuda"))


@needs_ort
def test_fusion_on_bert_and_what_mobilebert_leaves_unfused():
    bert = _model("bert")
    batch = _batch(bert)
    with torch.inference_mode():
        ref = bert(**batch).logits
    prepared, out = _logits("onnxruntime_fused", bert, batch)
    fused = prepared.build["fused_ops"]
    layers = bert.config.num_hidden_layers
    # every layer's attention, both LayerNorms per layer, and the embeddings' LayerNorm fused
    assert fused["Attention"] == layers and fused["SkipLayerNormalization"] == 2 * layers
    assert fused["EmbedLayerNormalization"] == 1
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    assert prepared.build["export_s"] > 0 and prepared.build["optimize_s"] > 0 and "Attention x2" in prepared.note
    mobile = _model("mobilebert")
    batch = _batch(mobile)
    with torch.inference_mode():
        ref = mobile(**batch).logits
    prepared, out = _logits("onnxruntime_fused", mobile, batch)
    # bottleneck attention (value from the wide input, query/key from the bottleneck), NoNorm, ReLU: no pattern
    assert not {"Attention", "SkipLayerNormalization"} & set(prepared.build["fused_ops"])
    assert prepared.build["attention_width"] == mobile.config.true_hidden_size
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)


@needs_ort
@pytest.mark.parametrize("vnni", [True, False])
def test_int8_graph_quantises_and_reduces_range_without_vnni(vnni, monkeypatch):
    monkeypatch.setattr(env, "cpu_has_vnni", lambda: vnni)  # both branches on every machine
    bert = _model("bert")
    batch = _batch(bert)
    with torch.inference_mode():
        ref = bert(**batch).logits
    prepared, out = _logits("onnxruntime_int8", bert, batch)
    assert prepared.build["reduce_range"] is (not vnni) and prepared.dtype == "int8-onnx-dynamic-fused"
    assert prepared.build["quantize_s"] > 0 and prepared.build["fused_ops"]["Attention"] == 2
    fp32_graph, _ = _logits("onnxruntime_fused", bert, batch)
    assert prepared.weight_bytes < 0.6 * fp32_graph.weight_bytes  # int8 weights, not the fp32 graph again
    scale = float(ref.abs().max())
    assert 0 < float((out - ref).abs().max()) < 0.1 * scale  # quantised (not bit-equal), not broken


@needs_ort
def test_per_channel_int8_is_its_own_backend_and_left_to_be_asked_for():
    """Per-channel weights: a scale per output column; named explicitly, so that both are timed in one run."""
    import onnx

    cpu = torch.device("cpu")
    assert "onnxruntime_int8_channel" not in backends.auto(cpu)
    assert backends.resolve(["auto", "onnxruntime_int8_channel"], cpu)[-1] == "onnxruntime_int8_channel"
    bert = _model("bert")
    batch = _batch(bert)
    with torch.inference_mode():
        ref = bert(**batch).logits
    tensor, t_out = _logits("onnxruntime_int8", bert, batch)
    channel, c_out = _logits("onnxruntime_int8_channel", bert, batch)
    assert channel.build["per_channel"] is True and tensor.build["per_channel"] is False
    assert channel.dtype == "int8-onnx-dynamic-per-channel-fused" and tensor.dtype == "int8-onnx-dynamic-fused"
    assert 0 < float((c_out - ref).abs().max()) < 0.1 * float(ref.abs().max())
    assert not torch.equal(c_out, t_out)  # other scales, other rounding: not the per-tensor graph again

    def widest_scale(path):  # the weights' scale initialisers: one value per tensor, or one per column
        graph = onnx.load(str(path)).graph
        return max(int(np.prod(i.dims)) for i in graph.initializer if i.name.endswith("_scale"))

    folder = Path(tempfile.mkdtemp())
    try:
        exported.export(copy.deepcopy(bert), folder / "m.onnx", eager_attention=True)
        exported.fuse(folder / "m.onnx", folder / "f.onnx", bert.config)
        exported.quantize(folder / "f.onnx", folder / "t.onnx", per_channel=False)
        exported.quantize(folder / "f.onnx", folder / "c.onnx", per_channel=True)
        assert widest_scale(folder / "t.onnx") == 1 and widest_scale(folder / "c.onnx") > 1
    finally:
        shutil.rmtree(folder)


@needs_ov
def test_openvino_matches_eager_within_its_precision():
    bert = _model("bert")
    batch = _batch(bert)
    with torch.inference_mode():
        ref = bert(**batch).logits
    prepared, out = _logits("openvino", bert, batch)
    precision = prepared.build["inference_precision"]
    assert prepared.dtype == f"openvino-{precision}" and precision in ("f32", "bf16")
    tol = 1e-4 if precision == "f32" else 0.05  # bf16 keeps 8 bits of mantissa
    assert float((out - ref).abs().max()) <= tol * float(ref.abs().max()) + 1e-6


def _record_folders(monkeypatch):
    import tempfile

    made, mkdtemp = [], tempfile.mkdtemp

    def recording(*args, **kwargs):
        path = mkdtemp(*args, **kwargs)
        if "bench-onnx-" in path:
            made.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    return made


def _boom(*args, **kwargs):
    raise RuntimeError("step broke")


@needs_ort
@pytest.mark.parametrize("step", ["fuse", "quantize", "session", "openvino"])
def test_temporary_files_go_when_a_step_fails(step, monkeypatch):
    made = _record_folders(monkeypatch)
    name = {
        "fuse": "onnxruntime_fused",
        "quantize": "onnxruntime_int8",
        "session": "onnxruntime_int8",
        "openvino": "openvino",
    }[step]
    if step == "fuse":
        from onnxruntime.transformers import optimizer

        monkeypatch.setattr(optimizer, "optimize_model", _boom)
    elif step == "quantize":
        import onnxruntime.quantization

        monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", _boom)
    elif step == "session":
        import onnxruntime as ort

        monkeypatch.setattr(ort, "InferenceSession", _boom)
    else:
        if not HAVE_OV:
            pytest.skip("the [openvino] extra is not installed")
        import openvino as ov

        class Core:
            compile_model = staticmethod(_boom)

        monkeypatch.setattr(ov, "Core", Core)
    with pytest.raises((RuntimeError, backends.BackendUnavailable), match="step broke"):
        backends.prepare(name, _model("bert"), torch.device("cpu"))
    assert made and not [p for p in made if os.path.exists(p)]


@needs_ort
def test_build_time_is_recorded_apart_from_latency_and_no_files_stay(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made = _record_folders(monkeypatch)
    names = [n for n in exported.CPU_RUNTIMES if exported.missing(n) is None]
    assert names[:3] == ["onnxruntime", "onnxruntime_fused", "onnxruntime_int8"]  # auto's order: builders first
    result = run(
        compose([*tiny("bert"), *FAST, f"timing.backends=[eager,{','.join(names)}]"], out_dir=str(tmp_path / "run"))
    )
    assert result.status == "ok", result.failures
    facts = result.timing["backends"]
    for name in names:
        build = facts[name]["build"]
        assert build["export_s"] > 0  # a reused export keeps the seconds it took when it was made
        if "reused" not in build:
            assert facts[name]["prepare_s"] >= build["export_s"]
        row = next(r for r in result.latency if r["backend"] == name)
        assert "build" not in row and "export_s" not in row  # one-off costs are not per-call figures
        assert row["agreement_vs_fp32"]["argmax_agreement"] == 1.0 or "int8" in name or name == "openvino"
        assert row["peak_note"].startswith("no % of peak")
    # the plain export is its own; the eager-attention export and the fused graph are made once, then reused
    assert "reused" not in facts["onnxruntime"]["build"] and "reused" not in facts["onnxruntime_fused"]["build"]
    assert facts["onnxruntime_int8"]["build"]["reused"] == ["export-eager-attention", "fused"]
    assert facts["onnxruntime_int8"]["build"]["optimize_s"] == facts["onnxruntime_fused"]["build"]["optimize_s"]
    assert facts["onnxruntime_int8"]["build"]["quantize_s"] > 0
    if "openvino" in names:
        assert facts["openvino"]["build"]["reused"] == ["export-eager-attention"]
    # one folder per backend and the run's store of built graphs, all gone
    stores = [p for p in made if "bench-onnx-builds-" in p]
    assert len(stores) == 1 and len(made) == len(names) + 1 and not list(scratch.glob("bench-onnx-*"))
    assert not os.environ.get(onnx_store.STORE_ENV)


def test_exclude_takes_backends_out_of_auto(tmp_path):
    cpu = torch.device("cpu")
    assert backends.resolve(["auto"], cpu, ["int8"]) == [n for n in backends.auto(cpu) if n != "int8"]
    # a backend named explicitly runs even when excluded (the main sweep excludes two; a user can still ask)
    assert backends.resolve(["onnxruntime_int8", "int8_x"], cpu, ["onnxruntime_int8"]) == ["onnxruntime_int8", "int8_x"]
    without_int8 = [n for n in backends.auto(cpu) if n != "int8"]
    assert backends.resolve(["auto", "int8"], cpu, ["int8"]) == without_int8 + ["int8"]
    result = run(
        compose([*tiny("bert"), *FAST, "timing.backends=[auto]", "timing.exclude=[int8,bf16]"], out_dir=str(tmp_path))
    )
    assert {r["backend"] for r in result.latency} == set(backends.auto(cpu)) - {"int8", "bf16"}
    assert result.timing["backends_excluded"] == ["int8", "bf16"]
    with pytest.raises(Exception, match="timing.exclude"):
        compose(["timing.exclude=[tensorrt]"])


@needs_ort
def test_io_binding_gives_the_logits_that_session_run_gives():
    """The CUDA path binds inputs and logits on the GPU (`exported._bound`), so that the timed call holds no
    host<->device copies. The same binding code runs here on the CPU, against session.run and the eager model."""
    from bench.timing import reference

    model = _model("bert")
    batch = _batch(model)
    with exported._building(copy.deepcopy(model)) as built:
        graph = built.export(eager_attention=False)
        session, _ = exported._ort_session(graph / "graph.onnx", torch.device("cpu"))
    names = [i.name for i in session.get_inputs()]
    convert, forward = exported._bound(session, names, torch.device("cpu"))
    ready = convert(batch)
    bound = reference.as_array(forward(ready))
    plain = session.run(["logits"], exported._feed(names)(batch))[0]
    with torch.inference_mode():
        eager = model(**batch).logits.numpy()
    assert bound.shape == plain.shape == eager.shape == (4, model.config.num_labels)
    np.testing.assert_allclose(bound, plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bound, eager, rtol=1e-3, atol=1e-4)
    again = reference.as_array(forward(ready))  # the same binding, called again (a timed loop's calls)
    np.testing.assert_array_equal(again, bound)
    # robustness scores through the same forward: its probabilities from the OrtValue are session.run's
    from bench.robustness import scoring
    from bench.timing.prepared import Prepared

    probs = scoring.softmax(Prepared(convert, forward, 0, "fp32-onnx"), batch)
    np.testing.assert_allclose(probs, torch.softmax(torch.as_tensor(plain, dtype=torch.float64), -1).numpy())
