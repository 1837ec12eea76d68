"""The distillation table from result files alone: per task, teacher and student, the teacher, the student fine-tuned
directly and each distilled variant, with the dev figure (mean±std over seeds), the change against the direct
fine-tune with a paired-bootstrap 95% interval on the same dev examples, training time, latency and speed-up over
the teacher. Failed or interrupted distill runs are rows of their own, never left out in silence.

    python -m bench.report.distillation RESULTS_DIR [--out table.md] [--bootstrap 2000]

`bench report` shows the same table (`distillation.md`, `.tex`, a section of the HTML page).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from .. import schema
from ..schema import DistillInfo, Result
from . import render, stats, tables
from .naming import differing, distill_flat, on_holdout, params, settings, student_of, teacher_of, terms, variant_of

VARIANT_ORDER = {"teacher": 0, "fine-tuned directly": 1, "prediction layer": 2, "intermediate only": 3, "two-stage": 4}
# skipped/running records point at other runs: not rows
SHOWN = ("ok", "failed", "interrupted", "partial")  # skipped/running records point at other runs: not rows
COLUMNS = [
    "task",
    "teacher",
    "student",
    "setting",
    "variant",
    "metric",
    "dev",
    "dev_std",
    "seeds",
    "metrics",
    "vs_direct_points",
    "pairs",
    "ci_low",
    "ci_high",
    "ci_seed",
    "within_noise",
    "train_s",
    "p50_ms",
    "speedup",
    "agreement",
    "status",
    "failed",
    "runs",
]


def _distill_info(r: Result) -> DistillInfo:
    return (r.train.distill if r.train else None) or DistillInfo()


def _agreement_after(r: Result) -> Optional[float]:
    f = _distill_info(r).fidelity
    return f.after.agreement if f and f.after else None


def _teacher_train_s(infos: List[Dict[str, Any]], teacher: str, finetunes: Dict[str, Result]) -> Optional[float]:
    """The teacher's own fine-tuning time: recorded by the distill run, else that of the finetune run among the
    results whose folder is the teacher folder (matched by path ending, whatever folder the table is built from)."""
    for d in infos:
        if d.teacher_train_seconds is not None:
            return d.teacher_train_seconds
    tail = Path(teacher).parts
    for folder, r in finetunes.items():
        parts = Path(folder).parts
        if tail and parts[-len(tail) :] == tail and r.train is not None:
            return r.train.seconds
    return None


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def _results(source: Union[str, Path, Iterable[Result]], log=None) -> List[Result]:
    if isinstance(source, (str, Path)):
        found = []
        for path, r in schema.walk(Path(source), exclude=("baselines", "gate")):
            if isinstance(r, str):
                if log is not None:
                    print(f"skipped: {r}", file=log)
            else:
                found.append(r)
        return found
    return list(source)


def _reason(r: Result) -> str:
    """Why a run is not ok: its error, else what its status check recorded (a metric that is not finite)."""
    return r.error.message if r.error else "; ".join(r.failures)


def _pick(rs: List[Result]) -> Tuple[Dict[Any, Result], List[str]]:
    """Per seed, the newest ok run (else the newest run); and a note for each run that was not ok set aside for it."""
    chosen: Dict[Any, Result] = {}
    for r in sorted(rs, key=lambda r: r.started_at):
        if r.status == "ok" or chosen.get(r.seed) is None or chosen[r.seed].status != "ok":
            chosen[r.seed] = r
    notes = [
        f"seed {r.seed}: {r.status} run in {Path(r.path).parent if r.path else '?'} set aside for the ok one"
        for r in rs
        if r is not chosen[r.seed] and r.status != "ok" and chosen[r.seed].status == "ok"
    ]
    return chosen, notes


def _compare(a: Result, b: Result, n_boot: int) -> Optional[Dict[str, Any]]:
    try:
        return stats.compare_runs(a, b, n_boot=n_boot)
    except (ValueError, TypeError):  # a predictions file with nulls or text where labels belong: no interval
        return None


def frame(source: Union[str, Path, Iterable[Result]], n_boot: int = 2000, log=None) -> pd.DataFrame:
    """One row per (task, teacher, student, setting, variant), seeds averaged, plus one teacher row per group.

    `source`: a results folder (every result.json below it, baselines and gate output left out; unreadable ones named on
    `log`) or Result objects (finetune runs among them give the teacher's training time). Failed and interrupted distill
    runs become rows that say so; a skipped record (a resumed sweep pointing at a completed run) is not a run. Each
    distilled run is paired with the direct fine-tune (gold labels only) of the same student, teacher, setting and seed.
    """
    everything = _results(source, log)
    # selection runs (data.score=holdout) scored training rows, not dev: not figures of this table
    runs = [r for r in everything if r.mode == "distill" and r.status in SHOWN and not on_holdout(r.config)]
    finetunes = {
        os.path.normpath(str(Path(r.path).parent.resolve())): r
        for r in everything
        if r.mode == "finetune" and r.status == "ok" and r.path
    }
    if not runs:
        return pd.DataFrame(columns=COLUMNS)
    # the setting: what sets a run's config apart from the other distill runs of the same task, teacher and student,
    # leaving out distill.* (the variant and the student's name say those)
    by_student: Dict[Tuple[str, str, str], List[Result]] = {}
    for r in runs:
        by_student.setdefault((r.task.name, teacher_of(r.config), student_of(r.config, r.model.name)), []).append(r)
    groups: Dict[Tuple[str, str, str, str], List[Result]] = {}
    for key, group in by_student.items():
        flats = [distill_flat(r.config) for r in group]
        keys = differing(flats)
        for r, f in zip(group, flats):
            groups.setdefault((*key, settings(f, keys)), []).append(r)
    rows: List[Dict[str, Any]] = []
    for (task, teacher, student, sett), group in groups.items():
        base = {"task": task, "teacher": teacher, "student": student, "setting": sett}
        # variants: the terms and weights on, plus the distill settings that act in the run where they differ
        acting = [params(r.config) for r in group]
        pkeys = sorted({k for p in acting for k in p})
        p_differ = [k for k in pkeys if len({p.get(k) for p in acting if k in p}) > 1]
        variants: Dict[Tuple, List[Result]] = {}
        for r, p in zip(group, acting):
            shown = tuple((k, p[k]) for k in p_differ if k in p)
            variants.setdefault((tuple(terms(r.config).items()), shown), []).append(r)
        picked = {v: _pick(rs) for v, rs in variants.items()}
        directs = {v: c for v, (c, _) in picked.items() if set(dict(v[0])) == {"hard"}}
        ok_all = [r for c, _ in picked.values() for r in c.values() if r.status == "ok"]
        infos = [_distill_info(r) for r in ok_all]
        with_t = [d.teacher_metrics for d in infos if d.teacher_metrics.get("primary") is not None]
        t_p50 = _mean(d.efficiency.teacher.p50_ms for d in infos if d.efficiency and d.efficiency.teacher)
        ids = sorted({d.teacher_id[:12] for d in infos if d.teacher_id})
        rows.append(
            {
                **base,
                "variant": "teacher",
                "metric": _primary_name(ok_all),
                "dev": with_t[0]["primary"] if with_t else None,
                "metrics": _metrics_text(with_t[:1]),
                "train_s": _teacher_train_s(infos, teacher, finetunes),
                "p50_ms": t_p50,
                "speedup": 1.0 if t_p50 is not None else None,
                "status": ("ok" if ok_all else "no successful student run")
                + (f"; {len(ids)} different teachers in this folder over time: {ids}" if len(ids) > 1 else ""),
                "failed": False,
                "runs": teacher,
            }
        )
        for v, (chosen, superseded) in picked.items():
            rs = list(chosen.values())
            ok = [r for r in rs if r.status == "ok"]
            direct_runs = _direct_for(v, directs)
            pairs, ci, ci_seed, why = [], None, None, ""
            if not set(dict(v[0])) == {"hard"}:
                for r in sorted(ok, key=lambda r: r.seed if r.seed is not None else 0):
                    d = direct_runs.get(r.seed) if direct_runs else None
                    if (
                        d is None
                        or d.status != "ok"
                        or r.metrics.get("primary") is None
                        or d.metrics.get("primary") is None
                    ):
                        continue
                    pairs.append(100 * (r.metrics["primary"] - d.metrics["primary"]))
                    if ci is None:
                        ci = _compare(r, d, n_boot)
                        ci_seed = r.seed if ci else None
                if not pairs:
                    why = (
                        "no direct fine-tune of this student with the same seed and prediction-stage schedule"
                        if direct_runs is not None
                        else "several direct fine-tunes match: no single partner"
                    )
                elif ci is None:
                    why = "no paired interval (predictions missing, unreadable or on other dev rows)"
            bad = [r for r in rs if r.status != "ok"]
            status = (
                "; ".join(
                    [
                        *(f"seed {r.seed}: {r.status}" + (f" ({_reason(r)[:200]})" if _reason(r) else "") for r in bad),
                        *superseded,
                        *([why] if why and ok else []),
                    ]
                )
                or "ok"
            )
            finite = [r.metrics.get("primary") for r in ok if r.metrics.get("primary") is not None]
            name = variant_of(rs[0].config) + (
                f" ({', '.join(f'{k}={x}' for k, x in v[1])})".replace('"', "") if v[1] else ""
            )
            effs = [e for e in (_distill_info(r).efficiency for r in ok) if e is not None]
            rows.append(
                {
                    **base,
                    "variant": name,
                    "metric": _primary_name(ok),
                    "dev": float(np.mean(finite)) if finite else None,
                    "dev_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
                    "seeds": len(finite),
                    "metrics": _metrics_text([r.metrics for r in ok]),
                    "vs_direct_points": float(np.mean(pairs)) if pairs else None,
                    "pairs": len(pairs) or None,
                    "ci_low": 100 * ci["low"] if ci else None,
                    "ci_high": 100 * ci["high"] if ci else None,
                    "ci_seed": ci_seed,
                    "within_noise": ci.get("within_noise") if ci else None,
                    "train_s": _mean(r.train.seconds if r.train else None for r in ok),
                    "p50_ms": _mean(e.student.p50_ms for e in effs if e.student),
                    "speedup": _mean(e.speedup_p50 for e in effs),
                    "agreement": _mean(_agreement_after(r) for r in ok),
                    "status": status,
                    "failed": bool(bad) or bool(superseded),
                    "runs": ", ".join(str(Path(r.path).parent) for r in rs if r.path),
                }
            )
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["order"] = [VARIANT_ORDER.get(next((k for k in VARIANT_ORDER if v.startswith(k)), ""), 5) for v in df.variant]
    df = df.sort_values(["task", "teacher", "student", "setting", "order", "variant"], kind="stable")
    return df.drop(columns="order").reset_index(drop=True)


def _direct_for(v: Tuple, directs: Dict[Tuple, Dict[Any, Result]]) -> Optional[Dict[Any, Result]]:
    """The direct fine-tune to compare a variant with: the one whose prediction-stage schedule (distill.prediction.*)
    matches the variant's ({} when none does; None when several do)."""
    mine = {k: x for k, x in v[1] if k.startswith("distill.prediction.")}
    match = [c for dv, c in directs.items() if {k: x for k, x in dv[1] if k.startswith("distill.prediction.")} == mine]
    return match[0] if len(match) == 1 else ({} if not match else None)


def _primary_name(rs: List[Result]) -> Optional[str]:
    for r in rs:
        task = r.config.get("task") or {}
        primary = task.get("primary")
        if primary:
            return "/".join(primary) if isinstance(primary, list) else str(primary)
    return None


def _metrics_text(ms: List[Dict[str, Any]]) -> str:
    """'acc 78.2, f1 85.3' (x100, mean over seeds): every metric of the run, not only the primary one."""
    names = [k for k in (ms[0] if ms else {}) if k != "primary"]
    parts = []
    for k in names:
        v = _mean(m.get(k) for m in ms)
        parts.append(f"{k} {100 * v:.1f}" if v is not None else f"{k} -")
    return ", ".join(parts)


def markdown(df: pd.DataFrame) -> str:
    return render.markdown(tables.distill_table(df))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--out")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the interval against direct")
    args = ap.parse_args(argv)
    if not Path(args.root).exists():
        print(f"{args.root}: no such file or folder", file=sys.stderr)
        return 2
    df = frame(Path(args.root), n_boot=args.bootstrap, log=sys.stderr)
    if df.empty:
        print(f"no distill results below {args.root}", file=sys.stderr)
        return 2
    text = markdown(df)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if df.failed.any() else 0  # notes (no direct partner, no interval) are not failures


if __name__ == "__main__":
    sys.exit(main())
