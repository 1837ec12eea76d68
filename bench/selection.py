"""Choosing a learning rate and an epoch count on held-out training rows, and the record of that choice.

A selection run trains on the labelled rows less a seeded holdout (`data.holdout`, `data.sample_seed`) and scores
only that holdout (`data.score=holdout`), so the dev set stays the test, scored once by the final run. The final
run's folder holds `selection.json` beside its result.json: the grid, the slice, each point's holdout score and
the choice, which the distillation table reads back. Written by benchmarks/distill.py and
benchmarks/finetune_speed.py; no torch here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .results import write_atomic

SELECTION_FILE = "selection.json"
TIE_RULE = (
    "the highest holdout score; equal scores (within 1e-9) go to fewer epochs, then to the lower learning rate "
    "(the cheaper, gentler setting)"
)
TIE = 1e-9


@dataclass(frozen=True, order=True)
class Point:
    """One setting of the grid: the schedule of the stage being tuned (distill.prediction.* by default)."""

    epochs: float
    learning_rate: float

    @property
    def label(self) -> str:
        return f"lr{self.learning_rate:g}_ep{self.epochs:g}"

    def overrides(self, stage: str = "prediction") -> List[str]:
        return [f"distill.{stage}.learning_rate={self.learning_rate!r}", f"distill.{stage}.epochs={self.epochs!r}"]

    def as_dict(self) -> Dict[str, float]:
        return {"learning_rate": self.learning_rate, "epochs": self.epochs}


def grid(learning_rates: Sequence[float], epochs: Sequence[float]) -> List[Point]:
    """Every (learning rate, epochs) pair, in a fixed order; a repeated value is one point."""
    if not learning_rates or not epochs:
        raise ValueError("a selection grid needs at least one learning rate and one epoch count")
    bad = [v for v in [*learning_rates, *epochs] if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"grid values must be positive numbers, got {bad}")
    return sorted({Point(float(e), float(lr)) for lr in learning_rates for e in epochs})


def within_rule(within: float) -> str:
    """The rule pick() applies, in words (TIE_RULE when `within` is 0)."""
    if not within:
        return TIE_RULE
    return (
        f"the fewest epochs, then the lowest learning rate, among the settings whose holdout score is within "
        f"{within:g} of the highest (a cheaper setting that the holdout cannot tell apart from the best)"
    )


def pick(scores: Dict[Point, Optional[float]], within: float = 0.0) -> Point:
    """The point with the highest holdout score (TIE_RULE), or with `within` > 0 the cheapest point scoring within
    `within` of it (within_rule); points without a finite score take no part."""
    if not (math.isfinite(within) and within >= 0):
        raise ValueError(f"within must be a finite number >= 0, got {within}")
    ok = {p: s for p, s in scores.items() if s is not None and math.isfinite(s)}
    if not ok:
        raise ValueError("no grid point has a holdout score: every selection run failed")
    best = max(ok.values())
    return min(p for p, s in ok.items() if s >= best - within - TIE)  # Point orders by epochs, then learning rate


def record(
    arm: str,
    points: Sequence[Point],
    scores: Dict[Point, Optional[float]],
    runs: Dict[Point, Dict[str, Any]],
    slice_: Dict[str, Any],
    metric: str,
    stage: str = "prediction",
    within: float = 0.0,
) -> Dict[str, Any]:
    """What selection.json holds: the arm tuned, the stage whose schedule it sets, the slice, every grid point
    (holdout score, status, run folder, training seconds) and the choice (null when no point scored)."""
    try:
        chosen: Optional[Dict[str, float]] = pick(scores, within).as_dict()
    except ValueError:
        chosen = None
    return {
        "arm": arm,
        "stage": stage,
        "metric": metric,
        "split": "holdout",
        **slice_,
        "grid": [{**p.as_dict(), "holdout": scores.get(p), **runs.get(p, {})} for p in points],
        "chosen": chosen,
        "tie_rule": within_rule(within),
        "failed": sum(1 for p in points if scores.get(p) is None),
    }


def score(points: Sequence[Point], run_point: Callable[[Point], Tuple[Any, str]]) -> Tuple[Dict, Dict, str]:
    """Run (or reuse) every grid point: `run_point(p)` gives its result as read back (None when none was written)
    and its run folder. Returns each point's holdout score (None unless ok), its run record for `record`, and the
    primary metric's name as the task file gives it."""
    scores: Dict[Point, Optional[float]] = {}
    runs: Dict[Point, Dict[str, Any]] = {}
    metric = "primary"
    for p in points:
        r, where = run_point(p)
        ok = r is not None and r.status == "ok"
        scores[p] = r.metrics.get("primary") if ok else None
        runs[p] = {
            "status": r.status if r is not None else "no result",
            "run": where,
            "train_s": r.train.seconds if ok and r.train else None,
        }
        if ok:
            metric = "primary (" + "/".join((r.config.get("task") or {}).get("primary") or ["?"]) + ")"
    return scores, runs, metric


def write(folder: Path, rec: Dict[str, Any]) -> Path:
    path = Path(folder) / SELECTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(rec, indent=2) + "\n")
    return path


def read(folder: Path) -> Optional[Dict[str, Any]]:
    """The selection record beside a run's result; None for an untuned run (no file); {"error": why} for a file
    that cannot be read as one, so that a reader says so rather than treating the run as untuned."""
    path = Path(folder) / SELECTION_FILE
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {exc}"}
    if not isinstance(rec, dict) or "grid" not in rec:
        return {"error": f"{path}: not a selection record (no grid)"}
    return rec
