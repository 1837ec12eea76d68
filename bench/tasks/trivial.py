"""The trivial predictors beside every score, and whether a result beats them beyond noise.

A model that predicts one class for every example can still post a respectable number (MRPC's all-positive
F1 is 0.812), so each classification or regression result carries the trivial predictors' scores on the
same examples: the majority class of the training labels, all-positive for tasks scored by F1, and the
training mean for regression (a constant has no correlation: 0).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
from scipy.stats import bootstrap

from .. import kinds
from ..config import TaskConfig
from . import metrics

NOT_BETTER = "no better than trivial"


def predictors(task: TaskConfig, train_labels: Optional[np.ndarray], eval_labels: np.ndarray) -> Dict[str, Any]:
    """name -> the constant each trivial predictor outputs. Without training labels (mode=evaluate) the
    majority is taken from the evaluation labels, which can only flatter the trivial score."""
    source = train_labels if train_labels is not None and len(train_labels) else eval_labels
    if kinds.of(task).regression:
        return {"training mean" if source is train_labels else "evaluation mean": float(np.mean(source))}
    values, counts = np.unique(np.asarray(source, dtype=int), return_counts=True)
    out = {"majority class" if source is train_labels else "majority class (evaluation)": int(values[counts.argmax()])}
    if "f1" in task.metrics:
        out["all positive"] = 1
    return out


def _finite(d: Dict[str, float]) -> Dict[str, float]:
    # a constant prediction has no correlation with anything; scipy calls it undefined (NaN): it is 0
    return {k: (0.0 if v != v else v) for k, v in d.items()}


def scores(
    task: TaskConfig, splits: Mapping[str, Tuple[np.ndarray, np.ndarray]], train_labels: Optional[np.ndarray]
) -> Dict[str, Dict[str, Any]]:
    """predictor -> {"constant": what it predicts, "metrics": its metrics on the model's evaluation splits}."""
    first_labels = next(iter(splits.values()))[1]
    out = {}
    for name, constant in predictors(task, train_labels, first_labels).items():
        const = {s: (np.full(len(y), constant), y) for s, (_, y) in splits.items()}
        out[name] = {"constant": constant, "metrics": _finite(metrics.score(task, const))}
    return out


def verdict(
    task: TaskConfig,
    split: str,
    preds: np.ndarray,
    labels: np.ndarray,
    trivial: Dict[str, Dict[str, Any]],
    n_resamples: int = 1000,
    seed: int = 0,
) -> Dict[str, Any]:
    """The best trivial predictor on `primary`, and the paired 95% bootstrap interval of model minus it.

    `beats_trivial` is true only when the interval's lower end is above zero: a difference that noise could
    have made is not a model that learned.
    """
    best = max(trivial, key=lambda n: trivial[n]["metrics"]["primary"])
    preds, labels = np.asarray(preds), np.asarray(labels)
    triv = np.full(len(labels), trivial[best]["constant"])

    def primary(p, y):
        return _finite(metrics.score(task, {split: (p, y)}))["primary"]

    def diff(p, t, y):
        return primary(p, y) - primary(t, y)

    return _judged(best, diff(preds, triv, labels), (preds, triv, labels), diff, False, n_resamples, seed)


def _judged(best: str, observed: float, data: tuple, statistic, vectorized: bool, n_resamples: int, seed: int):
    """The verdict on `observed` (model minus the best trivial predictor): its paired 95% percentile bootstrap
    interval over the examples (none from fewer than two), `beats_trivial` only when the lower end is above 0."""
    out: Dict[str, Any] = {"best": best, "primary_diff": observed, "low": None, "high": None}
    if len(data[0]) >= 2:
        ci = bootstrap(
            data,
            statistic,
            paired=True,
            vectorized=vectorized,
            n_resamples=n_resamples,
            confidence_level=0.95,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        out.update(low=float(ci.low), high=float(ci.high))
    out["beats_trivial"] = bool(out["low"] is not None and out["low"] > 0)
    return out


def paired_verdict(
    model: np.ndarray, trivial: Dict[str, np.ndarray], n_resamples: int = 1000, seed: int = 0
) -> Dict[str, Any]:
    """The best trivial predictor by its mean per-example score (accuracy, SQuAD's per-question F1), and the
    paired 95% bootstrap interval of the model's mean minus its. `beats_trivial` only when the lower end is above
    0: a difference that noise could have made is not a model that learned."""
    model = np.asarray(model, dtype=float)
    best = max(trivial, key=lambda n: float(np.mean(trivial[n])))
    base = np.asarray(trivial[best], dtype=float)
    mean_diff = lambda c, t, axis=-1: np.mean(c - t, axis=axis)  # noqa: E731
    return _judged(best, float(np.mean(model - base)), (model, base), mean_diff, True, n_resamples, seed)
