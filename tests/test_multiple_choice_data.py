"""The multiple-choice kind's data: readers per release layout and their quirks and errors, the masked mixed-k
batch and the trivial baselines (runs on models: test_multiple_choice.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_task as load
from conftest import tiny
from conftest import write_lines as write

from bench.config import compose
from bench.errors import DataError
from bench.tasks import mc_trivial
from bench.tasks.multiple_choice import ChoiceCollator, encode, masked, permuted


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
    with pytest.raises(DataError, match=r"line 1: not UTF-8 \(byte 0xe9 at column 4\)") as exc:
        load(task, tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{folder / name}, line 1: ") and "layout" in msg and "\n" not in msg


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


def test_a_blank_piqa_line_is_refused_not_paired_with_the_next_label(tmp_path):
    """PIQA pairs line N of the questions with line N of the labels: a blank line inside either file would give
    every later question its neighbour's label (it was skipped, and [0, 1, 1] read for '0, blank, 1, 1')."""
    q = {"goal": "g", "sol1": "a", "sol2": "b"}
    write(tmp_path / "piqa", "train.jsonl", [q, q, q])
    write(tmp_path / "piqa", "valid.jsonl", [q])
    write(tmp_path / "piqa", "valid-labels.lst", ["1"])
    write(tmp_path / "piqa", "train-labels.lst", ["0", "", "1", "1"])
    with pytest.raises(DataError, match=r"train-labels.lst, line 2: label '' is not 0 or 1"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["0", "1", "1", "", ""])  # blank lines at the end: fine
    assert load("piqa", tmp_path)["train"]["label"] == [0, 1, 1]
    write(tmp_path / "piqa", "train.jsonl", [q, "", q, q])
    write(tmp_path / "piqa", "train-labels.lst", ["0", "1", "1"])
    with pytest.raises(DataError, match=r"train.jsonl, line 2: blank, but rows follow it"):
        load("piqa", tmp_path)


@pytest.mark.parametrize(
    "context, choices, match",
    [
        ("", ["a", "b"], "the context is blank"),
        ("  ", ["a", "b"], "the context is blank"),
        ("q", ["a", " "], "choice 1 of 2 is blank"),
        ("q", ["", "b", "c"], "choice 0 of 3 is blank"),
    ],
)
def test_blank_context_or_choice_is_refused(tmp_path, context, choices, match):
    row = {
        "question": {
            "stem": context,
            "choices": [{"label": "AB"[i % 2] + str(i), "text": t} for i, t in enumerate(choices)],
        },
        "answerKey": "A0",
    }
    write(tmp_path / "arc_easy", "ARC-Easy-Train.jsonl", [row])
    write(tmp_path / "arc_easy", "ARC-Easy-Dev.jsonl", [row])
    with pytest.raises(DataError, match=match) as exc:
        load("arc_easy", tmp_path)
    assert "ARC-Easy-Train.jsonl, line 1:" in str(exc.value)


def test_a_byte_order_mark_is_read_past_and_a_bad_byte_names_its_line(tmp_path):
    row = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 1}
    folder = write(tmp_path / "copa", "val.jsonl", [row]).parent
    (folder / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + (json.dumps(row) + "\n").encode() * 2)
    assert load("copa", tmp_path)["train"]["label"] == [1, 1]
    (folder / "train.jsonl").write_bytes(
        (json.dumps(row) + "\n").encode() + '{"premise": "caf\xe9"}\n'.encode("latin-1")
    )
    with pytest.raises(DataError, match=r"train.jsonl, line 2: not UTF-8 \(byte 0xe9 at column 17\)"):
        load("copa", tmp_path)


def test_each_example_keeps_its_own_scores_after_the_length_sort():
    """predict_scores sorts by length and batches mixed choice counts: each example's scores must come back to
    it. The same tiny real model scores each example alone as the reference."""
    from datasets import Dataset, DatasetDict

    from bench import models
    from bench.multiple_choice import predict_scores

    cfg = compose([*tiny("bert"), "task=arc_easy"])
    tok = models.load_tokenizer(cfg.model)
    model = models.build_random(cfg.model, cfg.task, seed=0).eval()
    contexts = ["a much longer question with many words in it", "short", "mid length question", "q", "x y z w"]
    choices = [["a", "b", "c"], list("vwxyz"), ["one", "two"], ["p q r", "s", "t", "u"], ["alpha", "beta", "c"]]
    ds = Dataset.from_dict({"context": contexts, "choices": choices, "label": [0] * 5, "idx": list(range(5))})
    enc = encode(DatasetDict({"validation": ds}), tok, 64, False)["validation"]
    assert sorted(enc["length"]) != enc["length"]  # the sort moves examples
    batched = predict_scores(model, enc, ChoiceCollator(tok), 3, torch.device("cpu"), "fp32")
    alone = [
        predict_scores(model, enc.select([i]), ChoiceCollator(tok), 1, torch.device("cpu"), "fp32")[0] for i in range(5)
    ]
    assert [len(s) for s in batched] == [len(c) for c in choices]
    for got, want in zip(batched, alone):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_splits_with_and_without_release_ids_encode_alike(tmp_path):
    """Train rows with ids and dev rows without: the id column is every split's ('' where none), so encoding drops
    it from all of them (it failed on the split that lacked it)."""
    from bench import models

    row = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 1}
    write(tmp_path / "copa", "train.jsonl", [{**row, "idx": 7}, {**row, "idx": 8}])
    write(tmp_path / "copa", "val.jsonl", [row])
    dd = load("copa", tmp_path)
    assert dd["train"]["id"] == ["7", "8"] and dd["validation"]["id"] == [""]
    tok = models.load_tokenizer(compose(["model=minilm_l6"]).model)
    enc = encode(dd, tok, 32, False)
    assert all("id" not in enc[s].column_names for s in enc)
