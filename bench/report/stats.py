"""Honest comparisons: paired bootstrap confidence intervals on the same dev examples."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ..config import TaskConfig
from ..tasks import metrics as task_metrics
from .gather import label


def paired_bootstrap(score: Callable[[np.ndarray, np.ndarray], float], labels, pred_a, pred_b,
                     n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> Dict[str, float]:
    """Difference score(a) - score(b) on the same examples, with a percentile bootstrap interval.

    Each resample draws examples with replacement and scores both systems on the same draw, so the
    interval reflects the examples' shared difficulty (a paired test), not two independent noises.
    """
    y, a, b = (np.asarray(v) for v in (labels, pred_a, pred_b))
    if not (len(y) == len(a) == len(b)) or len(y) == 0:
        raise ValueError("paired bootstrap needs predictions of both systems on the same, non-empty examples")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        diffs[i] = score(a[idx], y[idx]) - score(b[idx], y[idx])
    low, high = np.nanpercentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    diff = score(a, y) - score(b, y)
    return {"diff": float(diff), "low": float(low), "high": float(high), "n": int(len(y)), "n_boot": n_boot,
            "within_noise": bool(low <= 0 <= high)}


def task_of(result: Dict[str, Any]) -> TaskConfig:
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), result["config"]["task"]))


def _predictions(result: Dict[str, Any], split: str) -> Optional[pd.DataFrame]:
    path = Path(result["_path"]).parent / "predictions.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    return df[df.split == split].sort_values("idx") if not df.empty else None


def pairwise(rs: List[Dict[str, Any]], n_boot: int = 2000) -> pd.DataFrame:
    """For each GLUE task, every pair of models (first seed of each) on the primary metric, 95% interval."""
    out = []
    by_task: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for r in sorted(rs, key=lambda r: r["config"]["train"]["seed"]):
        if r.get("mode") in ("finetune", "evaluate") and r["task"].get("eval_splits") and r.get("metrics"):
            by_task.setdefault(r["task"]["name"], {}).setdefault(label(r), r)
    for task_name, models in by_task.items():
        task = task_of(next(iter(models.values())))
        if task.kind == "squad":
            continue
        split = next(iter(task.local.eval_files))
        preds = {m: _predictions(r, split) for m, r in models.items()}
        preds = {m: p for m, p in preds.items() if p is not None and len(p)}

        def score(p, y):
            return task_metrics.score(task, {split: (p, y)})["primary"]

        for a, b in combinations(sorted(preds, key=lambda m: -models[m]["metrics"]["primary"]), 2):
            pa, pb = preds[a], preds[b]
            if list(pa.idx) != list(pb.idx):
                continue  # not the same dev examples: no paired comparison
            res = paired_bootstrap(score, pa.label.to_numpy(), pa.prediction.to_numpy(), pb.prediction.to_numpy(),
                                   n_boot=n_boot)
            out.append({"task": task_name, "model_a": a, "model_b": b, **res})
    return pd.DataFrame(out)
