"""The robustness figures, each from per-example arrays: a value, its count and a 95% bootstrap interval.

Loyalty (Xu et al., EMNLP 2021): label loyalty is the share of examples on which a model predicts what its
reference predicts; probability loyalty is 1 - sqrt(JSD(p_ref, p)), per example, averaged. The Jensen-Shannon
divergence is taken in base 2, so it lies in [0, 1] and so does the loyalty (1: identical distributions, 0:
disjoint supports); scipy's `jensenshannon` returns sqrt(JSD) itself.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from scipy.special import rel_entr
from scipy.stats import bootstrap

JSD_BASE = 2


def figure(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> Dict[str, Any]:
    """The mean of per-example values with its count and 95% percentile bootstrap interval.

    No value over 0 examples (a perturbation that changed nothing has no flip rate); no interval under 2, or when
    every value is the same (the interval is that value)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    n = int(x.size)
    if n == 0:
        return {"value": None, "n": 0, "low": None, "high": None}
    value = float(x.mean())
    if n < 2:  # one example: no spread to resample (checked first: one value is also "all the same")
        return {"value": value, "n": n, "low": None, "high": None}
    if np.all(x == x[0]):
        return {"value": value, "n": n, "low": value, "high": value}
    ci = bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return {"value": value, "n": n, "low": float(ci.low), "high": float(ci.high)}


def probability_loyalty(p_ref: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per example: 1 - sqrt(JSD_base2(p_ref, p)), for rows of probabilities.

    Computed from scipy's relative entropy rather than `jensenshannon`, whose square root turns the tiny negative
    sums that rounding gives for two nearly equal rows (bf16 or ONNX against eager) into NaN."""
    a, b = np.asarray(p_ref, np.float64), np.asarray(p, np.float64)
    bad = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1) & (a >= 0).all(axis=1) & (b >= 0).all(axis=1))
    if bad.any():  # NaN or negative outputs are not distributions: never call them loyal
        raise ValueError(f"probability loyalty: {int(bad.sum())} row(s) are not probability distributions")
    a, b = a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)
    m = (a + b) / 2
    js = (rel_entr(a, m).sum(axis=1) + rel_entr(b, m).sum(axis=1)) / (2 * np.log(JSD_BASE))
    return 1.0 - np.sqrt(np.clip(js, 0.0, None))


def loyalty(ref_probs: np.ndarray, probs: np.ndarray, labels: np.ndarray, n_resamples: int = 2000) -> Dict[str, Any]:
    """Label and probability loyalty to the reference, and how the disagreements split."""
    ref_pred, pred, y = np.argmax(ref_probs, axis=1), np.argmax(probs, axis=1), np.asarray(labels)
    differ = ref_pred != pred
    return {
        "label": figure((~differ).astype(float), n_resamples),
        "probability": figure(probability_loyalty(ref_probs, probs), n_resamples),
        "jsd_base": JSD_BASE,
        "disagreements": {
            "n": int(differ.sum()),
            "reference_right": int((differ & (ref_pred == y)).sum()),
            "this_right": int((differ & (pred == y)).sum()),
            "both_wrong": int((differ & (ref_pred != y) & (pred != y)).sum()),
        },
    }


def accuracy(pred: np.ndarray, labels: np.ndarray, n_resamples: int = 2000) -> Dict[str, Any]:
    return figure((np.asarray(pred) == np.asarray(labels)).astype(float), n_resamples)


def invariance(
    clean_pred: np.ndarray,
    pert_pred: np.ndarray,
    labels: np.ndarray,
    changed: np.ndarray,
    text_changed: int,
    n_resamples: int = 2000,
) -> Dict[str, Any]:
    """Over the examples the perturbation changed: the flip rate and the accuracy before and after.

    `pert_pred` holds predictions for the changed examples only, in order; a perturbation that changed no
    example gets figures with no value (n 0), never a flip rate of 0."""
    changed = np.asarray(changed, dtype=bool)
    before, y = np.asarray(clean_pred)[changed], np.asarray(labels)[changed]
    after = np.asarray(pert_pred)
    if after.shape != before.shape:
        raise ValueError(f"{after.size} perturbed predictions for {before.size} changed examples")
    return {
        "text_changed": int(text_changed),
        "changed": int(changed.sum()),
        "flip_rate": figure((before != after).astype(float), n_resamples),
        "acc_before": accuracy(before, y, n_resamples),
        "acc_after": accuracy(after, y, n_resamples),
    }


def reordered(
    clean_pred: np.ndarray, order_pred: np.ndarray, labels: np.ndarray, changed: np.ndarray, n_resamples: int = 2000
) -> Dict[str, Any]:
    """One choice order (multiple choice): over the examples it showed in a new order, the share whose chosen
    answer (an index among the original candidates) changed, and the accuracy before and after. `order_pred`
    holds those examples' predictions only, in order; an order that changed no example has no flip rate."""
    out = invariance(clean_pred, order_pred, labels, changed, 0, n_resamples)
    del out["text_changed"]
    return out


def any_order(
    clean_pred: np.ndarray, order_preds: Dict[str, np.ndarray], labels: np.ndarray, n_resamples: int = 2000
) -> Dict[str, Any]:
    """Over the examples at least one order changed: the share whose answer changed under any of them (the
    seed's fragility), the accuracy in the original order, and the share right under the original and every order
    it was shown in. `order_preds`: per order, a prediction per example, -1 where that order did not change it."""
    clean, y = np.asarray(clean_pred), np.asarray(labels)
    preds = np.stack([np.asarray(p) for p in order_preds.values()]) if order_preds else np.full((0, len(y)), -1)
    shown = preds >= 0
    changed = shown.any(axis=0)
    flipped = (shown & (preds != clean)).any(axis=0)
    always_right = (clean == y) & ~(shown & (preds != y)).any(axis=0)
    return {
        "changed": int(changed.sum()),
        "flip_rate": figure(flipped[changed].astype(float), n_resamples),
        "acc_before": accuracy(clean[changed], y[changed], n_resamples),
        "acc_after": figure(always_right[changed].astype(float), n_resamples),
    }
