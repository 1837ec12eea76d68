import json

import numpy as np
import pytest
from conftest import tiny

from bench import models
from bench.config import DataConfig, compose
from bench.errors import DataError
from bench.runner import run
from bench.tasks import squad
from bench.tasks import squad_metrics as sm

# ---- official metrics, values worked out by hand ----


def test_normalisation_drops_case_punctuation_articles_and_spaces():
    assert sm.normalize_answer("  The  Denver Broncos!! ") == "denver broncos"
    assert sm.normalize_answer("an apple, a pear") == "apple pear"
    assert sm.normalize_answer("theatre") == "theatre"  # 'the' only as a word


def test_exact_and_f1_by_hand():
    assert sm.exact("the Broncos", "Broncos.") == 1.0
    # pred {denver, broncos, team}, gold {broncos}: precision 1/3, recall 1 -> F1 = 2*(1/3)/(4/3) = 0.5
    assert sm.f1("Denver Broncos team", "the Broncos") == pytest.approx(0.5)
    assert sm.f1("Carolina", "Denver Broncos") == 0.0


def test_max_over_several_gold_answers():
    golds = {"q1": ["Denver Broncos", "The Denver Broncos", "Broncos"], "q2": ["1998", "in 1998"]}
    preds = {"q1": "Broncos", "q2": "1998 season"}
    # q1: exact match with the third answer; q2: F1 vs "1998" = 2*(1/2*1)/(1/2+1) = 2/3, vs "in 1998" = 1/2
    out = sm.evaluate(preds, golds)
    assert out["exact_match"] == pytest.approx(0.5)
    assert out["f1"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_a_gold_answer_that_normalises_to_nothing_is_kept_in_v1_and_dropped_in_v2(squad_dir):
    """The official v1.1 script keeps every gold answer: its dev file has three questions with a gold '.'; an
    empty (normalised) prediction is an exact match there, with F1 0 (no common token). v2.0 drops it."""
    import json

    data = json.loads((squad_dir / "dev-v1.1.json").read_text())["data"]
    dots = [
        qa for a in data for p in a["paragraphs"] for qa in p["qas"] if any(x["text"] == "." for x in qa["answers"])
    ]
    assert len(dots) == 3
    golds = {qa["id"]: [x["text"] for x in qa["answers"]] for qa in dots}
    empty = {q: "the" for q in golds}
    assert sm.evaluate(empty, golds) == pytest.approx({"exact_match": 1.0, "f1": 0.0})
    v2 = sm.evaluate(empty, golds, version_2=True)
    assert v2["exact"] == pytest.approx(0.0) and v2["HasAns_total"] == 3


def test_unanswered_question_counts_as_zero():
    out = sm.evaluate({"q1": "a b"}, {"q1": ["a b"], "q2": ["c"]})
    assert out == pytest.approx({"exact_match": 0.5, "f1": 0.5})


def test_v2_no_answer_questions_and_best_threshold():
    golds = {"h1": ["Paris"], "h2": ["blue whale"], "n1": [], "n2": []}
    preds = {"h1": "Paris", "h2": "", "n1": "", "n2": "London"}
    margins = {"h1": -3.0, "h2": 2.0, "n1": 1.0, "n2": -1.0}  # null score minus best span score
    out = sm.evaluate(preds, golds, version_2=True, na_probs=margins)
    assert out["exact"] == pytest.approx(0.5) and out["f1"] == pytest.approx(0.5)
    assert out["HasAns_exact"] == 0.5 and out["NoAns_exact"] == 0.5
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 2
    # sweep (ascending margin): start at 2 no-answers right; h1 +1 -> 3 at -3.0; n2 (predicted) -1 -> 2;
    # n1 (empty) 0 -> 2; h2 (empty, scores 0) +0 -> 2. Best 3/4 at threshold -3.0
    assert out["best_exact"] == pytest.approx(0.75) and out["best_exact_thresh"] == -3.0


# ---- reading the official JSON ----


def test_split_by_article_reads_the_real_dev_file(squad_dir):
    task = compose(["task=squad_v1"]).task
    dd = squad.load_local(task, DataConfig(dir=str(squad_dir), split_by_article=38))
    assert len(dd["train"]) == 8582 and len(dd["validation"]) == 10570 - 8582
    assert set(dd["train"]["article"]) == set(range(38)) and min(dd["validation"]["article"]) == 38
    first = dd["train"][0]
    assert first["title"] == "Super_Bowl_50" and first["answers"]["text"][0] == "Denver Broncos"


def _write(tmp_path, doc, name="dev-v1.1.json"):
    (tmp_path / name).write_text(json.dumps(doc))
    return DataConfig(dir=str(tmp_path), split_by_article=1)


def test_malformed_file_names_article_and_question(tmp_path):
    task = compose(["task=squad_v1"]).task
    ok = {
        "title": "A",
        "paragraphs": [
            {
                "context": "Paris is in France.",
                "qas": [{"id": "q1", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]}],
            }
        ],
    }
    no_answer = {"title": "B", "paragraphs": [{"context": "x", "qas": [{"id": "q9", "question": "?", "answers": []}]}]}
    with pytest.raises(DataError, match=r"article 1 \('B'\), question 'q9': no answer"):
        squad.load_local(task, _write(tmp_path, {"data": [ok, no_answer]}))
    outside = {
        "title": "C",
        "paragraphs": [
            {
                "context": "short",
                "qas": [{"id": "q5", "question": "?", "answers": [{"text": "short", "answer_start": 3}]}],
            }
        ],
    }
    with pytest.raises(DataError, match=r"question 'q5': answer_start 3 .* outside"):
        squad.load_local(task, _write(tmp_path, {"data": [ok, outside]}))
    with pytest.raises(DataError, match=r"article 1 \('D'\) is malformed"):
        squad.load_local(task, _write(tmp_path, {"data": [ok, {"title": "D", "paragraphs": [{"qas": []}]}]}))
    (tmp_path / "dev-v1.1.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        squad.load_local(task, DataConfig(dir=str(tmp_path), split_by_article=1))
    # the articles held out for scoring have no question: nothing to score (was a datasets traceback)
    empty = {"title": "E", "paragraphs": [{"context": "x", "qas": []}]}
    data = _write(tmp_path, {"data": [ok, empty]})
    with pytest.raises(DataError, match=r"dev-v1.1.json: no questions in articles 1-1"):
        squad.load_local(task, DataConfig(dir=data.dir, split_by_article=1))


def test_v2_allows_unanswerable_questions(tmp_path):
    task = compose(["task=squad_v2"]).task
    a = {
        "title": "A",
        "paragraphs": [
            {"context": "x y", "qas": [{"id": "q1", "question": "?", "answers": [], "is_impossible": True}]}
        ],
    }
    dd = squad.load_local(task, _write(tmp_path, {"data": [a, a]}, "dev-v2.0.json"))
    assert dd["train"][0]["answers"] == {"text": [], "answer_start": []}


# ---- windows and post-processing ----


def test_windows_label_answers_and_abstain_when_cut(squad_dir):
    task = compose(["task=squad_v1", "task.doc_stride=32"]).task
    tok = models.load_tokenizer(compose(["model=minilm_l6"]).model)
    dd = squad.load_local(task, DataConfig(dir=str(squad_dir), split_by_article=1))
    ex = dd["validation"].select(range(40)).to_dict()
    feats = squad.train_features(ex, tok, task, max_length=96, pad=False)
    assert len(feats["input_ids"]) > 40  # long contexts overflow into several windows
    ev = squad.eval_features(ex, tok, task, max_length=96, pad=False)
    assert set(ev["example_id"]) == set(ex["id"])
    assert len(ev["example_id"]) == len(feats["input_ids"])  # training and scoring cut the same windows
    answered = set()
    for qid, ids, s, e in zip(ev["example_id"], feats["input_ids"], feats["start_positions"], feats["end_positions"]):
        if s != 0:
            answered.add(qid)
            assert tok.decode(ids[s : e + 1]).strip()
    # counted by question, not by window: every question's answer lies inside at least one of its own windows
    assert answered == set(ex["id"])


def test_postprocess_picks_the_best_valid_span():
    task = compose(["task=squad_v2"]).task
    from datasets import Dataset

    examples = Dataset.from_dict({"id": ["q"], "context": ["Paris is in France"]})
    offsets = [None, None, [0, 5], [6, 8], [9, 11], [12, 18], None]
    features = Dataset.from_dict({"example_id": ["q"], "offset_mapping": [offsets]})
    start = np.array([[0.0, 9, 1, 0, 0, 5, 0]])  # index 1 is the question: never an answer
    end = np.array([[0.0, 9, 0, 0, 0, 5, 0]])
    preds, margin = squad.postprocess(examples, features, start, end, task)
    assert preds == {"q": "France"} and margin["q"] == pytest.approx(0 - 10)
    start[0, 0], end[0, 0] = 8.0, 8.0  # a null score of 16 beats 10: v2.0 abstains
    preds, _ = squad.postprocess(examples, features, start, end, task)
    assert preds == {"q": ""}


def test_stride_too_long_for_the_window_is_a_clear_error(squad_dir, tmp_path):
    from bench.errors import ConfigError

    cfg = compose(
        [
            *tiny("bert"),
            "task=squad_v1",
            f"data.dir={squad_dir}",
            "data.split_by_article=47",
            "train.max_seq_length=96",
        ],
        out_dir=str(tmp_path),
    )
    with pytest.raises(ConfigError, match="doc_stride"):
        run(cfg)


def test_tiny_model_finetunes_and_writes_official_predictions(squad_dir, tmp_path):
    cfg = compose(
        [
            *tiny("bert"),
            "task=squad_v1",
            f"data.dir={squad_dir}",
            "data.split_by_article=47",
            "data.max_train_samples=24",
            "data.max_eval_samples=12",
            "train.max_steps=2",
            "train.batch_size=8",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    assert result.status == "ok" and result.task["split_by_article"] == 47
    assert {"exact_match", "f1", "primary"} <= set(result.metrics)
    preds = json.loads((tmp_path / "predictions.json").read_text())
    assert len(preds) == 12 and all(isinstance(v, str) for v in preds.values())
    assert any("first 47 articles" in n for n in result.notes)
