"""mode=latency: every backend over the batch-size x sequence-length grid, each backend in its own process.

A backend that cannot run, or a shape that fails (out of memory, unsupported op), is recorded with its reason
and the grid goes on. With `timing.with_accuracy=true` each backend also scores the task's dev set, so a
backend's speed-up and its accuracy cost sit in one result.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .. import env, gpu, kinds, models
from ..config import Config
from ..errors import ConfigError, NonFiniteOutputError
from . import backends, inputs, load, measure, onnx_store, peak, reference
from .child import run_isolated
from .reference import accuracy_tiers

log = logging.getLogger("bench")


def _shape_entry(
    cfg: Config,
    prepared: backends.Prepared,
    ref: Dict[str, Any],
    device,
    batch_size: int,
    batches: List[dict],
    choices: Optional[int] = None,
) -> Dict[str, Any]:
    t = cfg.timing
    ready = [prepared.convert(b) for b in batches]
    batch_cycle = itertools.cycle(ready)
    call = lambda: prepared.forward(next(batch_cycle))  # noqa: E731
    sampler = measure.RssSampler()
    # memory an earlier (larger) shape freed goes back first: this shape's peak is its own, whatever the grid order
    reference.release_freed_memory(device)
    with measure.cuda_peak(device, prepared.outside_torch) as cuda_mem:
        # peak RSS is sampled over the warm-up (same shapes, same allocations) so the timed loop runs unwatched;
        # the warm-up sees every batch once (task inputs cycle through several), so none is first met when timed
        with sampler.watch():
            rss_before = measure.rss_bytes()
            first = measure.warm_up(call, device, max(t.warmup_runs, len(ready)))
        with load.watch() as machine_load:  # what else ran on the machine while these samples were taken
            lat = measure.time_calls(call, device, t.min_iterations, t.min_seconds, t.max_iterations)
    disturbed = load.judged_window(machine_load)
    tokens = float(np.mean([inputs.tokens_in(b) for b in batches]))
    entry: Dict[str, Any] = {
        "status": "ok",
        "first_call_s": first,
        "latency_s": lat.to_dict(),
        "throughput": lat.throughput(batch_size, tokens, choices),
        "tokens_per_batch": tokens,
        "memory": {"peak_rss_bytes": sampler.peak, "rss_before_bytes": rss_before, **cuda_mem},
        "load": machine_load or None,
        "disturbed": disturbed,  # None: not judged (a window too short)
    }
    if t.inputs == "task":
        entry["input_lengths"] = inputs.length_stats(batches)
    entry["agreement_vs_fp32"] = reference.agreement(ref["logits"], prepared, ready[0])
    if "flops" in ref:
        entry["flops"] = ref["flops"]
        entry["achieved_flops_per_s"] = ref["flops"] / lat.mean
    return entry


def measure_backend(cfg: Config, backend: str) -> Dict[str, Any]:
    """Load the model, prepare one backend, run every shape; runs in a child process when isolated."""
    device = env.setup_device(cfg.device)
    rss0 = measure.rss_bytes()
    t0 = time.perf_counter()
    tokenizer, model, info = models.load(cfg.model, cfg.task, seed=cfg.train.seed)
    out: Dict[str, Any] = {
        "backend": backend,
        "model": info,
        "load_s": time.perf_counter() - t0,
        "rss_baseline_bytes": rss0,
        "rss_after_load_bytes": measure.rss_bytes(),
    }
    reason = backends.unavailable(backend, device)
    if reason:  # known before any fp32 reference forward is paid for
        return {**out, "status": "unsupported", "reason": reason, "shapes": []}
    names = backends.accepted_inputs(model)
    # a multiple-choice head takes batch x choices x seq: each choice count is a shape of its own
    per_choice = cfg.timing.choices if kinds.of(cfg.task).choices else [None]
    grid = [(b, c, s) for b in cfg.timing.batch_sizes for c in per_choice for s in cfg.timing.seq_lens]
    model = model.to(device).eval()
    _progress(f"{cfg.model.name} {backend}: fp32 reference outputs and FLOPs for {len(grid)} shape(s)")
    plans: List[Any] = []
    for b, c, s in grid:  # each shape's inputs and the fp32 reference on them, before the backend exists
        try:
            batches = reference.shape_batches(cfg, tokenizer, names, b, s, choices=c)
            plans.append((batches, reference.fp32_reference(model, batches, device, cfg.timing.flops)))
        except Exception as exc:  # out of memory, too long: this shape fails, the grid goes on
            plans.append(_failure(exc, device))
    t0 = time.perf_counter()
    try:
        # the backend takes the model itself (converting it in place where it converts): no fp32 copy stays behind
        prepared = backends.prepare(backend, model, device)
    except backends.BackendUnavailable as exc:
        return {**out, "status": "unsupported", "reason": str(exc), "shapes": []}
    except backends.BackendFailed as exc:  # available here, but it broke on this model: a failure, shown as one
        return {**out, "status": "failed", "reason": str(exc), "shapes": []}
    except Exception as exc:  # noqa: BLE001 (a runtime's own error while building: this backend fails, not the run)
        return {**out, "status": "failed", "reason": _failure(exc, device)["error"], "shapes": []}
    del model  # what the backend keeps of it (eager, bf16, compile) lives on in `prepared`; the rest goes now
    reference.release_freed_memory(device)
    # export, optimisation, quantisation or compilation: a one-off cost, kept apart from the latency
    out.update(
        status="ok",
        dtype=prepared.dtype,
        weight_bytes=prepared.weight_bytes,
        note=prepared.note,
        shapes=[],
        prepare_s=time.perf_counter() - t0,
        build=prepared.build,
    )
    for i, ((b, c, s), plan) in enumerate(zip(grid, plans), 1):
        shape = f"batch {b} x {c} choices x seq {s}" if c else f"batch {b} x seq {s}"
        _progress(f"{cfg.model.name} {backend}: {shape} (shape {i}/{len(grid)})")
        if isinstance(plan, dict):  # its inputs or reference failed
            entry = plan
        else:
            try:
                entry = _shape_entry(cfg, prepared, plan[1], device, b, plan[0], choices=c)
            except Exception as exc:  # out of memory, unsupported op: recorded for this shape, the grid goes on
                entry = _failure(exc, device)
        out["shapes"].append({"batch_size": b, "seq_len": s, **({"choices": c} if c else {}), **entry})
    if cfg.timing.with_accuracy:  # NaN logits (an overflow) fail the backend: no speed of producing garbage
        try:
            out["accuracy"] = reference.dev_accuracy(cfg, prepared, tokenizer, names)
        except NonFiniteOutputError as exc:  # its timings stay on record, apart, not as this backend's figures
            kept = f" (timed before it: timing.backends.{backend}.timed_before_failure)" if out["shapes"] else ""
            return {
                **out,
                "status": "failed",
                "reason": f"{exc}{kept}",
                "shapes": [],
                "timed_before_failure": out["shapes"],
            }
    out["peak_rss_process_bytes"] = _ru_maxrss()
    return out


def _failure(exc: Exception, device) -> Dict[str, Any]:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
    return {"status": "failed", "error": f"{type(exc).__name__}: {first_line}"}


def _progress(text: str) -> None:
    """One line per step on stderr (a child process has no Hydra logging): what runs now, how much is left."""
    print(f"[bench latency {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _ru_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _isolated(cfg: Config, backend: str) -> Dict[str, Any]:
    """A fresh process per backend: its peak memory is its own, and a crash costs only this backend."""
    out = run_isolated(measure_backend, cfg, backend)
    return {"backend": backend, "shapes": [], **out}


def run(cfg: Config) -> Dict[str, Any]:
    """The latency run's sections: `latency` (one row per backend and shape), `timing` (per-backend facts),
    `model`, `task`, `notes` and, when a backend was scored, `metrics`."""
    device = env.setup_device(cfg.device)
    if kinds.of(cfg.task).choices and (cfg.timing.inputs == "task" or cfg.timing.with_accuracy):
        raise ConfigError(
            f"task {cfg.task.name} is multiple choice: its latency is timed on synthetic batch x "
            "choices x seq inputs only (timing.inputs=synthetic, timing.with_accuracy=false)"
        )
    names = backends.resolve(cfg.timing.backends, device, cfg.timing.exclude)
    if not names:
        raise RuntimeError(f"timing.exclude={cfg.timing.exclude} leaves no backend of {cfg.timing.backends} to run")
    emulated = {n: r for n in names if (r := backends.emulated_reason(n, device))}
    native_bf16 = gpu.native_bf16(device) if device.type == "cuda" else env.cpu_has_native_bf16()
    calibration, calibration_load = peak.calibrate(device, native_bf16) if cfg.timing.calibrate else ({}, None)
    per_backend = {}
    with onnx_store.shared_builds():  # an exported or fused graph is built once per run, then reused
        for i, name in enumerate(names, 1):
            _progress(
                f"{cfg.model.name} on {device}: backend {name} ({i}/{len(names)}{_job_position()})"
                + (f" [emulated: {emulated[name]}]" if name in emulated else "")
            )
            per_backend[name] = _isolated(cfg, name) if cfg.timing.isolate else measure_backend(cfg, name)
    first_ok = next((b for b in per_backend.values() if "model" in b), None)
    if first_ok is None:
        raise RuntimeError(f"no backend could load the model: {[b.get('reason') for b in per_backend.values()]}")
    out: Dict[str, Any] = {
        "model": first_ok["model"],
        "task": {"name": cfg.task.name, "inputs": cfg.timing.inputs},
        "notes": [],
    }
    if out["model"]["weights"] == "random":
        out["notes"].append("weights: random (exact architecture): latency, memory and FLOPs are exact")
    for name, reason in emulated.items():
        out["notes"].append(f"{name} (emulated): {reason}")
    out["latency"] = peak.rows(per_backend, calibration, device, emulated, calibration_load)
    calibration, recheck = peak.recheck(out, per_backend, calibration, device, emulated, native_bf16)
    if any(r.get("disturbed") for r in out["latency"]):
        out["notes"].append(
            "disturbed: other processes used the CPU while some shapes were measured "
            "(see each row's `load`); re-measure them on a quiet machine"
        )
    if calibration_load and calibration_load.get("disturbed"):
        out["notes"].append(
            f"no % of GEMM peak: the calibration was disturbed by other load in {peak.CALIBRATION_TRIES} tries "
            "(timing.calibration_load)"
        )
    unjudged = [r for r in out["latency"] if r.get("status") == "ok" and r.get("disturbed") is None]
    if unjudged:
        out["notes"].append(
            f"load not judged on {len(unjudged)} row(s): their timed loops ran under {load.MIN_JUDGED_S} s, too "
            "short to tell whether other processes used the CPU (raise timing.min_seconds)"
        )
    out["timing"] = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "calibration": calibration,
        **({"calibration_load": calibration_load} if calibration_load else {}),
        **({"calibration_recheck": recheck} if recheck else {}),
        "backends_requested": list(cfg.timing.backends),
        "backends_resolved": names,
        **({"backends_excluded": list(cfg.timing.exclude)} if cfg.timing.exclude else {}),
        **({"backends_left_out": backends.left_out(device)} if "auto" in cfg.timing.backends else {}),
        "backends": {
            n: {
                **{k: v for k, v in b.items() if k not in ("shapes", "model")},
                "emulated": n in emulated,
                **({"emulated_reason": emulated[n]} if n in emulated else {}),
            }
            for n, b in per_backend.items()
        },
    }
    eager_acc = per_backend.get("eager", {}).get("accuracy")
    for b in out["timing"]["backends"].values():
        if eager_acc and b.get("accuracy"):
            b["accuracy_change"] = {k: b["accuracy"][k] - eager_acc[k] for k in eager_acc if k in b["accuracy"]}
            b["accuracy_tiers"] = accuracy_tiers(b["accuracy"], eager_acc)
    if eager_acc:
        out["metrics"] = dict(eager_acc)
    return out


def _job_position() -> str:
    """`, job 2/3` inside a Hydra sweep (its count from the sweeper's comma lists), else nothing."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        num = int(hc.job.num)
        total = 1
        for value in (hc.sweeper.params or {}).values():
            total *= len(str(value).split(","))
        return f", job {num + 1}/{total}"
    except Exception:  # not under Hydra, or a sweeper without comma lists: no position to give
        return ""
