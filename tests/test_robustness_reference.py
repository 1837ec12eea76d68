"""What a robustness figure was measured against is recorded, compared and shown: the reference by its checkpoint's
identity (given as a checkpoint or as the run folder holding one, refused before loading when it is another task's
head), the AdvGLUE rows by their hash, an untrained head flagged, and two experiments that share a seed kept apart
in the table."""

from __future__ import annotations

import json

import pytest
from conftest import GLUE_DIR, tiny
from test_robustness_seeds import _source, _tiny_rte

from bench import compare_config, schema
from bench.config import compose
from bench.errors import BenchError
from bench.runner import run

pytestmark = pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"real GLUE data not present at {GLUE_DIR}")
QUICK = [
    "mode=robustness",
    "task=rte",
    f"data.dir={GLUE_DIR}",
    "data.max_eval_samples=16",
    "timing.backends=[eager]",
    "robustness.only=[identity,typo]",
    "robustness.bootstrap=50",
    "robustness.advglue=null",
    "device.threads=1",
]


def _score(tmp_path, model_path, name, *extra):
    return run(compose([*tiny("bert"), f"model.path={model_path}", *QUICK, *extra], out_dir=str(tmp_path / name)))


def _parse(folder):
    return schema.parse(json.loads((folder / "result.json").read_text()), str(folder))


def test_loyalty_to_another_reference_or_advglue_on_other_rows_is_not_the_same_experiment(tmp_path):
    runs = tmp_path / "runs"
    _source(runs / "ref_a", mode="finetune", checkpoint=_tiny_rte(1))
    _source(runs / "ref_b", mode="finetune", checkpoint=_tiny_rte(2))
    _source(runs / "scored", mode="finetune", checkpoint=_tiny_rte(3))
    # the reference given as a run folder (RUN/checkpoint is read), as distill.teacher may be
    a = _score(tmp_path, runs / "scored" / "checkpoint", "a", f"robustness.reference={runs / 'ref_a'}")
    b = _score(tmp_path, runs / "scored" / "checkpoint", "b", f"robustness.reference={runs / 'ref_b'}")
    assert a.status == b.status == "ok", (a.error, b.error)
    ident_a, ident_b = (r.robustness["reference"]["identity"] for r in (a, b))
    assert len(ident_a) == 64 and ident_a != ident_b
    base, cur = _parse(tmp_path / "a"), _parse(tmp_path / "b")
    differ, _ = compare_config.differences([base], [cur])
    assert [d.split(":")[0] for d in differ] == ["run.reference"], differ
    assert compare_config.differences([base], [_parse(tmp_path / "a")]) == ([], [])
    # a result written before the reference and AdvGLUE rows were recorded compares as what it used: itself as
    # the reference, no AdvGLUE rows (so self-referenced runs without AdvGLUE stay comparable across versions)
    self_ref = _score(tmp_path, runs / "scored" / "checkpoint", "self")
    assert self_ref.robustness["reference"]["identity"] == "self"
    older = json.loads((tmp_path / "self" / "result.json").read_text())
    del older["robustness"]["reference"]["identity"], older["robustness"]["advglue_rows"]
    assert compare_config.differences([schema.parse(older, "older")], [_parse(tmp_path / "self")]) == ([], [])
    # AdvGLUE figures scored on other rows (another file, wherever it was) are another experiment too
    other = json.loads((tmp_path / "a" / "result.json").read_text())
    other["robustness"]["advglue_rows"] = {"rte": {"n": 81, "sha256": "0" * 16}}
    differ, _ = compare_config.differences([base], [schema.parse(other, "other")])
    assert [d.split(":")[0] for d in differ] == ["run.advglue"], differ


def test_a_reference_of_another_task_or_head_is_refused_before_its_weights_are_loaded(tmp_path):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from bench import models

    runs = tmp_path / "runs"
    _source(runs / "scored", mode="finetune", checkpoint=_tiny_rte(3))
    scored = runs / "scored" / "checkpoint"
    cfg = compose([*tiny("bert"), "task=rte"])
    arch = {k: v for k, v in cfg.model.arch.items() if k != "model_type"}
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**arch, num_labels=3)).save_pretrained(tmp_path / "three")
    models.load_tokenizer(cfg.model).save_pretrained(tmp_path / "three")
    with pytest.raises(BenchError) as info:  # once a loading error with a traceback
        _score(tmp_path, scored, "r3", f"robustness.reference={tmp_path / 'three'}")
    message = str(info.value)
    assert message.startswith("robustness.reference=") and "has 3 output(s)" in message and "\n" not in message
    assert json.loads((tmp_path / "r3" / "result.json").read_text())["status"] == "failed"
    # a checkpoint of this task fine-tuned elsewhere names its labels its own way (LABEL_0/LABEL_1): accepted
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**arch, num_labels=2)).save_pretrained(tmp_path / "elsewhere")
    models.load_tokenizer(cfg.model).save_pretrained(tmp_path / "elsewhere")
    assert _score(tmp_path, scored, "r2", f"robustness.reference={tmp_path / 'elsewhere'}").status == "ok"
    # a run folder whose result says it was fine-tuned on another task
    _source(runs / "other_task", mode="finetune", checkpoint=_tiny_rte(4))
    sst2 = json.loads((runs / "other_task" / "result.json").read_text())
    sst2["task"]["name"] = "sst2"
    (runs / "other_task" / "result.json").write_text(json.dumps(sst2))
    with pytest.raises(BenchError, match=r"^robustness.reference=.*was fine-tuned on sst2, not on task rte"):
        _score(tmp_path, scored, "x", f"robustness.reference={runs / 'other_task'}")
    with pytest.raises(BenchError, match=r"^robustness.reference=.*no such folder"):
        _score(tmp_path, scored, "y", f"robustness.reference={tmp_path / 'nowhere'}")


def test_an_untrained_head_is_flagged_in_the_result_and_the_table(tmp_path):
    from bench import models
    from bench.report import robustness as report

    cfg = compose([*tiny("bert"), "task=rte"])
    tok, model, _ = models.load(cfg.model, cfg.task, seed=1)
    model.bert.save_pretrained(tmp_path / "base")  # an encoder without a task head
    tok.save_pretrained(tmp_path / "base")
    r = _score(tmp_path, tmp_path / "base", "rh", "model.allow_random_head=true")
    assert r.status == "ok" and r.model["head"] == "random" and "head: random" in r.flags
    (line,) = report.table([_parse(tmp_path / "rh")]).text.to_dict("records")
    assert line["model"].endswith("(head: random)"), line["model"]


def test_two_experiments_that_share_a_seed_are_two_rows_each_named(tmp_path):
    """Two fine-tunes with seed 42 but another learning rate and row count: never one's figures replacing the
    other's as a re-run of the same seed."""
    from bench.report import robustness as report

    runs = tmp_path / "runs"
    for name, lr, rows in (("lr_a", 2e-5, 500), ("lr_b", 1e-4, 64)):
        _source(runs / name, mode="finetune", checkpoint=_tiny_rte(3))
        result = json.loads((runs / name / "result.json").read_text())
        result["config"]["train"].update(learning_rate=lr)
        result["config"]["data"] = {"max_train_samples": rows}
        (runs / name / "result.json").write_text(json.dumps(result))
        assert _score(tmp_path, runs / name / "checkpoint", f"scored_{name}").status == "ok"
    scored = [_parse(tmp_path / f"scored_{name}") for name in ("lr_a", "lr_b")]
    groups = report.groups(report.rows(scored))
    assert len(groups) == 2 and all(len(g) == 1 for g in groups)
    variants = sorted(line["variant"] for line in report.table(scored).text.to_dict("records"))
    assert all("source.data.max_train_samples=" in v and "source.train.learning_rate=" in v for v in variants)
    assert variants[0] != variants[1]
    # the same experiment scored twice is one row: the newer run of the seed
    assert _score(tmp_path, runs / "lr_a" / "checkpoint", "scored_lr_a_again").status == "ok"
    again = [*scored, _parse(tmp_path / "scored_lr_a_again")]
    assert sorted(len(g) for g in report.groups(report.rows(again))) == [1, 1]


def test_a_control_that_flips_flags_the_run_and_its_table_row(tmp_path, monkeypatch):
    """A backend whose scoring is not deterministic (here: probabilities drawn afresh on every call) flips under
    the identity control; the run says so in its flags and the table row shows it, instead of a quiet rate."""
    import numpy as np

    from bench import runner
    from bench.report import robustness as report
    from bench.robustness import run as robustness

    runs = tmp_path / "runs"
    _source(runs / "scored", mode="finetune", checkpoint=_tiny_rte(3))
    clean = _score(tmp_path, runs / "scored" / "checkpoint", "clean")
    assert clean.flags == []
    rng = np.random.default_rng(0)
    noisy = robustness.Inputs(
        examples=robustness.CLASSIFICATION.examples,
        probabilities=lambda prepared, tok, examples, *a: rng.dirichlet(np.ones(2), size=len(examples)),
    )
    monkeypatch.setitem(runner.MODES, "robustness", lambda cfg: robustness.run(cfg, noisy))
    r = _score(tmp_path, runs / "scored" / "checkpoint", "noisy")
    (flag,) = r.flags
    assert flag.startswith("eager: the identity control flipped ") and "not deterministic" in flag
    for name, shown in (("clean", "-"), ("noisy", flag)):
        (line,) = report.table([_parse(tmp_path / name)]).text.to_dict("records")
        assert line["flags"] == shown
