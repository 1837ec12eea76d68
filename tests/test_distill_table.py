"""The distillation table (bench/report/distillation.py, `bench report`'s distillation section) on real tiny distill
runs (and copies of them for re-runs, skipped records and failed seeds). Split from test_distill_runs.py, whose tiny
teachers it reuses; the benchmark script's failure exit and the variant names: test_distill_script.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_distill_runs import distill_cfg

from bench.distill import teacher
from bench.runner import run


@pytest.fixture(scope="module")
def table_runs(teachers, tmp_path_factory):
    """Real tiny distill runs for the distillation table: direct and prediction-layer, seeds 1 and 2; prediction at
    T=4 (seed 1); one run that failed (a teacher of another task)."""
    tmp = tmp_path_factory.mktemp("table")
    root = tmp / "runs"

    def go(name, *extra, teacher_task="sst2"):
        cfg = distill_cfg(
            teachers, tmp, *extra, "distill.layers=[2,4]", "train.learning_rate=1e-3", teacher_task=teacher_task
        )
        cfg.out_dir = str(root / name)
        return run(cfg)

    got = {}
    for seed in (1, 2):
        for v in ("direct", "prediction"):
            got[v, seed] = go(f"{v}{seed}", f"+distill={v}", f"train.seed={seed}")
    got["hot"] = go("hot", "+distill=prediction", "train.seed=1", "distill.temperature=4")
    with pytest.raises(teacher.TeacherError):  # recorded failed, then re-raised
        go("broken", "+distill=prediction", "train.seed=3", teacher_task="rte")
    return root, got


def _copy_run(root, src, dst, **changes):
    """A copy of a real run folder with some result fields changed (a re-run, a skipped record, a failed seed)."""
    import shutil

    shutil.copytree(root / src, root / dst)
    path = root / dst / "result.json"
    r = json.loads(path.read_text())
    for dotted, value in changes.items():
        node, *rest = dotted.split("__")
        target = r
        for k in [node, *rest][:-1]:
            target = target[k]
        target[[node, *rest][-1]] = value
    path.write_text(json.dumps(r))
    return root / dst


def test_distillation_table_pairs_by_seed_averages_seeds_and_shows_failures(table_runs):
    import numpy as np

    from bench.report import stats
    from bench.report.distillation import frame
    from bench.schema import read

    root, got = table_runs
    df = frame(root, n_boot=200)
    main = df[df.teacher.str.endswith("sst2")]
    assert list(main.variant) == [
        "trivial baseline",
        "teacher",
        "fine-tuned directly",
        "prediction layer (distill.temperature=1.0)",
        "prediction layer (distill.temperature=4.0)",
    ]
    pred = main[main.variant == "prediction layer (distill.temperature=1.0)"].iloc[0]
    devs = [got["prediction", s].metrics["primary"] for s in (1, 2)]
    diffs = [100 * (got["prediction", s].metrics["primary"] - got["direct", s].metrics["primary"]) for s in (1, 2)]
    assert pred.seeds == 2 and pred.pairs == 2 and pred.dev == pytest.approx(np.mean(devs))
    assert pred.dev_std == pytest.approx(np.std(devs, ddof=1))
    assert pred.vs_direct_points == pytest.approx(np.mean(diffs))
    # the interval is over both seeds and the dev examples, each seed's run paired with that seed's direct run
    pairs = [(read(root / f"prediction{s}" / "result.json"), read(root / f"direct{s}" / "result.json")) for s in (1, 2)]
    ci = stats.compare_seeds(pairs, n_boot=200)
    assert ci["n"] == 32 and ci["seeds"] == 2 and ci["diff"] == pytest.approx(np.mean(diffs) / 100)
    assert (pred.ci_low, pred.ci_high) == pytest.approx((100 * ci["low"], 100 * ci["high"]))
    # two seeds, not three: flagged on the row, never a silent mean; so is the direct fine-tune's
    # (a stage timed beside other load adds its own flag, and so does a speed-up timed too briefly to judge:
    # these tiny runs share the machine with whatever runs, and time their models for well under a second)
    # tiny random students: each run's own flags (a dev slice, no better than trivial) carried with their seeds
    flags = [f for f in pred.flag.split("; ") if "other load" not in f and "not judged for load" not in f]
    carried = [f for f in flags if f.endswith(" in 2 of 2 runs: seed 1, seed 2")]
    assert "validation: first 32 of 872 rows (data.max_eval_samples) in 2 of 2 runs: seed 1, seed 2" in carried
    assert "no better than trivial in 2 of 2 runs: seed 1, seed 2" in carried
    assert [f for f in flags if f not in carried] == [
        next(f for f in flags if f.startswith("no better than trivial over 2 seeds: ")),
        "2 ok seeds (fewer than 3)",
    ] and "2 ok seeds" in main.iloc[2].flag
    # the trivial row: the best trivial predictor of the runs' own trivial sections, on the same dev rows
    trivial = main[main.variant == "trivial baseline"].iloc[0]
    t = got["direct", 1].trivial
    assert trivial.dev == pytest.approx(t["predictors"][t["vs_best"]["best"]]["metrics"]["primary"])
    assert t["vs_best"]["best"] in trivial.status and np.isnan(trivial.seeds)
    # a distill-only setting (the temperature) does not cut the run off from the direct fine-tune
    hot = main[main.variant == "prediction layer (distill.temperature=4.0)"].iloc[0]
    assert hot.pairs == 1 and hot.vs_direct_points == pytest.approx(
        100 * (got["hot"].metrics["primary"] - got["direct", 1].metrics["primary"])
    )
    teacher_row = main[main.variant == "teacher"].iloc[0]
    infos = [got[k].train["distill"] for k in got]
    assert teacher_row.dev == pytest.approx(infos[0]["teacher_metrics"]["primary"])
    assert teacher_row.p50_ms == pytest.approx(np.mean([d["efficiency"]["teacher"]["p50_ms"] for d in infos]))
    assert teacher_row.train_s == infos[0]["teacher_train_seconds"] is not None
    broken = df[df.teacher.str.endswith("rte")]
    assert list(broken.variant) == ["teacher", "prediction layer"] and np.isnan(broken.iloc[1].dev)
    assert "seed 3: failed" in broken.iloc[1].status and "rte" in broken.iloc[1].status


def test_distillation_table_reruns_skipped_records_missing_pairs_and_bad_predictions(table_runs, tmp_path):
    import shutil

    from bench.report.distillation import frame

    root = tmp_path / "runs"
    shutil.copytree(table_runs[0], root)
    later = "2099-01-01T00:00:00+00:00"
    # a failed re-run of direct seed 1 (newer), a skipped record of prediction seed 1 (a resumed sweep), a failed
    # seed 3 of the same prediction variant: the direct row and the pairing keep the ok runs; the failures are named
    _copy_run(
        root,
        "direct1",
        "direct1_again",
        status="failed",
        started_at=later,
        error={"type": "FloatingPointError", "message": "loss is nan at step 2"},
    )
    _copy_run(root, "prediction1", "prediction1_resumed", status="skipped", started_at=later)
    _copy_run(
        root,
        "prediction2",
        "prediction3",
        status="interrupted",
        started_at=later,
        config__train__seed=3,
        error={"type": "KeyboardInterrupt", "message": "SIGTERM"},
    )
    shutil.rmtree(root / "direct2")  # seed 2 has no direct partner now
    preds = [json.loads(line) for line in (root / "prediction1" / "predictions.jsonl").read_text().splitlines()]
    preds[0]["prediction"] = None
    (root / "prediction1" / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    df = frame(root, n_boot=100)
    main = df[df.teacher.str.endswith("sst2")]
    direct = main[main.variant == "fine-tuned directly"].iloc[0]
    assert direct.seeds == 1 and direct.dev == pytest.approx(table_runs[1]["direct", 1].metrics["primary"])
    assert "seed 1: failed run in" in direct.status and "set aside for the ok one" in direct.status
    pred = main[main.variant == "prediction layer (distill.temperature=1.0)"].iloc[0]
    assert pred.seeds == 2 and pred.pairs == 1  # skipped record is not a run; seed 2 lost its partner
    assert "seed 3: interrupted (SIGTERM)" in pred.status
    assert np.isnan(pred.ci_low) and "no paired interval" in pred.status  # the null prediction: no interval, no crash
    assert "no interval against trivial over 2 seeds: a run's predictions hold a missing" in pred.flag
    from bench.report import distill_text, render

    assert "(1 of 2 seeds paired)" in render.markdown(distill_text.distill_table(df))
    from conftest import compile_tex

    (tmp_path / "distillation.tex").write_text(render.latex(distill_text.distill_table(df), "distillation"))
    compile_tex(tmp_path, ["distillation.tex"])  # the status cells hold errors, paths and seeds' reasons


def test_distillation_table_keeps_weights_apart_normalises_teacher_paths_and_gives_every_failure_a_reason(
    table_runs, tmp_path
):
    import shutil

    from bench.report import distillation as distill_table

    root = tmp_path / "runs"
    shutil.copytree(table_runs[0], root)
    teacher_dir = json.loads((root / "direct1" / "result.json").read_text())["config"]["distill"]["teacher"]
    # the same teacher named by its checkpoint/ folder: the same group (a third direct seed)
    _copy_run(root, "direct1", "direct9", config__train__seed=9, config__distill__teacher=f"{teacher_dir}/checkpoint/")
    # other weights, same seed as an existing run: a row of its own, never merged or replaced
    _copy_run(root, "prediction2", "prediction2_hard", config__distill__weights__hard=0.5)
    # failed without an exception (a metric that was not finite): the reason is the status check's
    _copy_run(
        root,
        "prediction1",
        "prediction11",
        status="failed",
        config__train__seed=11,
        error=None,
        failures=["metric acc is not finite"],
    )
    df = distill_table.frame(root, n_boot=50)
    main = df[df.teacher.str.endswith("sst2")]
    assert main[main.variant == "fine-tuned directly"].iloc[0].seeds == 3
    hard = main[main.variant.str.startswith("prediction layer (+hard) [hard=0.5]")]
    assert len(hard) == 1 and hard.iloc[0].seeds == 1 and hard.iloc[0].pairs == 1
    plain = main[main.variant == "prediction layer (distill.temperature=1.0)"].iloc[0]
    assert plain.seeds == 2 and "seed 11: failed (metric acc is not finite)" in plain.status and plain.failed
    assert distill_table.main([str(root), "--bootstrap", "20"]) == 1
    # a distilled run with no direct partner is a note, not a failure: exit 0
    alone = tmp_path / "alone"
    shutil.copytree(root / "prediction1", alone / "prediction1")
    lone = distill_table.frame(alone, n_boot=20)
    assert "no direct fine-tune of this student" in lone.iloc[2].status and not lone.failed.any()
    assert distill_table.main([str(alone)]) == 0


def test_a_transfer_set_variant_is_a_row_of_its_own_never_merged_with_the_plain_one(table_runs, tmp_path):
    """(b) and (b+T) differ only in distill.transfer.*: both rows are kept, each with its own seeds; merged, the
    newer (b+T) runs would stand in the (b) row and (b) vanish."""
    import shutil

    from bench.report import distillation as distill_table

    root = tmp_path / "runs"
    shutil.copytree(table_runs[0], root)
    shutil.rmtree(root / "broken")
    for seed in (1, 2):
        _copy_run(
            root,
            f"prediction{seed}",
            f"prediction_transfer{seed}",
            config__distill__transfer__sources=["rest"],
            config__distill__transfer__max_rows=20000,
            started_at="2099-01-01T00:00:00+00:00",  # newer than the plain runs: the one a merge would keep
            metrics__primary=0.123,
        )
    df = distill_table.frame(root, n_boot=20)
    pred = df[df.variant.str.startswith("prediction layer") & ~df.variant.str.contains("temperature=4")]
    plain = pred[pred.variant.str.contains("sources=[]", regex=False)]
    with_t = pred[pred.variant.str.contains("sources=[rest]", regex=False)]
    assert len(plain) == 1 and len(with_t) == 1, list(df.variant)
    assert plain.iloc[0].seeds == 2 and with_t.iloc[0].seeds == 2
    got = table_runs[1]
    assert plain.iloc[0].dev == pytest.approx(np.mean([got["prediction", s].metrics["primary"] for s in (1, 2)]))
    assert with_t.iloc[0].dev == pytest.approx(0.123)
    assert "prediction_transfer" not in plain.iloc[0].runs and "prediction_transfer" in with_t.iloc[0].runs


def test_tuned_arms_pair_at_their_own_choice_and_the_table_shows_each_selection(table_runs, tmp_path):
    """Each arm tuned on its holdout runs at its own schedule: the distilled runs pair with the tuned direct
    fine-tune all the same (untuned, the schedules would not match), and the choice, its grid and flags show."""
    import shutil

    from bench import selection
    from bench.report import distillation as distill_table

    root, got = tmp_path / "runs", table_runs[1]
    points = selection.grid([3e-5, 1e-4], [1])
    chosen = {"direct": points[1], "prediction": points[0]}
    for arm in ("direct", "prediction"):
        for seed in (1, 2):
            dst = shutil.copytree(table_runs[0] / f"{arm}{seed}", root / f"{arm}{seed}")
            r = json.loads((dst / "result.json").read_text())
            r["config"]["distill"]["prediction"]["learning_rate"] = chosen[arm].learning_rate
            (dst / "result.json").write_text(json.dumps(r))
    untuned = distill_table.frame(root, n_boot=50)
    assert not pd_notna(untuned[untuned.variant.str.startswith("prediction")].iloc[0].pairs)  # other schedules: no pair
    scores = {"direct": {points[0]: 0.55, points[1]: 0.6}, "prediction": {points[0]: 0.7, points[1]: None}}
    for arm in ("direct", "prediction"):
        rec = selection.record(arm, points, scores[arm], {}, {"holdout_rows": 5, "labelled_rows": 48, "seed": 1}, "acc")
        for seed in (1, 2):
            selection.write(root / f"{arm}{seed}", {**rec, "variant": arm})
    df = distill_table.frame(root, n_boot=50)
    pred = df[df.variant.str.startswith("prediction")].iloc[0]
    direct = df[df.variant.str.startswith("fine-tuned directly")].iloc[0]  # named by its schedule, which differs
    diffs = [100 * (got["prediction", s].metrics["primary"] - got["direct", s].metrics["primary"]) for s in (1, 2)]
    assert pred.pairs == 2 and pred.vs_direct_points == pytest.approx(np.mean(diffs)) and pd_notna(pred.ci_low)
    assert pred.selected == "lr 3e-05, 1 ep: holdout 70.0" and direct.selected == "lr 0.0001, 1 ep: holdout 60.0"
    assert "selection: 1 of 2 grid runs failed" in pred.flag and "selection" not in direct.flag
    md = distill_table.markdown(df)
    assert "Selection (" in md and "lr 3e-05 x 1 ep 55.0, lr 0.0001 x 1 ep 60.0" in md and "(no score)" in md
    # seeds run at different choices, or a record that cannot be read: flagged, never passed over
    selection.write(root / "direct2", {**rec, "chosen": points[0].as_dict()})
    (root / "prediction2" / selection.SELECTION_FILE).write_text("{")
    df = distill_table.frame(root, n_boot=20)
    assert "different selected settings" in df[df.variant.str.startswith("fine-tuned directly")].iloc[0].flag
    assert "selection record unreadable" in df[df.variant.str.startswith("prediction")].iloc[0].flag


def pd_notna(v) -> bool:
    return v is not None and not np.isnan(v)


def test_report_builds_the_distillation_table_and_loss_curves(table_runs, tmp_path):
    import io

    from bench.report import distillation as distill_table
    from bench.report import gather
    from bench.report.__main__ import build

    root, _ = table_runs
    log = io.StringIO()
    written = build(root, tmp_path / "report", ["md", "latex", "html"], n_boot=200, log=log)
    md = written["distillation.md"].read_text()
    assert "seed 3: failed" in md and "| prediction layer (distill.temperature=4.0) " in md
    assert "<h2 id='distillation'>Distillation</h2>" in written["report.html"].read_text()
    assert "\\begin{tabular}" in written["distillation.tex"].read_text()
    assert written["distill_loss_sst2.png"].stat().st_size > 1000 and "distill_loss_sst2.svg" in written
    assert "broken" in log.getvalue()  # still named among the skipped files of the other tables
    found = gather.find(root, io.StringIO())
    var = gather.variants(found)
    labels = {gather.label(r, var[id(r)]) for r in found}
    assert {
        "bert_base (2L student: fine-tuned directly)",
        "bert_base (2L student: prediction layer; distill.temperature=1.0)",
        "bert_base (2L student: prediction layer; distill.temperature=4.0)",
    } <= labels
    # the table alone: exit 1 when a run in it failed, 0 when all are ok, 2 when there is none
    assert distill_table.main([str(root), "--bootstrap", "50"]) == 1
    assert distill_table.main([str(root / "direct1"), "--bootstrap", "50"]) == 0
    assert distill_table.main([str(tmp_path / "report")]) == 2
    # bench report on a folder whose only run is a failed distill run: the table shows it, and exit 1
    from bench.report.__main__ import main as report_main

    only = tmp_path / "only_failed"
    only.mkdir()
    import shutil

    shutil.copytree(root / "direct1", only / "direct1")
    _copy_run(only, "direct1", "direct_failed", status="failed", failures=["metric acc is not finite"])
    shutil.rmtree(only / "direct1")
    assert report_main([str(only), "--format", "md", "--bootstrap", "20"]) == 1
    assert "failed (metric acc is not finite)" in (only / "report" / "distillation.md").read_text()


def test_the_table_command_writes_into_a_folder_and_refuses_a_missing_one_before_any_work(
    table_runs, tmp_path, monkeypatch, capsys
):
    from bench.report import distillation

    root, _ = table_runs
    folder = tmp_path / "out"
    folder.mkdir()
    distillation.main([str(root), "--out", str(folder), "--bootstrap", "50"])
    assert (folder / "table.md").read_text().startswith("| task")

    def no_work(*args, **kwargs):
        raise AssertionError("the bootstrap ran before --out was checked")

    monkeypatch.setattr(distillation, "frame", no_work)
    assert distillation.main([str(root), "--out", str(tmp_path / "nowhere" / "t.md")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
