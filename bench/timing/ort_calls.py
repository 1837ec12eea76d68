"""How a built ONNX graph is called: the ONNX Runtime session on the run's device, and its inputs, fed as numpy
arrays (CPU) or bound where they are (CUDA IO binding). Split from exported.py, which builds the graphs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from .prepared import BackendUnavailable


def no_provider(name: str) -> Optional[str]:
    """Why this onnxruntime build cannot use execution provider `name` (None when it lists it)."""
    import onnxruntime as ort

    if name in ort.get_available_providers():
        return None
    gpu = " (the CPU build is installed; pip install onnxruntime-gpu in its place)" if "CUDA" in name else ""
    return f"this onnxruntime build has no {name}{gpu}"


def _ort_session(path: Path, device: torch.device):
    import onnxruntime as ort

    name = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    reason = no_provider(name)
    if reason:
        raise BackendUnavailable(reason)
    # on CUDA the device the run measures (cuda:N), where the inputs are bound: the provider's default is GPU 0
    providers = [(name, {"device_id": device.index or 0})] if device.type == "cuda" else [name]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=providers)
    # a provider whose libraries fail to load is dropped with a logged warning (or the session retried on CPU):
    # the session would run, and be timed, on the CPU under the CUDA row's name
    used = session.get_providers()
    if not used or used[0] != name:
        raise BackendUnavailable(f"ONNX Runtime could not start {name} (the session has {used}; its log says why)")
    session.disable_fallback()  # a failing CUDA run raises rather than rerunning on the CPU
    return session, f"ONNX Runtime {ort.__version__}, {name}"


def _feed(names: List[str]):
    return lambda batch: {n: batch[n].cpu().numpy().astype(np.int64) for n in names}


def _bound(session, names: List[str], device: torch.device):
    """(convert, forward) through ONNX Runtime's IO binding: the inputs bound where they already are, the logits
    left where the graph wrote them. On CUDA, `session.run` on numpy arrays copies the inputs to the GPU and the
    logits back inside every timed call, which eager's timed call does not do: bound, the timed call is the
    graph's alone, as eager's is. `forward` returns an OrtValue (`.numpy()` copies it out, outside the timing)."""
    kind, index = device.type, device.index or 0

    def convert(batch):
        inputs = [batch[n].to(device=device, dtype=torch.int64).contiguous() for n in names]
        binding = session.io_binding()
        for name, tensor in zip(names, inputs):
            binding.bind_input(name, kind, index, np.int64, tuple(tensor.shape), tensor.data_ptr())
        binding.bind_output("logits", kind, index)
        if kind == "cuda":  # the inputs were written on torch's stream; ONNX Runtime reads them on its own
            torch.cuda.synchronize(device)
        return binding, inputs  # the tensors live as long as the binding that points into them

    def forward(ready):
        session.run_with_iobinding(ready[0])
        return ready[0].get_outputs()[0]

    return convert, forward
