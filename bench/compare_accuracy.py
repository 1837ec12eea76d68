"""The accuracy half of the regression gate: paired runs' metrics, judged only when the runs are the same experiment.

A metric is a score (higher is better) unless its name says otherwise: `*_total` counts the examples a figure is
taken over (SQuAD v2's HasAns_total and NoAns_total) and `*_thresh` is a setting the scoring chose (SQuAD v2's
best no-answer threshold, bench/tasks/squad_metrics.py). A threshold that moved is no better or worse, so it is
shown, not judged; a count that differs means the runs scored other examples, and their scores are not compared.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from .compare_config import differences
from .schema import Result


def role(metric: str) -> str:
    """'count', 'threshold' or 'score' (every other metric of a result is higher-is-better)."""
    if metric.endswith("_total"):
        return "count"
    if metric.endswith("_thresh"):
        return "threshold"
    return "score"


def _precision_row(label: str, base: List[Result], cur: List[Result], policy, Row):
    # only runs that finished have a precision to compare: a crashed run has no `train` section, and it is a
    # failure (its status row says so, exit 1), not a run of another precision (exit 2)
    cur = [r for r in cur if r.status == "ok"]
    pb, pc = {r.precision for r in base}, {r.precision for r in cur}
    if not cur or pb == pc:
        return None
    change = f"precision {sorted(map(str, pb))} vs {sorted(map(str, pc))}"
    if policy.accuracy_only and policy.cross_precision:
        return Row(label, "precision", None, None, change + " (compared: --cross-precision)", "ok")
    return Row(
        label,
        "precision",
        None,
        None,
        change + ": not compared (--accuracy-only --cross-precision "
        "compares accuracy across precisions with the tolerance given)",
        "not comparable",
    )


def _other_counts(base: List[Result], usable: List[Result]) -> List[str]:
    """'HasAns_total: 5928 vs 5900' for each count whose values differ between the sides (a null is not finite)."""
    out = []
    for metric in (m for m in base[0].metrics if role(m) == "count"):
        b, c = (
            {"null" if v is None else f"{v:g}" for v in (r.metrics.get(metric) for r in side)}
            for side in (base, usable)
        )
        if b != c:
            out.append(f"{metric}: {'/'.join(sorted(b))} vs {'/'.join(sorted(c))}")
    return out


def _not_comparable(label: str, figure: str, why: str, base: List[Result], usable: List[Result], Row) -> List:
    """Another experiment, not a change of this one: judging it against the tolerance would blame or clear the code
    for what the difference did. A metric of the current run that is not finite still fails closed."""
    broken = sorted({m for r in usable for m in r.nonfinite_metrics if m in base[0].metrics})
    return [Row(label, figure, None, None, why, "not comparable")] + [
        Row(label, m, None, None, "not finite in the current run", "REGRESSION") for m in broken
    ]


def rows(label: str, task: str, base: List[Result], cur: List[Result], policy, Row) -> List:
    """Every accuracy figure of one paired run key, `Row`s as bench/compare.py defines them."""
    precision = _precision_row(label, base, cur, policy, Row)
    if precision is not None and precision.verdict == "not comparable":
        return [precision]
    out = [precision] if precision else []
    usable = [r for r in cur if r.status == "ok"]
    differ, accepted = differences(base, usable, policy.ignore_config) if usable else ([], [])
    if differ:
        text = "; ".join(differ[:12]) + (f"; and {len(differ) - 12} more" if len(differ) > 12 else "")
        why = f"settings differ: {text} (bench compare --ignore-config KEY accepts a known difference)"
        return out + _not_comparable(label, "config", why, base, usable, Row)
    if accepted:
        out.append(Row(label, "config", None, None, "accepted (--ignore-config): " + "; ".join(accepted), "ok"))
    counts = _other_counts(base, usable) if usable else []
    if counts:
        # the scores are over other examples (another copy of the data, or rows accepted with --ignore-config):
        # no tolerance measured on one set of examples can judge a score taken over another
        why = "scored other examples: " + "; ".join(counts)
        return out + _not_comparable(label, "examples", why, base, usable, Row)
    for metric in base[0].metrics:
        out.append(_metric_row(label, task, metric, base, usable, policy, Row))
    return out


def _metric_row(label: str, task: str, metric: str, base: List[Result], usable: List[Result], policy, Row):
    b = [r.metrics.get(metric) for r in base]
    if any(v is None or not math.isfinite(v) for v in b):
        return Row(label, metric, None, None, "the baseline's value is not finite", "refused")
    c = [r.metrics.get(metric) for r in usable]
    mb = float(np.mean(b))
    if not c or any(v is None or not math.isfinite(v) for v in c):
        why = "not finite in the current run" if c else "no successful current run"
        return Row(label, metric, mb, None, why, "REGRESSION")
    mc = float(np.mean(c))
    if role(metric) == "threshold":
        why = f"{mc - mb:+.4f} (a threshold the scoring chose, not a score: not gated)"
        return Row(label, metric, mb, mc, why, "not compared")
    if role(metric) == "count":  # equal on both sides: _other_counts said so
        return Row(label, metric, mb, mc, "the same examples", "ok")
    tol = policy.tolerance_for(task, metric)
    verdict = "REGRESSION" if mc < mb - tol else "improved" if mc > mb + tol else "ok"
    return Row(label, metric, mb, mc, f"{mc - mb:+.4f} (tol {tol:g})", verdict)
