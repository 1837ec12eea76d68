"""benchmarks/finetune_speed.py (issue 20): the ladder of levers from run_glue.py's recipe to the harness defaults,
the holdout choice of lr and epochs, paired speed-ups over repeats, and failed or disturbed runs shown as such.
The end-to-end test runs the real script on a tiny random BERT and real MRPC rows."""

from __future__ import annotations

import json

import pytest
from conftest import GLUE_DIR, load_script, tiny

from bench import schema, selection
from bench.config import compose
from bench.report import finetune_speed as report
from bench.selection import Point


@pytest.fixture(scope="module")
def script():
    return load_script("finetune_speed")


def test_the_ladder_goes_from_the_recipe_to_the_defaults_one_lever_at_a_time(script):
    rungs = script.ladder()
    assert len({r[0] for r in rungs}) == len(rungs)  # a key names one rung's runs and folders
    assert rungs[0][0] == report.RECIPE and rungs[0][3] == script.RECIPE and rungs[0][2] is None
    assert rungs[-1][0] == script.HARNESS and rungs[-1][3] == []  # no override left: the harness defaults
    keys = [o.split("=")[0] for o in script.RECIPE]
    undone = [k for lever in script.LEVERS for k in lever.undoes]
    assert sorted(undone) == sorted(keys)  # every recipe override is dropped by exactly one lever
    for (key, _, below, overrides), (prev_key, _, _, prev) in zip(rungs[1:], rungs[:-1]):
        assert below == prev_key
        lever = next(lv for lv in script.LEVERS if lv.key == key)
        assert [o for o in prev if o.split("=")[0] not in lever.undoes] == overrides and len(overrides) < len(prev)
    # the recipe row is run_glue.py's; the last rung composes to exactly what the harness runs by default
    recipe = compose([*script.BASE, *script.RECIPE]).train
    assert (recipe.padding, recipe.group_by_length, recipe.precision) == ("max_length", False, "fp32")
    assert (recipe.learning_rate, recipe.batch_size, recipe.epochs, recipe.warmup, recipe.weight_decay) == (
        2e-5, 32, 3, 0.0, 0.0)  # fmt: skip
    assert compose(script.BASE) == compose([*script.BASE, *rungs[-1][3]])


def test_pick_within_takes_the_cheapest_setting_the_holdout_cannot_tell_from_the_best():
    cheap, mid, best = Point(1.0, 1e-4), Point(2.0, 5e-5), Point(3.0, 5e-5)
    scores = {cheap: 0.80, mid: 0.835, best: 0.84}
    assert selection.pick(scores) == best
    assert selection.pick(scores, within=0.01) == mid  # 0.835 is within 0.01 of 0.84; 0.80 is not
    assert selection.pick(scores, within=0.05) == cheap
    for bad in (-0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="within"):
            selection.pick(scores, within=bad)
    rec = selection.record("harness", list(scores), scores, {}, {}, "primary", "train", 0.01)
    assert rec["chosen"] == mid.as_dict() and "within 0.01" in rec["tie_rule"] and rec["stage"] == "train"


def test_a_holdout_choice_equal_to_the_model_files_schedule_for_the_task_adds_no_rung(script):
    """The harness rung runs the model file's schedule for MRPC, its own entry (recipe.tasks) included: a choice
    equal to it is that rung, not another one; any other choice is a rung of its own."""
    from argparse import Namespace

    from bench.engine import resolve_hyper

    common = [*script.BASE]
    h = resolve_hyper(compose(common))
    assert script.model_schedule(common) == Point(h.epochs, h.learning_rate)
    assert h.source.startswith("mrpc (learning_rate)")  # MRPC's own rate, not the model-wide one
    args = Namespace(ladder=False, compile=False)
    assert [r[0] for r in script.rungs_for(args, common, Point(h.epochs, h.learning_rate))] == ["recipe", "harness"]
    other = Point(h.epochs, compose(["model=minilm_l6"]).model.recipe.learning_rate)  # the model-wide rate
    assert [r[0] for r in script.rungs_for(args, common, other)] == ["recipe", "harness", "chosen"]


@pytest.fixture(scope="module")
def tiny_run(script, tmp_path_factory):
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    glue_dir = GLUE_DIR
    out = tmp_path_factory.mktemp("finetune_speed")
    extra = [*tiny("bert"), "data.max_train_samples=40", "data.max_eval_samples=24", "train.max_steps=2"]
    argv = ["--data", str(glue_dir), "--out", str(out), "--repeats", "2", "--ladder", "--select"]
    argv += ["--grid-lr", "1e-4", "--grid-epochs", "1", "2", "--within", "1", "--extra", *extra]
    return script, argv, out, script.main(argv)


def test_the_script_runs_every_rung_twice_and_writes_a_paired_summary(tiny_run):
    script, _, out, rc = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == []
    keys = [r["key"] for r in summary["rows"]]
    # within 1 on the holdout every point ties: the cheapest (1 epoch) is chosen, and it is not the model's 3
    assert json.loads((out / selection.SELECTION_FILE).read_text())["chosen"] == {"learning_rate": 1e-4, "epochs": 1.0}
    assert keys == [k for k, *_ in script.ladder()] + ["chosen"]
    for row in summary["rows"]:
        assert row["runs"] == 2 and row["failed"] == 0 and row["wall_s"] > 0
        assert (out / f"{row['key']}_r1" / "result.json").is_file() and (out / f"{row['key']}_r2").is_dir()
    h_key = script.HARNESS
    recipe, harness = summary["rows"][0], next(r for r in summary["rows"] if r["key"] == h_key)
    assert recipe["speedup"] == pytest.approx(1.0) and recipe["step"] is None
    # the harness's speed-up is the mean of the two paired ratios, read back from the result files
    walls = {k: [schema.read(out / f"{k}_r{i}" / "result.json").duration_s for i in (1, 2)] for k in ("recipe", h_key)}
    paired = [walls["recipe"][i] / walls[h_key][i] for i in (0, 1)]
    assert harness["speedup"] == pytest.approx(sum(paired) / 2)
    assert harness["speedup_range"] == pytest.approx([min(paired), max(paired)])
    assert "run_glue.py recipe" in (out / "table.md").read_text() and summary["verdict"]["target"] in (3.0, 5.0)
    for k in ("recipe", "harness"):
        train = schema.read(out / f"{k}_r1" / "result.json").train.model_dump()
        assert train["load"]["wall_s"] > 0 and "disturbed" in train["load"] and train["compiled"] is False
    # the exit code is the claim: faster than the recipe and no more than 1 F1 point below it
    h, b = next(r for r in summary["rows"] if r["key"] == "harness"), summary["rows"][0]
    assert rc == (0 if h["speedup"] > 1 and h["f1"][0] - b["f1"][1] >= -0.01 else 1)
    # the order alternates: the first pass runs the recipe first, the second runs it last
    started = {k: [schema.read(out / f"{k}_r{i}" / "result.json").started_at for i in (1, 2)] for k in keys}
    assert min(started, key=lambda k: started[k][0]) == "recipe"
    assert max(started, key=lambda k: started[k][1]) == "recipe"


def test_a_second_invocation_reuses_every_run(tiny_run, capsys):
    script, argv, out, _ = tiny_run
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    script.main(argv)
    assert sorted(p.name for p in out.iterdir()) == before  # nothing re-ran into a new folder
    assert capsys.readouterr().out.count("kept the ok result") == 2 + 2 * 7


def _result(out, key, rep, disturbed=False, **update):
    """A real run's record with the figures under test set (and its training load set: the tiny runs' own load
    depends on what else this machine was doing)."""
    r = schema.read(out / f"{key}_r{rep}" / "result.json")
    train = r.train.model_dump()
    train["load"] = {**(train.get("load") or {}), "disturbed": disturbed}
    return r.model_copy(update={**update, "train": schema.TrainInfo(**train)})


def test_failed_and_disturbed_runs_are_shown_and_never_judged(tiny_run):
    script, _, out, _ = tiny_run
    rungs = [(report.RECIPE, "recipe", None), (script.HARNESS, "harness defaults", report.RECIPE)]
    base = [_result(out, "recipe", i, duration_s=600.0, metrics={"acc": 0.73, "f1": 0.83}) for i in (1, 2)]
    scores = {"acc": 0.78, "f1": 0.85}
    fast = [_result(out, "harness", i, duration_s=d, metrics=scores) for i, d in ((1, 100.0), (2, 150.0))]
    s = report.summarise(rungs, {"recipe": base, "harness": fast})
    row = s["rows"][1]
    assert row["speedup"] == pytest.approx(5.0) and row["speedup_range"] == pytest.approx((4.0, 6.0))
    assert row["step"] == pytest.approx(600 / 125)
    assert report.verdict(s, script.HARNESS, native_bf16=True)["met"] is True
    assert report.verdict(s, script.HARNESS, native_bf16=False)["met"] is True
    worse = [r.model_copy(update={"metrics": {"acc": 0.78, "f1": 0.82}}) for r in fast]
    assert report.verdict(report.summarise(rungs, {"recipe": base, "harness": worse}), "harness", False)["met"] is False
    # a failed repeat: counted in the row, and the target is not judged
    s = report.summarise(rungs, {"recipe": base, "harness": [fast[0], None]})
    assert s["rows"][1]["failed"] == 1 and report.verdict(s, "harness", True)["met"] is None
    assert "**1 of 2 failed**" in report.table(s, "m", report.verdict(s, "harness", True))
    # a repeat trained beside other load: flagged, and not judged either
    loud = _result(out, "harness", 2, disturbed=True, duration_s=150.0, metrics=scores)
    s = report.summarise(rungs, {"recipe": base, "harness": [fast[0], loud]})
    v = report.verdict(s, "harness", True)
    assert s["rows"][1]["disturbed"] == 1 and v["met"] is None and "other load" in v["why"]
    assert "**1 disturbed**" in report.table(s, "m", v) and "not judged" in report.table(s, "m", v)


def test_the_documented_command_uses_only_real_options(script, capsys):
    from conftest import ROOT

    doc = (ROOT / "docs" / "finetune.md").read_text()
    lines = [ln for ln in doc.splitlines() if "benchmarks/finetune_speed.py" in ln and ln.startswith(".venv")]
    assert lines, "docs/finetune.md shows no finetune_speed.py command"
    with pytest.raises(SystemExit):
        script.main(["--help"])
    text = capsys.readouterr().out
    for flag in {f for ln in lines for f in ln.split() if f.startswith("--")}:
        assert flag in text, f"docs/finetune.md shows {flag}, which finetune_speed.py --help does not list"


@pytest.mark.slow
def test_a_compiled_training_run_is_recorded_as_such(script, tmp_path):
    """--compile's rung really trains through torch.compile (inductor, on this CPU) and says so."""
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    extra = [*tiny("bert"), "data.max_train_samples=40", "data.max_eval_samples=24", "train.max_steps=3"]
    script.main(["--data", str(GLUE_DIR), "--out", str(tmp_path), "--repeats", "1", "--compile", "--extra", *extra])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failures"] == [] and [r["key"] for r in summary["rows"]] == ["recipe", "harness", "compile"]
    compiled = schema.read(tmp_path / "compile_r1" / "result.json")
    assert compiled.status == "ok" and compiled.train.model_dump()["compiled"] is True
    assert compiled.config["train"]["compile"] is True and summary["rows"][2]["compiled"] is True
