"""mode=robustness on multiple-choice tasks: the run of bench/robustness/run.py, on k candidates per example, plus
the choice-order test, the seed document's exact fragility: does the chosen answer change when the same
candidates are shown in another order?

Each dev example is scored in its original order, again in that order (the control `order_identity`: any flip is
the scoring's), then in `robustness.choice_orders` other orders: the reversal first, then seeded shuffles, each
one new for that example (not the original, not an earlier order). Each choice is mapped back to the original
candidate it names before it is compared. An example with no new order left (2 candidates have one other order)
is not shown in that order and not counted in its figures, so an order that changed nothing reads "no flip rate",
never 0 flips.

Examples are tuples of texts, (context, choice 1, ..., choice k), so the text perturbations of the classification
run apply unchanged: they act on the context and every candidate consistently (the same word gets the same typo,
the same name the same replacement), and a flip is a change of the chosen original candidate.
"""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import Config
from ..tasks.multiple_choice import ChoiceCollator
from ..timing import backends as B
from . import figures
from . import run as R
from .scoring import softmax

ORDER = "order_"
CONTROL = "order_identity"  # the original order, scored again: must flip nothing
ANY = "order_any"  # over the examples any order changed: flipped under at least one
DEFAULT_ORDERS = 3  # robustness.choice_orders unset: the reversal and two seeded shuffles


def order_names(count: int) -> List[str]:
    """The non-control orders, in the order they are drawn: `order_reversed`, then `order_shuffled_1`, ..."""
    return ([f"{ORDER}reversed"] if count else []) + [f"{ORDER}shuffled_{j}" for j in range(1, count)]


def orders(k: int, count: int, seed: int, idx: int) -> List[Optional[List[int]]]:
    """The `count` orders an example of k candidates is shown in (perm[j]: the original index of the candidate
    shown at position j): the reversal, then seeded shuffles, each new for this example; None once none is left.
    Deterministic in (seed, example index) alone, through its own random.Random."""
    rng = random.Random(f"choice-orders:{seed}:{idx}")
    seen = {tuple(range(k))}
    out: List[Optional[List[int]]] = []
    for j in range(count):
        if len(seen) >= math.factorial(k):
            out.append(None)
            continue
        perm = list(range(k))[::-1]
        while tuple(perm) in seen:
            perm = list(range(k))
            rng.shuffle(perm)
        seen.add(tuple(perm))
        out.append(perm)
    return out


def shown(example: Sequence[str], perm: Sequence[int]) -> Tuple[str, ...]:
    """(context, candidates in the order `perm`)."""
    return (example[0], *(example[1 + j] for j in perm))


def _encode(tokenizer, ex: Sequence[str], max_length: int):
    k = len(ex) - 1
    return tokenizer([ex[0]] * k, list(ex[1:]), truncation=True, max_length=max_length)


def token_ids(tokenizer, examples: Sequence[Sequence[str]], max_length: int) -> List[Tuple[Tuple[int, ...], ...]]:
    """Per example, the token ids of each (context, candidate) pair: the model input a perturbation may change."""
    return [tuple(map(tuple, _encode(tokenizer, ex, max_length)["input_ids"])) for ex in examples]


def probabilities(
    prepared: B.Prepared, tokenizer, examples: Sequence[Sequence[str]], max_length: int, batch_size: int, names: set
) -> np.ndarray:
    """Per example, the softmax over its k candidates (float64), padded with 0 to the widest example; batches of
    mixed k get filler candidates that take no probability (bench/tasks/multiple_choice.py's collator)."""
    width = max((len(ex) - 1 for ex in examples), default=0)
    out = np.zeros((len(examples), width))
    if not examples:
        return out
    features = [{n: v for n, v in _encode(tokenizer, ex, max_length).items() if n in names} for ex in examples]
    order = np.argsort([sum(map(len, f["input_ids"])) for f in features], kind="stable")
    collate = ChoiceCollator(tokenizer)
    for i in range(0, len(order), batch_size):
        chunk = order[i : i + batch_size]
        batch = collate([features[j] for j in chunk])
        mask = batch.pop("choice_mask")
        for j, p in zip(chunk, softmax(prepared, batch, mask)):
            out[j, : p.shape[0]] = p
    return out


def _examples(ds) -> List[Tuple[str, ...]]:
    return [(context, *choices) for context, choices in zip(ds["context"], ds["choices"])]


def _prepare(cfg: Config, data: Dict[str, Any]) -> None:
    """data["orders"]: order name -> per example its permutation, or None where that order shows nothing new."""
    rc = cfg.robustness
    count = DEFAULT_ORDERS if rc.choice_orders is None else rc.choice_orders
    per_example = [orders(k, count, rc.seed, i) for i, k in enumerate(data["k"])]
    data["choice_orders"] = count
    data["orders"] = {}
    if count:
        data["orders"][CONTROL] = [list(range(k)) for k in data["k"]]
        for j, name in enumerate(order_names(count)):
            data["orders"][name] = [perms[j] for perms in per_example]


def _score_orders(name: str, score, cfg: Config, data: Dict[str, Any], clean: np.ndarray, out, rows) -> None:
    """Each order's figures on this backend, `order_any` over them, and one predictions-file row per example
    shown: its probabilities and prediction in original-candidate terms, the permutation shown and the position
    chosen in it."""
    rc, labels, k = cfg.robustness, data["labels"], data["k"]
    pred = clean.argmax(axis=1)
    out["choice_orders"], full = {}, {}
    for oname, perms in data["orders"].items():
        idx = [i for i, p in enumerate(perms) if p is not None]
        q = score([shown(data["examples"][i], perms[i]) for i in idx])
        back = np.zeros_like(q)
        for n, i in enumerate(idx):
            back[n, perms[i]] = q[n, : k[i]]  # the probability shown at position j belongs to candidate perm[j]
        # the candidate chosen is the one shown at the argmax position: a tie goes to the one shown first, as
        # in the original order, so a head that cannot tell the candidates apart flips with the order
        at = q.argmax(axis=1) if idx else np.zeros(0, int)
        bp = np.array([perms[i][j] for i, j in zip(idx, at)], dtype=int)
        changed = np.zeros(len(labels), bool)
        changed[idx] = True
        out["choice_orders"][oname] = figures.reordered(pred, bp, labels, changed, rc.bootstrap)
        if oname != CONTROL:
            full[oname] = np.full(len(labels), -1)
            full[oname][idx] = bp
        rows += R.rows_of(
            name,
            f"order:{oname}",
            idx,
            labels[idx],
            back,
            k,
            predictions=bp,
            shown=[perms[i] for i in idx],
            shown_prediction=[int(x) for x in at],
        )
    if full:
        out["choice_orders"][ANY] = figures.any_order(pred, full, labels, rc.bootstrap)


def _section(data: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    changed = {n: sum(p is not None for p in perms) for n, perms in data["orders"].items()}
    unchanged = {
        n: "no example has a new order left for it (2 candidates have one other order: the reversal)"
        for n, c in changed.items()
        if c == 0
    }
    section = {
        "choice_orders": data["choice_orders"],
        "rule": "order_identity: the original order again (control); order_reversed: the candidates reversed; "
        "order_shuffled_N: a shuffle seeded by (robustness.seed, example index), new for that example",
        "orders": {n: {"changed": c} for n, c in changed.items()},
        "unchanged": unchanged,
        "choices": sorted(set(data["k"])),
    }
    return section, [f"choice order {n}: {why}: no flip rate" for n, why in unchanged.items()]


INPUTS = R.Inputs(
    examples=_examples,
    probabilities=probabilities,
    token_ids=token_ids,
    prepare=_prepare,
    extra=_score_orders,
    section=_section,
    width=lambda data: [len(ex) - 1 for ex in data["examples"]],
)


def run(cfg: Config) -> Dict[str, Any]:
    """mode=robustness on a multiple-choice task (the runner dispatches here by task kind)."""
    return R.run(cfg, INPUTS)
