"""The distillation table's numbers on hand-made predictions: the change against the direct fine-tune with its
two-level (seeds, then dev examples) bootstrap interval, the trivial-baseline row and the flags on a variant's row."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench.report.distill_rows import flags_of, trivial_row
from bench.report.stats import seed_example_bootstrap


def acc(p, y):
    return float(np.mean(p == y))


def _arms(shifts, n=400, base=0.7, seed=0):
    """Per seed, arm b right on `base` of the rows and arm a right on `shift` more of them (an exact shift)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a, b = [], []
    for s in shifts:
        right = rng.permutation(n)
        pb = y.copy()
        pb[right[int(base * n) :]] ^= 1  # b is wrong on the rest
        pa = pb.copy()
        k = int(round(abs(s) * n))
        fix = right[int(base * n) :][:k] if s > 0 else right[: int(base * n)][:k]
        pa[fix] ^= 1  # a right (s > 0) or wrong (s < 0) on k more rows
        a.append(pa)
        b.append(pb)
    return y, a, b


def test_identical_arms_change_by_exactly_zero():
    y, a, _ = _arms([0.0, 0.0, 0.0])
    res = seed_example_bootstrap(acc, y, a, a, n_boot=300)
    assert (res["diff"], res["low"], res["high"]) == (0.0, 0.0, 0.0) and res["within_noise"] and res["seeds"] == 3


def test_a_known_shift_is_the_change_and_lies_in_its_interval():
    y, a, b = _arms([0.1, 0.1, 0.1])
    res = seed_example_bootstrap(acc, y, a, b, n_boot=500)
    assert res["diff"] == pytest.approx(0.1) and res["low"] <= 0.1 <= res["high"]
    assert res["low"] > 0 and not res["within_noise"]  # 40 of 400 rows: beyond the examples' noise
    y, a, b = _arms([-0.05])  # one seed: the paired example bootstrap
    res = seed_example_bootstrap(acc, y, a, b, n_boot=500)
    assert res["diff"] == pytest.approx(-0.05) and res["low"] < -0.05 < res["high"] < 0


def test_seeds_that_disagree_widen_the_interval():
    """The same mean change (+0.04) over three seeds: when the seeds disagree (+0.10, -0.06, +0.08) the interval
    is much wider than when each seed shows +0.04, because the seeds are resampled too."""
    y, a, b = _arms([0.10, -0.06, 0.08])
    spread = seed_example_bootstrap(acc, y, a, b, n_boot=1000)
    y, a, b = _arms([0.04, 0.04, 0.04])
    steady = seed_example_bootstrap(acc, y, a, b, n_boot=1000)
    assert spread["diff"] == pytest.approx(0.04) == steady["diff"]
    assert spread["high"] - spread["low"] > 2 * (steady["high"] - steady["low"])
    assert spread["within_noise"] and not steady["within_noise"]


def test_the_bootstrap_refuses_unpaired_predictions():
    y, a, b = _arms([0.1, 0.1])
    with pytest.raises(ValueError, match="same, non-empty examples"):
        seed_example_bootstrap(acc, y, a, b[:1])
    with pytest.raises(ValueError, match="same, non-empty examples"):
        seed_example_bootstrap(acc, y, [a[0][:-1]], [b[0]])


def _run(seed, status="ok", trivial=None, started="2026-01-01", train=None):
    return SimpleNamespace(seed=seed, status=status, trivial=trivial, started_at=started, train=train)


def test_fewer_than_three_seeds_and_failed_runs_are_flagged():
    ok3 = [_run(s) for s in (1, 2, 3)]
    assert flags_of(ok3, []) == []
    assert flags_of(ok3[:2], []) == ["2 ok seeds (fewer than 3)"]
    assert flags_of(ok3, [_run(4, "failed"), _run(5, "interrupted")]) == [
        "2 runs not ok: seed 4 failed, seed 5 interrupted"
    ]
    assert flags_of([], [_run(4, "failed")]) == ["0 ok seeds (fewer than 3)", "1 run not ok: seed 4 failed"]


def test_a_training_time_taken_beside_other_load_is_flagged_on_the_row():
    """A distillation times each stage apart: one disturbed stage is enough; a DDP rank (not judged) is named too."""
    from bench.schema import TrainInfo

    quiet = {"other_cores": 0.01, "disturbed": False}
    busy = {"other_cores": 0.93, "disturbed": True}
    ddp = {"other_cores": 1.0, "disturbed": None, "not_judged": "other load: 1 other rank(s) of this run ..."}
    runs = [
        _run(1, train=TrainInfo(seconds=9.0, stages=[{"load": quiet}, {"load": busy}])),
        _run(2, train=TrainInfo(seconds=9.0, stages=[{"load": quiet}, {"load": quiet}])),
        _run(3, train=TrainInfo(seconds=9.0, load=busy)),
    ]
    assert flags_of(runs, []) == ["train s of 2 of 3 runs taken beside other load: seed 1, seed 3"]
    runs[0] = _run(1, train=TrainInfo(seconds=9.0, load=ddp))
    runs[2] = _run(3)  # no train section (an old result): nothing to judge, no flag
    assert flags_of(runs, []) == ["train s of 1 of 3 runs not judged for load: seed 1"]
    runs[0] = _run(1, train=TrainInfo(seconds=9.0, load={"other_cores": 0.0}))  # no verdict recorded: no flag
    assert flags_of(runs, []) == []


def test_the_trivial_row_is_the_best_trivial_predictor_of_the_runs():
    section = {
        "predictors": {
            "majority class": {"constant": 1, "metrics": {"acc": 0.684, "f1": 0.812, "primary": 0.748}},
            "all positive": {"constant": 1, "metrics": {"acc": 0.684, "f1": 0.812, "primary": 0.748}},
        },
        "vs_best": {"best": "majority class"},
    }
    row = trivial_row([_run(1, trivial=section), _run(2, trivial=section, started="2026-01-02")])
    assert row["variant"] == "trivial baseline" and row["dev"] == 0.748 and row["metrics"] == "acc 68.4, f1 81.2"
    assert "majority class (predicts 1)" in row["status"] and "differ" not in row["status"]
    other = {**section, "predictors": {"majority class": {"constant": 0, "metrics": {"acc": 0.3, "primary": 0.3}}}}
    row = trivial_row([_run(1, trivial=section), _run(2, trivial=other, started="2026-01-02")])
    assert row["dev"] == 0.748 and "the runs' trivial figures differ" in row["status"]  # said, from the oldest
    assert trivial_row([_run(1)]) is None
