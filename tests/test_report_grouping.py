"""Reports group honestly: seeds only over equal configs, variants labelled, baselines left out, bad files skipped."""

import io
import json

import pandas as pd
import pytest

from bench.config import compose
from bench.report import gather, stats, tables
from bench.report.__main__ import main
from bench.results import _clean


def _write(root, name, seed, acc, max_train=None, status="ok", preds=None, **over):
    cfg = compose(
        ["model=minilm_l6", "task=rte", f"train.seed={seed}"]
        + ([f"data.max_train_samples={max_train}"] if max_train else [])
    )
    from omegaconf import OmegaConf

    data = {
        "schema_version": 1,
        "status": status,
        "mode": "finetune",
        "config": _clean(OmegaConf.to_container(OmegaConf.structured(cfg))),
        "model": {"name": "minilm_l6", "weights": "pretrained", "parameters": 22_000_000},
        "task": {"name": "rte", "eval_splits": ["validation"]},
        "metrics": {"acc": acc, "primary": acc},
        "started_at": "2026-01-01T00:00:00.000000+00:00",
        **over,
    }
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(data))
    if preds is not None:
        (folder / "predictions.jsonl").write_text(
            "".join(
                json.dumps({"split": "validation", "idx": i, "label": y, "prediction": p}) + "\n"
                for i, (y, p) in enumerate(preds)
            )
        )
    return folder


def test_seeds_average_only_over_equal_configs_and_variants_are_labelled(tmp_path):
    _write(tmp_path, "a", 1, 0.60)
    _write(tmp_path, "b", 2, 0.70)
    _write(tmp_path, "c", 1, 0.55, max_train=1000)  # another variant, not a third seed
    _write(tmp_path / "baselines", "cpu", 1, 0.10)  # left out unless asked for
    rs, df, _ = gather.load_all(tmp_path, io.StringIO())
    agg = gather.seeds(df)
    acc = agg[agg.metric == "acc"].set_index("model")
    assert acc.loc["minilm_l6 (data.max_train_samples=null)", "n"] == 2 and acc.loc[
        "minilm_l6 (data.max_train_samples=null)", "mean"
    ] == pytest.approx(0.65)
    assert acc.loc["minilm_l6 (data.max_train_samples=1000)", "n"] == 1
    glue = tables.glue_table(agg, _, {}, with_published=False).text.set_index("model")
    assert glue.loc["minilm_l6 (data.max_train_samples=1000)", "RTE"] == "55.0"
    included = gather.find(tmp_path, io.StringIO(), include=["baselines"])
    assert len(included) == 4 and len(rs) == 3


def test_bad_files_are_skipped_with_one_line_and_the_report_still_builds(tmp_path, capsys):
    _write(tmp_path, "ok", 1, 0.6, preds=[(0, 0), (1, 1)])
    _write(tmp_path, "text_error", 2, 0.6, status="failed", error="a string, not an object")
    _write(tmp_path, "no_name", 3, 0.6, model={"weights": "pretrained"})
    (tmp_path / "null").mkdir()
    (tmp_path / "null" / "result.json").write_text("null")
    corrupt = _write(tmp_path, "corrupt_preds", 4, 0.5, max_train=10)
    (corrupt / "predictions.jsonl").write_bytes(b'{"split": \xff')
    log = io.StringIO()
    found = gather.find(tmp_path, log)
    lines = log.getvalue().strip().splitlines()
    assert len(found) == 2 and len(lines) == 3
    assert any("no_name" in l and "model.name" in l for l in lines)
    assert any("text_error" in l and "a string, not an object" in l for l in lines)
    # the report still builds; exit 1 says some result files could not be read (issue #16)
    assert main([str(tmp_path), "--out", str(tmp_path / "report"), "--format", "md,csv", "--bootstrap", "50"]) == 1
    assert (tmp_path / "report" / "results.csv").is_file()


def test_pairs_only_on_the_same_dev_examples(tmp_path):
    same = [(0, 0), (1, 1), (1, 0), (0, 0)] * 10
    _write(tmp_path, "a", 1, 0.75, preds=same)
    _write(
        tmp_path, "b", 1, 0.70, max_train=100, preds=[(y, 1 - p if i % 7 == 0 else p) for i, (y, p) in enumerate(same)]
    )
    _write(tmp_path, "c", 1, 0.65, max_train=50, preds=[(1 - y, p) for y, p in same])  # other gold labels
    pairs = stats.pairwise(gather.find(tmp_path, io.StringIO()), n_boot=100)
    assert len(pairs) == 1
    assert {pairs.iloc[0].model_a, pairs.iloc[0].model_b} == {
        "minilm_l6 (data.max_train_samples=null)",
        "minilm_l6 (data.max_train_samples=100)",
    }


def test_a_result_written_before_a_key_existed_is_the_same_variant_as_one_at_its_default():
    from omegaconf import OmegaConf

    from bench.report import naming

    new = OmegaConf.to_container(OmegaConf.structured(compose(["model=minilm_l6", "task=rte"])))
    old = json.loads(json.dumps(new))
    del old["train"]["compile"]  # results from before train.compile existed
    assert naming.differing([naming.flat(old), naming.flat(new)]) == []
    on = json.loads(json.dumps(new))
    on["train"]["compile"] = True
    assert naming.differing([naming.flat(old), naming.flat(on)]) == ["train.compile"]
    # any key, not a list of known ones: a whole node an older result lacks reads at its defaults too
    older = json.loads(json.dumps(new))
    del older["data"]["holdout"], older["distill"]["transfer"]
    assert naming.differing([naming.flat(older), naming.flat(new)]) == []
    moved = json.loads(json.dumps(new))
    moved["data"]["dir"] = "/elsewhere/glue"  # a location: the data's rows as found tell data apart instead
    assert naming.differing([naming.flat(moved), naming.flat(new)]) == []


def test_a_recipes_prose_sets_no_variant_apart_and_its_values_do():
    from omegaconf import OmegaConf

    from bench.report import naming

    new = OmegaConf.to_container(OmegaConf.structured(compose(["model=minilm_l6", "task=mrpc"])))
    assert new["model"]["recipe"]["tasks"]["mrpc"]["source"]  # the committed model file has an MRPC entry
    reworded = json.loads(json.dumps(new))
    reworded["model"]["recipe"]["source"] = "reworded"
    reworded["model"]["recipe"]["tasks"]["mrpc"]["source"] = "reworded too"
    assert naming.differing([naming.flat(new), naming.flat(reworded)]) == []
    older = json.loads(json.dumps(new))
    del older["model"]["recipe"]["tasks"]  # a result from before MRPC had its own rate: it ran another schedule
    assert naming.differing([naming.flat(older), naming.flat(new)]) == ["model.recipe.tasks.mrpc.learning_rate"]


def test_a_seed_run_again_counts_once_with_its_newest_run(tmp_path):
    same = [(0, 0), (1, 1), (1, 0), (0, 0)] * 10
    _write(tmp_path, "old", 1, 0.50, preds=[(y, 1 - p) for y, p in same], started_at="2026-01-01T00:00:00+00:00")
    _write(tmp_path, "new", 1, 0.75, preds=same, started_at="2026-01-02T00:00:00+00:00")
    _write(tmp_path, "seed2", 2, 0.65, started_at="2026-01-01T12:00:00+00:00")
    _write(tmp_path, "other", 1, 0.60, max_train=100, preds=same, started_at="2026-01-01T00:00:00+00:00")
    log = io.StringIO()
    rs = gather.find(tmp_path, log)
    agg = gather.seeds(gather.metrics_frame(rs, log))
    acc = agg[agg.metric == "acc"].set_index("model")
    full = "minilm_l6 (data.max_train_samples=null)"
    assert acc.loc[full, "n"] == 2 and acc.loc[full, "mean"] == pytest.approx(0.70)  # 0.75 and 0.65, not 0.50
    assert acc.loc["minilm_l6 (data.max_train_samples=100)", "n"] == 1
    aside = [line for line in log.getvalue().splitlines() if line.startswith("set aside")]
    assert len(aside) == 1 and "old" in aside[0] and "new" in aside[0] and "seed 1" in aside[0]
    # the paired comparison takes the seed's newest run too: 0.75 against 0.60, not 0.50
    pairs = stats.pairwise(rs, n_boot=50)
    assert len(pairs) == 1 and pairs.iloc[0].model_a == full


def test_the_same_experiment_pinned_or_from_the_recipe_elsewhere_is_one_variant(tmp_path):
    hyper = {"learning_rate": 1e-4, "batch_size": 32, "epochs": 3.0, "warmup": 0.1, "weight_decay": 0.01}
    rows = {"train": 2490, "validation": 277}
    train = lambda h: {"hyper": {**h, "max_seq_length": 128, "source": "prose"}}  # noqa: E731
    task = {"name": "rte", "eval_splits": ["validation"], "splits": rows}
    _write(tmp_path, "recipe", 1, 0.60, train=train(hyper), task=task)
    pinned = _write(tmp_path, "pinned", 2, 0.70, train=train(hyper), task=task)
    cfg = json.loads((pinned / "result.json").read_text())
    cfg["config"]["train"].update(learning_rate=1e-4, batch_size=32, epochs=3, warmup=0.1, weight_decay=0.01)
    cfg["config"]["data"]["dir"] = "/another/machine/glue"
    del cfg["config"]["distill"]  # a node that fine-tuning does not read, and an older result lacks
    (pinned / "result.json").write_text(json.dumps(cfg))
    _write(tmp_path, "faster", 3, 0.50, train=train({**hyper, "learning_rate": 5e-5}), task=task)
    _write(tmp_path, "fewer_rows", 4, 0.55, train=train(hyper), task={**task, "splits": {**rows, "train": 1000}})
    # an evaluate run (no schedule of its own) in the same group leaves the fine-tunes' grouping as it is
    _write(tmp_path, "scored", 5, 0.58, mode="evaluate", task={"name": "sst2", "eval_splits": ["validation"]})
    agg = gather.seeds(gather.metrics_frame(gather.find(tmp_path, io.StringIO())))
    acc = agg[agg.metric == "acc"].set_index("model")["n"].to_dict()
    assert acc == {
        "minilm_l6 (rows[rte]=train:2490/validation:277, train.learning_rate[rte]=0.0001)": 2,
        "minilm_l6 (rows[rte]=train:2490/validation:277, train.learning_rate[rte]=5e-05)": 1,
        "minilm_l6 (rows[rte]=train:1000/validation:277, train.learning_rate[rte]=0.0001)": 1,
        "minilm_l6": 1,  # the evaluate run on SST-2: no setting of RTE's runs is one of its own
    }


def test_significance_pairs_every_seed_the_variants_share(tmp_path):
    same = [(0, 0), (1, 1), (1, 1), (0, 0)] * 10  # all right
    worse = [(y, 1 - p if i % 5 == 0 else p) for i, (y, p) in enumerate(same)]  # every fifth wrong
    for seed in (1, 2, 3):
        _write(tmp_path, f"a{seed}", seed, 0.5, preds=same)
        _write(tmp_path, f"b{seed}", seed, 0.45, max_train=100, preds=worse)
    _write(tmp_path, "c7", 7, 0.40, max_train=50, preds=worse)  # no seed in common with the others
    pairs = stats.pairwise(gather.find(tmp_path, io.StringIO()), n_boot=200).set_index(["model_a", "model_b"])
    full, small, tiny_ = (f"minilm_l6 (data.max_train_samples={n})" for n in ("null", "100", "50"))
    ab = pairs.loc[(full, small)]
    assert ab.pairing == "3 seeds paired" and ab.seeds == 3 and ab["diff"] > 0
    assert pairs.loc[(small, tiny_)].pairing == "no seed in common: seed 1 vs seed 7"
    text = __import__("bench.report.__main__", fromlist=["significance_text"]).significance_text(pairs.reset_index())
    assert set(text.seeds) == {"3 seeds paired", "no seed in common: seed 1 vs seed 7"}


def test_a_failed_seed_is_a_flag_and_a_model_whose_runs_all_failed_a_row_in_every_format(tmp_path, capsys):
    """A failed or interrupted run was left out of every table but the distillation one, with exit 0: a mean over
    two seeds passed for the whole experiment, and a model whose runs all failed had no row at all."""
    _write(tmp_path, "s1", 1, 0.60)
    _write(tmp_path, "s2", 2, 0.70)
    _write(tmp_path, "s3", 3, None, status="failed", failures=["metric acc is not finite (nan)"])
    gone = {"name": "distilbert", "weights": "pretrained", "parameters": 66_000_000}
    _write(tmp_path, "d1", 1, None, status="interrupted", model=gone, failures=["SIGTERM"])
    out = tmp_path / "report"
    assert main([str(tmp_path), "--out", str(out), "--format", "md,latex,html,csv", "--bootstrap", "20"]) == 0
    md = (out / "glue.md").read_text()
    minilm = next(line for line in md.splitlines() if line.startswith("| minilm_l6"))
    assert "65.0±7.1" in minilm and "RTE: 1 run failed (seed 3: metric acc is not finite (nan))" in minilm
    distil = next(line for line in md.splitlines() if line.startswith("| distilbert"))
    assert "| failed " in distil and "RTE: 1 run interrupted (seed 1: SIGTERM)" in distil
    assert "RTE: 1 run failed (seed 3" in (out / "glue.tex").read_text()
    assert "RTE: 1 run interrupted (seed 1: SIGTERM)" in (out / "report.html").read_text()
    csv = pd.read_csv(out / "results.csv")
    lost = csv[csv.kind == "failed"].set_index("model")
    assert lost.loc["minilm_l6", "status"] == "failed" and lost.loc["minilm_l6", "seed"] == 3
    assert lost.loc["distilbert", "reason"] == "SIGTERM"
    assert "RTE: 1 run failed" in capsys.readouterr().out  # the console shows glue.md
    only = tmp_path / "only"
    _write(only, "x", 1, None, status="failed", failures=["boom"])
    assert main([str(only), "--format", "md", "--bootstrap", "20"]) == 1  # no run succeeded
    assert "| failed " in (only / "report" / "glue.md").read_text()


def test_a_latency_run_that_failed_is_a_row_of_the_efficiency_table():
    failed = pd.DataFrame(
        [
            {"model": "mobilebert (weights: random)", "model_name": "mobilebert", "weights": "random"}
            | {"mode": "latency", "task": "sst2", "seed": None, "status": "failed", "reason": "out of\nmemory"}
            | {"run": "r", "machine": "cls"}
        ],
        columns=gather.FAILED_COLUMNS,
    )
    t = tables.efficiency_table(pd.DataFrame(), failed)
    row = t.text.iloc[0]
    assert row.model == "mobilebert (weights: random)" and row.status == "failed" and row.error == "out of memory"
    assert row.p50_ms == "-" and row.machine == "cls"


def test_skipped_records_and_failed_latency_runs_are_no_failures_of_a_scored_row(tmp_path):
    """A skipped record points at a run that finished elsewhere (a sweep's job when bench.resume=auto found it):
    not a failure. A latency run that failed is an efficiency row, never a row or column of the GLUE table."""
    _write(tmp_path, "s1", 1, 0.60)
    _write(tmp_path, "s2", 2, None, status="skipped")
    lat = {"name": "tinybert_4l", "weights": "random", "parameters": 14_000_000}
    _write(tmp_path, "lat", 1, None, status="failed", failures=["boom"], mode="latency", model=lat)
    out = tmp_path / "report"
    assert main([str(tmp_path), "--out", str(out), "--format", "md,csv", "--bootstrap", "20"]) == 0
    md = (out / "glue.md").read_text()
    assert "skipped" not in md and "| failed" not in md and "tinybert_4l" not in md
    assert "tinybert_4l (weights: random)" in (out / "efficiency.md").read_text()
    only = tmp_path / "only_skipped"
    _write(only, "s", 1, None, status="skipped")
    with pytest.raises(SystemExit, match="no usable result.json"):
        main([str(only), "--format", "md"])


def test_a_failed_seed_carries_its_model_s_label_when_the_ok_runs_recorded_their_schedule(tmp_path):
    """Only a finished training records train.hyper: a seed that failed before had none, which turned the resolved
    schedules off for the whole group and labelled the failed seed as another variant, a row of its own."""
    hyper = {"train": {"hyper": {"learning_rate": 2e-5, "batch_size": 32, "epochs": 3, "source": "recipe"}}}
    _write(tmp_path, "s1", 1, 0.60, **hyper)
    pinned = compose(["model=minilm_l6", "task=rte", "train.seed=2", "train.learning_rate=2e-5"])
    from omegaconf import OmegaConf

    _write(tmp_path, "s2", 2, 0.70, config=_clean(OmegaConf.to_container(OmegaConf.structured(pinned))), **hyper)
    _write(tmp_path, "s3", 3, None, status="failed", failures=["metric acc is not finite"])
    rs, unusable = [], []
    rs = gather.find(tmp_path, io.StringIO(), unusable=unusable)
    labels = set(gather.metrics_frame(rs).model)
    assert labels == {"minilm_l6"} and list(gather.failed_frame(rs, unusable).model) == ["minilm_l6"]


def test_a_failed_robustness_run_is_a_line_of_the_robustness_table(tmp_path):
    from bench.report import robustness

    _write(tmp_path, "r", 1, None, status="failed", mode="robustness", failures=["eager: non-finite logits"])
    rs, unusable = [], []
    rs = gather.find(tmp_path, io.StringIO(), unusable=unusable)
    t = robustness.table(rs, unusable)
    row = t.text.iloc[0]
    assert row.backend == "- (failed)" and row["flags"] == "run failed: eager: non-finite logits"
    assert row["clean acc"] == "-"
    out = tmp_path / "report"
    assert main([str(tmp_path), "--out", str(out), "--format", "md", "--bootstrap", "20"]) == 1  # nothing succeeded
    assert "run failed: eager: non-finite logits" in (out / "robustness.md").read_text()


def test_a_robustness_failure_a_later_run_replaced_is_not_shown(tmp_path, monkeypatch):
    from bench.report import robustness

    _write(tmp_path, "r", 1, None, status="failed", mode="robustness", failures=["boom"])
    unusable = []
    gather.find(tmp_path, io.StringIO(), unusable=unusable)

    def ok(started):
        return {
            "task": "rte", "model": "minilm_l6", "variant": "fine-tuned", "reference": "self, eager fp32",
            "backend": "eager", "setting": "", "status": "ok", "seed": 1, "run": "/x/r", "started_at": started,
            "weights": "pretrained", "head": "trained", "clean": {"value": 0.6, "low": 0.5, "high": 0.7, "n": 10},
            "loyalty": {}, "advglue": {}, "invariance": {}, "orders": {}, "flip_pooled": None, "flip_mean": None,
            "flags": [], "machine": "cls", "settings": {},
        }  # fmt: skip

    monkeypatch.setattr(robustness, "rows", lambda rs: [ok("2026-02-01T00:00:00")])
    assert list(robustness.table([], unusable).text.backend) == ["eager"]  # the failure was re-run since
    monkeypatch.setattr(robustness, "rows", lambda rs: [ok("2025-12-01T00:00:00")])
    assert list(robustness.table([], unusable).text.backend) == ["eager", "- (failed)"]  # it failed after


def test_a_flag_raised_by_some_seeds_names_them_and_one_raised_by_all_does_not():
    row = dict(model="m", model_name="m", weights="pretrained", task="rte", metric="acc", params=1, run="r")
    frame = pd.DataFrame(
        [
            {**row, "value": 0.6, "seed": 42, "flags": "head: random"},
            {**row, "value": 0.5, "seed": 43, "flags": "head: random; no better than trivial"},
            {**row, "value": 0.7, "seed": 44, "flags": "head: random; no better than trivial; disturbed"},
            {**row, "task": "mrpc", "value": 0.7, "seed": 42, "flags": "disturbed"},
            {**row, "task": "sst2", "value": 0.7, "seed": None, "flags": "disturbed"},
            {**row, "task": "sst2", "value": 0.8, "seed": 3, "flags": ""},
            {**row, "task": "cola", "value": 0.8, "seed": 1.0, "flags": float("nan")},  # no flags: not 'nan'
            {**row, "task": "cola", "value": 0.8, "seed": 2.0, "flags": "head: random"},
            {**row, "task": "stsb", "value": 0.8, "seed": None, "flags": "head: random"},  # two runs, no seeds
            {**row, "task": "stsb", "value": 0.8, "seed": None, "flags": ""},
        ]
    )
    flags = gather.seeds(frame).set_index("task")["flags"]
    # raised by every seed: bare; by some: with the seeds that raised it, in order
    assert flags["rte"] == "disturbed (seed 44); head: random; no better than trivial (seeds 43, 44)"
    assert flags["mrpc"] == "disturbed"  # one seed: the figure is that seed's
    assert flags["sst2"] == "disturbed (seed ?)"  # a run without a recorded seed
    assert flags["cola"] == "head: random (seed 2)"  # a float seed column (beside a missing one) reads as integers
    assert flags["stsb"] == "head: random (seed ?)"  # one of two seedless runs raised it: not the mean's
