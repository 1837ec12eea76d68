"""Plain-text tables printed at the end of a run or a sweep."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import pandas as pd


def latency_frame(results: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    """One row per model, backend and shape from latency results, with speed-up over the same model's eager."""
    rows: List[Dict[str, Any]] = []
    for run, r in enumerate(results):
        model = r.get("model", {})
        facts = (r.get("timing") or {}).get("backends") or {}
        for row in r.get("latency") or []:
            backend = row.get("backend")
            emulated = row.get("emulated") or (facts.get(backend) or {}).get("emulated")
            tiers = (facts.get(backend) or {}).get("accuracy_tiers") or {}
            base = {
                "model": model.get("name"),
                "weights": model.get("weights"),
                "params_M": (model.get("parameters") or 0) / 1e6,
                "backend": f"{backend} (emulated)" if emulated else backend,
                "backend_name": backend,
                "run": run,
                "device": row.get("device", "cpu"),
                "batch": row.get("batch_size"),
                "seq": row.get("seq_len"),
                # timing.inputs=task: dev rows padded to each batch's longest, `seq` only their cap (not a length)
                "inputs": (r.get("task") or {}).get("inputs") or "synthetic",
                "status": row.get("status"),
                "choices": row.get("choices", 0),  # multiple-choice heads: batch x choices x seq; 0 otherwise
                "acc_tier": tiers.get("tier") or "-",
                "flags": _flags(row, emulated),
            }
            if row.get("status") == "ok":
                lat = row["latency_s"]
                base.update(
                    p50_ms=1e3 * lat["p50"],
                    p90_ms=1e3 * lat["p90"],
                    cv_pct=100 * (lat["cv"] or 0),
                    seq_per_s=row["throughput"]["sequences_per_s"],
                    peak_rss_MiB=row["memory"]["peak_rss_bytes"] / 2**20,
                    # on a GPU: torch's peak allocation on the device (the host RSS is mostly CUDA's context)
                    cuda_alloc_MiB=_mib(row["memory"].get("cuda_max_allocated_bytes")),
                    GFLOPs=(row.get("flops") or 0) / 1e9,
                    tokens_per_seq=(row.get("tokens_per_batch") or 0)
                    / max((row.get("batch_size") or 1) * (row.get("choices") or 1), 1),
                    pct_gemm_peak=row.get("pct_of_gemm_peak"),
                )
            else:
                base["error"] = row.get("error")
            rows.append(base)
    df = pd.DataFrame(rows)
    if df.empty or "p50_ms" not in df:
        return df
    # over the eager row of the same run, device and shape: another run (a re-run, another machine) or device is
    # not this row's baseline
    on = ["run", "device", "batch", "seq", "choices"]
    eager_rows = df[df.backend_name == "eager"].set_index(on)
    eager = eager_rows["p50_ms"].dropna()
    eager = eager[~eager.index.duplicated(keep="last")]
    keys = list(df[on].itertuples(index=False, name=None))
    df["speedup_vs_eager"] = [
        eager.get(k) / v if k in eager.index and v == v else None for k, v in zip(keys, df.p50_ms)
    ]
    # a ratio is only as good as both its figures: one over a disturbed eager row is flagged on the row too
    disturbed_eager = {k for k, f in eager_rows["flags"].items() if "disturbed" in str(f)}
    df["flags"] = [
        f
        if k not in disturbed_eager or b == "eager"
        else "; ".join(x for x in (f, "speed-up vs a disturbed eager") if x)
        for k, b, f in zip(keys, df.backend_name, df["flags"])
    ]
    return df.drop(columns=["run"])  # a position in this list only: the tidy file's `run` is a folder


def _mib(n: Optional[float]) -> Optional[float]:
    return n / 2**20 if n is not None else None


def inputs_cells(df: pd.DataFrame) -> pd.Series:
    """What each row timed: 'synthetic' (every sequence `seq` tokens), or 'task (mean N tok)': dev rows, each
    batch padded to its longest, `seq` their cap only."""
    if "inputs" not in df:
        return pd.Series("synthetic", index=df.index)
    per_seq = df["tokens_per_seq"] if "tokens_per_seq" in df else pd.Series(np.nan, index=df.index)
    return pd.Series(
        [
            "synthetic" if i in (None, "synthetic") or i != i else f"task (mean {t:.0f} tok)" if t == t else str(i)
            for i, t in zip(df["inputs"], per_seq)
        ],
        index=df.index,
    )


def describe(load: Optional[Dict[str, Any]]) -> str:
    """One phrase for tables: why a figure is flagged."""
    if not load or not load.get("disturbed"):
        return ""
    parts = []
    if load["other_cores"] > load["threshold_other_cores"]:
        parts.append(f"other load {load['other_cores']:.2f} cores")
    if load["steal_fraction"] > load["threshold_steal"]:
        parts.append(f"steal {100 * load['steal_fraction']:.0f}%")
    return "disturbed: " + ", ".join(parts)


def _flags(row: Dict[str, Any], emulated: bool) -> str:
    """What a reader must know before trusting the row: emulated arithmetic, a disturbed measurement, a % of
    peak above 100."""
    flags = ["emulated"] if emulated else []
    if row.get("disturbed"):
        flags.append(describe(row.get("load")) or "disturbed")
    elif row.get("disturbed") is None and (row.get("load") or {}).get("not_judged"):
        flags.append(f"load not judged ({row['load'].get('wall_s')} s window)")
    if row.get("peak_exceeded"):
        flags.append("above its GEMM peak: % unsound")
    return "; ".join(flags)


def latency_table(results: Iterable[Dict[str, Any]]) -> str:
    df = latency_frame(results)
    if df.empty:
        return "(no latency rows)"
    with_choices = bool((df["choices"] != 0).any()) if "choices" in df else False
    df = df.assign(inputs=inputs_cells(df))
    with_task = bool((df["inputs"] != "synthetic").any())
    with_cuda = "cuda_alloc_MiB" in df and bool(df["cuda_alloc_MiB"].notna().any())
    cols = [
        c
        for c in [
            "model",
            "weights",
            "params_M",
            "backend",
            "batch",
            *(["choices"] * with_choices),
            "seq",
            *(["inputs"] * with_task),
            "p50_ms",
            "p90_ms",
            "cv_pct",
            "seq_per_s",
            "speedup_vs_eager",
            "peak_rss_MiB",
            *(["cuda_alloc_MiB"] * with_cuda),
            "GFLOPs",
            "pct_gemm_peak",
            "acc_tier",
            "status",
            "flags",
            "error",
        ]
        if c in df
    ]
    return df[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}", na_rep="-")
