"""What a backend is compared against, and the inputs it is measured on: each shape's batches, the fp32 model's
logits and FLOPs on them (taken before the backend exists, then the fp32 model is released so that a backend's
peak memory is its own), how far a backend's logits are from those, and the task's dev metrics through its forward.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any, Dict, List

import numpy as np
import torch

from .. import tasks
from ..config import Config
from ..errors import NonFiniteOutputError
from ..tasks import metrics
from . import backends, inputs, measure


def shape_batches(cfg: Config, tokenizer, names: set, batch_size: int, seq_len: int, choices=None) -> List[dict]:
    if cfg.timing.inputs == "task":
        return inputs.task_batches(cfg, tokenizer, names, batch_size, seq_len)
    return inputs.synthetic(tokenizer, names, batch_size, seq_len, choices=choices)


def fp32_reference(model, batches: List[dict], device, flops: bool) -> Dict[str, Any]:
    """The fp32 model's logits on a shape's first batch and its FLOPs per forward (counted on the fp32 model: the
    work, not the kernels). Taken before the backend is prepared, so that the fp32 model is gone while the backend
    is measured: a backend's peak memory is its own, not its own plus an idle fp32 copy."""
    batch = {k: v.to(device) for k, v in batches[0].items()}
    with torch.inference_mode():
        out: Dict[str, Any] = {"logits": backends.logits_of(model(**batch)).float().cpu()}
    if flops:
        # per batch of each padded length, averaged as the latency is (task inputs differ in length; synthetic
        # batches of one shape are counted once)
        shapes = {tuple(b["input_ids"].shape): b for b in batches}
        counts = {s: measure.count_flops(model, {k: v.to(device) for k, v in b.items()}) for s, b in shapes.items()}
        out["flops"] = float(np.mean([counts[tuple(b["input_ids"].shape)] for b in batches]))
    return out


def as_array(out) -> np.ndarray:
    """A backend's logits as a float32 array: a torch tensor, a numpy array, or an ONNX Runtime OrtValue (IO
    binding leaves the logits where the graph ran; `.numpy()` copies them out)."""
    if torch.is_tensor(out):
        return out.float().cpu().numpy()
    if not isinstance(out, np.ndarray) and callable(getattr(out, "numpy", None)):
        out = out.numpy()
    return np.asarray(out, dtype=np.float32)


def finite(logits: np.ndarray, where: str, prepared: backends.Prepared) -> np.ndarray:
    """`logits`, refused when any is NaN or infinite: their argmax is a class (0) all the same, and a backend that
    overflowed (fp16 on MobileBERT) would read as agreeing with fp32, or keeping its accuracy tier."""
    bad = ~np.isfinite(logits.reshape(len(logits), -1)).all(-1)
    if bad.any():
        raise NonFiniteOutputError(
            f"this backend's logits ({prepared.dtype}) are NaN or infinite on {where} "
            f"(row {int(np.flatnonzero(bad)[0])} of it): no agreement or accuracy figure is computed from them"
        )
    return logits


def agreement(ref: torch.Tensor, prepared: backends.Prepared, ready) -> Dict[str, float]:
    """How far this backend's logits are from the fp32 model's on the same batch: 'correct', not just fast."""
    out = torch.as_tensor(finite(as_array(prepared.forward(ready)), "the timed batch", prepared))
    out = out.reshape(ref.shape)
    scale = float(ref.abs().max()) or 1.0
    return {
        "max_abs_diff": float((out - ref).abs().max()),
        "max_rel_diff": float((out - ref).abs().max()) / scale,
        "argmax_agreement": float((out.argmax(-1) == ref.argmax(-1)).float().mean()),
    }


def dev_accuracy(cfg: Config, prepared: backends.Prepared, tokenizer, names: set) -> Dict[str, Any]:
    """The task's dev metrics computed through this backend's forward."""
    dd = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed, need_train=False)
    splits = {}
    for split in cfg.task.local.eval_files:
        enc = tasks.encode(type(dd)({split: dd[split]}), tokenizer, cfg.task.max_seq_length, pad_to_max=False)[split]
        order = np.argsort(np.asarray(enc["length"]), kind="stable")
        logits = np.zeros((len(enc), max(cfg.task.num_labels, 1)), dtype=np.float32)
        for i in range(0, len(order), 32):
            rows = enc.select(order[i : i + 32])
            feats = [{k: rows[k][j] for k in names} for j in range(len(rows))]
            out = prepared.forward(prepared.convert(tokenizer.pad(feats, return_tensors="pt")))
            out = finite(as_array(out).reshape(len(rows), -1), f"{split} batch {i // 32} (shortest first)", prepared)
            logits[order[i : i + 32]] = out
        splits[split] = (metrics.predictions_from_logits(cfg.task, logits), np.asarray(dd[split]["label"]))
    return metrics.score(cfg.task, splits)


def release_freed_memory(device) -> None:
    """Free what nothing holds any more and hand it back: glibc keeps freed small blocks (MobileBERT's many small
    weights) in the process, where the RSS a backend is measured at would still count the fp32 model it was built
    from; CUDA's caching allocator likewise."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim, or no way to
        pass
    if device.type == "cuda":
        torch.cuda.empty_cache()


def accuracy_tiers(score: Dict[str, float], reference: Dict[str, float], metric: str = "primary") -> Dict[str, Any]:
    """Whether a backend keeps 99% and 99.9% of the fp32 score: MLPerf's two accuracy targets for BERT."""
    ref, got = reference.get(metric), score.get(metric)
    if ref is None or got is None or ref <= 0:
        return {
            "metric": metric,
            "reference": "eager fp32",
            "ratio": None,
            "meets_99": None,
            "meets_99_9": None,
            "tier": "n/a (no positive fp32 score to stand against)",
        }
    ratio = got / ref
    tier = "99.9%" if ratio >= 0.999 else "99%" if ratio >= 0.99 else "below 99%"
    return {
        "metric": metric,
        "reference": "eager fp32",
        "ratio": ratio,
        "meets_99": ratio >= 0.99,
        "meets_99_9": ratio >= 0.999,
        "tier": tier,
    }
