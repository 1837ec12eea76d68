import json
import math
import shutil

import pytest
import torch
from conftest import tiny

from bench.config import compose
from bench.errors import BenchError, NonFiniteLossError
from bench.runner import run

QUICK = [
    "train.max_steps=3",
    "train.batch_size=8",
    "data.max_train_samples=32",
    "data.max_eval_samples=24",
    "train.logging_steps=1",
]


@pytest.mark.parametrize("family", ["bert", "mobilebert", "distilbert"])
def test_tiny_random_models_finetune_on_real_rows(family, glue_dir, tmp_path):
    cfg = compose([*tiny(family), "task=rte", f"data.dir={glue_dir}", *QUICK], out_dir=str(tmp_path))
    result = run(cfg)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "ok" and saved["schema_version"] == 1
    assert saved["model"]["weights"] == "random" and saved["model"]["source"] == "random"
    assert saved["model"]["parameters"] > 0
    assert saved["task"]["splits"] == {"train": 32, "validation": 24}
    assert 0 <= saved["metrics"]["acc"] <= 1 and saved["metrics"]["primary"] == saved["metrics"]["acc"]
    assert saved["train"]["steps"] == 3 and saved["train"]["examples_per_second"] > 0
    assert saved["eval"]["examples"] == 24
    # a figure of the dev set's first 24 rows is flagged as such wherever it is shown (the tables' flags)
    assert "validation: first 24 of 277 rows (data.max_eval_samples)" in saved["flags"]
    assert saved["config"]["model"]["name"] == cfg.model.name
    for key in ("python", "packages", "cpu", "git"):
        assert key in saved["env"]
    assert any("weights: random" in n for n in saved["notes"])
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and {r["prediction_name"] for r in rows} <= {"entailment", "not_entailment"}
    assert result.status == "ok"


def test_regression_task_and_checkpoint_roundtrip_through_evaluate(glue_dir, tmp_path):
    train_dir, eval_dir, untrained_dir = tmp_path / "train", tmp_path / "eval", tmp_path / "untrained"
    # a learning rate that moves the weights in 3 steps, so trained and untrained predictions differ clearly
    args = [*tiny("bert"), "task=stsb", f"data.dir={glue_dir}", *QUICK, "train.learning_rate=1e-3"]
    trained = run(compose([*args, "train.save_checkpoint=true"], out_dir=str(train_dir)))
    assert trained.status == "ok", trained.failures
    assert {"pearson", "spearman", "primary"} <= set(trained.metrics)
    assert (train_dir / "checkpoint" / "config.json").is_file()
    # evaluation needs only the evaluation split: a data folder holding just dev.tsv is enough
    only_dev = tmp_path / "only_dev" / "STS-B"
    only_dev.mkdir(parents=True)
    (only_dev / "dev.tsv").write_bytes((glue_dir / "STS-B" / "dev.tsv").read_bytes())
    ev = compose(
        [
            "model=bert_base",
            f"model.path={train_dir / 'checkpoint'}",
            "task=stsb",
            "mode=evaluate",
            f"data.dir={only_dev.parent}",
            "data.max_eval_samples=24",
        ],
        out_dir=str(eval_dir),
    )
    evaluated = run(ev)
    assert evaluated.status == "ok", evaluated.failures
    assert evaluated.model["source"] == "path" and evaluated.train is None and evaluated.model["head"] == "trained"
    assert evaluated.task["splits"] == {"validation": 24}
    # trained from random weights: scored again it is still no pretrained model, and says so (it read 'pretrained')
    assert evaluated.model["weights"] == "random"
    assert any(n.startswith("weights: random: this checkpoint was trained from randomly") for n in evaluated.notes)
    config = json.loads((train_dir / "checkpoint" / "config.json").read_text())
    assert config["bench_weights"] == "random"  # a copy of the folder, without its run's result.json, still says
    from bench import results

    copied = tmp_path / "copied"
    shutil.copytree(train_dir / "checkpoint", copied)
    assert results.checkpoint_weights(copied) == "random" and results.checkpoint_weights(tmp_path) is None
    assert (
        run(compose([*args, "train.max_steps=1", "train.learning_rate=1e-12"], out_dir=str(untrained_dir))).status
        == "ok"
    )

    def preds(folder):
        return [json.loads(x)["prediction"] for x in (folder / "predictions.jsonl").read_text().splitlines()]

    # same weights, same dev rows: the same predictions as at the end of training, to rounding ...
    assert preds(eval_dir) == pytest.approx(preds(train_dir), abs=1e-4)
    # ... while the same model with (practically) untrained weights and the same seed predicts otherwise
    assert max(abs(a - b) for a, b in zip(preds(untrained_dir), preds(train_dir))) > 100 * 1e-4


def test_evaluate_refuses_a_checkpoint_without_its_task_head(glue_dir, tmp_path):
    args = ["model=minilm_l6", "task=rte", "mode=evaluate", f"data.dir={glue_dir}", "data.max_eval_samples=16"]
    with pytest.raises(BenchError, match=r"no trained weights for classifier\.bias, classifier\.weight"):
        run(compose(args, out_dir=str(tmp_path / "refused")))
    saved = json.loads((tmp_path / "refused" / "result.json").read_text())
    assert saved["status"] == "failed" and "allow_random_head" in saved["error"]["message"]
    allowed = run(compose([*args, "model.allow_random_head=true"], out_dir=str(tmp_path / "allowed")))
    assert allowed.model["head"] == "random" and "head: random" in allowed.flags
    from bench.report import gather

    found = gather.find(tmp_path / "allowed")
    assert gather.label(found[0]) == "minilm_l6 (head: random)"


def test_trivial_baselines_and_the_flag(glue_dir, tmp_path):
    import numpy as np

    from bench.tasks import glue, trivial

    cfg = compose(["model=minilm_l6", "task=mrpc"])
    layout = "layout"
    dev = np.asarray(glue.read_tsv(glue_dir / "MRPC" / "dev.tsv", cfg.task, layout)["label"])
    train = np.asarray(glue.read_tsv(glue_dir / "MRPC" / "train.tsv", cfg.task, layout)["label"])
    scores = trivial.scores(cfg.task, {"validation": (dev, dev)}, train)
    # the figures: all-positive on MRPC dev is F1 0.8122 / acc 0.6838 (and the majority class is 1)
    assert scores["all positive"]["metrics"]["f1"] == pytest.approx(0.8122, abs=1e-4)
    assert scores["all positive"]["metrics"]["acc"] == pytest.approx(0.6838, abs=1e-4)
    collapsed = trivial.verdict(cfg.task, "validation", np.ones_like(dev), dev, scores)
    assert not collapsed["beats_trivial"] and collapsed["primary_diff"] == 0
    perfect = trivial.verdict(cfg.task, "validation", dev, dev, scores)
    assert perfect["beats_trivial"] and perfect["low"] > 0.1
    # a tiny random model trained for 3 steps does not beat the trivial predictor, and the result says so
    result = run(compose([*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK], out_dir=str(tmp_path)))
    assert result.status == "ok"  # flagged, not failed: the figure stands, with the flag beside it
    assert trivial.NOT_BETTER in result.flags and result.trivial["vs_best"]["beats_trivial"] is False
    assert set(result.trivial["predictors"]) == {"majority class"}


def test_bytes_that_are_not_utf8_are_a_one_line_error(glue_dir, tmp_path):
    from bench.errors import DataError

    rte = tmp_path / "RTE"
    rte.mkdir()
    lines = (glue_dir / "RTE" / "dev.tsv").read_bytes().splitlines(keepends=True)
    (rte / "dev.tsv").write_bytes(b"".join(lines[:5] + [b"1\tcaf\xe9 au lait\tx\tentailment\n"] + lines[5:10]))
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={tmp_path}", "mode=evaluate"], out_dir=str(tmp_path / "o"))
    from bench import tasks

    with pytest.raises(DataError, match=r"dev.tsv, line 6: byte b'\\xe9' at column 6 is not UTF-8"):
        tasks.load(cfg.task, cfg.data, need_train=False)


def test_nan_loss_stops_the_run_with_a_reason(glue_dir, tmp_path):
    cfg = compose(
        [
            *tiny("bert"),
            "task=rte",
            f"data.dir={glue_dir}",
            *QUICK,
            "train.max_steps=20",
            "train.learning_rate=1e6",
            "train.precision=fp32",
        ],
        out_dir=str(tmp_path),
    )
    with pytest.raises(NonFiniteLossError, match="loss became"):
        run(cfg)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["type"] == "NonFiniteLossError"
    assert "traceback" not in saved["error"]


def test_an_existing_result_is_never_overwritten(glue_dir, tmp_path):
    """Even a corrupt existing file is left alone, and the error says why (not a JSON traceback)."""
    (tmp_path / "result.json").write_text('{"keep": true}')
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK], out_dir=str(tmp_path))
    with pytest.raises(BenchError, match="already exists"):
        run(cfg)
    assert json.loads((tmp_path / "result.json").read_text()) == {"keep": True}


def test_same_seed_same_metrics(glue_dir, tmp_path):
    args = [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, "train.precision=fp32"]
    a = run(compose(args, out_dir=str(tmp_path / "a")))
    b = run(compose(args, out_dir=str(tmp_path / "b")))
    assert a.status == b.status == "ok" and a.metrics and all(math.isfinite(v) for v in a.metrics.values())
    assert a.metrics == b.metrics and math.isclose(a.train["final_loss"], b.train["final_loss"], rel_tol=1e-6)


def test_random_weight_models_get_the_full_uncased_vocabulary():
    from bench import models

    tok = models.load_tokenizer(compose(["model=mobilebert", "model.pretrained=false"]).model)
    assert tok.is_fast and tok.vocab_size == 30522
    assert tok("Hello world")["input_ids"] == [101, 7592, 2088, 102]  # bert-base-uncased ids


def test_nan_outputs_on_the_scored_rows_fail_the_run_instead_of_scoring_class_0(glue_dir, tmp_path):
    """argmax of NaN logits is class 0: scored, they gave RTE's share of class 0 as the accuracy, status ok."""
    from safetensors.torch import load_file, save_file

    from bench.errors import NonFiniteOutputError

    trained = run(
        compose(
            [
                *tiny("bert"),
                "task=rte",
                f"data.dir={glue_dir}",
                *QUICK,
                "train.max_steps=1",
                "train.save_checkpoint=true",
            ],
            out_dir=str(tmp_path / "train"),
        )
    )
    assert trained.status == "ok", trained.failures
    weights = tmp_path / "train" / "checkpoint" / "model.safetensors"
    # first: scored on another task of as many labels, it would load and score nonsense; it is refused
    wrong = ["model=bert_base", f"model.path={weights.parent}", "task=sst2", "mode=evaluate", f"data.dir={glue_dir}"]
    with pytest.raises(BenchError, match="was fine-tuned on task rte .* not on sst2"):
        run(compose(wrong, out_dir=str(tmp_path / "wrong")))
    state = load_file(weights)
    state["classifier.bias"] = torch.full_like(state["classifier.bias"], float("nan"))
    save_file(state, weights)
    ev = compose(
        [
            "model=bert_base",
            f"model.path={weights.parent}",
            "task=rte",
            "mode=evaluate",
            f"data.dir={glue_dir}",
            "data.max_eval_samples=8",
        ],
        out_dir=str(tmp_path / "eval"),
    )
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite on scored row"):
        run(ev)
    saved = json.loads((tmp_path / "eval" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["type"] == "NonFiniteOutputError"
    assert not saved.get("metrics") and not (tmp_path / "eval" / "predictions.jsonl").exists()
