"""The trivial predictors beside a multiple-choice score, and whether the model beats them beyond noise.

Chance scores 1/k on an example with k choices (its expected accuracy: the mean over examples, not 1/4, since
ARC mixes 3, 4 and 5 choices); the most frequent gold position of the training rows always answers that
position (exam writers are not uniform: OpenBookQA's train key favours A); the longest answer picks the
longest choice in characters, a known shortcut of crowd-written distractors.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .trivial import paired_verdict

NOT_BETTER = "no better than trivial"


def per_example(
    choices: List[List[str]], labels: np.ndarray, train_labels: Optional[np.ndarray]
) -> Dict[str, Dict[str, Any]]:
    """name -> {"rule": what it predicts, "scores": its per-example expected accuracy}. Without training
    labels (mode=evaluate) the frequent position comes from the evaluation labels, which can only flatter it."""
    labels = np.asarray(labels, dtype=int)
    k = np.array([len(c) for c in choices])
    source = train_labels if train_labels is not None and len(train_labels) else labels
    position = int(np.bincount(np.asarray(source, dtype=int)).argmax())
    frequent = "most frequent gold position" + ("" if source is train_labels else " (evaluation)")
    longest = np.array([int(np.argmax([len(x) for x in c])) for c in choices])
    return {
        "chance": {"rule": "mean of 1/k", "scores": 1.0 / k},
        frequent: {"rule": f"always choice {position}", "scores": (labels == position).astype(float)},
        "longest answer": {"rule": "the longest choice (characters)", "scores": (longest == labels).astype(float)},
    }


def section(
    correct: np.ndarray, trivial: Dict[str, Dict[str, Any]], n_resamples: int = 1000, seed: int = 0
) -> Dict[str, Any]:
    """The result's `trivial` section: each predictor's accuracy, and the paired 95% bootstrap interval of the
    model's accuracy minus the best of them. `beats_trivial` only when that interval's lower end is above 0."""
    predictors = {
        name: {
            "rule": t["rule"],
            "metrics": {"acc": float(np.mean(t["scores"])), "primary": float(np.mean(t["scores"]))},
        }
        for name, t in trivial.items()
    }
    scores = {name: t["scores"] for name, t in trivial.items()}
    return {"predictors": predictors, "vs_best": paired_verdict(correct, scores, n_resamples, seed)}
