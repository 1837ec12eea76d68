"""The trivial predictors beside a SQuAD score, and whether the model beats them beyond noise.

None reads the passage with a model: the context's sentence that shares the most words with the question (the
answer often sits in it, so a whole sentence earns partial F1), the context's first three words, and for v2.0
abstaining on every question (its dev set is half unanswerable, and an empty prediction is right on those).
Each is scored by the official metrics on the very questions the model is scored on.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping

import numpy as np

from . import squad_metrics
from .trivial import paired_verdict

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def overlap_sentence(question: str, context: str) -> str:
    """The context's sentence (split after . ! or ? and white space) with the most normalised words in common with
    the question; the first of those tied."""
    words = set(squad_metrics.normalize_answer(question).split())
    sentences = [s for s in _SENTENCE_END.split(context.strip()) if s] or [""]
    return max(sentences, key=lambda s: len(words & set(squad_metrics.normalize_answer(s).split())))


def first_words(context: str, n: int = 3) -> str:
    return " ".join(context.split()[:n])


def predictions(
    ids: List[str], questions: List[str], contexts: List[str], version_2: bool
) -> Dict[str, Dict[str, Any]]:
    """name -> {"rule": what it predicts, "predictions": {question id: answer text}}."""
    out = {
        "overlap sentence": {
            "rule": "the context's sentence sharing the most words with the question",
            "predictions": {q: overlap_sentence(x, c) for q, x, c in zip(ids, questions, contexts)},
        },
        "first 3 words": {
            "rule": "the context's first three words",
            "predictions": {q: first_words(c) for q, c in zip(ids, contexts)},
        },
    }
    if version_2:
        out["always abstain"] = {"rule": "the empty answer (no answer)", "predictions": dict.fromkeys(ids, "")}
    return out


def per_question_f1(predictions: Mapping[str, str], golds: Mapping[str, List[str]], version_2: bool) -> np.ndarray:
    """Each question's official F1, in the order of `golds` (an unanswered question scores 0, as in `evaluate`)."""
    f1 = squad_metrics.raw_scores(predictions, golds, version_2)[1]
    return np.array([f1.get(q, 0.0) for q in golds], dtype=float)


def section(
    model_predictions: Mapping[str, str],
    golds: Mapping[str, List[str]],
    trivial: Dict[str, Dict[str, Any]],
    version_2: bool,
) -> Dict[str, Any]:
    """The result's `trivial` section: each predictor's official metrics (primary: F1), and the paired 95%
    bootstrap interval of the model's per-question F1 minus the best predictor's."""
    predictors = {}
    for name, t in trivial.items():
        metrics = squad_metrics.evaluate(t["predictions"], golds, version_2)
        predictors[name] = {"rule": t["rule"], "metrics": {**metrics, "primary": metrics["f1"]}}
    scores = {name: per_question_f1(t["predictions"], golds, version_2) for name, t in trivial.items()}
    model = per_question_f1(model_predictions, golds, version_2)
    return {"predictors": predictors, "vs_best": paired_verdict(model, scores)}
