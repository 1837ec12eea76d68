"""data.score=holdout: a run that chooses settings scores only the training rows data.holdout kept back, never the
dev set (the dev set is the test, scored once), in mode=finetune and mode=distill."""

from __future__ import annotations

import json

import pytest
from conftest import GLUE_DIR, QUICK, tiny

from bench import tasks
from bench.config import compose
from bench.errors import ConfigError
from bench.runner import run

HOLD = ["data.holdout=12", "data.sample_seed=5", "data.score=holdout"]


def _train_only(tmp_path):
    """A GLUE folder holding SST-2's training file only: a run that reads dev.tsv fails on it."""
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").symlink_to(GLUE_DIR / "SST-2" / "train.tsv")
    return tmp_path / "glue"


def _check_holdout_only(result, out_dir, cfg):
    """Metrics, trivial scores and every prediction are of the holdout rows; dev has none."""
    assert result.status == "ok" and result.task["eval_splits"] == ["holdout"]
    assert result.task["splits"]["holdout"] == 12 and "validation" not in result.task["splits"]
    assert set(result.metrics) == {"acc", "primary"}  # one split, no dev-suffixed or second-split figures
    rows = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"holdout"}
    # the rows scored are the ones data.holdout takes out of the (capped) training rows, by position in train.tsv
    n_train = sum(1 for _ in (GLUE_DIR / "SST-2" / "train.tsv").open()) - 1
    held = tasks.train_rows(n_train, cfg.data, cfg.train.seed).holdout
    assert sorted(r["idx"] for r in rows) == sorted(held)
    assert result.metrics["acc"] == pytest.approx(sum(r["label"] == r["prediction"] for r in rows) / len(rows))
    assert "predictors" in result.trivial  # the trivial bar is on the same holdout rows


def test_finetune_scores_the_holdout_and_never_reads_dev(tmp_path, glue_dir):
    data = _train_only(tmp_path)
    cfg = compose([*tiny("bert"), "task=sst2", f"data.dir={data}", *QUICK, "train.max_steps=2", *HOLD])
    cfg.out_dir = str(tmp_path / "sel")
    _check_holdout_only(run(cfg), tmp_path / "sel", cfg)
    # reports show dev figures: the selection run is named among the skipped files, never a row
    import io

    from bench.report import gather

    log = io.StringIO()
    assert gather.find(tmp_path / "sel", log) == [] and "scored on the holdout" in log.getvalue()
    # the same run scoring dev needs dev.tsv: the folder above really lacks it
    dev = compose([*tiny("bert"), "task=sst2", f"data.dir={data}", *QUICK, "train.max_steps=2"])
    dev.out_dir = str(tmp_path / "dev")
    with pytest.raises(Exception, match="dev.tsv"):
        run(dev)


def test_distill_scores_the_holdout_student_and_teacher(teachers, tmp_path):
    from test_distill_runs import distill_cfg

    data = _train_only(tmp_path)
    cfg = distill_cfg(teachers, tmp_path, "+distill=prediction", f"data.dir={data}", *HOLD)
    result = run(cfg)
    _check_holdout_only(result, tmp_path / "run", cfg)
    info = result.train["distill"]
    assert set(info["teacher_metrics"]) == {"acc", "primary"}
    assert result.train["examples"] == 48 - 12  # trained on the labelled rows less the holdout


def test_holdout_scoring_errors_name_the_key():
    with pytest.raises(ConfigError, match="data.score=holdout scores the rows data.holdout keeps back"):
        compose(["task=sst2", "data.score=holdout"])
    with pytest.raises(ConfigError, match="data.score.*dev.*holdout"):
        compose(["task=sst2", "data.score=test"])
    with pytest.raises(ConfigError, match="covers modes.*mode=latency"):
        compose(["task=sst2", "mode=latency", "data.holdout=5", "data.score=holdout"])
    with pytest.raises(ConfigError, match="squad task"):
        compose(["task=squad_v1", "data.holdout=5", "data.score=holdout"])
    assert compose(["task=mnli", "data.holdout=5", "data.score=holdout"]).scored_splits == ["holdout"]
    assert compose(["task=mnli"]).scored_splits == ["validation_matched", "validation_mismatched"]


def test_a_holdout_run_drops_and_reports_the_training_twins_of_held_out_rows(tmp_path):
    """Each sentence twice in train.tsv: every held-out row's twin leaves the training rows, and the result says
    how many (task.holdout_twins_dropped, and a note)."""
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    lines = [f"sentence number {i} is {'good' if i % 2 else 'bad'} \t{i % 2}\n" for i in range(20)]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "".join(lines + lines))
    cfg = compose([*tiny("bert"), "task=sst2", f"data.dir={tmp_path / 'glue'}", *QUICK, "train.max_steps=2", *HOLD])
    cfg.out_dir = str(tmp_path / "run")
    result = run(cfg)
    held = tasks.train_rows(40, cfg.data, cfg.train.seed).holdout
    both = sum(1 for i in held if (i + 20) % 40 in held) // 2  # pairs held out whole leave no twin behind
    twins = 12 - 2 * both
    assert result.status == "ok" and result.task["holdout_twins_dropped"] == twins > 0
    assert result.task["splits"] == {"train": 40 - 12 - twins, "holdout": 12}
    assert any(n.startswith(f"{twins} training row(s) left out") for n in result.notes)
