"""Arms tuned alike on held-out rows, and power (issue 17, parts 3 and 4): bench/selection.py's grid and pick, and
benchmarks/distill.py's jobs composed as the benchmark composes them: the selection runs score only the holdout,
the final runs refit on every labelled row at their arm's choice, and a seed never moves the labelled rows."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import GLUE_DIR, load_script

from bench import selection, tasks
from bench.config import compose
from bench.selection import Point


@pytest.fixture(scope="module")
def script():
    return load_script("distill")


def test_pick_takes_the_best_holdout_score_and_breaks_ties_by_cost():
    a, b, c, d = Point(3.0, 1e-4), Point(6.0, 3e-5), Point(3.0, 3e-5), Point(6.0, 1e-4)
    assert selection.pick({a: 0.80, b: 0.85, c: 0.84, d: None}) == b
    # a tie goes to fewer epochs, then to the lower learning rate, whatever the order of the grid
    assert selection.pick({d: 0.85, b: 0.85, a: 0.85, c: 0.85}) == c
    assert selection.pick({d: 0.85, b: 0.85 + 1e-12, a: 0.85}) == a  # equal within 1e-9
    assert selection.pick({d: 0.9, a: float("nan")}) == d  # a point without a finite score takes no part
    with pytest.raises(ValueError, match="every selection run failed"):
        selection.pick({a: None, b: float("nan")})
    assert selection.grid([3e-5, 1e-4, 3e-5], [6, 3]) == [
        Point(3.0, 3e-5),
        Point(3.0, 1e-4),
        Point(6.0, 3e-5),
        Point(6.0, 1e-4),
    ]
    with pytest.raises(ValueError, match="positive"):
        selection.grid([0.0], [3])


def test_the_record_holds_grid_slice_scores_and_choice(tmp_path):
    points = selection.grid([3e-5, 1e-4], [3])
    scores = {points[0]: 0.7, points[1]: None}
    rec = selection.record(
        "direct", points, scores, {points[1]: {"status": "failed"}}, {"holdout_rows": 10, "sample_seed": 42}, "acc"
    )
    assert rec["chosen"] == {"learning_rate": 3e-5, "epochs": 3.0} and rec["failed"] == 1 and rec["holdout_rows"] == 10
    assert [g["holdout"] for g in rec["grid"]] == [0.7, None] and rec["grid"][1]["status"] == "failed"
    assert selection.read(tmp_path) is None  # an untuned run
    selection.write(tmp_path, rec)
    assert selection.read(tmp_path) == json.loads(json.dumps(rec))
    (tmp_path / selection.SELECTION_FILE).write_text("{not json")
    assert "error" in selection.read(tmp_path)  # said so, never taken for an untuned run


def test_default_variants_and_seeds_are_the_issues(script):
    args = script.parse([])
    assert len(args.seeds) >= 3 and args.variants is None
    assert set(script.DEFAULT_VARIANTS["sst2"]) == {
        "direct",
        "prediction",
        "prediction_transfer",
        "two_stage",
        "two_stage_transfer",
    }
    assert set(script.DEFAULT_VARIANTS["mrpc"]) == {"direct", "prediction", "two_stage", "prediction_augment"}
    assert script.selection.grid(args.grid_lr, args.grid_epochs) == selection.grid([3e-5, 5e-5, 1e-4], [3, 6])
    # which arm's choice each variant runs at
    assert {v: script.arm_of(v, False) for v in script.VARIANTS} == {
        "direct": "direct",
        "prediction": "prediction",
        "prediction_transfer": "prediction",
        "prediction_augment": "prediction",
        "two_stage": "prediction",
        "two_stage_transfer": "prediction",
    }
    assert script.arm_of("two_stage_transfer", True) == script.arm_of("two_stage", True) == "two_stage"


def _cfg(overrides, tmp_path):
    return compose(overrides, out_dir=str(tmp_path / "x"))


def test_seeds_move_neither_the_teacher_rows_nor_the_students_and_selection_holds_out(script, tmp_path, glue_dir):
    args = script.parse(["--data", str(glue_dir), "--train-rows", "500"])
    common = script.student_common("sst2", args, "T", tmp_path)
    teacher = _cfg([*script.TEACHER, *script.data_overrides("sst2", args)], tmp_path)
    point = Point(6.0, 1e-4)
    n = len(tasks.load(teacher.task, dataclasses.replace(teacher.data, max_train_samples=None))["train"])
    rows = tasks.train_rows(n, teacher.data, teacher.train.seed)
    finals = [_cfg(script.final_job("sst2", "prediction", s, point, common)[1], tmp_path) for s in args.seeds]
    assert len({c.train.seed for c in finals}) == len(args.seeds)
    for c in finals:  # every labelled row (no holdout), the teacher's rows, dev scored, at the arm's choice
        assert tasks.train_rows(n, c.data, c.train.seed) == rows and len(rows.labelled) == 500
        assert c.data.holdout is None and c.data.score == "dev" and c.scored_splits == ["validation"]
        assert (c.distill.prediction.learning_rate, c.distill.prediction.epochs) == (1e-4, 6.0)
    # without a fixed sample seed the rows would move with the seed: the check above can fail
    loose = [dataclasses.replace(c.data, sample_seed=None) for c in finals[:2]]
    assert tasks.train_rows(n, loose[0], 42).labelled != tasks.train_rows(n, loose[1], 43).labelled
    name, sel = script.selection_job("sst2", "direct", point, common, 50, args.seeds[0])
    s = _cfg(sel, tmp_path)
    assert name == "sst2_select_direct_lr0.0001_ep6" and s.scored_splits == ["holdout"]
    assert s.data.holdout == 50 and s.train.seed == args.seeds[0] and not s.distill.measure_latency
    held = tasks.train_rows(n, s.data, s.train.seed)
    assert sorted(held.labelled + held.holdout) == sorted(rows.labelled) and len(held.holdout) == 50
    assert s.distill.weights["hard"] == 1 and s.distill.weights["soft"] == 0  # the direct arm's preset
    assert script.holdout_slice("sst2", args) == {"labelled_rows": 500, "holdout_rows": 50, "sample_seed": 42}


def test_transfer_variants_add_their_sets_to_their_arms_choice(script, tmp_path):
    args = script.parse(["--data", str(GLUE_DIR)])
    common = script.student_common("sst2", args, "T", tmp_path)
    point = Point(3.0, 5e-5)
    for variant, preset, extra in [
        ("prediction_transfer", "prediction", ["distill.transfer.sources=[rest]", "distill.transfer.max_rows=20000"]),
        ("two_stage_transfer", "two_stage", ["distill.transfer.sources=[rest]", "distill.transfer.max_rows=20000"]),
        ("prediction_augment", "prediction", ["distill.transfer.sources=[augment]"]),
    ]:
        name, overrides = script.final_job("sst2", variant, 43, point, common)
        assert name == f"sst2_{variant}_seed43"
        assert overrides[len(common) :] == [f"+distill={preset}", *extra, *point.overrides(), "train.seed=43"]
    from bench.distill_config import DistillConfig

    if "transfer" not in {f.name for f in dataclasses.fields(DistillConfig)}:
        pytest.skip("distill.transfer.* (issue 17's transfer sets) is not in this checkout: composition untested")
    cfg = _cfg(script.final_job("sst2", "prediction_transfer", 42, point, common)[1], tmp_path)
    assert list(cfg.distill.transfer.sources) == ["rest"] and cfg.distill.transfer.max_rows == 20000


def _fake_job(tmp_path, used, scores, calls):
    """Writes a real result file (status ok, metrics from `scores` by job name, else failed) for each job."""
    from bench import env
    from bench.results import Result

    captured = env.capture()

    def job(name, overrides):
        calls.append((name, overrides))
        cfg = compose(overrides, out_dir=str(tmp_path / name))
        r = Result.start(cfg, captured)
        score = scores.get(name, 0.5 if "_select_" not in name else None)
        r.status = "ok" if score is not None else "failed"
        r.metrics = {"acc": score, "primary": score} if score is not None else {}
        r.train = {"seconds": 2.0}
        used[name] = tmp_path / name
        r.save(tmp_path / name)
        return r

    return job


def test_the_benchmark_selects_each_arm_then_refits_every_variant_at_its_choice(script, tmp_path, monkeypatch):
    monkeypatch.setattr(
        script, "holdout_slice", lambda task, args: {"labelled_rows": 100, "holdout_rows": 10, "sample_seed": 42}
    )
    args = script.parse(
        ["--data", str(GLUE_DIR), "--tasks", "sst2", "--teacher", "sst2=T", "--out", str(tmp_path), "--seeds", "7", "8"]
        + ["--variants", "direct", "prediction", "two_stage", "--grid-lr", "3e-5", "1e-4", "--grid-epochs", "3"]
    )
    scores = {
        "sst2_select_direct_lr3e-05_ep3": 0.70,
        "sst2_select_direct_lr0.0001_ep3": 0.75,
        "sst2_select_prediction_lr3e-05_ep3": 0.80,
        # the prediction arm's lr 1e-4 run failed: its score is missing, not a zero
    }
    used, calls, failures = {}, [], []
    script.task_runs("sst2", args, tmp_path, failures, used, job=_fake_job(tmp_path, used, scores, calls))
    names = [n for n, _ in calls]
    assert names[:4] == [
        f"sst2_select_{a}_{p}" for a in ("direct", "prediction") for p in ("lr3e-05_ep3", "lr0.0001_ep3")
    ]
    assert all("data.score=holdout" in o and "train.seed=7" in o for n, o in calls[:4])  # first seed only
    assert names[4:] == [f"sst2_{v}_seed{s}" for s in (7, 8) for v in ("direct", "prediction", "two_stage")]
    final = dict(calls[4:])
    for s in (7, 8):
        assert "distill.prediction.learning_rate=0.0001" in final[f"sst2_direct_seed{s}"]
        for v in ("prediction", "two_stage"):  # two stages take the prediction arm's choice
            assert "distill.prediction.learning_rate=3e-05" in final[f"sst2_{v}_seed{s}"]
        assert not any(o.startswith(("data.holdout", "data.score")) for o in final[f"sst2_direct_seed{s}"])
    rec = selection.read(tmp_path / "sst2_two_stage_seed8")
    assert rec["arm"] == "prediction" and rec["variant"] == "two_stage" and rec["failed"] == 1
    assert rec["chosen"] == {"learning_rate": 3e-5, "epochs": 3.0} and rec["seed"] == 7 and rec["holdout_rows"] == 10
    assert [g["holdout"] for g in rec["grid"]] == [0.80, None] and rec["grid"][1]["status"] == "failed"
    assert failures == []  # the fake job records none; a real failed grid run is in failures through run_job()
    # an arm whose every grid run failed runs no final job: each is named among the failures instead
    used, calls, failures = {}, [], []
    out2 = tmp_path / "again"
    scores = {"sst2_select_direct_lr3e-05_ep3": 0.7, "sst2_select_direct_lr0.0001_ep3": 0.7}
    script.task_runs("sst2", args, out2, failures, used, job=_fake_job(out2, used, scores, calls))
    assert [n for n, _ in calls[4:]] == ["sst2_direct_seed7", "sst2_direct_seed8"]
    assert "distill.prediction.learning_rate=3e-05" in dict(calls)["sst2_direct_seed7"]  # the tie: the lower lr
    assert len(failures) == 4 and all("arm prediction chose no setting" in f for f in failures)


def test_score_runs_every_point_and_keeps_a_failed_one_out_of_the_choice(tmp_path):
    """selection.score, shared by both benchmarks: a failed point and a point with no result score None (never 0),
    the metric's name comes from an ok run's task, and the record then chooses among the ok points only."""
    from types import SimpleNamespace

    points = selection.grid([3e-5, 1e-4], [1.0])
    train = SimpleNamespace(seconds=12.5)
    results = {
        points[0]: SimpleNamespace(
            status="ok", metrics={"primary": 0.81}, train=train, config={"task": {"primary": ["f1", "accuracy"]}}
        ),
        points[1]: SimpleNamespace(status="failed", metrics={"primary": 0.99}, train=train, config={}),
    }
    seen = []

    def run_point(p):
        seen.append(p)
        return results.get(p), str(tmp_path / p.label)

    more = [*points, Point(epochs=2.0, learning_rate=5e-5)]
    scores, runs, metric = selection.score(more, run_point)
    assert seen == more and metric == "primary (f1/accuracy)"
    assert scores == {points[0]: 0.81, points[1]: None, more[2]: None}
    assert runs[points[1]] == {"status": "failed", "run": str(tmp_path / points[1].label), "train_s": None}
    assert runs[more[2]]["status"] == "no result" and runs[points[0]]["train_s"] == 12.5
    rec = selection.record("direct", more, scores, runs, {}, metric)
    assert rec["chosen"] == points[0].as_dict() and rec["failed"] == 2


def test_the_teachers_keep_the_published_schedule_whatever_a_tasks_own_recipe_says(script, tmp_path):
    """The teacher job task_runs starts (no --teacher given) trains at minilm_l6's model-wide recipe, which the
    published teachers ran, also on MRPC, whose own entry in the model file (issue #20) is another rate."""
    from bench.engine import resolve_hyper

    model = compose(["model=minilm_l6"]).model.recipe
    published = (model.learning_rate, model.batch_size, model.epochs, model.warmup, model.weight_decay)
    assert published == (5e-5, 32, 3.0, 0.1, 0.01)
    for task in ("sst2", "mrpc"):
        calls, failures = [], []
        args = script.parse(["--data", str(GLUE_DIR), "--tasks", task, "--out", str(tmp_path)])
        script.task_runs(task, args, tmp_path, failures, {}, job=lambda n, o: calls.append((n, o)))  # returns None
        assert [n for n, _ in calls] == [f"{task}_teacher"]  # a teacher that did not train stops the task
        h = resolve_hyper(compose(calls[0][1]))
        assert (h.learning_rate, h.batch_size, h.epochs, h.warmup, h.weight_decay) == published
        assert "train.save_checkpoint=true" in calls[0][1]
    # the pin is needed: MRPC's own entry in minilm_l6's recipe is another rate
    assert resolve_hyper(compose(["model=minilm_l6", "task=mrpc"])).learning_rate != model.learning_rate
