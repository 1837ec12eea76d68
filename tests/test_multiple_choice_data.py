"""The multiple-choice kind's data: readers per release layout and their quirks and errors, the masked mixed-k
batch and the trivial baselines (runs on models: test_multiple_choice.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import arc_row, tiny
from conftest import load_task as load
from conftest import write_lines as write

from bench.config import compose
from bench.tasks import mc_trivial
from bench.tasks.multiple_choice import ChoiceCollator, encode, masked, permuted

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


@pytest.mark.parametrize("task, module", [("arc_easy", "mc_arc"), ("copa", "mc_copa"), ("piqa", "mc_piqa")])
def test_each_file_is_read_once_with_its_ids(task, module, mc_dir, monkeypatch):
    """The rows and each row's release id come from one pass over the file (it was read twice)."""
    import importlib

    from bench.tasks import multiple_choice

    calls, real = [], multiple_choice.jsonl_rows

    def counting(path, *args, **kwargs):
        calls.append(path.name)
        return real(path, *args, **kwargs)

    for where in (multiple_choice, importlib.import_module(f"bench.tasks.{module}")):  # wherever a reader calls it
        if hasattr(where, "jsonl_rows"):
            monkeypatch.setattr(where, "jsonl_rows", counting)
    dd = load(task, mc_dir)
    assert sorted(calls) == sorted(set(calls)) and len(calls) == len(dd)  # one pass per split's file
    for split in dd.values():
        if task == "piqa":  # its release gives no ids
            assert set(split["id"]) == {""}
        else:
            assert all(split["id"]) and len(set(split["id"])) == len(split)  # every row keeps its own id
