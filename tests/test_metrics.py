import math

import numpy as np
import pytest

from bench.config import compose
from bench.tasks import metrics

P, Y = np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])  # tp=2, tn=1, fp=1, fn=0


def test_accuracy_f1_mcc_by_hand():
    m = metrics.METRICS
    assert m["acc"](P, Y) == pytest.approx(0.75)
    assert m["f1"](P, Y) == pytest.approx(0.8)  # precision 2/3, recall 1 -> 2*(2/3)/(5/3)
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = 2 / sqrt(3*2*2*1)
    assert m["mcc"](P, Y) == pytest.approx(2 / math.sqrt(12))


def test_pearson_spearman_by_hand():
    m = metrics.METRICS
    # deviations (-1,0,1) and (-4/3,-1/3,5/3): covariance sum 3, variance sums 2 and 42/9
    assert m["pearson"](np.array([1.0, 2, 3]), np.array([1.0, 2, 4])) == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    # one swapped pair: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6*2/24
    assert m["spearman"](np.array([1.0, 3, 2]), np.array([1.0, 2, 3])) == pytest.approx(0.5)


def test_constant_regression_output_is_nan_not_a_crash():
    assert math.isnan(metrics.METRICS["pearson"](np.ones(4), np.arange(4.0)))


def test_mrpc_primary_is_mean_of_f1_and_accuracy():
    task = compose(["task=mrpc"]).task
    out = metrics.score(task, {"validation": (P, Y)})
    assert out == pytest.approx({"f1": 0.8, "acc": 0.75, "primary": 0.775})


def test_mnli_reports_matched_and_mismatched_and_primary_is_matched():
    task = compose(["task=mnli"]).task
    out = metrics.score(
        task,
        {
            "validation_matched": (np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0])),
            "validation_mismatched": (np.array([0, 0]), np.array([0, 1])),
        },
    )
    assert out == pytest.approx({"acc_m": 0.75, "acc_mm": 0.5, "primary": 0.75})


def test_cola_primary_is_mcc_and_stsb_regression_predictions():
    assert metrics.score(compose(["task=cola"]).task, {"validation": (P, Y)})["primary"] == pytest.approx(
        2 / math.sqrt(12)
    )
    stsb = compose(["task=stsb"]).task
    preds = metrics.predictions_from_logits(stsb, np.array([[1.0], [2.0], [3.0]]))
    assert preds.tolist() == [1.0, 2.0, 3.0]
    out = metrics.score(stsb, {"validation": (preds, np.array([1.0, 2.0, 4.0]))})
    assert out["primary"] == pytest.approx((3 / math.sqrt(2 * 42 / 9) + 1.0) / 2)


def test_the_bootstraps_numpy_scores_are_sklearns(monkeypatch):
    """FAST (the resampling scores) equal METRICS' sklearn figures on 0/1 arrays, edge cases included (no positive
    predicted or labelled: F1 0 by zero_division; a constant side: MCC 0), and primary_scorer equals score()'s
    primary; off 0/1 (MNLI's 3 classes, STS-B's floats) it is METRICS' own figure."""
    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 2, n), rng.integers(0, 2, n)) for n in (1, 2, 7, 408)]
    cases += [(np.zeros(5, int), np.zeros(5, int)), (np.ones(5, int), np.zeros(5, int)), (np.zeros(5), Y[[0] * 5])]
    cases += [(P, Y), (P.astype(float), Y)]  # predictions read back from JSON as floats
    for p, y in cases:
        for name, fast in metrics.FAST.items():
            assert fast(p, y) == pytest.approx(metrics.METRICS[name](p, y), abs=1e-12), (name, p, y)
    for t in ("mrpc", "cola", "sst2"):
        task = compose([f"task={t}"]).task
        for p, y in cases:
            assert metrics.primary_scorer(task)(p, y) == pytest.approx(
                metrics.score(task, {"validation": (p, y)})["primary"], abs=1e-12
            )
    with pytest.raises(ValueError, match="non-empty"):
        metrics.primary_scorer(compose(["task=sst2"]).task)(np.array([]), np.array([]))
    # on 0/1 arrays the numpy forms are what runs (sklearn's, patched to fail, is never called)
    real = dict(metrics.METRICS)
    monkeypatch.setattr(metrics, "METRICS", {k: None for k in real})
    assert metrics.primary_scorer(compose(["task=mrpc"]).task)(P, Y) == pytest.approx(0.775)
    monkeypatch.setattr(metrics, "METRICS", real)
    # not 0/1: never counted as if binary (a FAST form would call class 2 a negative)
    monkeypatch.setattr(metrics, "FAST", {k: None for k in metrics.FAST})  # calling one now fails the test
    three = (np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0]))
    assert metrics.primary_scorer(compose(["task=mnli"]).task)(*three) == pytest.approx(0.75)
    stsb = compose(["task=stsb"]).task
    assert metrics.primary_scorer(stsb)(np.array([1.0, 2, 3]), np.array([1.0, 2, 4])) == pytest.approx(
        (3 / math.sqrt(2 * 42 / 9) + 1.0) / 2
    )
