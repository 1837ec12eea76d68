"""Every result.json below a folder, into tidy pandas frames; anything unusable is skipped with one line.

Seeds are averaged only over runs whose resolved configs are equal apart from the seed: runs that differ in
anything else (for example `data.max_train_samples=1000`) are another variant of the model, shown in a row of
their own and labelled with what differs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, TextIO, Tuple

import pandas as pd

from .. import schema
from ..schema import Result
from .console import latency_frame
from .naming import differing, flat, on_holdout, params, settings, variant_of

# left out of reports unless asked for (--include): committed baselines and the gate's own runs
EXCLUDED_BY_DEFAULT = ("baselines", "gate")
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
            reason = r.error.message if r.error else "; ".join(r.failures)
            print(f"skipped: {path}: status {r.status!r} {reason[:160]}".rstrip(), file=log)
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
            only_some = frozenset()
        keys = differing(flats, only_some)
        for r, f in zip(group, flats):
            out[id(r)] = settings(f, keys, only_some)
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


def metrics_frame(rs: List[Result]) -> pd.DataFrame:
    """One row per (run, metric) for finetune/evaluate results."""
    rows = []
    var = variants(rs)
    for r in rs:
        if r.mode in ("latency", "robustness") or not r.metrics:  # robustness: its own table (report/robustness.py)
            continue
        flags = "; ".join(r.flags)
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


def efficiency_frame(rs: List[Result]) -> pd.DataFrame:
    """One row per (latency run, backend, shape), with the accuracy change each backend costs when measured."""
    lat = [r for r in rs if r.latency]
    df = latency_frame([r.model_dump(mode="json") for r in lat])
    if df.empty:
        return df
    var = variants(rs)
    df["model"] = [label(r, var[id(r)]) for r in lat for _ in r.latency]
    df["model_name"] = [r.model.name for r in lat for _ in r.latency]
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


def seeds(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and n over seeds for each model variant, task and metric."""
    if df.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "mean", "std", "n", "flags"])
    g = df.groupby(["model", "model_name", "weights", "task", "metric"], sort=False)
    out = g["value"].agg(mean="mean", std="std", n="count").reset_index()
    # a flag on any seed (no better than trivial, head: random) is carried to the aggregate
    out["flags"] = g["flags"].agg(lambda f: "; ".join(sorted({x for v in f for x in v.split("; ") if x}))).values
    out["std"] = out["std"].fillna(0.0)
    return out


def load_all(root: Path, log: TextIO = sys.stderr, include: Iterable[str] = ()):
    rs = find(root, log, include)
    return rs, metrics_frame(rs), efficiency_frame(rs)
