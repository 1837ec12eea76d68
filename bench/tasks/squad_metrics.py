"""SQuAD metrics as the official v1.1 and v2.0 evaluation scripts define them (no Hub download).

Answers are normalised (lower case, punctuation removed, articles a/an/the dropped, white space collapsed);
EM and F1 take the maximum over the gold answers. v2.0 adds no-answer questions (gold = the empty string),
HasAns/NoAns breakdowns and the best no-answer threshold.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Dict, List, Mapping, Tuple

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str, version_2: bool = True) -> float:
    pred_toks, gold_toks = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if version_2 and (not pred_toks or not gold_toks):  # v2.0: a no-answer is right only against a no-answer
        return float(pred_toks == gold_toks)
    common = Counter(pred_toks) & Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def gold_texts(answers: List[str]) -> List[str]:
    """Gold answers that survive normalisation; none means a no-answer question (v2.0)."""
    golds = [a for a in answers if normalize_answer(a)]
    return golds or [""]


def raw_scores(
    predictions: Mapping[str, str], golds: Mapping[str, List[str]], version_2: bool = True
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Per question EM and F1, each the best over the gold answers. v1.1 keeps every gold answer (three of its dev
    questions have one, '.', that normalises to nothing: an empty prediction is an exact match there, with F1 0);
    v2.0 drops such answers and scores an empty one only against a no-answer question."""
    em, f = {}, {}
    for qid, answers in golds.items():
        if qid not in predictions:
            continue  # the official scripts skip (v1.1 warns about) unanswered questions: scored as 0 below
        g = gold_texts(answers) if version_2 else list(answers)
        em[qid] = max(exact(predictions[qid], a) for a in g)
        f[qid] = max(f1(predictions[qid], a, version_2) for a in g)
    return em, f


def _mean(scores: Mapping[str, float], ids: List[str]) -> float:
    return sum(scores.get(q, 0.0) for q in ids) / len(ids) if ids else float("nan")


def best_threshold(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> Tuple[float, float]:
    """The official v2.0 sweep: abstain on questions whose no-answer score exceeds a threshold; returns the best
    score and its threshold."""
    current = best = float(sum(1 for q in scores if not has_answer[q]))
    threshold = 0.0
    for qid in sorted(na_probs, key=na_probs.get):
        if qid not in scores:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1.0 if predictions[qid] else 0.0
        current += diff
        if current > best:
            best, threshold = current, na_probs[qid]
    return best / len(scores), threshold


def evaluate(
    predictions: Mapping[str, str],
    golds: Mapping[str, List[str]],
    version_2: bool = False,
    na_probs: Mapping[str, float] | None = None,
) -> Dict[str, float]:
    """EM and F1 (fractions, not percentages) over every question in `golds`; v2.0 adds the breakdowns."""
    ids = list(golds)
    em, f = raw_scores(predictions, golds, version_2)
    if not version_2:
        return {"exact_match": _mean(em, ids), "f1": _mean(f, ids)}
    has_answer = {q: bool(golds[q]) for q in ids}  # as the official script: any gold answer, even one like "."
    has, no = [q for q in ids if has_answer[q]], [q for q in ids if not has_answer[q]]
    out = {
        "exact": _mean(em, ids),
        "f1": _mean(f, ids),
        "HasAns_exact": _mean(em, has),
        "HasAns_f1": _mean(f, has),
        "NoAns_exact": _mean(em, no),
        "NoAns_f1": _mean(f, no),
        "HasAns_total": len(has),
        "NoAns_total": len(no),
    }
    if na_probs:
        scored_em = {q: em.get(q, 0.0) for q in ids}
        scored_f1 = {q: f.get(q, 0.0) for q in ids}
        preds = {q: predictions.get(q, "") for q in ids}
        out["best_exact"], out["best_exact_thresh"] = best_threshold(preds, scored_em, na_probs, has_answer)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(preds, scored_f1, na_probs, has_answer)
    return out
