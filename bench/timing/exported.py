"""Backends that run an exported graph, as deployers run a compact BERT on a CPU.

- `onnxruntime`: the plain fp32 ONNX export under ONNX Runtime's default session options.
- `onnxruntime_fused`: the same export (attention in its eager form, the pattern the fuser knows) through ONNX
  Runtime's transformer optimizer (`model_type="bert"`): attention, embedding+LayerNorm, skip+LayerNorm and
  bias+GELU fusions. What fused is recorded (`build.fused_ops`); MobileBERT's bottleneck attention, NoNorm
  and ReLU match none of the patterns, so its graph leaves the fuser as it came.
- `onnxruntime_int8`: the fused graph with dynamic int8 quantisation (`quantize_dynamic`, weights per tensor),
  CPU only; `onnxruntime_int8_channel`: the same with a scale per output column of each weight matrix (named
  explicitly, not in auto). Embedding tables stay per tensor in both.
- `openvino`: the ONNX export compiled by OpenVINO for the CPU, with its default (latency) settings.

Each records its export/optimisation/quantisation seconds apart from the latency (`Prepared.build`). Inside a
latency run (bench/timing/onnx_store.py), a graph one backend built is kept for the run's later backends of the
same model: the eager-attention export serves the fused graph and OpenVINO, the fused graph both int8 graphs, so
each is made once per run; a reused step keeps the seconds it took when it was made and is named in
`build.reused`. The store is keyed by a digest of the model's class, config and weights, and goes when the run
ends, whatever happens. Outside a run, each backend builds in a temporary folder of its own that goes as soon as
the session holds the model.
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

from .. import env, tempdirs
from . import ort_calls
from .onnx_store import _graph_bytes, _step, _store_root, model_digest
from .ort_calls import _bound, _feed, _ort_session  # noqa: F401  (kept importable from here)
from .prepared import BackendFailed, BackendUnavailable, Prepared

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# what each runtime needs installed, and the extra that installs it
NEEDS = {
    "onnxruntime": (("onnx", "onnxruntime"), "onnx"),
    "onnxruntime_fused": (("onnx", "onnxruntime"), "onnx"),
    "onnxruntime_int8": (("onnx", "onnxruntime"), "onnx"),
    "onnxruntime_int8_channel": (("onnx", "onnxruntime"), "onnx"),
    "openvino": (("onnx", "openvino"), "openvino"),
}
CPU_RUNTIMES = ("onnxruntime", "onnxruntime_fused", "onnxruntime_int8", "openvino")  # auto's order, when installed


def missing(name: str) -> Optional[str]:
    """Why runtime `name` cannot run in this installation (None when its packages are there)."""
    packages, extra = NEEDS[name]
    absent = [p for p in packages if importlib.util.find_spec(p) is None]
    if absent:
        return f"{name} needs {' and '.join(absent)}, not installed: pip install -e '.[{extra}]'"
    return None


def forward_args(model: torch.nn.Module) -> set:
    return set(inspect.signature(model.forward).parameters)


CPU_ONLY = ("onnxruntime_int8", "onnxruntime_int8_channel", "openvino")  # CUDA has no such path here


def unavailable(name: str, device: torch.device) -> Optional[str]:
    """Why runtime `name` cannot run on this device (None when it can): its packages, or a CPU-only path."""
    reason = missing(name)
    if reason is None and name in CPU_ONLY and device.type != "cpu":
        reason = f"{name} is a CPU backend here"
    if reason is None and device.type == "cuda" and name.startswith("onnxruntime"):  # before any export or fusion
        reason = ort_calls.no_provider("CUDAExecutionProvider")
    return reason


def _need(name: str, device: torch.device) -> None:
    reason = unavailable(name, device)
    if reason:
        raise BackendUnavailable(reason)


def export(model: torch.nn.Module, path: Path, eager_attention: bool = False) -> List[str]:
    """The model as ONNX at `path` (dynamic batch and sequence); returns its input names.

    `eager_attention` exports attention as matmul-softmax-matmul instead of SDPA, whose export (IsNaN, Where
    around the mask) the transformer fuser does not recognise: 0 of 4 TinyBERT attentions fused, 4 of 4 so.
    """
    model = model.to("cpu").eval()
    if eager_attention:
        try:
            model.set_attn_implementation("eager")
        except (AttributeError, ValueError):  # older transformers, or a model with only one implementation
            pass
    names = [n for n in INPUTS if n in forward_args(model)]
    # a multiple-choice head takes batch x choices x seq (logits batch x choices)
    choice = type(model).__name__.endswith("ForMultipleChoice")
    example = {n: torch.ones(*((2, 2, 16) if choice else (2, 16)), dtype=torch.long) for n in names}
    axes = {n: ({0: "batch", 1: "choices", 2: "seq"} if choice else {0: "batch", 1: "seq"}) for n in names}
    logits = {0: "batch", **({1: "choices"} if choice else {})}
    try:
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs=example,
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": logits},
            dynamo=False,
            opset_version=17,
        )
    except Exception as exc:  # exporter failures are many and varied; the grid goes on
        raise BackendFailed(f"ONNX export failed: {str(exc).splitlines()[0][:300]}") from None
    return names


def attention_shape(config) -> Tuple[int, int]:
    """(heads, width) the attention runs at: MobileBERT attends at its bottleneck (true_hidden_size)."""
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads")
    width = getattr(config, "true_hidden_size", None) or getattr(config, "hidden_size", None) or config.dim
    return int(heads), int(width)


def fuse(src: Path, dst: Path, config) -> Dict[str, Any]:
    """ONNX Runtime's transformer optimizer on `src`, written to `dst`; the fusions it made, by operator."""
    import logging

    from onnxruntime.transformers import optimizer

    heads, width = attention_shape(config)
    logging.getLogger("onnxruntime.transformers").setLevel(logging.WARNING)  # one line per fusion pass otherwise
    try:
        optimized = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=width)
    except Exception as exc:  # a pattern the fuser trips on: say so, the grid goes on
        raise BackendFailed(f"ONNX Runtime transformer optimizer failed: {str(exc).splitlines()[0][:300]}")
    optimized.save_model_to_file(str(dst))
    counts = optimized.get_fused_operator_statistics()
    return {
        "fused_ops": {k: v for k, v in counts.items() if v},
        "attention_heads": heads,
        "attention_width": width,
        "layers": getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None),
    }


def quantize(src: Path, dst: Path, per_channel: bool = False) -> Dict[str, Any]:
    """Dynamic int8 weights (activations quantised per call) of the graph at `src`, written to `dst`.

    Without VNNI, ONNX Runtime's u8s8 kernels can saturate (vpmaddubsw adds pairs into int16), so the weights
    are quantised to 7 bits there (`reduce_range`), as its quantisation guide advises.
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reduce_range = not env.cpu_has_vnni()
    # shape inference cannot type the outputs of the fused contrib ops (Attention, SkipLayerNormalization): fp32
    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
    return {"per_channel": per_channel, "reduce_range": reduce_range}


def _timed(fn, *args, **kwargs) -> Tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _timed_stats(fn, key: str, *args) -> Dict[str, Any]:
    out, seconds = _timed(fn, *args)
    return {**(out if isinstance(out, dict) else {}), key: seconds}


class _Built:
    """The graphs one backend needs, made (or found in the run's store) step by step."""

    def __init__(self, model: torch.nn.Module, folder: Path):
        root = _store_root()
        digest = model_digest(model) if root is not None else None
        self.model, self.folder = model, folder
        self.store = root / digest if root is not None and digest else None
        self.build: Dict[str, Any] = {}
        self.reused: List[str] = []

    def step(self, name: str, make: Callable[[Path], Dict[str, Any]], shared: bool = True) -> Path:
        folder, stats, reused = _step(self.folder, self.store if shared else None, name, make)
        self.build.update(stats)
        if reused:
            self.reused.append(name)
        return folder

    def export(self, eager_attention: bool) -> Path:
        def make(out: Path) -> Dict[str, Any]:
            names, seconds = _timed(export, self.model, out / "graph.onnx", eager_attention=eager_attention)
            return {"export_s": seconds, "input_names": names}

        # the plain (SDPA) export serves only the plain backend: made in its own folder, not kept for the run
        return self.step("export-eager-attention" if eager_attention else "export", make, shared=eager_attention)

    def fused(self) -> Path:
        src = self.export(eager_attention=True)
        return self.step(
            "fused",
            lambda out: _timed_stats(fuse, "optimize_s", src / "graph.onnx", out / "graph.onnx", self.model.config),
        )

    def int8(self, per_channel: bool) -> Path:
        src = self.fused()

        def make(out: Path) -> Dict[str, Any]:
            try:
                return _timed_stats(quantize, "quantize_s", src / "graph.onnx", out / "graph.onnx", per_channel)
            finally:  # the quantiser's shape-inferred copy of its input, written beside it
                for stray in src.glob("*-inferred.onnx"):
                    stray.unlink(missing_ok=True)

        name = f"int8{'-per-channel' if per_channel else ''}{'' if env.cpu_has_vnni() else '-reduce-range'}"
        return self.step(name, make)

    def record(self) -> Dict[str, Any]:
        return {**self.build, **({"reused": list(self.reused)} if self.reused else {})}


@contextmanager
def _building(model: torch.nn.Module) -> Iterator[_Built]:
    """This backend's builds; its own temporary folder goes on the way out, whatever happens (the run's store
    stays for the run's other backends)."""
    folder = Path(tempdirs.make("bench-onnx-"))  # locked: a killed backend's folder is removed by a later run
    try:
        yield _Built(model.to("cpu").eval(), folder)
    finally:
        tempdirs.remove(folder)


def _ort_backend(model, device, fused: bool, int8: bool, per_channel: bool = False) -> Prepared:
    """Export (and fuse, and quantise), or find those graphs in the run's store, and open the session."""
    with _building(model) as built:
        if int8:
            graph = built.int8(per_channel)
        else:
            graph = built.fused() if fused else built.export(eager_attention=False)
        (session, note), session_s = _timed(_ort_session, graph / "graph.onnx", device)
        size = _graph_bytes(graph)
        build = {**built.record(), "session_s": session_s}
    names = build.pop("input_names")
    dtype = ("int8-onnx-dynamic" + ("-per-channel" if per_channel else "") if int8 else "fp32-onnx") + (
        "-fused" if fused else ""
    )
    if fused:
        note += "; fused: " + (", ".join(f"{k} x{v}" for k, v in build["fused_ops"].items()) or "nothing")
    if device.type == "cuda":  # the timed call without host<->device copies (CPU: session.run, as measured always)
        convert, forward = _bound(session, names, device)
        note += "; IO binding: inputs and logits stay on the GPU"
    else:
        convert, forward = _feed(names), lambda feed: session.run(["logits"], feed)[0]
    prepared = Prepared(convert, forward, size, dtype, note, build)
    if device.type == "cuda":  # torch's max_memory_allocated would show the bound inputs alone
        prepared.outside_torch = "ONNX Runtime allocates GPU memory in its own arena, which torch's counters miss"
    return prepared


def onnxruntime(model, device):
    _need("onnxruntime", device)
    return _ort_backend(model, device, fused=False, int8=False)


def onnxruntime_fused(model, device):
    _need("onnxruntime_fused", device)
    return _ort_backend(model, device, fused=True, int8=False)


def onnxruntime_int8(model, device):
    # ONNX Runtime's CUDA provider has no dynamic-quantisation kernels (MatMulInteger, DynamicQuantizeLinear)
    _need("onnxruntime_int8", device)
    return _ort_backend(model, device, fused=True, int8=True)


def onnxruntime_int8_channel(model, device):
    """onnxruntime_int8 with per-channel weights: a scale per output column of each MatMul, which keeps a column
    of small weights from being rounded by its tensor's largest; the kernels then rescale per column."""
    _need("onnxruntime_int8_channel", device)
    return _ort_backend(model, device, fused=True, int8=True, per_channel=True)


def openvino(model, device):
    """OpenVINO's CPU plugin on the ONNX export; it picks its own precision (bf16 where the CPU has it)."""
    _need("openvino", device)
    import openvino as ov

    with _building(model) as built:
        graph = built.export(eager_attention=True)
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        compiled, compile_s = _timed(core.compile_model, str(graph / "graph.onnx"), "CPU", config)
        size = _graph_bytes(graph)
        build = {**built.record(), "compile_s": compile_s}
    names = build.pop("input_names")
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type: bf16 or f32
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    build["inference_precision"] = precision
    request = compiled.create_infer_request()

    def forward(feed):
        return request.infer(feed)[compiled.output(0)]

    return Prepared(
        _feed(names),
        forward,
        size,
        f"openvino-{precision}",
        f"OpenVINO {ov.__version__} CPU plugin, inference precision {precision}",
        build,
    )
