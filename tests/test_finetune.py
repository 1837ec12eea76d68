import json
import math

import pytest

from bench.config import compose
from bench.errors import BenchError, NonFiniteLossError
from bench.runner import run
from conftest import tiny

QUICK = ["train.max_steps=3", "train.batch_size=8", "data.max_train_samples=32", "data.max_eval_samples=24",
         "train.logging_steps=1"]


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
    assert saved["config"]["model"]["name"] == cfg.model.name
    for key in ("python", "packages", "cpu", "git"):
        assert key in saved["env"]
    assert any("weights: random" in n for n in saved["notes"])
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and {r["prediction_name"] for r in rows} <= {"entailment", "not_entailment"}
    assert result.status == "ok"


def test_regression_task_and_checkpoint_roundtrip_through_evaluate(glue_dir, tmp_path):
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    cfg = compose([*tiny("bert"), "task=stsb", f"data.dir={glue_dir}", *QUICK, "train.save_checkpoint=true"],
                  out_dir=str(train_dir))
    trained = run(cfg)
    assert {"pearson", "spearman", "primary"} <= set(trained.metrics)
    assert (train_dir / "checkpoint" / "config.json").is_file()
    ev = compose(["model=bert_base", f"model.path={train_dir / 'checkpoint'}", "task=stsb", "mode=evaluate",
                  f"data.dir={glue_dir}", "data.max_eval_samples=24"], out_dir=str(eval_dir))
    evaluated = run(ev)
    assert evaluated.model["source"] == "path" and evaluated.train is None
    # same weights, same dev rows: the same predictions as at the end of training
    a = (train_dir / "predictions.jsonl").read_text().splitlines()
    b = (eval_dir / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["prediction"] for x in a] == pytest.approx([json.loads(x)["prediction"] for x in b], abs=0.05)


def test_nan_loss_stops_the_run_with_a_reason(glue_dir, tmp_path):
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, "train.max_steps=20",
                   "train.learning_rate=1e6", "train.precision=fp32"], out_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="loss became"):
        run(cfg)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["type"] == "NonFiniteLossError"
    assert "traceback" not in saved["error"]


def test_an_existing_result_is_never_overwritten(glue_dir, tmp_path):
    (tmp_path / "result.json").write_text('{"keep": true}')
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK], out_dir=str(tmp_path))
    with pytest.raises(BenchError, match="already exists"):
        run(cfg)
    assert json.loads((tmp_path / "result.json").read_text()) == {"keep": True}


def test_same_seed_same_metrics(glue_dir, tmp_path):
    args = [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, "train.precision=fp32"]
    a = run(compose(args, out_dir=str(tmp_path / "a")))
    b = run(compose(args, out_dir=str(tmp_path / "b")))
    assert a.metrics == b.metrics and math.isclose(a.train["final_loss"], b.train["final_loss"], rel_tol=1e-6)


def test_random_weight_models_get_the_full_uncased_vocabulary():
    from bench import models

    tok = models.load_tokenizer(compose(["model=mobilebert", "model.pretrained=false"]).model)
    assert tok.is_fast and tok.vocab_size == 30522
    assert tok("Hello world")["input_ids"] == [101, 7592, 2088, 102]  # bert-base-uncased ids
