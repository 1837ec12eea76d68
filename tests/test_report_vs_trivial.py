"""A model against its best trivial predictor over its seeds (bench.report.vs_trivial): the difference, its interval
over seeds and dev examples, and the groups it must leave out rather than guess."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench.config import compose
from bench.report import gather, stats, vs_trivial
from bench.report.__main__ import build, significance_text
from bench.results import _clean

LABELS = [1, 0, 1, 1, 0, 1, 0, 1, 1, 0] * 8  # 80 RTE-like rows, 48 positive: the majority class 1 scores 60%


def _write(root, name, seed, preds, task="rte", constants=None, mc_trivial=None):
    cfg = compose(["model=minilm_l6", f"task={task}", f"train.seed={seed}"])
    y = np.asarray(LABELS)
    acc = float(np.mean(np.asarray(preds) == y))
    constants = {"majority class": 1} if constants is None else constants
    data = {
        "schema_version": 1,
        "status": "ok",
        "mode": "finetune",
        "config": _clean(OmegaConf.to_container(OmegaConf.structured(cfg))),
        "model": {"name": "minilm_l6", "weights": "pretrained", "parameters": 22_000_000},
        "task": {"name": task, "eval_splits": ["validation"]},
        "metrics": {"acc": acc, "primary": acc},
        "trivial": {"predictors": {n: {"constant": c, "metrics": {}} for n, c in constants.items()}},
        "started_at": f"2026-01-0{seed}T00:00:00.000000+00:00",
    }
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(data))
    rows = []
    for i, (label, p) in enumerate(zip(LABELS, preds)):
        rows.append({"split": "validation", "idx": i, "label": label, "prediction": int(p)})
        if mc_trivial is not None:
            rows[-1]["trivial"] = {n: float(v[i]) for n, v in mc_trivial.items()}
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _flip(every, offset=0):
    """LABELS with every `every`-th row (from `offset`) wrong."""
    return [1 - y if i % every == offset else y for i, y in enumerate(LABELS)]


def test_a_model_clearly_above_the_majority_class_over_three_seeds(tmp_path):
    runs = {seed: _flip(10, seed) for seed in (1, 2, 3)}  # 90% right on each seed; majority class: 60%
    for seed, preds in runs.items():
        _write(tmp_path, f"s{seed}", seed, preds)
    vs = vs_trivial.frame(gather.find(tmp_path, io.StringIO()), n_boot=300)
    assert len(vs) == 1
    row = vs.iloc[0]
    assert (row.task, row.model, row.best, row.seeds, row.n) == ("rte", "minilm_l6", "majority class", 3, 80)
    assert row["diff"] == pytest.approx(0.9 - 0.6)
    assert 0 < row.low < row["diff"] < row.high and not row.within_noise
    # the very interval of the seed bootstrap, with the trivial arm the same on every seed
    y = np.asarray(LABELS)
    direct = stats.seed_example_bootstrap(
        lambda p, labels: float(np.mean(p == labels)), y, list(runs.values()), [np.ones(80, int)] * 3, n_boot=300
    )
    assert (row.low, row.high) == pytest.approx((direct["low"], direct["high"]))
    # and in the significance table, as model B
    assert "over 3 seeds" not in build(tmp_path, tmp_path / "report", ["md"], n_boot=300)["glue.md"].read_text()
    text = significance_text(vs_trivial.as_pairs(vs))
    assert text.iloc[0]["model B"] == "trivial: majority class" and text.iloc[0].verdict == "A better"
    assert text.iloc[0].seeds == "3 seeds; the trivial predictor has none"


def test_a_model_that_is_the_majority_class_on_most_rows_is_within_noise(tmp_path):
    for seed in (1, 2, 3):  # agrees with all-ones except on a few rows, some right, some wrong
        preds = [y if i % 20 == seed else 1 for i, y in enumerate(LABELS)]
        _write(tmp_path, f"s{seed}", seed, preds)
    row = vs_trivial.frame(gather.find(tmp_path, io.StringIO()), n_boot=300).iloc[0]
    assert row["diff"] == pytest.approx((4 / 80) / 3)  # seed 1 answers four 0-rows right, seeds 2 and 3 none
    assert row.low <= 0 <= row.high and row.within_noise
    # each run alone passes or fails its own check; over the seeds the GLUE table flags the model
    written = build(tmp_path, tmp_path / "report", ["md"], n_boot=300)
    glue = written["glue.md"].read_text()
    assert "RTE: no better than trivial over 3 seeds" in glue
    # and its gap, in a row of its own: the same figure and interval the significance table has
    gap = next(line for line in glue.splitlines() if "- best trivial" in line)
    assert f"{100 * row['diff']:+.1f} [{100 * row.low:+.1f}, {100 * row.high:+.1f}] vs majority class, 3 seeds" in gap
    assert "**" not in gap and gap.split("|")[1].strip() == "minilm_l6 - best trivial"  # a difference: never bold
    assert "trivial: majority class" in written["significance.csv"].read_text()


def test_f1_tasks_compare_by_their_primary_with_all_positive_among_the_trivial(tmp_path):
    both = {"majority class": 0, "all positive": 1}  # a training set of mostly 0s; the dev rows are 60% 1s
    for seed in (1, 2):
        _write(tmp_path, f"s{seed}", seed, _flip(10, seed), task="mrpc", constants=both)
    row = vs_trivial.frame(gather.find(tmp_path, io.StringIO()), n_boot=200).iloc[0]
    assert row.best == "all positive"  # F1 0.75, acc 0.6; the majority class 0: F1 0, acc 0.4
    y = np.asarray(LABELS)
    f1 = lambda p: 2 * np.sum((p == 1) & (y == 1)) / (np.sum(p == 1) + np.sum(y == 1))  # noqa: E731
    primary = lambda p: (f1(p) + np.mean(p == y)) / 2  # noqa: E731 (MRPC's: the mean of F1 and accuracy, as GLUE's)
    expected = np.mean([primary(np.asarray(_flip(10, s))) for s in (1, 2)]) - primary(np.ones(80, int))
    assert row["diff"] == pytest.approx(expected) and row.seeds == 2


def test_a_model_worse_than_trivial_on_every_seed_is_flagged_and_one_seed_is_left_to_its_run(tmp_path):
    for seed in (1, 2, 3):  # 40% right, every seed: below the majority class's 60% beyond noise
        _write(tmp_path / "worse", f"s{seed}", seed, [1 - y if i % 5 else y for i, y in enumerate(LABELS)])
    row = vs_trivial.frame(gather.find(tmp_path / "worse", io.StringIO()), n_boot=300).iloc[0]
    assert row.high < 0 and not row.within_noise
    written = build(tmp_path / "worse", tmp_path / "report", ["md"], n_boot=300)
    assert "RTE: no better than trivial over 3 seeds" in written["glue.md"].read_text()
    _write(tmp_path / "one", "s1", 1, LABELS)  # within noise of nothing: one seed's verdict is its run's own flag
    gaps = vs_trivial.by_model_task(vs_trivial.frame(gather.find(tmp_path / "one", io.StringIO()), n_boot=50))
    assert gaps[("minilm_l6", "rte")]["seeds"] == 1 and vs_trivial.flag(gaps, "minilm_l6", "rte") is None
    gaps[("minilm_l6", "rte")].update(seeds=2, low=float("nan"))  # an interval that could not be drawn
    assert vs_trivial.flag(gaps, "minilm_l6", "rte") == "no interval against trivial over 2 seeds"


def test_seeds_whose_training_rows_give_another_majority_each_meet_their_own(tmp_path):
    _write(tmp_path, "s1", 1, _flip(10, 1))  # 90% right; its majority class 1 scores 60%
    _write(tmp_path, "s2", 2, _flip(10, 2), constants={"majority class": 0})  # another draw of rows: 0, 40%
    row = vs_trivial.frame(gather.find(tmp_path, io.StringIO()), n_boot=200).iloc[0]
    assert row["diff"] == pytest.approx(((0.9 - 0.6) + (0.9 - 0.4)) / 2) and row.trivial_per_seed
    y = np.asarray(LABELS)
    direct = stats.seed_example_bootstrap(
        lambda p, labels: float(np.mean(p == labels)),
        y,
        [_flip(10, 1), _flip(10, 2)],
        [np.ones(80, int), np.zeros(80, int)],
        n_boot=200,
    )
    assert (row.low, row.high) == pytest.approx((direct["low"], direct["high"]))
    assert significance_text(vs_trivial.as_pairs(pd.DataFrame([row]))).iloc[0].seeds == (
        "2 seeds; each against its own training rows' trivial predictor"
    )


def test_runs_on_other_examples_or_without_predictions_are_left_out_and_named(tmp_path):
    _write(tmp_path / "a", "s1", 1, _flip(10, 1))
    _write(tmp_path / "a", "s2", 2, _flip(10, 2), constants={"majority class (evaluation)": 1})  # mode=evaluate
    log = io.StringIO()
    assert vs_trivial.frame(gather.find(tmp_path / "a", io.StringIO()), n_boot=50, log=log).empty
    assert "rte minilm_l6 left out: its seeds were scored on other dev examples, or name other" in log.getvalue()
    glue = build(tmp_path / "a", tmp_path / "report_a", ["md"], n_boot=50)["glue.md"].read_text()
    assert "RTE: not compared with trivial (2 runs): its seeds were scored on other dev examples" in glue
    assert "minilm_l6 - best trivial" not in glue  # no gap row of dashes for a model with no comparison
    (_write(tmp_path / "b", "s1", 1, _flip(10, 1)) / "predictions.jsonl").unlink()
    assert vs_trivial.frame(gather.find(tmp_path / "b", io.StringIO()), n_boot=50).empty
    glue = build(tmp_path / "b", tmp_path / "report_b", ["md"], n_boot=50)["glue.md"].read_text()
    assert "RTE: not compared with trivial (1 run): a run without the trivial predictors' predictions" in glue
    for i, bad in enumerate(['{"split": "validation", "label": 1}\n', "not json\n", "[1, 2]\n"]):
        (_write(tmp_path / f"c{i}", "s1", 1, LABELS) / "predictions.jsonl").write_text(bad)  # no crash, no row
        assert vs_trivial.frame(gather.find(tmp_path / f"c{i}", io.StringIO()), n_boot=50).empty
    (_write(tmp_path / "d", "s1", 1, LABELS) / "predictions.jsonl").write_bytes(b"\xff\xfe not UTF-8\n")
    assert vs_trivial.frame(gather.find(tmp_path / "d", io.StringIO()), n_boot=50).empty


def test_multiple_choice_reads_each_predictors_per_example_score_and_older_files_are_left_out(tmp_path):
    trivial = {"chance": np.full(80, 0.5), "longest answer": (np.arange(80) % 4 != 0).astype(float)}  # 75%
    for seed in (1, 2, 3):
        _write(tmp_path / "new", f"s{seed}", seed, _flip(10, seed), task="copa", mc_trivial=trivial)
    row = vs_trivial.frame(gather.find(tmp_path / "new", io.StringIO()), n_boot=200).iloc[0]
    assert row.best == "longest answer" and row["diff"] == pytest.approx(0.9 - 0.75)
    for seed in (1, 2):  # written before predictions.jsonl carried the trivial scores: no guess from `k`
        _write(tmp_path / "old", f"s{seed}", seed, _flip(10, seed), task="copa")
    assert vs_trivial.frame(gather.find(tmp_path / "old", io.StringIO()), n_boot=50).empty
    choice = build(tmp_path / "old", tmp_path / "report", ["md"], n_boot=50)["multiple_choice.md"].read_text()
    assert "COPA: not compared with trivial (2 runs): a run without the trivial predictors' predictions" in choice
