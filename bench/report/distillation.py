"""The distillation table from result files alone: per task, teacher and student, the trivial baseline, the teacher,
the student fine-tuned directly and each distilled variant, with the dev figure (mean±std over seeds), the mean
change against the direct fine-tune with a 95% interval over both seeds and dev examples (stats.seed_example_bootstrap),
the setting each tuned arm chose on its holdout, training time, latency and speed-up over the teacher. Failed or
interrupted distill runs are rows of their own, never left out in silence; fewer than 3 seeds is flagged.

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
from ..results import write_atomic
from ..schema import Result
from . import distill_text, render
from .distill_rows import (
    TRIVIAL,
    change,
    distill_info,
    flags_of,
    mean,
    metrics_text,
    reason,
    run_name,
    selection_of,
    trivial_row,
    tuned,
)
from .naming import (
    differing,
    distill_flat,
    on_holdout,
    params,
    settings,
    student_of,
    teacher_labels,
    teacher_of,
    terms,
    variant_of,
)

VARIANT_ORDER = {
    TRIVIAL: 0,
    "teacher": 1,
    "fine-tuned directly": 2,
    "prediction layer": 3,
    "intermediate only": 4,
    "two-stage": 5,
}
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
    "within_noise",
    "train_s",
    "p50_ms",
    "speedup",
    "agreement",
    "selected",
    "flag",
    "status",
    "failed",
    "runs",
    "selection",
]


def _agreement_after(r: Result) -> Optional[float]:
    f = distill_info(r).fidelity
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


def _pick(rs: List[Result]) -> Tuple[Dict[Any, Result], List[str]]:
    """Per seed, the newest ok run (else the newest run); and a note for each run that was not ok set aside for it."""
    chosen: Dict[Any, Result] = {}

    def key(r: Result) -> Any:  # runs without a seed (failed before their config was read) each stand alone
        return r.seed if r.seed is not None else ("run", r.path)

    for r in sorted(rs, key=lambda r: r.started_at):
        if r.status == "ok" or chosen.get(key(r)) is None or chosen[key(r)].status != "ok":
            chosen[key(r)] = r
    notes = [
        f"{run_name(r)}: {r.status} run in {Path(r.path).parent if r.path else '?'} set aside for the ok one"
        for r in rs
        if r is not chosen[key(r)] and r.status != "ok" and chosen[key(r)].status == "ok"
    ]
    return chosen, notes


def frame(source: Union[str, Path, Iterable[Result]], n_boot: int = 2000, log=None) -> pd.DataFrame:
    """One row per (task, teacher, student, setting, variant), seeds averaged, plus a trivial-baseline and a teacher
    row per group.

    `source`: a results folder (every result.json below it, baselines and gate output left out; unreadable ones named on
    `log`) or Result objects (finetune runs among them give the teacher's training time). Failed and interrupted distill
    runs become rows that say so; a skipped record (a resumed sweep pointing at a completed run) is not a run, nor is
    a selection run (data.score=holdout: its figures are not dev figures). Each distilled run is paired with the direct
    fine-tune (gold labels only) of the same student, teacher, setting and seed: the one at the same prediction-stage
    schedule, or, for a tuned run (selection.json beside it), the tuned direct fine-tune at its own chosen schedule.
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
    labels = teacher_labels(runs)  # one folder, two teachers (retrained, another class): two groups
    folder = {labels[id(r)]: teacher_of(r.config) for r in runs}
    for r in runs:
        by_student.setdefault((r.task.name, labels[id(r)], student_of(r.config, r.model.name)), []).append(r)
    groups: Dict[Tuple[str, str, str, str], List[Result]] = {}
    for key, group in by_student.items():
        flats = [distill_flat(r.config) for r in group]
        keys = differing(flats)
        for r, f in zip(group, flats):
            groups.setdefault((*key, settings(f, keys)), []).append(r)
    rows: List[Dict[str, Any]] = []
    for (task, teacher, student, sett), group in groups.items():
        base = {"task": task, "teacher": teacher, "student": student, "setting": sett}
        # a folder of two teachers holds the fine-tune of one of them only: their times are the runs' own records
        known = finetunes if teacher == folder[teacher] else {}
        rows += [{**base, **row} for row in _group_rows(group, folder[teacher], known, n_boot)]
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["order"] = [VARIANT_ORDER.get(next((k for k in VARIANT_ORDER if v.startswith(k)), ""), 9) for v in df.variant]
    df = df.sort_values(["task", "teacher", "student", "setting", "order", "variant"], kind="stable")
    return df.drop(columns="order").reset_index(drop=True)


def _group_rows(group: List[Result], teacher: str, finetunes: Dict[str, Result], n_boot: int) -> List[Dict[str, Any]]:
    """The trivial-baseline row, the teacher row and one row per variant of one (task, teacher, student, setting)."""
    # variants: the terms and weights on, plus the distill settings that act in the run where they differ
    acting = [params(r.config) for r in group]
    pkeys = sorted({k for p in acting for k in p})
    p_differ = [k for k in pkeys if len({p.get(k) for p in acting if k in p}) > 1]
    variants: Dict[Tuple, List[Result]] = {}
    for r, p in zip(group, acting):
        shown = tuple((k, p[k]) for k in p_differ if k in p)
        variants.setdefault((tuple(terms(r.config).items()), shown), []).append(r)
    picked = {v: _pick(rs) for v, rs in variants.items()}
    is_tuned = {v: tuned(c.values()) for v, (c, _) in picked.items()}
    directs = {v: c for v, (c, _) in picked.items() if set(dict(v[0])) == {"hard"}}
    ok_all = [r for c, _ in picked.values() for r in c.values() if r.status == "ok"]
    rows = [{**row, "metric": _primary_name(ok_all)} for row in [trivial_row(ok_all)] if row is not None]
    rows.append(_teacher_row(ok_all, teacher, finetunes))
    for v, (chosen, superseded) in picked.items():
        rs = list(chosen.values())
        ok = [r for r in rs if r.status == "ok"]
        bad = [r for r in rs if r.status != "ok"]
        is_direct = set(dict(v[0])) == {"hard"}
        direct_runs = None if is_direct else _direct_for(v, directs, is_tuned)
        vs: Dict[str, Any] = {}
        if not is_direct:
            vs = change(ok, direct_runs or {}, n_boot)
            if not vs.get("pairs"):
                vs["why"] = (
                    "no direct fine-tune of this student with the same seed and "
                    + ("tuning (selection.json)" if is_tuned.get(v) else "prediction-stage schedule")
                    if direct_runs is not None
                    else "several direct fine-tunes match: no single partner"
                )
        selected, sel_flags, rec = selection_of(ok or rs)
        flags = [*flags_of(ok, bad, n_boot), *sel_flags]
        why = vs.pop("why", "")
        status = "; ".join(
            [
                *(f"{run_name(r)}: {r.status}" + (f" ({reason(r)[:200]})" if reason(r) else "") for r in bad),
                *superseded,
                *([why] if why and ok else []),
            ]
        )
        finite = [r.metrics.get("primary") for r in ok if r.metrics.get("primary") is not None]
        name = variant_of(rs[0].config) + (
            f" ({', '.join(f'{k}={x}' for k, x in v[1])})".replace('"', "") if v[1] else ""
        )
        effs = [e for e in (distill_info(r).efficiency for r in ok) if e is not None]
        rows.append(
            {
                "variant": name,
                "metric": _primary_name(ok),
                "dev": float(np.mean(finite)) if finite else None,
                "dev_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
                "seeds": len(finite),
                "metrics": metrics_text([r.metrics for r in ok]),
                **vs,
                "train_s": mean(r.train.seconds if r.train else None for r in ok),
                "p50_ms": mean(e.student.p50_ms for e in effs if e.student),
                "speedup": mean(e.speedup_p50 for e in effs),
                "agreement": mean(_agreement_after(r) for r in ok),
                "selected": selected or None,
                "flag": "; ".join(flags) or None,
                "status": status or "ok",
                "failed": bool(bad) or bool(superseded),
                "runs": ", ".join(str(Path(r.path).parent) for r in rs if r.path),
                "selection": rec,
            }
        )
    return rows


def _teacher_row(ok_all: List[Result], teacher: str, finetunes: Dict[str, Result]) -> Dict[str, Any]:
    infos = [distill_info(r) for r in ok_all]
    with_t = [d.teacher_metrics for d in infos if d.teacher_metrics.get("primary") is not None]
    t_p50 = mean(d.efficiency.teacher.p50_ms for d in infos if d.efficiency and d.efficiency.teacher)
    return {
        "variant": "teacher",
        "metric": _primary_name(ok_all),
        "dev": with_t[0]["primary"] if with_t else None,
        "metrics": metrics_text(with_t[:1]),
        "train_s": _teacher_train_s(infos, teacher, finetunes),
        "p50_ms": t_p50,
        "speedup": 1.0 if t_p50 is not None else None,
        "status": "ok" if ok_all else "no successful student run",
        "failed": False,
        "runs": teacher,
    }


def _direct_for(v: Tuple, directs: Dict[Tuple, Dict[Any, Result]], is_tuned: Dict[Tuple, bool]):
    """The direct fine-tune to compare a variant with. A tuned variant (selection.json beside its runs): the tuned
    direct fine-tune, each arm at its own chosen schedule. Otherwise the one whose prediction-stage schedule
    (distill.prediction.*) matches the variant's. {} when none does; None when several do."""
    if is_tuned.get(v):
        match = [c for dv, c in directs.items() if is_tuned.get(dv)]
    else:
        mine = {k: x for k, x in v[1] if k.startswith("distill.prediction.")}
        match = [
            c
            for dv, c in directs.items()
            if not is_tuned.get(dv) and {k: x for k, x in dv[1] if k.startswith("distill.prediction.")} == mine
        ]
    return match[0] if len(match) == 1 else ({} if not match else None)


def _primary_name(rs: List[Result]) -> Optional[str]:
    for r in rs:
        task = r.config.get("task") or {}
        primary = task.get("primary")
        if primary:
            return "/".join(primary) if isinstance(primary, list) else str(primary)
    return None


def markdown(df: pd.DataFrame) -> str:
    text = render.markdown(distill_text.distill_table(df))
    notes = distill_text.selection_notes(df) if "selection" in df else ""
    return text + ("\n" + notes if notes else "")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--out", help="also write the table to this file (a folder: table.md inside it)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the interval against direct")
    args = ap.parse_args(argv)
    if not Path(args.root).exists():
        print(f"{args.root}: no such file or folder", file=sys.stderr)
        return 2
    out = Path(args.out) / "table.md" if args.out and Path(args.out).is_dir() else Path(args.out or ".")
    if args.out and not out.parent.is_dir():  # said before the bootstrap's minutes, not after them
        print(f"--out {args.out}: the folder {out.parent} does not exist", file=sys.stderr)
        return 2
    df = frame(Path(args.root), n_boot=args.bootstrap, log=sys.stderr)
    if df.empty:
        print(f"no distill results below {args.root}", file=sys.stderr)
        return 2
    text = markdown(df)
    print(text)
    if args.out:
        write_atomic(out, text + "\n")
    return 1 if df.failed.any() else 0  # notes (no direct partner, no interval) are not failures


if __name__ == "__main__":
    sys.exit(main())
