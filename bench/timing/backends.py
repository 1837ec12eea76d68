"""Inference backends: the deployment choices a user weighs (precision, quantisation, compilation, runtime).

Each builder takes a model (it may change it: callers pass a fresh copy) and a device, and returns a
`Prepared` whose `convert` readies a batch once and whose `forward` is the timed call. A backend that
cannot run here raises `BackendUnavailable` with the reason, and the grid goes on without it.
"""

from __future__ import annotations

import shutil
import warnings
from typing import Callable, Dict, List, Optional

import torch

from .. import env
from . import exported
from .prepared import BackendFailed, BackendUnavailable, Prepared  # noqa: F401 (BackendFailed: re-exported)


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of everything in the state dict, packed quantised weights included."""
    total = 0
    for value in model.state_dict().values():
        tensors = value if isinstance(value, (tuple, list)) else [value]
        for t in tensors:
            if torch.is_tensor(t):
                total += t.numel() * t.element_size()
    return total


def logits_of(out):
    """Classification logits, or a QA model's start logits (what latency and agreement look at)."""
    return out.logits if getattr(out, "logits", None) is not None else out.start_logits


def _to(device: torch.device) -> Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]:
    return lambda batch: {k: v.to(device) for k, v in batch.items()}


def _torch_backend(
    model: torch.nn.Module, device: torch.device, dtype: str, autocast: torch.dtype | None = None, note: str = ""
) -> Prepared:
    model.eval()

    def forward(batch):
        with torch.inference_mode():
            if autocast is None:
                return logits_of(model(**batch))
            with torch.autocast(device_type=device.type, dtype=autocast):
                return logits_of(model(**batch))

    return Prepared(_to(device), forward, weight_bytes(model), dtype, note)


def eager(model, device):
    return _torch_backend(model.to(device), device, "fp32")


def bf16(model, device):
    if device.type == "cuda":
        return _torch_backend(model.to(device, dtype=torch.bfloat16), device, "bf16")
    # autocast keeps LayerNorm/softmax in fp32 on CPU; weights stay fp32 in memory
    return _torch_backend(
        model.to(device), device, "bf16-autocast", autocast=torch.bfloat16, note=emulated_reason("bf16", device) or ""
    )


def fp16(model, device):
    return _torch_backend(
        model.to(device, dtype=torch.float16),
        device,
        "fp16",
        note="MobileBERT's NoNorm activations can overflow fp16: check the accuracy column",
    )


def int8(model, device):
    from torch.ao.quantization import quantize_dynamic  # warns that it moves to torchao; still the CPU kernel

    with warnings.catch_warnings():  # torch 2.13 deprecates quantised tensor creation; the kernels remain
        warnings.simplefilter("ignore", UserWarning)
        q = quantize_dynamic(model.to(device).eval(), {torch.nn.Linear}, dtype=torch.qint8)
    note = "Linear layers int8 (dynamic activations), rest fp32"
    if not env.cpu_has_vnni():  # not emulated (fbgemm's AVX2 path is real int8), but its ranking changes
        note += "; this CPU has no VNNI: int8 runs on AVX2 kernels and may not beat fp32"
    return _torch_backend(q, device, "int8-dynamic", note=note)


def compiled(model, device):
    model = model.to(device).eval()
    return _torch_backend(
        torch.compile(model), device, "fp32", note="first call includes compilation; each new shape recompiles"
    )


BACKENDS: Dict[str, Callable[[torch.nn.Module, torch.device], Prepared]] = {
    "eager": eager,
    "bf16": bf16,
    "fp16": fp16,
    "int8": int8,
    "compile": compiled,
    "onnxruntime": exported.onnxruntime,
    "onnxruntime_fused": exported.onnxruntime_fused,
    "onnxruntime_int8": exported.onnxruntime_int8,
    "onnxruntime_int8_channel": exported.onnxruntime_int8_channel,
    "openvino": exported.openvino,
}
onnxruntime = exported.onnxruntime  # the plain export, under its old name


def emulated_reason(name: str, device: torch.device) -> Optional[str]:
    """Why a backend runs here without hardware support for its arithmetic (None when it has it).

    Such a backend still runs when it is named explicitly, but its figures describe the emulation, not the
    precision: they are marked wherever they are shown, and `auto` leaves the backend out.
    """
    if name == "bf16" and device.type == "cpu" and not env.cpu_has_native_bf16():
        return "this CPU has no AVX512-BF16 or AMX: bf16 is emulated (converted through fp32) and slower than fp32"
    if name == "bf16" and device.type == "cuda" and torch.cuda.is_available():
        major, _ = torch.cuda.get_device_capability(device)
        if major < 8:  # is_bf16_supported() says yes on Turing and older, through emulation
            return f"{torch.cuda.get_device_name(device)} (sm{major}x) has no bf16 tensor cores: bf16 is emulated"
    return None


def auto(device: torch.device) -> List[str]:
    """The backends that run natively on this device, in table order.

    CPU: eager, int8, bf16 only with AVX512-BF16/AMX, then each exported-graph runtime that is installed
    (onnxruntime plain, fused and int8, openvino; `left_out` says why one is missing). torch.compile is left to be
    asked for on CPU: its first call compiles for minutes on 2 cores, and each new shape recompiles.
    CUDA: eager, fp16, bf16 where the GPU has it natively, compile.
    """
    names = ["eager"]
    if device.type == "cuda":
        names.append("fp16")
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not emulated_reason("bf16", device):
            names.append("bf16")
        names.append("compile")
        return names
    names.append("int8")
    if not emulated_reason("bf16", device):
        names.append("bf16")
    names += [n for n in exported.CPU_RUNTIMES if exported.missing(n) is None]
    return names


def left_out(device: torch.device) -> Dict[str, str]:
    """The runtimes `auto` leaves out on this device and installation, each with the reason."""
    if device.type != "cpu":
        return {}
    return {n: reason for n in exported.CPU_RUNTIMES if (reason := exported.missing(n))}


def resolve(requested: List[str], device: torch.device, exclude: List[str] = ()) -> List[str]:
    """Expand `auto` (alone or beside named backends) into this device's native list, keeping order, no repeats,
    less the `exclude`d names. `exclude` trims only what `auto` brings: a backend named explicitly is run (a
    sweep's default exclusion must not drop what a user asked for by name)."""
    out: List[str] = []
    for name in requested:
        for n in [b for b in auto(device) if b not in exclude] if name == "auto" else [name]:
            if n not in out:
                out.append(n)
    return out


def unavailable(name: str, device: torch.device) -> Optional[str]:
    """Why backend `name` cannot run on this device and installation (None when it can), known before any model
    is built: a backend is measured only after this says yes, so one that cannot run costs no fp32 reference
    forwards, and `prepare` refuses it with the same reason."""
    if name not in BACKENDS:
        return f"unknown backend {name!r}; choices: {sorted(BACKENDS)}"
    if name in exported.NEEDS:
        return exported.unavailable(name, device)
    if name == "fp16" and device.type != "cuda":
        return "fp16 is a CUDA backend (CPU fp16 matmuls are emulated); use bf16 or int8 on CPU"
    if name == "int8" and device.type != "cpu":
        return "int8 dynamic quantisation is a CPU backend (its kernels are fbgemm/onednn)"
    if name == "compile" and device.type == "cpu" and not (shutil.which("c++") or shutil.which("g++")):
        return "torch.compile on CPU needs a C++ compiler (g++), none found"
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return f"{torch.cuda.get_device_name(device)} has no bf16 support"
    return None


def prepare(name: str, model: torch.nn.Module, device: torch.device) -> Prepared:
    reason = unavailable(name, device)
    if reason:
        raise BackendUnavailable(reason)
    return BACKENDS[name](model, device)


def accepted_inputs(model: torch.nn.Module) -> set:
    """The input names the model's forward takes (DistilBERT has no token_type_ids)."""
    return exported.forward_args(model) & {"input_ids", "attention_mask", "token_type_ids"}
