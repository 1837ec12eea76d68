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


# The same figures as METRICS' on 0/1 labels and predictions, from numpy counts: a bootstrap scores thousands of
# resamples, and sklearn's input checks cost about a millisecond a call. tests/test_metrics.py holds them equal.
def _counts(p: np.ndarray, y: np.ndarray) -> Tuple[int, int, int, int]:
    p, y = p == 1, y == 1
    tp = int(np.count_nonzero(p & y))
    fp, fn = int(np.count_nonzero(p)) - tp, int(np.count_nonzero(y)) - tp
    return tp, fp, fn, len(y) - tp - fp - fn


def _fast_f1(p, y) -> float:
    tp, fp, fn, _ = _counts(p, y)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0  # zero_division=0.0, as METRICS' f1


def _fast_mcc(p, y) -> float:
    tp, fp, fn, tn = _counts(p, y)
    den = float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return (tp * tn - fp * fn) / np.sqrt(den) if den else 0.0  # a constant side: 0, as sklearn's


FAST = {"acc": lambda p, y: float(np.mean(p == y)), "f1": _fast_f1, "mcc": _fast_mcc}


def primary_scorer(task: TaskConfig) -> Callable[[np.ndarray, np.ndarray], float]:
    """score(predictions, labels) -> `primary` as score() computes it on one split, counted in numpy where every
    primary metric has a FAST form and the arrays hold 0/1 only (resamples of one binary task), else METRICS'."""
    names = list(task.primary)

    def primary(p: np.ndarray, y: np.ndarray) -> float:
        p, y = np.asarray(p), np.asarray(y)
        if not len(y) or len(p) != len(y):
            raise ValueError(f"primary score: {len(p)} predictions for {len(y)} labels (needs the same, non-empty)")
        fast = all(n in FAST for n in names) and np.isin(p, (0, 1)).all() and np.isin(y, (0, 1)).all()
        return float(np.mean([(FAST if fast else METRICS)[n](p, y) for n in names]))

    return primary
