"""Failed and interrupted runs in the tables of ours: a flag on their model's row naming seed and reason, and
'failed' in a cell no run of which succeeded (bench/report/gather.py failed_frame makes the frame)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import pandas as pd

FAILED = "failed"


def failures_of(failed: Optional[pd.DataFrame], model: str, task: str) -> Optional[pd.DataFrame]:
    """The failed or interrupted runs of one model row and task (None when there are none)."""
    if failed is None or failed.empty:
        return None
    sel = failed[(failed.model == model) & (failed.task == task) & (failed["mode"] != "latency")]
    return sel if len(sel) else None


def failure_flag(title: str, sel: pd.DataFrame) -> str:
    """'RTE: 1 run failed (seed 3: metric acc is not finite)': what a reader of the cell must know."""
    statuses = "/".join(sorted(set(sel.status)))
    first = sel.iloc[0]
    seed = f"seed {first.seed}" if first.seed is not None and not pd.isna(first.seed) else "run"
    more = f"; {len(sel) - 1} more in the CSV" if len(sel) > 1 else ""
    runs = "run" if len(sel) == 1 else "runs"
    return f"{title}: {len(sel)} {runs} {statuses} ({seed}: {str(first.reason)[:80]}{more})"


def row_models(frames: List[Optional[pd.DataFrame]], tasks: List[str]) -> List[Tuple[str, str]]:
    """(label, model name) of every row to show, in the order found: ok runs first, then models whose runs all
    failed."""
    out: List[Tuple[str, str]] = []
    for df in frames:
        if df is None or df.empty:
            continue
        for key in df[df.task.isin(tasks)][["model", "model_name"]].itertuples(index=False, name=None):
            if key not in out:
                out.append(key)
    return out
