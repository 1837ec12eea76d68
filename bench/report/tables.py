"""Paper-style tables: GLUE (with efficiency columns), SQuAD and efficiency, ours beside published rows.

Each table is a pair of frames: `text` (what is printed, cells as strings, missing as '-') and `score`
(one number per cell, used to bold the best value per column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from .. import CONF_DIR, kinds
from ..config import TaskConfig
from . import published, vs_trivial
from .console import inputs_cells
from .failed import FAILED, failure_flag, failures_of, row_models

MISSING = "-"


def task_specs() -> Dict[str, TaskConfig]:
    """Every task file's spec (bench/conf/task/*.yaml): titles, cells and order live there, so a new task file is a
    new column with no change here."""
    specs = {}
    for path in sorted((CONF_DIR / "task").glob("*.yaml")):
        spec = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(path)))
        specs[spec.name] = spec
    return specs


def glue_cells() -> Dict[str, Tuple[str, List[str]]]:
    """task -> (column title, the metrics its cell shows), in table order; classification and regression."""
    specs = sorted(
        (s for s in task_specs().values() if kinds.KINDS[s.kind].table == "glue"),
        key=lambda s: (s.report.order, s.name),
    )
    return {s.name: (s.report.title or s.name, list(s.report.cell or s.primary)) for s in specs}


@dataclass
class Table:
    text: pd.DataFrame
    score: pd.DataFrame  # same shape; NaN where nothing is compared
    higher_is_better: Dict[str, bool]
    caption: str
    # rows whose scores may be marked best (None: all): a test-set figure is never ranked against dev figures
    comparable: Optional[List[bool]] = None


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.1f}±{std:.1f}" if n > 1 else f"{mean:.1f}"


def _cell(agg: pd.DataFrame, metrics: List[str]):
    """'84.1/75.7' (with ±std over seeds) and the cell's score (mean of its metrics), or missing."""
    rows = agg.set_index("metric").reindex(metrics)
    if rows["mean"].isna().any():
        return MISSING, np.nan, 0
    parts = [_fmt(100 * r["mean"], 100 * r["std"], int(r["n"])) for _, r in rows.iterrows()]
    return "/".join(parts), float(100 * rows["mean"].mean()), int(rows["n"].min())


def _avg(scores: List[float], tasks: int) -> Tuple[str, float]:
    """The avg cell and its score: the mean of the row's task scores only when the row has one for every task
    column. An average over fewer tasks is another quantity (a row with RTE alone would 'beat' a row with CoLA and
    RTE), so it is shown as missing with how many tasks the row has, and has no score: never bolded or plotted."""
    present = [v for v in scores if not np.isnan(v)]
    if present and len(present) == tasks:
        return f"{np.mean(present):.1f}", float(np.mean(present))
    return (f"{MISSING} ({len(present)} of {tasks} tasks)" if present else MISSING), np.nan


def _efficiency_for(eff: pd.DataFrame, model_name: str, params: Optional[float], device: str) -> Dict[str, Any]:
    """eager, batch 1, seq 128 on `device`: the paper's single-sequence latency and FLOPs, of the same architecture
    (model and parameter count within 0.1%, which a task head never moves and a layer always does: a distilled
    student of fewer layers is not its teacher's model), from undisturbed
    rows where there are any; 'notes' says what a reader must know (disturbed, pooled over machine classes)."""
    if eff.empty:
        return {}
    sel = _single_sequence_eager(eff, device)
    sel = sel[
        (sel.model_name == model_name)
        # the same architecture: its parameter count up to the task head (a few thousand of them: 2 or 3 labels,
        # a regression) that the timed run's task set, never a layer (a distilled student of fewer layers)
        & np.isclose(sel.params_M, (params or 0) / 1e6, rtol=1e-3, atol=0)
    ]
    if sel.empty:
        return {}
    calm = sel[~sel["flags"].fillna("").astype(str).str.contains("disturbed")]
    notes = [] if len(calm) else ["disturbed"]
    sel = calm if len(calm) else sel
    if "machine" in sel and sel.machine.nunique() > 1:
        notes.append(f"median over {sel.machine.nunique()} machine classes")
    return {"p50_ms": float(sel.p50_ms.median()), "GFLOPs": float(sel.GFLOPs.iloc[0]), "notes": notes}


def _single_sequence_eager(eff: pd.DataFrame, device: str) -> pd.DataFrame:
    """The rows behind the GLUE table's latency columns: eager, batch 1, sequence 128, ok, on `device`, no
    multiple-choice head (its batch x choices x seq is not the single-sequence figure), synthetic inputs (a
    timing.inputs=task row's 128 is a cap: its dev rows were shorter, and so were its time and FLOPs)."""
    sel = eff[
        (eff.backend == "eager")
        & (eff.batch == 1)
        & (eff.seq == 128)
        & (eff.status == "ok")
        & eff.device.astype(str).str.startswith(device)
    ]
    if "inputs" in sel:
        sel = sel[sel["inputs"].fillna("synthetic") == "synthetic"]
    return sel[sel.choices.fillna(0) == 0] if "choices" in sel else sel


def latency_classes(eff: pd.DataFrame, device: str) -> List[str]:
    """The machine classes of the rows behind the GLUE table's latency columns, not of every row timed."""
    if eff.empty or "machine" not in eff:
        return []
    return sorted(set(_single_sequence_eager(eff, device).machine.astype(str)))


def _ours_rows(
    seeds: pd.DataFrame, eff: pd.DataFrame, params: Dict[str, float], cells, failed=None, vs=None
) -> Tuple[list, list]:
    text_rows, score_rows, gaps = [], [], vs_trivial.by_model_task(vs)
    tasks = list(cells)
    for model, model_name in row_models([seeds, failed], tasks):
        agg = seeds[(seeds.model == model) & seeds.task.isin(tasks)] if not seeds.empty else seeds
        size = params.get(model)
        cpu, gpu = _efficiency_for(eff, model_name, size, "cpu"), _efficiency_for(eff, model_name, size, "cuda")
        text, score, ns, flags = {"model": model, "source": "ours (dev)"}, {}, [], []
        flags += [f"{name} ms: {note}" for name, e in (("CPU", cpu), ("GPU", gpu)) for note in e.get("notes", [])]
        for t in tasks:
            title, metrics = cells[t]
            sub = agg[agg.task == t]
            text[title], score[title], n = _cell(sub, metrics)
            if n:
                ns.append(n)
            if (bad := failures_of(failed, model, t)) is not None:
                text[title] = FAILED if text[title] == MISSING else text[title]
                flags.append(failure_flag(title, bad))
            flags += [
                f"{cells[t][0]}: {f}" for f in sorted({x for v in sub.get("flags", []) for x in v.split("; ") if x})
            ]
            if (over_seeds := vs_trivial.flag(gaps, model, t)) is not None:
                flags.append(f"{title}: {over_seeds}")
        text["avg"], score["avg"] = _avg([score[cells[t][0]] for t in tasks], len(tasks))
        text["seeds"] = str(min(ns)) if ns else MISSING
        text["params (M)"] = f"{params[model] / 1e6:.1f}" if params.get(model) else MISSING
        text["GFLOPs"] = f"{cpu['GFLOPs']:.2f}" if cpu.get("GFLOPs") else MISSING
        text["CPU ms"] = f"{cpu['p50_ms']:.1f}" if cpu else MISSING
        text["GPU ms"] = f"{gpu['p50_ms']:.2f}" if gpu else MISSING
        text["flags"] = "; ".join(flags) or MISSING
        # a disturbed time is shown (flagged) but never marked the best
        calm = {
            k: e.get("p50_ms", np.nan) if "disturbed" not in e.get("notes", []) else np.nan
            for k, e in (("CPU ms", cpu), ("GPU ms", gpu))
        }
        score.update(calm)
        text_rows.append(text)
        score_rows.append(score)
    # each model's gap to the best trivial predictor over its seeds and dev examples (the significance table's
    # figures), a row of its own below ours: never bold, no avg, not in the plot
    models = [model for model, _ in row_models([seeds, failed], tasks)]
    gap_rows = vs_trivial.gap_rows(gaps, models, {t: cells[t][0] for t in tasks}, MISSING)
    return text_rows + gap_rows, score_rows + [{} for _ in gap_rows]


def _published_rows(cells) -> Tuple[list, list]:
    text_rows, score_rows = [], []
    for p in published.GLUE:
        text, score = {"model": p["model"], "source": f"published ({p['split']}): {p['source']}"}, {}
        fewer = []  # two-metric cells the source prints one metric of
        for t, (title, metrics) in cells.items():
            v = p["tasks"].get(t)
            values = [None] * len(metrics) if v is None else published.by_metric(v, metrics)
            shown = [x for x in values if x is not None]
            text[title] = "/".join(MISSING if x is None else f"{x:.1f}" for x in values) if shown else MISSING
            # the cell's score (for the avg column): the mean of its metrics, here only those printed
            score[title] = float(np.mean(shown)) if shown else np.nan
            if shown and len(shown) < len(metrics):
                fewer.append(f"{title} by {'/'.join(m for m, x in zip(metrics, values) if x is not None)}")
        text["avg"], score["avg"] = _avg([score[title] for title, _ in cells.values()], len(cells))
        if fewer and not np.isnan(score["avg"]):
            # ours average both metrics of such a cell: the two avgs are not the same quantity
            text["flags"] = f"avg: {', '.join(fewer)} only (the one figure the source prints), not like ours"
        text["seeds"] = MISSING
        text["params (M)"] = f"{p['params_M']:.1f}"
        text["GFLOPs"] = f"{p['GFLOPs']:.1f}" if p.get("GFLOPs") else MISSING
        text["CPU ms"] = text["GPU ms"] = MISSING
        text_rows.append(text)
        score_rows.append(score)
    return text_rows, score_rows


def glue_table(
    seeds: pd.DataFrame,
    eff: pd.DataFrame,
    params: Dict[str, float],
    with_published: bool = True,
    failed: Optional[pd.DataFrame] = None,
    vs: Optional[pd.DataFrame] = None,
) -> Table:
    all_cells = glue_cells()
    present = (set(seeds.task) if not seeds.empty else set()) | (set(failed.task) if failed is not None else set())
    cells = {t: c for t, c in all_cells.items() if t in present}
    text_rows, score_rows = _ours_rows(seeds, eff, params, cells, failed, vs) if cells else ([], [])
    if with_published:
        pt, ps = _published_rows(cells or all_cells)
        text_rows, score_rows = text_rows + pt, score_rows + ps
    text_df = pd.DataFrame(text_rows).fillna(MISSING)
    score_df = pd.DataFrame(score_rows, columns=text_df.columns).reindex(columns=text_df.columns)
    hib = {c: c not in ("CPU ms", "GPU ms") for c in text_df.columns}
    comparable = [not str(src).startswith("published (test)") for src in text_df.get("source", [])]
    caption = (
        "GLUE dev results (ours, x100, mean±std over seeds, a seed run again counted once: its newest run) beside "
        "published figures (test set unless "
        "marked dev; a test figure in a two-metric column is the one GLUE's papers print: F1 for MRPC and QQP, "
        "Spearman for STS-B, '-' for the other). Bold: the best among the rows scored on dev (a test figure is "
        "not ranked against dev ones). avg: mean over every task column (two-metric tasks and MNLI m/mm averaged "
        "first), only for a row with a figure in each; a row with fewer shows '- (k of n tasks)' and is never bold "
        "nor in the accuracy/latency plot. A published test row's avg takes MRPC and QQP by F1 and STS-B by "
        "Spearman alone (its flags say so), ours and the dev rows the mean of both metrics: not the same average. "
        "CPU/GPU ms: p50 latency, batch 1, sequence 128, eager fp32. "
        "Rows marked 'weights: random' measure an untrained architecture, 'head: random' a checkpoint "
        "scored without a trained task head; a row's label names what sets its config apart from the "
        "model's other rows. flags: a task whose score is no better than its trivial predictor's (on a run's "
        "own dev examples, or over its seeds, or not compared with it, and why), and runs that failed or were "
        "interrupted (their seeds are not in "
        "the figure; 'failed' where no run of the task succeeded); a run's own flag names its seeds (seed 43) when "
        "not every seed of the row raised it. '<model> - best trivial': the mean over the seeds of the task's primary "
        "metric (MRPC, QQP: the mean of F1 and acc; STS-B: of Pearson and Spearman; MNLI: matched) minus the best "
        "trivial predictor's on the same dev examples (x100), with its 95% interval over seeds and examples (t "
        "over the seeds, bootstrap over the examples): a difference, so no avg, never bold, not plotted."
    )
    for device, name in (("cpu", "CPU"), ("cuda", "GPU")):
        classes = latency_classes(eff, device)
        if classes:
            caption += f" {name} ms measured on: {', '.join(classes)}."
    return Table(text_df, score_df, hib, caption, comparable)


def efficiency_table(eff: pd.DataFrame, failed: Optional[pd.DataFrame] = None) -> Table:
    cols = [
        "model",
        "machine",
        "device",
        "backend",
        "batch",
        "seq",
        "p50_ms",
        "p90_ms",
        "cv_pct",
        "seq_per_s",
        "speedup_vs_eager",
        "peak_rss_MiB",
        "pct_gemm_peak",
        "accuracy_change",
        "acc_tier",
        "status",
        "flags",
        "error",  # why a cell (or a whole run) failed, one line
    ]
    lost = failed[failed["mode"] == "latency"] if failed is not None and not failed.empty else None
    if lost is not None and len(lost):  # a latency run that failed as a whole: a row that says so, not nothing
        rows = pd.DataFrame({"model": lost.model, "machine": lost.machine, "status": lost.status, "error": lost.reason})
        eff = pd.concat([eff, rows], ignore_index=True) if not eff.empty else rows
    if eff.empty:
        empty = pd.DataFrame(columns=cols)
        return Table(empty, empty.copy(), {}, "no latency results")
    if "choices" in eff and (eff.choices.fillna(0) != 0).any():  # multiple-choice heads: batch x choices x seq
        cols.insert(cols.index("seq"), "choices")
    if "error" not in eff or not eff["error"].notna().any():  # no cell failed: the table as it always was
        cols.remove("error")
    eff = eff.assign(inputs=inputs_cells(eff))
    if (eff["inputs"] != "synthetic").any():  # timing.inputs=task rows: `seq` is their cap, not their length
        cols.insert(cols.index("seq") + 1, "inputs")
    gpu_memory = "cuda_alloc_MiB" in eff and eff["cuda_alloc_MiB"].notna().any()
    if gpu_memory:  # a GPU row's host RSS is mostly CUDA's context: its device memory is the figure
        cols.insert(cols.index("peak_rss_MiB") + 1, "cuda_alloc_MiB")
    df = eff.reindex(columns=cols).copy()
    df["accuracy_change"] = df["accuracy_change"].map(lambda v: v * 100 if v is not None and pd.notna(v) else np.nan)
    text = df.copy()
    for c in [
        "p50_ms",
        "p90_ms",
        "cv_pct",
        "seq_per_s",
        "speedup_vs_eager",
        "peak_rss_MiB",
        "cuda_alloc_MiB",
        "pct_gemm_peak",
        "accuracy_change",
    ]:
        if c not in df:
            continue
        text[c] = df[c].map(lambda v: MISSING if pd.isna(v) else f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}")
    if "error" in text:
        text["error"] = text["error"].map(lambda e: " ".join(str(e).split())[:120] if isinstance(e, str) else e)
    text = text.fillna(MISSING).astype(str)
    score = pd.DataFrame(np.nan, index=df.index, columns=cols)
    reasons = sorted({str(r) for r in eff.get("emulated_reason", pd.Series(dtype=object)).dropna() if r})
    caption = (
        "Latency p50/p90 (ms) on the machine class named, coefficient of variation (%), throughput (sequences/s), "
        "speed-up over the eager fp32 row of the same run, device and shape, peak RSS (MiB), % of this machine's "
        "GEMM peak for the arithmetic the backend runs "
        "(none for int8, ONNX Runtime and emulated backends), the dev-accuracy change (points) a backend costs "
        "when measured and whether it keeps 99%/99.9% of the fp32 score (MLPerf's targets). flags: "
        "'emulated' rows run without hardware support for their precision; 'disturbed' rows were measured while "
        "other processes used the CPU, and their times are not this model's. error: why a cell failed, or why "
        "a whole run did (one row, no times)."
    )
    if gpu_memory:
        caption += (
            " cuda_alloc_MiB: torch's peak allocation on the GPU while timed (the host's peak RSS of a GPU row is "
            "mostly CUDA's own context); '-' for a runtime with its own allocator (ONNX Runtime)."
        )
    if "inputs" in cols:
        caption += (
            " inputs: 'task' rows timed the dev set's own rows, each batch padded to its longest (mean real "
            "tokens per sequence shown), seq only their cap: not comparable with 'synthetic' rows of that seq."
        )
    if reasons:
        caption += " Emulated: " + "; ".join(reasons) + "."
    return Table(text, score, {}, caption)
