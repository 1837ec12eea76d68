"""Every result.json below a folder, into tidy pandas frames; anything unusable is skipped with one line.

Seeds are averaged only over runs whose resolved configs are equal apart from the seed: runs that differ in
anything else (for example `data.max_train_samples=1000`) are another variant of the model, shown in a row of
their own and labelled with what differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, TextIO, Tuple

import pandas as pd

from .. import schema
from ..compare_config import MODE_NODES, resolved_schedule
from ..schema import Result
from .console import latency_frame
from .naming import differing, flat, on_holdout, params, settings, variant_of

# left out of reports unless asked for (--include): committed baselines and the gate's own runs
EXCLUDED_BY_DEFAULT = ("baselines", "gate")
# the layers a training run's schedule is resolved from (prefixes of dotted keys; the length last)
SCHEDULE = ("model.recipe.",) + tuple(
    f"train.{k}" for k in ("learning_rate", "batch_size", "epochs", "warmup", "weight_decay", "max_seq_length")
)
UNTRAINED = ("latency", "evaluate")  # modes that train nothing
USABLE = ("ok", "partial")  # partial: a latency grid with some failed cells, each shown with its status


def find(
    root: Path,
    log: TextIO = sys.stderr,
    include: Iterable[str] = (),
    unusable: Optional[List[Result]] = None,
    unreadable: Optional[List[str]] = None,
) -> List[Result]:
    """Usable results below `root` (or the one file given); one line per skipped file. Valid results of another
    status (failed, interrupted) are appended to `unusable` when given: tables that must show them (distillation)
    read them there. Files that are not valid results are appended (why, with the path) to `unreadable`."""
    exclude = tuple(x for x in EXCLUDED_BY_DEFAULT if x not in set(include))
    found = []
    for path, r in schema.walk(Path(root), exclude=exclude):
        if isinstance(r, str):
            print(f"skipped: {r}", file=log)
            if unreadable is not None:
                unreadable.append(r)
        elif on_holdout(r.config):
            print(f"skipped: {path}: scored on the holdout (data.score=holdout, a selection run), not on dev", file=log)
        elif r.status not in USABLE:
            print(f"skipped: {path}: status {r.status!r} {why(r)[:160]}".rstrip(), file=log)
            if unusable is not None:
                unusable.append(r)
        else:
            found.append(r)
    return found


def variants(rs: List[Result]) -> Dict[int, str]:
    """id(result) -> what sets its config apart from the other runs of the same model ('' when nothing)."""
    by_model: Dict[Tuple[str, str, str, str, str], List[Result]] = {}
    for r in rs:
        kind = r.mode if r.mode in ("latency", "distill") else "scored"  # finetune and evaluate runs: one group
        # distill runs are compared per task: each task has its own teacher, which is not a variant
        task = r.task.name if r.mode == "distill" else ""
        by_model.setdefault((r.model.name, r.model.weights, r.model.head, kind, task), []).append(r)
    out: Dict[int, str] = {}
    for group in by_model.values():
        flats = [flat(r.config) for r in group]
        if group[0].mode == "distill":  # the variant is named in the label (distilled(r)); of the other distill
            # settings, only those that act in the run (no temperature without soft targets)
            acting = [params(r.config) for r in group]
            kept = ("distill.teacher", "distill.init", "distill.layers")
            flats = [
                {**{k: v for k, v in f.items() if not k.startswith("distill.") or k in kept}, **a}
                for f, a in zip(flats, acting)
            ]
            # a distill setting that acts in some runs only is compared among those and named there
            only_some = frozenset(k for a in acting for k in a)
        else:
            flats = _as_run(group, flats)
            only_some = frozenset(k for f in flats for k in f if "[" in k)  # one task's: compared among its runs
        keys = differing(flats, only_some)
        for r, f in zip(group, flats):
            out[id(r)] = settings(f, keys, only_some)
    return out


def _as_run(group: List[Result], flats: List[Dict[str, str]]) -> List[Dict[str, str]]:
    """Settings as the runs ran them, beside their configs: each task's rows as found (`rows[task]`: the data,
    wherever its folder was), and, when every run of the group records it, the schedule as resolved
    (`train.learning_rate[task]`, ...) in place of the layers it was resolved from (`model.recipe`,
    `train.learning_rate`), so that a schedule pinned on the command line is the variant that the model file's
    recipe resolves to. A latency or evaluate run trains nothing: its schedule is no setting of it (an evaluate
    run's length is); nor is a node that only another mode reads (`distill`, `timing`, `robustness`)."""
    # a run that failed before it finished training recorded no schedule: it must not turn the others' off
    resolved = all(resolved_schedule(r) for r in group if r.mode not in UNTRAINED and r.status in USABLE)
    out = []
    for r, f in zip(group, flats):
        task = r.task.name
        if r.mode in UNTRAINED:  # no schedule: a latency run reads none, an evaluate run only its length
            layers = ("train.", "model.recipe.") if r.mode == "latency" else SCHEDULE
        else:
            layers = SCHEDULE if resolved else ()
        layers += tuple(f"{node}." for node, mode in MODE_NODES.items() if mode != r.mode)  # read by another mode
        f = {k: v for k, v in f.items() if not any(k == p or k.startswith(p) for p in layers) or k == "train.seed"}
        rows = (r.task.model_extra or {}).get("splits")
        if rows:
            f[f"rows[{task}]"] = "/".join(f"{split}:{n}" for split, n in sorted(rows.items()))
        if r.mode == "evaluate":
            c = r.config
            length = (c.get("train") or {}).get("max_seq_length") or (c.get("task") or {}).get("max_seq_length")
            f[f"train.max_seq_length[{task}]"] = json.dumps(length)
        if resolved and r.mode not in UNTRAINED:
            f.update({f"train.{k[len('resolved.') :]}[{task}]": v for k, v in resolved_schedule(r).items()})
        out.append(f)
    return out


def label(r: Result, variant: str = "") -> str:
    """How a model is named in tables: random weights, a random head and a variant are marked wherever shown."""
    marks = [
        m
        for m in (
            "weights: random" if r.model.weights == "random" else "",
            "head: random" if r.model.head == "random" else "",
            distilled(r),
            variant,
        )
        if m
    ]
    return f"{r.model.name} ({'; '.join(marks)})" if marks else r.model.name


def distilled(r: Result) -> str:
    """'3L student: two-stage' for a distill run (its depth and variant), '' otherwise."""
    if r.mode != "distill":
        return ""
    layers = r.model.num_hidden_layers
    return f"{layers}L student: {variant_of(r.config)}" if layers else f"student: {variant_of(r.config)}"


def _scored(r: Result) -> bool:
    return r.mode not in ("latency", "robustness") and bool(r.metrics)  # robustness: report/robustness.py


def newest_per_seed(
    rs: List[Result], log: Optional[TextIO] = None, var: Optional[Dict[int, str]] = None
) -> List[Result]:
    """The scored runs (all but latency and robustness) to average: per model variant, task and seed the newest: a seed
    run twice is one seed, not two (counting it twice would shrink the spread and inflate the seed count). Each run
    set aside is named on `log`. Runs without a seed (a checkpoint no harness run trained) are each their own.
    `var`: the caller's variants(rs), when it has them already."""
    var = variants(rs) if var is None else var
    newest: Dict[Tuple, Result] = {}
    for r in sorted(rs, key=lambda r: r.started_at):
        if _scored(r):
            seed = r.seed if r.seed is not None else ("run", r.path)
            newest[(label(r, var[id(r)]), r.task.name, r.mode, seed)] = r
    kept = {id(r) for r in newest.values()}
    for r in rs if log is not None else []:
        if _scored(r) and id(r) not in kept:
            other = newest[(label(r, var[id(r)]), r.task.name, r.mode, r.seed)]
            where = Path(other.path).parent if other.path else "?"
            print(f"set aside: {r.path}: seed {r.seed} of the same variant was run again later ({where})", file=log)
    return [r for r in rs if id(r) in kept]


def _flags(r: Result) -> List[str]:
    """A result's flags, and the one a SQuAD result of data.split_by_article written before such figures were
    flagged (its `task.split_by_article` and a note only) must carry too."""
    split = r.task.model_dump().get("split_by_article")
    if split and not any("data.split_by_article" in f for f in r.flags):
        return [*r.flags, f"data.split_by_article={split}: not comparable with published dev figures"]
    return list(r.flags)


def metrics_frame(rs: List[Result], log: Optional[TextIO] = None) -> pd.DataFrame:
    """One row per (run, metric) for finetune/evaluate results, a seed's newest run only (`newest_per_seed`)."""
    rows = []
    var = variants(rs)
    for r in newest_per_seed(rs, log, var):
        flags = "; ".join(_flags(r))
        for metric, value in r.metrics.items():
            if value is not None:
                rows.append(
                    {
                        "model": label(r, var[id(r)]),
                        "model_name": r.model.name,
                        "weights": r.model.weights,
                        "task": r.task.name,
                        "metric": metric,
                        "value": float(value),
                        "seed": r.seed,
                        "params": r.model.parameters,
                        "run": str(Path(r.path).parent),
                        "flags": flags,
                    }
                )
    cols = ["model", "model_name", "weights", "task", "metric", "value", "seed", "params", "run", "flags"]
    return pd.DataFrame(rows, columns=cols)


FAILED_STATUSES = ("failed", "interrupted")
FAILED_COLUMNS = ["model", "model_name", "weights", "mode", "task", "seed", "status", "reason", "run", "machine"]


def why(r: Result) -> str:
    """A failed or interrupted run's reason on one line."""
    reason = r.error.message if r.error else "; ".join(r.failures)
    return " ".join(str(reason or "no reason recorded").split())


def failed_frame(rs: List[Result], unusable: List[Result]) -> pd.DataFrame:
    """One row per failed or interrupted run that a table of ours would have shown (fine-tune, evaluate and latency
    runs; distillation and robustness have tables of their own), labelled as its ok runs are: a seed that failed is
    a flag on its model's row, a model whose every run failed a row of its own, never nothing."""
    # skipped and running records point at other runs (a sweep job whose identical run finished elsewhere)
    shown = [r for r in unusable if r.mode in ("finetune", "evaluate", "latency") and r.status in FAILED_STATUSES]
    if not shown:
        return pd.DataFrame(columns=FAILED_COLUMNS)
    var = variants([*rs, *shown])  # a failed run differing only in its seed carries its model's label
    rows = [
        {
            "model": label(r, var[id(r)]),
            "model_name": r.model.name,
            "weights": r.model.weights,
            "mode": r.mode,
            "task": r.task.name,
            "seed": r.seed,
            "status": r.status,
            "reason": why(r),
            "run": str(Path(r.path).parent) if r.path else "?",
            "machine": r.machine_class or "?",
        }
        for r in shown
    ]
    out = pd.DataFrame(rows, columns=FAILED_COLUMNS)
    out["seed"] = out["seed"].astype(object)  # None beside integers: never 'seed 3.0'
    return out


def efficiency_frame(rs: List[Result]) -> pd.DataFrame:
    """One row per (latency run, backend, shape), with the accuracy change each backend costs when measured."""
    lat = [r for r in rs if r.latency]
    df = latency_frame([r.model_dump(mode="json") for r in lat])
    if df.empty:
        return df
    var = variants(rs)
    df["model"] = [label(r, var[id(r)]) for r in lat for _ in r.latency]
    df["model_name"] = [r.model.name for r in lat for _ in r.latency]
    df["machine"] = [r.machine_class or "?" for r in lat for _ in r.latency]  # a time means little without it
    df["run"] = [str(Path(r.path).parent) if r.path else "?" for r in lat for _ in r.latency]
    df["device"] = [row.device for r in lat for row in r.latency]
    acc, why = [], []
    for r in lat:
        backends = (r.timing.model_dump() if r.timing else {}).get("backends", {})
        for row in r.latency:
            change = (backends.get(row.backend) or {}).get("accuracy_change") or {}
            acc.append(change.get("primary"))
            why.append((backends.get(row.backend) or {}).get("emulated_reason"))
    df["accuracy_change"] = acc
    df["emulated_reason"] = why
    return df


def _seed_flags(part: pd.DataFrame) -> str:
    """The flags of one model, task and metric over its runs: each once, with the seeds of the runs that raised it
    when some run of the group did not (a mean over seeds beside one seed's flag must not read as the mean's)."""
    raised: Dict[str, List[int]] = {}
    for i, flags in enumerate(part["flags"]):
        for x in (flags if isinstance(flags, str) else "").split("; "):
            if x:
                raised.setdefault(x, []).append(i)
    seeds_ = list(part["seed"])
    out = []
    for flag, runs in sorted(raised.items()):
        if len(runs) < len(part):
            named = [t for _, t in sorted(_seed_text(seeds_[i]) for i in runs)]
            flag = f"{flag} ({'seed' if len(named) == 1 else 'seeds'} {', '.join(named)})"
        out.append(flag)
    return "; ".join(out)


def _seed_text(seed) -> Tuple[Tuple[int, float, str], str]:
    """A seed's sort key and text: a whole number as itself (42, not 42.0), a missing seed as '?' (last)."""
    if seed is None or (isinstance(seed, float) and seed != seed):
        return (2, 0.0, ""), "?"
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, (int, float)):
        return (0, float(seed), ""), str(seed)
    return (1, 0.0, str(seed)), str(seed)


def seeds(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and n over seeds for each model variant, task and metric."""
    if df.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "mean", "std", "n", "flags"])
    g = df.groupby(["model", "model_name", "weights", "task", "metric"], sort=False)
    out = g["value"].agg(mean="mean", std="std", n="count").reset_index()
    # a flag on any seed (no better than trivial, head: random) is carried to the aggregate, naming its seeds
    # when not every seed has it (a mean over seeds beside one seed's flag must not read as the mean's)
    out["flags"] = [_seed_flags(part) for _, part in g]
    out["std"] = out["std"].fillna(0.0)
    return out


def load_all(root: Path, log: TextIO = sys.stderr, include: Iterable[str] = ()):
    rs = find(root, log, include)
    return rs, metrics_frame(rs), efficiency_frame(rs)
