"""The rows of the distillation table (bench/report/distillation.py): the trivial baseline, the teacher, and one row
per variant with its seeds, its change against the direct fine-tune and what flags it.

A variant's row is never a silent average: fewer than MIN_SEEDS ok seeds, a failed or interrupted seed, a selection
record that cannot be read or whose grid had failed runs, and seeds that ran at different settings each put a
flag on the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .. import selection
from ..results import load_not_judged, trained_beside_load
from ..schema import DistillInfo, Result
from . import stats, vs_trivial

MIN_SEEDS = 3  # fewer ok seeds than this: the variant's mean is flagged, not silently averaged
TRIVIAL = "trivial baseline"


def distill_info(r: Result) -> DistillInfo:
    return (r.train.distill if r.train else None) or DistillInfo()


def mean(values: Iterable[Optional[float]]) -> Optional[float]:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def run_name(r: Result) -> str:
    """How a flag names one run: its seed, or, without one (a run that failed before its config was read), its
    folder."""
    if r.seed is not None:
        return f"seed {r.seed}"
    path = getattr(r, "path", None)
    return f"run {Path(path).parent.name}" if path else "a run without seed or folder"


def reason(r: Result) -> str:
    """Why a run is not ok: its error, else what its status check recorded (a metric that is not finite)."""
    return r.error.message if r.error else "; ".join(r.failures)


def metrics_text(ms: List[Dict[str, Any]]) -> str:
    """'acc 78.2, f1 85.3' (x100, mean over seeds): every metric of the run, not only the primary one."""
    names = [k for k in (ms[0] if ms else {}) if k != "primary"]
    parts = []
    for k in names:
        v = mean(m.get(k) for m in ms)
        parts.append(f"{k} {100 * v:.1f}" if v is not None else f"{k} -")
    return ", ".join(parts)


def trivial_row(ok: List[Result]) -> Optional[Dict[str, Any]]:
    """The best trivial predictor on the same dev rows (each run's `trivial` section: majority class, all positive
    for F1 tasks, the training mean for regression), from the oldest ok run; None when no run has one."""
    found = [r.trivial for r in sorted(ok, key=lambda r: r.started_at) if r.trivial and r.trivial.get("predictors")]
    if not found:
        return None
    t = found[0]
    preds = t["predictors"]
    best = (t.get("vs_best") or {}).get("best") or max(preds, key=lambda n: preds[n]["metrics"]["primary"])
    p = preds[best]
    what = p.get("constant", p.get("rule"))
    status = f"{best} (predicts {what}): the best of {', '.join(preds)} on the same dev rows"
    values = {round(f["predictors"][best]["metrics"]["primary"], 9) for f in found if best in f["predictors"]}
    if len(values) > 1:  # other training rows give another majority, or other dev rows another score
        status += f"; the runs' trivial figures differ ({sorted(values)}): from the oldest run"
    return {
        "variant": TRIVIAL,
        "dev": p["metrics"].get("primary"),
        "metrics": metrics_text([p["metrics"]]),
        "status": status,
        "failed": False,
    }


def tuned(rs: Iterable[Result]) -> bool:
    """Whether these runs were tuned on a holdout: a selection.json (readable or not) beside any of them."""
    return any(r.path and (Path(r.path).parent / selection.SELECTION_FILE).is_file() for r in rs)


def selection_of(rs: List[Result]) -> Tuple[str, List[str], Optional[Dict[str, Any]]]:
    """(the 'selected' cell, flags, the record) from the selection.json beside each run: '' when untuned."""
    recs = [selection.read(Path(r.path).parent) if r.path else None for r in rs]
    if not any(recs):
        return "", [], None
    flags = [f"selection record unreadable: {rec['error']}" for rec in recs if rec and "error" in rec]
    good = [rec for rec in recs if rec and "error" not in rec]
    if len(good) < len(recs) and not flags:
        flags.append(f"{len(recs) - len(good)} of {len(recs)} seeds have no selection record")
    if not good:
        return "-", flags, None
    chosen = {str(rec.get("chosen")) for rec in good}
    if len(chosen) > 1:
        flags.append(f"seeds ran at different selected settings: {sorted(chosen)}")
    rec = good[0]
    if rec.get("failed"):
        flags.append(f"selection: {rec['failed']} of {len(rec['grid'])} grid runs failed")
    c = rec.get("chosen")
    if not c:
        return "none (no grid point scored)", flags, rec
    score = next((g.get("holdout") for g in rec["grid"] if g["learning_rate"] == c["learning_rate"]
                  and g["epochs"] == c["epochs"]), None)  # fmt: skip
    text = f"lr {c['learning_rate']:g}, {c['epochs']:g} ep" + (f": holdout {100 * score:.1f}" if score else "")
    if rec.get("variant") and rec.get("arm") and rec["arm"] != rec["variant"]:
        text += f" ({rec['arm']}'s choice)"
    return text, flags, rec


def change(ok: List[Result], direct: Dict[Any, Result], n_boot: int) -> Dict[str, Any]:
    """The change against the direct fine-tune, per seed paired with the direct run of the same seed: the mean
    over those seeds and the seeds-and-examples interval of stats.compare_seeds."""
    pairs = []
    for r in sorted(ok, key=lambda r: r.seed if r.seed is not None else 0):
        d = direct.get(r.seed)
        if d is not None and d.status == "ok" and None not in (r.metrics.get("primary"), d.metrics.get("primary")):
            pairs.append((r, d))
    out: Dict[str, Any] = {"pairs": len(pairs) or None, "why": ""}
    if not pairs:
        return out
    out["vs_direct_points"] = float(np.mean([100 * (r.metrics["primary"] - d.metrics["primary"]) for r, d in pairs]))
    try:
        ci = stats.compare_seeds(pairs, n_boot=n_boot)
    except (ValueError, TypeError):  # a predictions file with nulls or text where labels belong: no interval
        ci = None
    if ci is None:
        out["why"] = "no paired interval (predictions missing, unreadable or on other dev rows)"
    else:
        out.update(ci_low=100 * ci["low"], ci_high=100 * ci["high"], within_noise=ci["within_noise"])
    return out


def flags_of(ok: List[Result], bad: List[Result], n_boot: int = 2000) -> List[str]:
    out = trivial_flags(ok, n_boot)
    if len(ok) < MIN_SEEDS:
        out.append(f"{len(ok)} ok seed{'s' * (len(ok) != 1)} (fewer than {MIN_SEEDS})")
    if bad:
        out.append(
            f"{len(bad)} run{'s' * (len(bad) != 1)} not ok: " + ", ".join(f"{run_name(r)} {r.status}" for r in bad)
        )
    untrained = [r for r in ok if getattr(getattr(r, "model", None), "head", None) == "random"]
    if untrained:  # an intermediate-only run: its dev figure scores a classifier nothing trained
        out.append("head: random (no prediction stage): " + ", ".join(run_name(r) for r in untrained))
    trains = [(r, r.train.model_dump() if r.train else None) for r in ok]
    checks = ((trained_beside_load, "taken beside other load"), (load_not_judged, "not judged for load"))
    for test, what in checks:  # the row's train s averages these: none of them is the recipe's clean cost
        hit = [r for r, t in trains if test(t)]
        if hit:
            runs = f"{len(hit)} of {len(ok)} run{'s' * (len(ok) != 1)}"
            out.append(f"train s of {runs} {what}: " + ", ".join(run_name(r) for r in hit))
    timed = [(r, getattr(_efficiency(r), "disturbed", False)) for r in ok]
    for value, what in ((True, "measured beside other load"), (None, "not judged for load")):
        hit = [r for r, d in timed if d is value]
        if hit:  # the row's p50 and speed-up average these
            runs = f"{len(hit)} of {len(ok)} run{'s' * (len(ok) != 1)}"
            out.append(f"speed-up of {runs} {what}: " + ", ".join(run_name(r) for r in hit))
    return out


def _efficiency(r):
    """A run's side-by-side latency figures; None for a stand-in without them (older results: no verdict)."""
    try:
        return distill_info(r).efficiency
    except AttributeError:
        return None


def trivial_flags(ok: List[Result], n_boot: int) -> List[str]:
    """Each run's own flags (its check against the trivial predictors, `weights: random`), naming the seeds that
    raised them, and, over 2 or more seeds, the variant's verdict against its best trivial predictor over seeds and
    dev examples (bench/report/vs_trivial.py): a mean above the trivial row is not yet a student that beats it."""
    raised: Dict[str, List[Result]] = {}
    for r in ok:
        for f in getattr(r, "flags", None) or []:  # a stand-in without them (older results): none
            if f != "head: random":  # said below with its reason (no prediction stage)
                raised.setdefault(f, []).append(r)
    out = [
        f"{f} in {len(hit)} of {len(ok)} run{'s' * (len(ok) != 1)}: " + ", ".join(run_name(r) for r in hit)
        for f, hit in raised.items()
    ]
    gap, why = vs_trivial.gap(ok, n_boot) if len(ok) > 1 else (None, None)
    if over := vs_trivial.verdict(gap):
        out.append(f"{over}: {vs_trivial.gap_text(gap, seeds=False)}")
    elif why:
        out.append(f"{vs_trivial.NO_INTERVAL_OVER_SEEDS.format(k=len(ok))}: {why}")
    return out
