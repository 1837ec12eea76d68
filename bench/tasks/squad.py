"""SQuAD v1.1 / v2.0: the official nested JSON or the Hub, sliding-window features, span post-processing.

Rows follow the Hub schema (`id`, `title`, `context`, `question`, `answers: {text, answer_start}`), so both
sources meet in one DatasetDict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from datasets import Dataset, DatasetDict

from ..config import DataConfig, TaskConfig
from ..errors import DataError
from . import hub

LAYOUT = (
    'expected the official SQuAD JSON: {"version": ..., "data": [{"title": ..., "paragraphs": '
    '[{"context": ..., "qas": [{"id": ..., "question": ..., "answers": [{"text": ..., '
    '"answer_start": ...}]}]}]}]}'
)


def _articles(path: Path) -> List[Dict[str, Any]]:
    if not path.is_file():
        raise DataError(
            f"{path}: file not found; data.dir should hold the official files "
            "(train-v1.1.json, dev-v1.1.json, train-v2.0.json, dev-v2.0.json)"
        )
    data = path.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 (byte {data[exc.start]:#04x}); {LAYOUT}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); {LAYOUT}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f'{path}: no top-level "data" list; {LAYOUT}')
    return doc["data"]


def _rows(path: Path, articles: List[Dict[str, Any]], task: TaskConfig, offset: int = 0) -> Dict[str, list]:
    cols: Dict[str, list] = {k: [] for k in ("id", "title", "context", "question", "answers", "article")}
    seen: Dict[str, str] = {}  # question id -> where it was first read: ids key predictions and gold answers
    # articles and paragraphs counted from 1 in every message, as the split_by_article flag counts them
    for a, article in enumerate(articles, start=offset + 1):
        title = article.get("title", f"#{a}") if isinstance(article, dict) else f"#{a}"
        where = f"{path}: article {a} ({title!r})"
        try:
            for p, paragraph in enumerate(article["paragraphs"], start=1):
                where = f"{path}: article {a} ({title!r}), paragraph {p}"
                context = paragraph["context"]
                if not isinstance(context, str):
                    raise DataError(f"{where}: a context is {type(context).__name__}, not text; {LAYOUT}")
                for qa in paragraph["qas"]:
                    if not isinstance(qa, dict):
                        raise DataError(f"{where}: a question is {type(qa).__name__}, not an object; {LAYOUT}")
                    where = f"{path}: article {a} ({title!r}), question {qa.get('id')!r}"
                    qid, question = qa["id"], qa["question"]
                    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip():
                        raise DataError(f"{where}: the id must be text (or a number); {LAYOUT}")
                    if not isinstance(question, str) or not question.strip():
                        raise DataError(f"{where}: the question is {question!r:.60}, not text; {LAYOUT}")
                    qid = str(qid)
                    if qid in seen:
                        raise DataError(
                            f"{where}: the id {qid!r} was already used ({seen[qid]}); predictions and gold "
                            "answers are matched by id, so each question needs its own"
                        )
                    seen[qid] = f"article {a} ({title!r})"
                    texts, starts = _answers(where, qa["answers"], context)
                    if not texts and not (task.version_2 and qa.get("is_impossible", True)):
                        raise DataError(
                            f"{where}: no answer, which SQuAD v1.1 does not allow (use task=squad_v2 "
                            "for unanswerable questions)"
                        )
                    cols["id"].append(qid)
                    cols["question"].append(question)
                    cols["context"].append(context)
                    cols["title"].append(title)
                    cols["answers"].append({"text": texts, "answer_start": starts})
                    cols["article"].append(a)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{where} is malformed (missing or bad {exc}); {LAYOUT}") from None
    if not cols["id"]:  # articles without questions: nothing to train on or score
        which = f"articles {offset + 1}-{offset + len(articles)}" if len(articles) > 1 else f"article {offset + 1}"
        which = which if articles else "no articles"
        raise DataError(f"{path}: no questions in {which}; {LAYOUT}")
    return cols


def _answers(where: str, answers: Any, context: str) -> Tuple[List[str], List[int]]:
    """Each gold answer's text and character start, checked: the start is a whole number and the context holds
    the text there (a span read from the wrong place would train the model on other words)."""
    if not isinstance(answers, list):
        raise DataError(f"{where}: 'answers' is {type(answers).__name__}, not a list; {LAYOUT}")
    texts, starts = [], []
    for ans in answers:
        t, s = ans["text"], ans["answer_start"]
        if not isinstance(t, str):
            raise DataError(f"{where}: an answer's text is {t!r:.60}, not text; {LAYOUT}")
        if isinstance(s, bool) or not isinstance(s, int):
            raise DataError(f"{where}: answer_start {s!r} of {t!r} is not a whole number; {LAYOUT}")
        if not 0 <= s <= len(context) - len(t):
            raise DataError(f"{where}: answer_start {s} of {t!r} lies outside its context")
        if context[s : s + len(t)] != t:
            raise DataError(
                f"{where}: answer_start {s} of {t!r} points at {context[s : s + len(t)]!r}: the context does not "
                "hold the answer there"
            )
        texts.append(t), starts.append(s)
    return texts, starts


def load_local(task: TaskConfig, data: DataConfig, need_train: bool = True) -> DatasetDict:
    """The official files from data.dir; `data.split_by_article=N` trains on the first N articles of the eval file."""
    root = Path(data.dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data.dir={root}: no such folder")
    eval_split, eval_file = next(iter(task.local.eval_files.items()))
    eval_path = root / task.local.dir_name / eval_file
    eval_articles = _articles(eval_path)
    if data.split_by_article:
        n = data.split_by_article
        if not 0 < n < len(eval_articles):
            raise DataError(
                f"data.split_by_article={n}: {eval_path} has {len(eval_articles)} articles; "
                "give a number between 1 and one less than that"
            )
        dd = DatasetDict(
            {
                "train": Dataset.from_dict(_rows(eval_path, eval_articles[:n], task)),
                eval_split: Dataset.from_dict(_rows(eval_path, eval_articles[n:], task, offset=n)),
            }
        )
        dd.articles_in_file = len(eval_articles)  # the flag on such a figure says which articles it scored
        return dd
    if not need_train:  # scoring reads only the evaluation file
        return DatasetDict({eval_split: Dataset.from_dict(_rows(eval_path, eval_articles, task))})
    train_path = root / task.local.dir_name / task.local.train_file
    return DatasetDict(
        {
            "train": Dataset.from_dict(_rows(train_path, _articles(train_path), task)),
            eval_split: Dataset.from_dict(_rows(eval_path, eval_articles, task)),
        }
    )


def load_hub(task: TaskConfig, need_train: bool = True) -> DatasetDict:
    raw = hub.call(
        f"the dataset {task.hub.id}",
        __import__("datasets").load_dataset,
        task.hub.id,
        _hint=f"read {task.name} from the official JSON files with data.dir=DIR (for example data.dir=../shared/data)",
    )
    eval_split = next(iter(task.local.eval_files))
    splits = {"train": raw[task.hub.train_split]} if need_train else {}
    return DatasetDict({**splits, eval_split: raw["validation"]})


def train_features(
    examples: Dict[str, list], tokenizer, task: TaskConfig, max_length: int, pad: bool
) -> Dict[str, list]:
    """Windows over each context; the answer's token span, or [CLS] when the answer is not inside the window."""
    enc = _windows(examples, tokenizer, task, max_length, pad)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = enc["overflow_to_sample_mapping"][i]
        answers = examples["answers"][ex]
        cls = enc["input_ids"][i].index(tokenizer.cls_token_id)
        seq_ids = enc.sequence_ids(i)
        ctx = [j for j, s in enumerate(seq_ids) if s == 1]
        if not answers["text"] or not ctx:
            starts.append(cls), ends.append(cls)
            continue
        a_start = answers["answer_start"][0]
        a_end = a_start + len(answers["text"][0])
        first, last = ctx[0], ctx[-1]
        if not (offsets[first][0] <= a_start and offsets[last][1] >= a_end):
            starts.append(cls), ends.append(cls)  # the answer is cut by this window: train it to abstain
            continue
        s = first
        while s <= last and offsets[s][0] <= a_start:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= a_end:
            e -= 1
        starts.append(s - 1), ends.append(e + 1)
    enc["start_positions"], enc["end_positions"] = starts, ends
    enc.pop("offset_mapping"), enc.pop("overflow_to_sample_mapping")
    enc["length"] = [len(x) for x in enc["input_ids"]]
    return enc


def eval_features(
    examples: Dict[str, list], tokenizer, task: TaskConfig, max_length: int, pad: bool
) -> Dict[str, list]:
    """Windows with the example id and the offsets of context tokens only (None elsewhere)."""
    enc = _windows(examples, tokenizer, task, max_length, pad)
    enc["example_id"] = []
    for i in range(len(enc["input_ids"])):
        seq_ids = enc.sequence_ids(i)
        enc["example_id"].append(examples["id"][enc["overflow_to_sample_mapping"][i]])
        enc["offset_mapping"][i] = [o if seq_ids[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
    enc.pop("overflow_to_sample_mapping")
    enc["length"] = [len(x) for x in enc["input_ids"]]
    return enc


def _windows(examples, tokenizer, task: TaskConfig, max_length: int, pad: bool):
    if not getattr(tokenizer, "is_fast", False):
        raise DataError("SQuAD needs a fast tokenizer (offset mappings); this model's tokenizer is a slow one")
    questions = [q.lstrip() for q in examples["question"]]  # some questions start with long runs of spaces
    names = [f"question {q!r}" for q in examples["id"]]
    if "article" in examples:  # the official files: which article, as the readers' own errors say it
        names = [f"{n} (article {a}, {t!r})" for n, a, t in zip(names, examples["article"], examples["title"])]
    check_question_lengths(questions, names, tokenizer, task, max_length)
    return tokenizer(
        questions,
        examples["context"],
        truncation="only_second",
        max_length=max_length,
        stride=task.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if pad else False,
    )


def check_question_lengths(questions: List[str], names: List[str], tokenizer, task: TaskConfig, max_length: int):
    """Refuse a question that leaves its window no room for the context beyond the stride: the fast tokenizer
    would panic (a Rust panic, a BaseException no handler names) or fail with a bare truncation error."""
    special = tokenizer.num_special_tokens_to_add(pair=True)  # [CLS] q [SEP] c [SEP]: 3 for BERT
    most = max_length - special - task.doc_stride - 1
    questions = [q.lstrip() for q in questions]  # as _windows reads them
    for name, ids in zip(names, tokenizer(questions, add_special_tokens=False)["input_ids"]):
        if len(ids) > most:
            raise DataError(
                f"{name}: the question is {len(ids)} tokens, but windows of max_seq_length={max_length} tokens "
                f"hold at most {most}: {special} special tokens and task.doc_stride={task.doc_stride} tokens of "
                "context need the rest; shorten the question, give a larger max_seq_length or a smaller "
                "task.doc_stride"
            )


def postprocess(
    examples: Dataset, features: Dataset, start_logits: np.ndarray, end_logits: np.ndarray, task: TaskConfig
) -> Tuple[Dict[str, str], Dict[str, float]]:
    """Best span per question over its windows (n-best, max answer length); v2.0 abstains when the
    null score beats the best span by more than `task.null_threshold`. Returns predictions and null-score margins."""
    by_example: Dict[str, List[int]] = {}
    for i, ex_id in enumerate(features["example_id"]):
        by_example.setdefault(ex_id, []).append(i)
    offsets_all = features["offset_mapping"]
    predictions, null_margin = {}, {}
    for ex in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for i in by_example.get(ex["id"], []):
            s_log, e_log, offsets = start_logits[i], end_logits[i], offsets_all[i]
            null_score = min(null_score, float(s_log[0] + e_log[0]))
            n = len(offsets)
            for s in np.argsort(s_log[:n])[::-1][: task.n_best]:
                for e in np.argsort(e_log[:n])[::-1][: task.n_best]:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > task.max_answer_length:
                        continue
                    score = float(s_log[s] + e_log[e])
                    if score > best_score:
                        best_score, best_text = score, ex["context"][offsets[s][0] : offsets[e][1]]
        margin = null_score - best_score if np.isfinite(best_score) else np.inf
        null_margin[ex["id"]] = float(margin)
        predictions[ex["id"]] = "" if task.version_2 and margin > task.null_threshold else best_text
    return predictions, null_margin
