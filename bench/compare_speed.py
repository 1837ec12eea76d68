"""The speed half of the regression gate: latency samples and peak memory, per backend and shape.

A regression needs both a significant difference of the latency samples (two-sided Mann-Whitney U, as
Google Benchmark's compare tool) and a median that grew by more than a factor (as asv). A baseline cell
with no successful counterpart in the current run is a regression: the gate fails closed.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from scipy.stats import mannwhitneyu

from .schema import Result


def _legacy(r: Result) -> Tuple:
    env = r.env.model_dump()
    return (
        (env.get("cpu") or {}).get("model"),
        (env.get("cpu") or {}).get("torch_threads"),
        (env.get("gpu") or {}).get("name"),
    )


def machine(r: Result) -> Tuple:
    """How a result's machine is named in messages: its machine class, else the old tuple."""
    return (r.machine_class,) if r.machine_class else _legacy(r)


def _threads(r: Result):
    """The intra-op threads a latency run timed with (its `timing.threads`, else its env's), None if unrecorded."""
    timing = r.timing.model_dump() if r.timing else {}
    return timing.get("threads") or (r.env.model_dump().get("cpu") or {}).get("torch_threads")


def same_machine(a: Result, b: Result) -> bool:
    """By machine class when both results record one: a CPU model string such as "AMD EPYC" names several
    CPU generations. Older results fall back to CPU model, torch threads and GPU."""
    if a.machine_class and b.machine_class:
        return a.machine_class == b.machine_class
    return _legacy(a) == _legacy(b)


def cells(rs: List[Result]) -> Dict[Tuple, Dict]:
    """Per (device, backend, batch, seq[, choices]): pooled samples, peak memory, dtype, the machine's GEMM peak, and
    the reasons of cells that did not succeed."""
    out: Dict[Tuple, Dict] = {}
    for r in rs:
        timing = r.timing.model_dump() if r.timing else {}
        cal, facts = timing.get("calibration") or {}, timing.get("backends") or {}
        for row in r.latency or []:
            choices = row.model_dump().get("choices")  # a multiple-choice head's batch x choices x seq
            k = (row.device, row.backend, row.batch_size, row.seq_len) + ((f"{choices} choices",) if choices else ())
            e = out.setdefault(
                k, {"samples": [], "rss": [], "dtypes": set(), "errors": [], "peak": None, "disturbed": False}
            )
            if row.status != "ok":
                e["errors"].append(f"{row.status}: {row.error or 'no reason given'}")
                continue
            extra = row.model_dump()
            e["peak"] = cal.get(extra.get("gemm_peak_key") or "")
            e["dtypes"].add(extra.get("dtype"))
            e["disturbed"] |= bool(extra.get("disturbed"))  # other load while measured: shown beside the verdict
            e["samples"] += row.latency_s.samples
            # memory the measurement added over the process's imports: the import footprint depends on the
            # environment (installed extras moved it by ~65 MB here), the model's own memory does not
            before = (facts.get(row.backend) or {}).get("rss_baseline_bytes", 0) or 0
            e["rss"].append(row.memory.peak_rss_bytes - before)
    return out


def rows(label: str, base: List[Result], cur: List[Result], policy, Row) -> List:
    out = []
    for side, runs in (("baseline", base), ("current", cur)):
        classes = sorted({" ".join(map(str, machine(r))) for r in runs})
        if len(classes) > 1:  # pooled, their samples would be no one machine's
            why = f"the {side} runs come from {len(classes)} machines: {', '.join(classes)}"
            return [Row(label, "latency p50", None, None, why, "refused")]
        counts = sorted({str(_threads(r)) for r in runs})
        if len(counts) > 1:  # pooled, their samples would be no one thread count's
            return [Row(label, "latency p50", None, None, f"the {side} runs timed with {counts} threads", "refused")]
    same = same_machine(base[0], cur[0])
    # one machine class, another thread count: other kernels' speed, not this code's (across classes, each run's
    # GEMM peak was measured at its own thread count, and the calibration compares them)
    threads = (_threads(base[0]), _threads(cur[0]))
    thread_why = (
        f"torch threads {threads[0]} (baseline) vs {threads[1]} (current): a latency of another thread count is not "
        "this code's (device.threads, the CPU affinity)"
        if same and threads[0] != threads[1]
        else None
    )
    b_all, c_all = cells(base), cells(cur)
    isolated = all((r.config.get("timing") or {}).get("isolate", True) for r in base + cur)
    for shape in sorted(set(b_all) | set(c_all), key=str):
        where = label + " " + "/".join(str(s) for s in shape)
        b, c = b_all.get(shape), c_all.get(shape)
        if b is None or not b["samples"]:
            if b is not None:
                out.append(
                    Row(where, "latency p50", None, None, f"baseline cell unusable: {b['errors'][:1]}", "refused")
                )
            continue  # a cell only the current run has is new, not a regression
        if c is None or not c["samples"]:
            why = "; ".join(c["errors"][:2]) if c else "not measured in the current run"
            out.append(Row(where, "latency p50", 1e3 * float(np.median(b["samples"])), None, why, "REGRESSION"))
            continue
        if b["dtypes"] != c["dtypes"]:
            out.append(
                Row(
                    where,
                    "latency p50",
                    None,
                    None,
                    f"dtype {sorted(map(str, b['dtypes']))} vs {sorted(map(str, c['dtypes']))}",
                    "not comparable",
                )
            )
            continue
        if thread_why and np.isfinite(c["samples"]).all():  # a failed, missing or NaN cell stays a REGRESSION
            out.append(Row(where, "latency p50", None, None, thread_why, "not comparable"))
            continue
        out += _speed(where, b, c, same, isolated, policy, Row, machine(base[0]), machine(cur[0]))
    return out


def _speed(where, b, c, same, isolated, policy, Row, m_base, m_cur) -> List:
    bs, cs = np.asarray(b["samples"], dtype=float), np.asarray(c["samples"], dtype=float)
    bad = [who for who, x in (("baseline", bs), ("current", cs)) if not np.isfinite(x).all()]
    if bad:  # a NaN median compares false with everything: it would pass as 'ok'
        why = f"NaN or infinite latency samples in the {' and '.join(bad)} run"
        return [Row(where, "latency p50", None, None, why, "REGRESSION" if "current" in bad else "refused")]
    if not same:
        if not (b["peak"] and c["peak"]):
            return [
                Row(
                    where,
                    "latency p50",
                    1e3 * float(np.median(bs)),
                    1e3 * float(np.median(cs)),
                    f"machines differ {m_base} vs {m_cur}, no GEMM calibration",
                    "refused",
                )
            ]
        bs = bs * (b["peak"] / c["peak"])  # the baseline's latency expressed on this machine's GEMM peak
    ratio = float(np.median(cs) / np.median(bs))
    p = float(mannwhitneyu(cs, bs, alternative="two-sided").pvalue)
    significant = p < policy.alpha
    verdict = (
        "REGRESSION"
        if significant and ratio > policy.min_factor
        else "improved"
        if significant and ratio < 1 / policy.min_factor
        else "ok"
    )
    note = "" if same else " (calibrated)"
    # a verdict stands as it is (a slowdown is still red), but the reader learns the figures were disturbed
    note += "".join(
        f" [{who} disturbed by other load]" for who, e in (("baseline", b), ("current", c)) if e["disturbed"]
    )
    out = [
        Row(
            where,
            "latency p50 (ms)",
            1e3 * float(np.median(bs)),
            1e3 * float(np.median(cs)),
            f"x{ratio:.3f}, p={p:.2g}{note}",
            verdict,
        )
    ]
    # memory is only attributable when each backend ran in a process of its own (timing.isolate)
    if same and isolated:
        mb, mc = max(b["rss"]), max(c["rss"])
        mem_ratio = mc / mb if mb > 0 else float("inf")
        out.append(
            Row(
                where,
                "peak RSS over imports (MiB)",
                mb / 2**20,
                mc / 2**20,
                f"x{mem_ratio:.3f}",
                "REGRESSION" if mem_ratio > policy.memory_factor else "ok",
            )
        )
    return out
