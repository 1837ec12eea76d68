"""SQuAD on its own: the official metrics worked out by hand, the reader of the official JSON, windows and span
post-processing. Runs through the harness: tests/test_squad_runs.py."""

import json

import numpy as np
import pytest

from bench import models
from bench.config import DataConfig, compose
from bench.errors import DataError
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


def test_every_punctuation_mark_goes_not_only_sentence_ends():
    assert sm.exact("it's", "its") == 1.0 and sm.exact("well-known", "wellknown") == 1.0
    assert sm.exact('"Quoted" (sic)', "quoted sic") == 1.0 and sm.exact("a/b; c:d", "ab cd") == 1.0


def test_best_f1_is_swept_on_f1_and_a_wrong_answer_to_a_no_answer_question_costs_one():
    """The official v2.0 sweep: a question with no answer that the model answers loses a point once the
    threshold passes it (-1, not 0); best_f1 sweeps F1, not EM."""
    golds = {"h1": ["blue whale"], "n1": []}
    preds = {"h1": "whale", "n1": "Paris"}
    out = sm.evaluate(preds, golds, version_2=True, na_probs={"n1": -2.0, "h1": -1.0})
    # start: 1 (n1 abstains); n1 answered: -1 -> 0; h1 answered: +EM 0 / +F1 2/3 -> 0 / 0.667: best stays 1 of 2
    assert out["best_exact"] == pytest.approx(0.5) and out["best_exact_thresh"] == 0.0
    assert out["best_f1"] == pytest.approx(0.5) and out["best_f1_thresh"] == 0.0
    out = sm.evaluate(preds, golds, version_2=True, na_probs={"n1": 5.0, "h1": -1.0})
    # h1 first: 1 + 2/3 at -1.0 (F1; EM adds 0), then n1 -1
    assert out["best_f1"] == pytest.approx((1 + 2 / 3) / 2) and out["best_f1_thresh"] == -1.0
    assert out["best_exact"] == pytest.approx(0.5) and out["best_exact_thresh"] == 0.0


def test_v2_has_answer_is_any_gold_answer_as_the_official_script():
    """A question whose only gold answer normalises to nothing ('.') has an answer (the official script counts
    bool(answers)); its gold is then the empty string, so an empty prediction is right."""
    out = sm.evaluate({"q": "", "n": ""}, {"q": ["."], "n": []}, version_2=True)
    assert out["HasAns_total"] == 1 and out["NoAns_total"] == 1 and out["HasAns_exact"] == 1.0


# ---- reading the official JSON ----


def test_split_by_article_reads_the_real_dev_file(squad_dir):
    task = compose(["task=squad_v1"]).task
    dd = squad.load_local(task, DataConfig(dir=str(squad_dir), split_by_article=38))
    assert len(dd["train"]) == 8582 and len(dd["validation"]) == 10570 - 8582
    # counted from 1, as every message and the split's flag count them
    assert set(dd["train"]["article"]) == set(range(1, 39)) and min(dd["validation"]["article"]) == 39
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
    with pytest.raises(DataError, match=r"article 2 \('B'\), question 'q9': no answer"):
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
    two = {"title": "D2", "paragraphs": [ok["paragraphs"][0], {"qas": []}]}  # named by paragraph, not question q1
    with pytest.raises(DataError, match=r"article 2 \('D2'\), paragraph 2 is malformed \(missing or bad 'context'\)"):
        squad.load_local(task, _write(tmp_path, {"data": [ok, two]}))
    with pytest.raises(DataError, match=r"article 2 \('D'\), paragraph 1 is malformed"):
        squad.load_local(task, _write(tmp_path, {"data": [ok, {"title": "D", "paragraphs": [{"qas": []}]}]}))
    (tmp_path / "dev-v1.1.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        squad.load_local(task, DataConfig(dir=str(tmp_path), split_by_article=1))
    # the articles held out for scoring have no question: nothing to score (was a datasets traceback)
    empty = {"title": "E", "paragraphs": [{"context": "x", "qas": []}]}
    data = _write(tmp_path, {"data": [ok, empty]})
    with pytest.raises(DataError, match=r"dev-v1.1.json: no questions in article 2"):
        squad.load_local(task, DataConfig(dir=data.dir, split_by_article=1))


def _article(title, context, *qas):
    return {"title": title, "paragraphs": [{"context": context, "qas": list(qas)}]}


def _qa(qid, question="Where?", answers=(("France", 12),)):
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}


def test_a_repeated_question_id_is_refused(tmp_path):
    """Predictions and gold answers are matched by id: two questions with one id were scored as one (and one's
    window offsets applied to the other's context)."""
    task = compose(["task=squad_v1"]).task
    a = _article("A", "Paris is in France.", _qa("q1"))
    b = _article("B", "Rome is in Italy.", _qa("q2", answers=(("Italy", 11),)), _qa("q1", answers=(("Italy", 11),)))
    with pytest.raises(DataError, match=r"article 3 \('B'\), question 'q1': the id 'q1' was already used \(article 2 "):
        squad.load_local(task, _write(tmp_path, {"data": [a, a, b]}))
    twice = _article("C", "Rome is in Italy.", _qa("q2", answers=(("Italy", 11),)), _qa("q2", answers=(("Rome", 0),)))
    with pytest.raises(DataError, match=r"article 2 \('C'\), question 'q2': the id 'q2' was already used \(article 2 "):
        squad.load_local(task, _write(tmp_path, {"data": [a, twice]}))
    assert len(squad.load_local(task, _write(tmp_path, {"data": [a, b]}))["validation"]) == 2  # each split apart


@pytest.mark.parametrize(
    "qa, match",
    [
        (_qa("q2", answers=(("France", 0),)), r"question 'q2': answer_start 0 of 'France' points at 'Paris '"),
        (_qa("q2", answers=(("France", 12.7),)), r"question 'q2': answer_start 12.7 of 'France' is not a whole"),
        (_qa("q2", answers=(("France", "12"),)), r"question 'q2': answer_start '12' of 'France' is not a whole"),
        (_qa("q2", question=None), r"question 'q2': the question is None, not text"),
        (_qa("q2", question="   "), r"question 'q2': the question is '   ', not text"),
        (_qa(None), r"question None: the id must be text"),
        ({"id": "q2", "question": "?"}, r"question 'q2' is malformed \(missing or bad 'answers'\)"),
        ({**_qa("q2"), "answers": {"text": "France"}}, r"question 'q2': 'answers' is dict, not a list"),
        ("just text", r"paragraph 1: a question is str, not an object"),
    ],
)
def test_bad_questions_and_answer_spans_name_the_question(tmp_path, qa, match):
    task = compose(["task=squad_v1"]).task
    ok = _article("A", "Paris is in France.", _qa("q1"))
    with pytest.raises(DataError, match=match) as exc:
        squad.load_local(task, _write(tmp_path, {"data": [ok, _article("B", "Paris is in France.", qa)]}))
    assert "article 2 ('B')" in str(exc.value)


def test_a_file_that_is_not_utf8_names_its_line_and_a_byte_order_mark_is_read_past(tmp_path):
    task = compose(["task=squad_v1"]).task
    doc = {"data": [_article("A", "Paris is in France.", _qa("q1")), _article("B", "Paris is in France.", _qa("q2"))]}
    text = json.dumps(doc, indent=1)
    (tmp_path / "dev-v1.1.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(squad.load_local(task, DataConfig(dir=str(tmp_path), split_by_article=1))["validation"]) == 1
    (tmp_path / "dev-v1.1.json").write_bytes(text.replace("Paris", "Par\xeds", 1).encode("latin-1"))
    line = text[: text.index("Paris")].count("\n") + 1
    with pytest.raises(DataError, match=rf"dev-v1.1.json, line {line}: not UTF-8 \(byte 0xed\)"):
        squad.load_local(task, DataConfig(dir=str(tmp_path), split_by_article=1))


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
    gold = {q: (c, a) for q, c, a in zip(ex["id"], ex["context"], ex["answers"])}
    spans = zip(ev["example_id"], ev["offset_mapping"], feats["start_positions"], feats["end_positions"])
    for qid, offsets, s, e in spans:
        if s != 0:
            answered.add(qid)
            context, answers = gold[qid]
            # the labelled tokens cover exactly the first gold answer's characters: not one token more or less
            assert context[offsets[s][0] : offsets[e][1]] == answers["text"][0]
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


def test_postprocess_over_two_windows_limits_span_length_and_v1_never_abstains():
    """Two windows of one question: the best valid span of either wins; the null score is the lowest over the
    windows (as run_qa's); a span longer than max_answer_length never wins; SQuAD v1.1 always answers."""
    from datasets import Dataset

    ctx = "Paris is the capital of France"
    examples = Dataset.from_dict({"id": ["q"], "context": [ctx]})
    w1 = [None, [0, 5], [6, 8], [9, 12], None]  # Paris is the
    w2 = [None, [9, 12], [13, 20], [21, 23], [24, 30]]  # the capital of France
    features = Dataset.from_dict({"example_id": ["q", "q"], "offset_mapping": [w1, w2]})
    start = np.array([[1.0, 2, 0, 0, 0], [6.0, 0, 1, 0, 4]])
    end = np.array([[1.0, 3, 0, 0, 0], [6.0, 0, -10, -10, 4]])
    v2 = compose(["task=squad_v2", "task.max_answer_length=30"]).task
    preds, margin = squad.postprocess(examples, features, start, end, v2)
    # window 2's "France" (4 + 4 = 8) beats window 1's "Paris" (2 + 3 = 5); null = min(1 + 1, 6 + 6) = 2
    assert preds == {"q": "France"} and margin["q"] == pytest.approx(2 - 8)
    start[1, 2] = 9.0  # "capital of France" (9 + 4 = 13): three tokens
    assert squad.postprocess(examples, features, start, end, v2)[0] == {"q": "capital of France"}
    short = compose(["task=squad_v2", "task.max_answer_length=2"]).task
    assert squad.postprocess(examples, features, start, end, short)[0] == {"q": "France"}
    start[0, 0] = end[0, 0] = 20.0  # a null score of 40 in window 1, still the lowest is 12 in window 2
    preds, margin = squad.postprocess(examples, features, start, end, v2)
    assert preds == {"q": "capital of France"} and margin["q"] == pytest.approx(12 - 13)
    start[1, 0] = end[1, 0] = 20.0  # now both windows' null scores (40) beat every span
    assert squad.postprocess(examples, features, start, end, v2)[0] == {"q": ""}
    v1 = compose(["task=squad_v1", "task.max_answer_length=30"]).task
    assert squad.postprocess(examples, features, start, end, v1)[0] == {"q": "capital of France"}
