"""mode=robustness's loyalty figures (bench/robustness/figures.py) against hand-computed values: probability
loyalty (1 - Jensen-Shannon divergence), label loyalty, disagreement, and figures over no examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.robustness import figures


def _jsd2(p, q):  # by hand: base-2 Jensen-Shannon divergence
    m = [(a + b) / 2 for a, b in zip(p, q)]
    kl = lambda x, y: sum(a * math.log2(a / b) for a, b in zip(x, y) if a > 0)  # noqa: E731
    return (kl(p, m) + kl(q, m)) / 2


def test_probability_loyalty_matches_hand_computed_values():
    ref = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.9, 0.1]])
    new = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0], [0.6, 0.4]])
    got = figures.probability_loyalty(ref, new)
    # [1,0] vs [.5,.5]: M = [.75,.25]; JSD = (log2(4/3) + .5 log2(2/3) + .5 log2 2) / 2 = 0.311278
    assert got[0] == pytest.approx(1 - math.sqrt(0.3112781244591328), abs=1e-12)
    assert got[0] == pytest.approx(0.442077, abs=1e-6)
    assert got[1] == 1.0 and got[2] == pytest.approx(0.0, abs=1e-12)  # identical; disjoint supports
    assert got[3] == pytest.approx(1 - math.sqrt(_jsd2([0.9, 0.1], [0.6, 0.4])), abs=1e-12)


def test_probability_loyalty_of_nearly_equal_float32_rows_is_near_1_not_nan():
    """The SST-2 and RTE teachers' bf16/ONNX runs failed on this: two float32 softmax rows a rounding apart (as
    eager and another backend give) made scipy's jensenshannon take the square root of a tiny negative sum (NaN),
    which the run then reported as 'not probability distributions'."""
    ref = np.array([[0.7767230272293091, 0.22327695786952972]], dtype=np.float32)
    new = np.array([[0.7767230868339539, 0.22327697277069092]], dtype=np.float32)
    got = figures.probability_loyalty(ref, new)
    assert np.isfinite(got).all() and got[0] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="1 row"):  # a NaN output is still refused
        figures.probability_loyalty(ref, np.array([[np.nan, 1.0]], dtype=np.float32))


def test_label_loyalty_and_disagreement_split_by_hand():
    labels = np.array([0, 1, 2, 2, 1])
    ref = np.eye(3)[[0, 1, 2, 1, 0]]  # right, right, right, wrong, wrong
    new = np.eye(3)[[0, 2, 1, 2, 2]]  # agrees on 0; 1: ref right; 2: ref right; 3: this right; 4: both wrong
    out = figures.loyalty(ref, new, labels, n_resamples=200)
    assert out["label"]["value"] == pytest.approx(0.2) and out["label"]["n"] == 5
    assert out["disagreements"] == {"n": 4, "reference_right": 2, "this_right": 1, "both_wrong": 1}
    assert out["jsd_base"] == 2 and out["probability"]["value"] == pytest.approx(0.2)  # one-hot rows: 1 or 0
    same = figures.loyalty(new, new, labels)
    assert same["label"]["value"] == 1.0 and same["probability"]["value"] == 1.0


def test_a_figure_over_no_examples_has_no_value_and_an_interval_otherwise():
    assert figures.figure(np.array([])) == {"value": None, "n": 0, "low": None, "high": None}
    inv = figures.invariance(np.array([0, 1]), np.zeros(0, int), np.array([0, 1]), np.array([False, False]), 2)
    assert inv["changed"] == 0 and inv["text_changed"] == 2 and inv["flip_rate"]["value"] is None
    f = figures.figure(np.array([0, 1, 1, 0, 1, 1, 1, 0]), n_resamples=500)
    assert f["n"] == 8 and f["low"] < f["value"] == 0.625 < f["high"]
    # one example is a value without an interval, never a certain [100, 100]; all-equal values of many are
    assert figures.figure(np.array([1.0])) == {"value": 1.0, "n": 1, "low": None, "high": None}
    assert figures.figure(np.ones(5)) == {"value": 1.0, "n": 5, "low": 1.0, "high": 1.0}


def test_rows_that_are_not_distributions_are_never_called_loyal():
    same = np.array([[1.0, 0.0], [0.3, 0.7]])
    assert figures.probability_loyalty(same, same) == pytest.approx([1.0, 1.0])  # identical rows: exactly loyal
    with pytest.raises(ValueError, match="not probability distributions"):
        figures.probability_loyalty(same, np.array([[np.nan, np.nan], [0.3, 0.7]]))
