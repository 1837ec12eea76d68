"""The multiple-choice table: one column per task (accuracy x100, mean±std over seeds), the trivial predictors'
accuracy on the same dev examples beside it, published rows labelled as published."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import kinds
from ..schema import Result
from . import published, vs_trivial
from .failed import FAILED, failure_flag, failures_of, row_models
from .tables import MISSING, Table, _cell, task_specs


def cells() -> Dict[str, str]:
    """task -> column title, in table order, for every multiple-choice task file."""
    specs = sorted(
        (s for s in task_specs().values() if kinds.KINDS[s.kind].table == "multiple_choice"),
        key=lambda s: (s.report.order, s.name),
    )
    return {s.name: s.report.title or s.name for s in specs}


def _scored_rows(r: Result) -> Tuple[Optional[int], bool]:
    """The rows of the split the run's trivial predictors scored (its first eval split) and whether they may be a
    capped slice of it: data.max_eval_samples keeps the first N rows of a longer split, so a count that reaches the
    cap may be one (a split of exactly N rows reads as capped too: the full count is not recorded)."""
    splits = (r.task.model_extra or {}).get("splits") or {}
    rows = splits.get(r.task.eval_splits[0]) if r.task.eval_splits else None
    cap = (r.config.get("data") or {}).get("max_eval_samples")
    return rows, bool(cap) and (rows is None or rows >= cap)


def trivial_frame(rs: List[Result]) -> pd.DataFrame:
    """One row per (task, trivial predictor): its accuracy, from the run of each task scored on the most rows of
    the split, never a capped one where an uncapped run exists (a smoke run's 20-row slice is no measure of the
    split); `capped` marks a figure that only capped runs give."""
    titles = cells()
    best: Dict[str, Tuple[Tuple[bool, int], Result]] = {}
    for r in rs:
        if r.task.name not in titles or not r.trivial or r.mode == "latency":
            continue
        rows, capped = _scored_rows(r)
        rank = (not capped, rows or 0)
        if r.task.name not in best or rank > best[r.task.name][0]:  # ties: the first in path order
            best[r.task.name] = (rank, r)
    out = []
    for task, ((whole, rows), r) in best.items():
        for name, p in (r.trivial.get("predictors") or {}).items():
            acc = (p.get("metrics") or {}).get("acc")  # a file without it: its cell shows '-', no crash
            out.append({"task": task, "predictor": name.replace(" (evaluation)", ""), "acc": acc})
            out[-1].update(examples=rows or None, capped=not whole)
    return pd.DataFrame(out, columns=["task", "predictor", "acc", "examples", "capped"])


def choice_table(
    seeds: pd.DataFrame,
    trivial: pd.DataFrame,
    with_published: bool = True,
    failed: Optional[pd.DataFrame] = None,
    vs: Optional[pd.DataFrame] = None,
) -> Table:
    """`vs`: vs_trivial.frame's rows; each model with one gets a row of its gap to the best trivial predictor over
    its seeds and dev examples, and (2 or more seeds) a flag where that interval is not above zero."""
    titles = cells()
    gaps = vs_trivial.by_model_task(vs)
    runs = (set(seeds.task) if not seeds.empty else set()) | (set(failed.task) if failed is not None else set())
    present = [t for t in titles if t in runs]
    # tasks with a published figure get their column even without a run of ours: the figure is shown beside
    pub = {t for p in published.CHOICE for t in p["tasks"]} if with_published else set()
    shown = [t for t in titles if t in present or t in pub]
    text_rows: List[dict] = []
    score_rows: List[dict] = []
    for model, _ in row_models([seeds, failed], present):
        agg = seeds[seeds.model == model] if not seeds.empty else seeds
        text, score, flags = {"model": model, "source": "ours (dev)"}, {}, []
        for t in shown:
            sub = agg[agg.task == t] if not agg.empty else agg
            text[titles[t]], score[titles[t]], n = _cell(sub, ["acc"]) if len(sub) else (MISSING, np.nan, 0)
            text[titles[t]] += f" (n={n})" if n > 1 else ""
            if (bad := failures_of(failed, model, t)) is not None:
                text[titles[t]] = FAILED if text[titles[t]] == MISSING else text[titles[t]]
                flags.append(failure_flag(titles[t], bad))
            found = {x for v in (sub.get("flags", []) if len(sub) else []) for x in v.split("; ") if x}
            flags += [f"{titles[t]}: {f}" for f in sorted(found)]
            if (over_seeds := vs_trivial.flag(gaps, model, t)) is not None:
                flags.append(f"{titles[t]}: {over_seeds}")
        text["flags"] = "; ".join(flags) or MISSING
        text_rows.append(text)
        score_rows.append(score)
    models = [model for model, _ in row_models([seeds, failed], present)]
    gap_rows = vs_trivial.gap_rows(gaps, models, {t: titles[t] for t in shown}, MISSING)
    text_rows, score_rows = text_rows + gap_rows, score_rows + [{} for _ in gap_rows]
    for predictor in trivial.predictor.unique() if not trivial.empty else []:
        sel = trivial[trivial.predictor == predictor].set_index("task")
        text, score = {"model": f"trivial: {predictor}", "source": "ours (dev examples)"}, {}
        for t in shown:
            v = sel["acc"].get(t)
            v = None if v is None or pd.isna(v) else v
            text[titles[t]], score[titles[t]] = (MISSING, np.nan) if v is None else (f"{100 * v:.1f}", np.nan)
            if v is not None and sel["capped"].get(t):  # only a slice of the split was scored: say how much
                n = sel["examples"].get(t)
                text[titles[t]] += f" (first {n:.0f} rows only)" if pd.notna(n) else " (capped run)"
        text_rows.append(text)
        score_rows.append(score)
    if with_published:
        text_rows, score_rows = _published(shown, titles, text_rows, score_rows)
    text_df = pd.DataFrame(text_rows).fillna(MISSING)
    score_df = pd.DataFrame(score_rows, columns=text_df.columns).reindex(columns=text_df.columns)
    caption = (
        "Multiple-choice dev accuracy (x100; mean±std over n seeds, each its newest run) beside the trivial "
        "predictors on the dev examples: chance (mean of 1/k), the most frequent gold position of the training rows, "
        "the longest answer, each from the run of the task scored on the most dev rows ('first N rows only' where "
        "only runs capped by data.max_eval_samples recorded them). '- best trivial': the mean over the seeds of the "
        "model's accuracy minus the best trivial predictor's on the same dev examples, with its 95% interval over "
        "seeds and examples (t over the seeds, bootstrap over the examples). flags: a task whose score is no better "
        "than the best trivial predictor's on a run's own examples (paired bootstrap) or over the seeds, or not "
        "compared with them (and why), and runs "
        "that failed or were interrupted ('failed' where none succeeded); a run's own flag names its seeds when not "
        "every seed raised it. Published rows are labelled with their "
        "source."
    )
    return Table(text_df, score_df, {c: True for c in text_df.columns}, caption)


def _published(shown, titles, text_rows, score_rows) -> Tuple[list, list]:
    for p in published.CHOICE:
        if not any(t in p["tasks"] for t in shown):
            continue
        text = {"model": p["model"], "source": f"published: {p['source']}"}
        score = {}
        for t in shown:
            v = p["tasks"].get(t)
            text[titles[t]], score[titles[t]] = (MISSING, np.nan) if v is None else (f"{v:.1f}", float(v))
        text_rows.append(text)
        score_rows.append(score)
    return text_rows, score_rows
