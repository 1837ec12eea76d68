"""What every backend builder returns, and the exceptions it raises: it cannot run here, or it failed.

A module of its own so that the torch backends (`backends.py`) and the exported-graph runtimes
(`exported.py`) share these without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import torch


class BackendUnavailable(Exception):
    """This backend cannot run on this device or installation; the message says why (status `unsupported`)."""


class BackendFailed(RuntimeError):
    """This backend is available here but could not be built for this model (an ONNX export or a graph
    optimisation that failed): a failure (status `failed`, the run `partial`), never a quiet `unsupported`
    that would leave a `timing.backends=auto` run `ok` with a backend missing."""


@dataclass
class Prepared:
    convert: Callable[[Dict[str, torch.Tensor]], Any]  # once per batch, outside the timed region
    forward: Callable[[Any], Any]  # the timed call; returns logits (tensor or array)
    weight_bytes: int
    dtype: str
    note: str = ""
    # how the backend was built, apart from latency: export/optimisation/quantisation seconds, fused-op counts
    build: Dict[str, Any] = field(default_factory=dict)
    # why its GPU memory is not torch's to count (a runtime with its own allocator); None: torch's counters see it
    outside_torch: Optional[str] = None
