"""SQuAD through the harness: real runs of a tiny model on the official dev file (fine-tune, evaluate, capped and
split dev sets and their flags), the trivial predictors beside every score, the SQuAD table, and the refusals a
run gives before it trains (a stride or a question that leaves a window no room). The metrics, the reader and the
post-processing on their own: tests/test_squad.py."""

import json
import re

import numpy as np
import pytest
from conftest import tiny
from test_squad import _article, _qa, _write

from bench import models
from bench.config import compose
from bench.errors import ConfigError, DataError
from bench.runner import run
from bench.tasks import squad_metrics as sm


def test_stride_too_long_for_the_window_is_a_clear_error(squad_dir, tmp_path):

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
            "train.save_checkpoint=true",
        ],
        out_dir=str(tmp_path / "train"),
    )
    result = run(cfg)
    assert result.status == "ok" and result.task["split_by_article"] == 47
    assert {"exact_match", "f1", "primary"} <= set(result.metrics)
    preds = json.loads((tmp_path / "train" / "predictions.json").read_text())
    assert len(preds) == 12 and all(isinstance(v, str) for v in preds.values())
    assert any("first 47 articles" in n for n in result.notes)
    # the figure of the dev file's last article is flagged where a table shows it, not only noted
    assert SPLIT_FLAG in result.flags
    # the trivial predictors, on the same 12 questions (article 48's first), agree with a computation of their own
    doc = json.loads((squad_dir / "dev-v1.1.json").read_text())["data"]
    qas = [(qa, p["context"]) for p in doc[47]["paragraphs"] for qa in p["qas"]][:12]
    assert list(preds) == [qa["id"] for qa, _ in qas]
    expected = {"overlap sentence": [_by_overlap(qa["question"], c) for qa, c in qas]}
    expected["first 3 words"] = [" ".join(c.split()[:3]) for _, c in qas]
    assert set(result.trivial["predictors"]) == set(expected)
    for name, answers in expected.items():
        f1 = [max(sm.f1(a, g["text"], False) for g in qa["answers"]) for a, (qa, _) in zip(answers, qas)]
        em = [max(sm.exact(a, g["text"]) for g in qa["answers"]) for a, (qa, _) in zip(answers, qas)]
        got = result.trivial["predictors"][name]["metrics"]
        assert got["f1"] == pytest.approx(np.mean(f1)) and got["exact_match"] == pytest.approx(np.mean(em))
        assert got["primary"] == got["f1"] and 0 <= got["exact_match"] <= got["f1"] <= 1
    assert result.trivial["predictors"]["overlap sentence"]["metrics"]["f1"] > 0  # a bar, not zero
    # two steps of a random model: no better than the best of them, flagged and said why
    vs = result.trivial["vs_best"]
    assert vs["best"] == max(expected, key=lambda n: result.trivial["predictors"][n]["metrics"]["f1"])
    assert not vs["beats_trivial"] and vs["low"] <= 0 and "no better than trivial" in result.flags
    assert any(n.startswith(f"no better than trivial: F1 {vs['primary_diff']:+.4f} over '") for n in result.notes)
    # a figure of the scored articles' first 12 questions is flagged as one (it was not: the split was rebuilt)
    capped = r"validation: first {} of \d+ rows \(data.max_eval_samples\)"
    assert any(re.fullmatch(capped.format(12), f) for f in result.flags)
    # scored again from its checkpoint (mode=evaluate, no training split), a capped dev figure is flagged too
    scored = [
        "model=bert_base",
        f"model.path={tmp_path / 'train' / 'checkpoint'}",
        "task=squad_v1",
        "mode=evaluate",
        f"data.dir={squad_dir}",
        "data.max_eval_samples=7",
    ]
    ev = compose(scored, out_dir=str(tmp_path / "eval"))
    evaluated = run(ev)
    assert evaluated.status == "ok", evaluated.failures
    assert evaluated.task["splits"] == {"validation": 7} and evaluated.train is None
    assert "validation: first 7 of 10570 rows (data.max_eval_samples)" in evaluated.flags
    assert not any("split_by_article" in f for f in evaluated.flags)  # scored on the whole dev file
    # evaluated on the held-out articles only: said so, without claiming a training it did not do
    held = run(compose([*scored, "data.split_by_article=46"], out_dir=str(tmp_path / "eval_split")))
    assert held.status == "ok", held.failures
    assert "validation: articles 47-48 of the 48 in the dev file, articles 1-46 left out" in " ".join(held.flags)
    said = [n for n in held.notes if "first 46 articles" in n]
    assert said and not any("trained" in n for n in said) and said[0].startswith("evaluated without the first 46")


def _by_overlap(question, context):
    """The overlap-sentence rule worked out here, apart from bench's: most shared normalised words, first on ties."""
    words = set(sm.normalize_answer(question).split())
    best, most = "", -1
    for sentence in re.split(r"(?<=[.!?])\s+", context.strip()):
        shared = len(words & set(sm.normalize_answer(sentence).split()))
        if shared > most:
            best, most = sentence, shared
    return best


def test_trivial_squad_predictors_on_hand_made_questions():
    from bench.tasks import squad_trivial as st

    context = "  Paris is the capital of France. It lies on the Seine!  The Seine flows west? Yes."
    assert st.overlap_sentence("Which river does it lie on?", context) == "It lies on the Seine!"
    assert st.overlap_sentence("What is the capital of France?", context) == "Paris is the capital of France."
    # "the seine" ties sentences 2 and 3 on {seine} once articles go: the first wins; no shared word: the first
    assert st.overlap_sentence("The Seine?", context) == "It lies on the Seine!"
    assert st.overlap_sentence("Why?", context) == "Paris is the capital of France."
    assert st.overlap_sentence("Who?", "No end mark at all") == "No end mark at all"
    assert st.first_words(context) == "Paris is the" and st.first_words("Two words") == "Two words"
    ids, questions, contexts = ["a", "b"], ["Which river does it lie on?", "Who?"], [context, "Nobody knows."]
    v1 = st.predictions(ids, questions, contexts, version_2=False)
    assert set(v1) == {"overlap sentence", "first 3 words"}
    assert v1["overlap sentence"]["predictions"] == {"a": "It lies on the Seine!", "b": "Nobody knows."}
    assert v1["first 3 words"]["predictions"] == {"a": "Paris is the", "b": "Nobody knows."}
    v2 = st.predictions(ids, questions, contexts, version_2=True)
    assert v2["always abstain"]["predictions"] == {"a": "", "b": ""}
    # v2.0 scoring: abstaining is right on the unanswerable question only (F1 1 there, 0 on the other)
    golds = {"a": ["the Seine"], "b": []}
    section = st.section({"a": "Seine", "b": "Nobody"}, golds, v2, version_2=True)
    abstain = section["predictors"]["always abstain"]["metrics"]
    assert abstain["f1"] == abstain["exact"] == 0.5 and abstain["NoAns_f1"] == 1.0 and abstain["HasAns_f1"] == 0.0
    overlap = section["predictors"]["overlap sentence"]["metrics"]
    # "it lies on seine" vs "seine": precision 1/4, recall 1 -> F1 0.4; "nobody knows" answers a no-answer: 0
    assert overlap["f1"] == pytest.approx(0.4 / 2) and overlap["primary"] == overlap["f1"]
    assert section["vs_best"]["best"] == "always abstain" and section["vs_best"]["primary_diff"] == pytest.approx(0)


SPLIT_FLAG = (
    "validation: article 48 of the 48 in the dev file, trained on articles 1-47 (data.split_by_article): not "
    "comparable with published dev figures"
)


def test_the_squad_table_flags_a_figure_of_split_by_article(squad_dir, tmp_path):
    """The SQuAD table showed such a figure unflagged beside published dev figures (its caption pointed to the
    result's notes, which a table never shows)."""
    import io

    from bench.report import gather, squad_tables

    quick = ["data.max_train_samples=16", "data.max_eval_samples=12", "train.max_steps=1", "train.batch_size=8"]
    for name, split in (("split", ["data.split_by_article=38"]), ("whole", [])):
        cfg = compose([*tiny("bert"), "task=squad_v1", f"data.dir={squad_dir}", *split, *quick], out_dir="x")
        if not split:  # no training file offline: scored from the first run's checkpoint, on the whole dev file
            cfg = compose(
                ["model=bert_base", f"model.path={tmp_path / 'runs' / 'split' / 'checkpoint'}", "task=squad_v1"]
                + ["mode=evaluate", f"data.dir={squad_dir}", "data.max_eval_samples=12"],
                out_dir="x",
            )
        cfg.out_dir = str(tmp_path / "runs" / name)
        cfg.train.save_checkpoint = True
        assert run(cfg).status == "ok"
    _, metrics_df, _ = gather.load_all(tmp_path / "runs", io.StringIO())
    table = squad_tables.squad_table(gather.seeds(metrics_df), with_published=False)
    flags = table.text.set_index("model")["flags"]
    split, whole = sorted(flags.index, key=lambda m: "data.split_by_article=38" not in m)  # the rows' labels differ
    flag = (
        "v1.1 EM/F1: validation: articles 39-48 of the 48 in the dev file, trained on articles 1-38 "
        "(data.split_by_article): not comparable with published dev figures"
    )
    assert flag in flags[split].split("; ")
    assert "split_by_article" not in flags[whole]
    assert "flags: a figure of data.split_by_article" in table.caption and "notes" not in table.caption
    # a result written before such figures were flagged (its task.split_by_article and a note only) is flagged too
    path = tmp_path / "runs" / "split" / "result.json"
    old = json.loads(path.read_text())
    old["flags"] = [f for f in old["flags"] if "split_by_article" not in f]
    path.write_text(json.dumps(old))
    _, metrics_df, _ = gather.load_all(tmp_path / "runs", io.StringIO())
    flags = squad_tables.squad_table(gather.seeds(metrics_df), with_published=False).text.set_index("model")["flags"]
    said = "v1.1 EM/F1: data.split_by_article=38: not comparable with published dev figures"
    assert said in flags[split].split("; ") and "split_by_article" not in flags[whole]


def test_a_question_that_leaves_the_window_no_room_is_a_data_error_naming_it(tmp_path):
    """A question of 300 words left no room in a window for the stride's context: the fast tokenizer panicked
    (pyo3 PanicException, a BaseException no handler names) or failed with a bare truncation error. Both the
    features step of a run and `bench score` now name the question, its token count and the limit."""
    from transformers import AutoTokenizer

    from bench import score

    context = "Paris is in France. " * 80  # long enough to need several windows
    long_q = " ".join(["paris"] * 300) + "?"
    a = _article("A", context, _qa("q1"))
    b = _article("B", context, _qa("q2"), _qa("long_one", question=long_q))
    data = _write(tmp_path, {"data": [a, b]})
    cfg = compose(
        [*tiny("bert"), "task=squad_v1", f"data.dir={data.dir}", "data.split_by_article=1", "train.max_steps=1"],
        out_dir=str(tmp_path / "run"),
    )
    limit = r"the question is 301 tokens, but windows of max_seq_length=384 tokens hold at most 252: .*doc_stride"
    with pytest.raises(DataError, match=r"question 'long_one' \(article 2, 'B'\): " + limit):
        run(cfg)
    # bench score: the same error, naming the input's line, not a panic (exit 2 through its CLI)
    qa = models.build_random(cfg.model, cfg.task, seed=0)
    qa.save_pretrained(str(tmp_path / "qa"))
    AutoTokenizer.from_pretrained(str(models.package_dir(models.VOCAB_PACKAGE))).save_pretrained(str(tmp_path / "qa"))
    rows = [{"question": "Where?", "context": context}, {"question": long_q, "context": context}]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"qa.jsonl, line 2: " + limit):
        score.score("squad_v1", str(tmp_path / "qa"), str(tmp_path / "qa.jsonl"), allow_random_head=True)
