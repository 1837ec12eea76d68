"""Parameters, FLOPs and latency of student and teacher, measured in one process so the speed-up is one ratio."""

from __future__ import annotations

import inspect
from typing import Any, Dict

import torch

from ..config import TimingConfig
from ..models import count_parameters
from ..timing import inputs, load, measure

BATCH_SIZE, SEQ_LEN = 1, 128  # the MobileBERT paper's latency shape; eager fp32


def measure_model(model, tokenizer, timing: TimingConfig, device: torch.device) -> Dict[str, Any]:
    model.eval().to(device)
    names = set(inspect.signature(model.forward).parameters)
    batch = {k: v.to(device) for k, v in inputs.synthetic(tokenizer, names, BATCH_SIZE, SEQ_LEN)[0].items()}

    def call():
        with torch.inference_mode():
            model(**batch)

    first = measure.warm_up(call, device, timing.warmup_runs)
    with load.watch() as machine_load:  # another process on the cores slows one side and moves the ratio
        lat = measure.time_calls(call, device, timing.min_iterations, timing.min_seconds, timing.max_iterations)
    return {
        "load": machine_load or None,
        "disturbed": load.judged_window(machine_load),
        **count_parameters(model),
        "flops": measure.count_flops(model, batch),
        "first_call_s": first,
        "latency_s": lat.to_dict(keep_samples=False),
        "p50_ms": round(lat.p50 * 1000, 3),
    }


def compare(student, teacher, tokenizer, timing: TimingConfig, device: torch.device) -> Dict[str, Any]:
    """Both models at batch 1, sequence 128, eager; the teacher first, then the student, same threads."""
    out: Dict[str, Any] = {
        "batch_size": BATCH_SIZE,
        "seq_len": SEQ_LEN,
        "backend": "eager",
        "threads": torch.get_num_threads(),
    }
    out["teacher"] = measure_model(teacher, tokenizer, timing, device)
    out["student"] = measure_model(student, tokenizer, timing, device)
    t, s = out["teacher"], out["student"]
    out["speedup_p50"] = round(t["latency_s"]["p50"] / s["latency_s"]["p50"], 3)
    # the ratio is as good as its worse side: disturbed if either was, not judged if either was not
    sides = [t["disturbed"], s["disturbed"]]
    out["disturbed"] = True if True in sides else None if None in sides else False
    out["flops_ratio"] = round(t["flops"] / s["flops"], 3) if s["flops"] else None
    out["parameters_ratio"] = round(t["parameters"] / s["parameters"], 3)
    return out
