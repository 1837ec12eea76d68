"""GLUE metrics as the benchmark defines them, on scikit-learn and scipy (no Hub download needed)."""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Tuple

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from .. import kinds
from ..config import TaskConfig

# name -> f(predictions, references); names as REFERENCE.md writes them
METRICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "acc": lambda p, y: float(skm.accuracy_score(y, p)),
    "f1": lambda p, y: float(skm.f1_score(y, p, pos_label=1, average="binary", zero_division=0.0)),
    "mcc": lambda p, y: float(skm.matthews_corrcoef(y, p)),
    "pearson": lambda p, y: float(stats.pearsonr(p, y)[0]) if np.ptp(p) > 0 else float("nan"),
    "spearman": lambda p, y: float(stats.spearmanr(p, y)[0]) if np.ptp(p) > 0 else float("nan"),
}


def predictions_from_logits(task: TaskConfig, logits: np.ndarray) -> np.ndarray:
    """Class index per example, or the regression score itself."""
    return kinds.of(task).predictions(logits)


def score_split(task: TaskConfig, predictions: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    p, y = np.asarray(predictions), np.asarray(labels)
    return {name: METRICS[name](p, y) for name in task.metrics}


def score(task: TaskConfig, splits: Mapping[str, Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """Metrics for every eval split (suffixed `_m`/`_mm` for MNLI) plus `primary`.

    `primary` is the mean of the task's primary metrics on its first eval split, as the GLUE leaderboard
    combines F1/accuracy (MRPC, QQP) and Pearson/Spearman (STS-B); MNLI's primary is the matched accuracy.
    """
    out: Dict[str, float] = {}
    first = None
    for split, (predictions, labels) in splits.items():
        suffix = task.split_suffix.get(split, "")
        for name, value in score_split(task, predictions, labels).items():
            out[f"{name}_{suffix}" if suffix else name] = value
        first = first or suffix
    keys = [f"{m}_{first}" if first else m for m in task.primary]
    out["primary"] = float(np.mean([out[k] for k in keys]))
    return out
