"""Does a model beat the trivial baseline over its seeds, not only on one run?

Each run's `trivial.vs_best` judges that run alone: its interval covers the dev examples, not the seeds. Here, per
task and model variant (each seed's newest run), the mean over the seeds of the model's primary score minus the
best trivial predictor's on the same dev examples, with stats.seed_example_bootstrap's interval over both (the
trivial predictor has no seed of its own: one fixed arm, the same on every seed's side of the difference, unless
the seed drew the training rows it is learnt from; below).

The trivial predictions come from the runs themselves: a classification or regression run records each trivial
predictor's constant (`trivial.predictors.<name>.constant`); a multiple-choice run writes each predictor's
per-example score into predictions.jsonl (`trivial`, from this version on). A predictor learnt from the training
rows can differ by seed where the seed draws those rows (data.max_train_samples): each seed is then paired with its
own. A group whose runs were scored on other examples or name other predictors, or that lacks them (an older file;
SQuAD has no paired predictions), is left out and named, never guessed.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, TextIO, Tuple

import numpy as np
import pandas as pd

from .. import kinds
from ..schema import Result
from ..tasks import metrics as task_metrics
from .gather import label, newest_per_seed, variants
from .stats import _predictions, seed_example_bootstrap, task_of


class Arms(NamedTuple):
    """One run's side of the comparison, on the dev examples it scored."""

    split: str
    ids: np.ndarray  # the examples' ids, in the order of every array below
    labels: np.ndarray
    model: np.ndarray  # the model's arm: predictions, or per-example scores (multiple choice)
    trivial: Dict[str, np.ndarray]  # each trivial predictor's arm, in the same form
    score: Callable[[np.ndarray, np.ndarray], float]  # score(arm, labels) -> the task's primary metric


NOT_BETTER_OVER_SEEDS = "no better than trivial over {k} seeds"
NO_INTERVAL_OVER_SEEDS = "no interval against trivial over {k} seeds"
LEFT_OUT = "not compared with trivial ({k} run{s}): {why}"
COLUMNS = ["task", "model", "best", "seeds", "n", "diff", "low", "high", "within_noise", "method", "trivial_per_seed"]


def arms(r: Result) -> Optional[Arms]:
    """One run's arms, or None when it cannot be compared with its trivial predictors."""
    task = task_of(r)
    if task is None or not kinds.of(task).paired or not r.task.eval_splits or not r.trivial:
        return None
    split = r.task.eval_splits[0]  # the split the run's trivial predictors scored
    df = _predictions(r, split, extra=("trivial",))
    if df is None or not len(df):
        return None
    y, pred = df.label.to_numpy(), df.prediction.to_numpy()
    if kinds.of(task).choices:  # per-example expected accuracy; chance's is 1/k, not a prediction
        if "trivial" not in df or df.trivial.isna().any():
            return None
        names = list(df.trivial.iloc[0]) if isinstance(df.trivial.iloc[0], dict) else []
        if not names or any(not isinstance(t, dict) or list(t) != names for t in df.trivial):
            return None
        trivial = {n: np.array([t[n] for t in df.trivial], dtype=float) for n in names}
        return Arms(split, df.idx.to_numpy(), y, (pred == y).astype(float), trivial, lambda a, _y: float(np.mean(a)))
    constants = {n: p.get("constant") for n, p in (r.trivial.get("predictors") or {}).items()}
    if not constants or any(c is None for c in constants.values()):
        return None
    trivial = {n: np.full(len(y), c) for n, c in constants.items()}

    primary = task_metrics.primary_scorer(task)

    def score(p, labels):  # a constant has no correlation (scipy: NaN); 0, as the run's own verdict reads it
        v = primary(p, labels)
        return 0.0 if v != v else float(v)

    return Arms(split, df.idx.to_numpy(), y, pred, trivial, score)


def _same(a: Arms, b: Arms) -> bool:
    """Scored on the same dev examples (split, ids, gold labels), with trivial predictors of the same names."""
    return (
        a.split == b.split
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.labels, b.labels)
        and list(a.trivial) == list(b.trivial)
    )


def frame(rs: List[Result], n_boot: int = 2000, log: Optional[TextIO] = None) -> pd.DataFrame:
    """One row per (task, model variant) whose runs can all be compared with their trivial predictors: the best
    trivial predictor, the seeds, and the mean difference with its 95% interval. The best is the one that scores
    highest on these dev examples, as each run's own check picks it: the maximum of noisy scores runs high, so
    the choice can only favour the trivial side. A group left out is named on `log` and kept, with its reason and
    run count, in `.attrs["left_out"]` ((model, task) -> (why, runs)), which the tables' flags show."""
    var = variants(rs)
    groups: Dict[Tuple[str, str], Dict[Any, Result]] = {}
    # oldest first: a seed both fine-tuned and evaluated (one label) counts once, by its newest run
    for r in sorted(newest_per_seed(rs, var=var), key=lambda r: r.started_at):
        if r.mode in ("finetune", "evaluate", "distill") and r.metrics.get("primary") is not None:
            seed = r.seed if r.seed is not None else r.path
            groups.setdefault((r.task.name, label(r, var[id(r)])), {})[seed] = r
    out: List[Dict[str, Any]] = []
    left_out: Dict[Tuple[str, str], Tuple[str, int]] = {}
    for (task_name, model), by_seed in groups.items():
        res, why = gap(list(by_seed.values()), n_boot)
        if why is not None:
            left_out[(model, task_name)] = (why, len(by_seed))
            if log is not None:
                print(f"vs trivial: {task_name} {model} left out: {why}", file=log)
        if res is not None:
            out.append({"task": task_name, "model": model, **res})
    df = pd.DataFrame(out, columns=list(dict.fromkeys([*COLUMNS, *(k for row in out for k in row)])))
    df.attrs["left_out"] = left_out
    return df


def gap(runs: List[Result], n_boot: int = 2000) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """One variant's seeds (one run each) against their best trivial predictor: (the best, the seeds, the mean
    difference and its interval over seeds and dev examples; None) or (None, why they cannot be compared; None
    for a task without paired predictions, SQuAD's texts)."""
    if (task := task_of(runs[0])) is None or not kinds.of(task).paired:
        return None, None  # SQuAD: its predictions are texts, scored per question by the official script
    found = [arms(r) for r in runs]
    if any(a is None for a in found):
        return None, "a run without the trivial predictors' predictions"
    if not all(_same(found[0], a) for a in found[1:]):
        return None, "its seeds were scored on other dev examples, or name other trivial predictors"
    if not all(np.isfinite(np.asarray(a.model, dtype=float)).all() for a in found):
        return None, "a run's predictions hold a missing or non-finite value"
    y, score = found[0].labels, found[0].score
    # a predictor learnt from the training rows (majority class, frequent position) can differ by seed where the
    # seed draws the rows (data.max_train_samples): each seed is then paired with its own, a difference per seed
    trivial = {n: [a.trivial[n] for a in found] for n in found[0].trivial}
    best = max(trivial, key=lambda n: float(np.mean([score(t, y) for t in trivial[n]])))
    own = not all(np.array_equal(t, trivial[best][0]) for t in trivial[best])
    res = seed_example_bootstrap(score, y, [a.model for a in found], trivial[best], n_boot=n_boot)
    return {"best": best, **res, "trivial_per_seed": own}, None


def as_pairs(vs: pd.DataFrame) -> pd.DataFrame:
    """The same rows in stats.pairwise's shape (model B the trivial predictor), for the significance table."""
    if vs.empty:
        return vs
    seeds = [
        f"{k} seed{'s' * (k != 1)}; "
        + ("each against its own training rows' trivial predictor" if own else "the trivial predictor has none")
        for k, own in zip(vs.seeds, vs.trivial_per_seed)
    ]
    pairs = vs.assign(model_a=vs.model, model_b="trivial: " + vs.best, pairing=seeds)
    pairs.attrs = {}  # frame()'s left-out groups are the tables' flags, not pairs (and tuple keys break to_parquet)
    return pairs.drop(columns=["model", "best", "trivial_per_seed"])


def by_model_task(vs: Optional[pd.DataFrame]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """(model label, task) -> its row, for the tables; a group frame() left out -> {"left_out": why, "seeds": runs}."""
    if vs is None:
        return {}
    gaps = {key: {"left_out": why, "seeds": k} for key, (why, k) in vs.attrs.get("left_out", {}).items()}
    return {**gaps, **{(g["model"], g["task"]): g for g in vs.to_dict("records")}}


def flag(gaps: Dict[Tuple[str, str], Dict[str, Any]], model: str, task: str) -> Optional[str]:
    """The table flag of a model not shown better than its best trivial predictor over 2 or more seeds, or not
    compared with it (verdict)."""
    return verdict(gaps.get((model, task)))


def verdict(g: Optional[Dict[str, Any]]) -> Optional[str]:
    """One gap row's flag over 2 or more seeds: an interval that is not above zero (within noise, or below: worse
    than trivial), or none drawn (with one seed, the run's own flag says the same); a group left out, whatever
    its runs (none compared: the table would otherwise show no verdict at all). None when the interval is above
    zero."""
    if g is not None and g.get("left_out"):
        return LEFT_OUT.format(k=g["seeds"], s="s" * (g["seeds"] != 1), why=g["left_out"])
    if g is None or g["seeds"] < 2:
        return None
    low, high = g["low"], g["high"]
    if low is None or high is None or not np.isfinite([low, high]).all():
        return NO_INTERVAL_OVER_SEEDS.format(k=g["seeds"])
    return None if low > 0 else NOT_BETTER_OVER_SEEDS.format(k=g["seeds"])


GAP_SOURCE = "ours (dev examples x seeds)"


def gap_text(g: Optional[Dict[str, Any]], missing: str = "-", seeds: bool = True) -> str:
    """A table cell of the gap to the best trivial predictor: '+25.1 [+20.0, +30.2] vs longest answer, 3 seeds'
    (x100, the task's primary metric), or `missing` (none, or a group left out: its flag says why)."""
    if not compared(g):
        return missing
    low, high = g["low"], g["high"]
    ci = f"[{100 * low:+.1f}, {100 * high:+.1f}]" if np.isfinite([low, high]).all() else "[no interval]"
    text = f"{100 * g['diff']:+.1f} {ci} vs {g['best']}"
    return f"{text}, {g['seeds']} seed{'s' * (g['seeds'] != 1)}" if seeds else text


def compared(g: Optional[Dict[str, Any]]) -> bool:
    """Whether a gaps entry holds a comparison (not none, not a group frame() left out)."""
    return g is not None and not g.get("left_out")


def gap_rows(gaps: Dict[Tuple[str, str], Dict[str, Any]], models: List[str], titles: Dict[str, str], missing: str):
    """One row per model with a gap in any of `titles` (task -> column): '<model> - best trivial'."""
    return [
        {
            "model": f"{model} - best trivial",
            "source": GAP_SOURCE,
            "flags": missing,
            **{title: gap_text(gaps.get((model, t)), missing) for t, title in titles.items()},
        }
        for model in models
        if any(compared(gaps.get((model, t))) for t in titles)
    ]
