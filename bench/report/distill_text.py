"""The distillation table's printed form: bench.report.distillation.frame's rows as text cells and its caption.

Kept apart from tables.py (GLUE, SQuAD, efficiency) as choice.py and robustness.py are: one table per module.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .tables import MISSING, Table


def distill_table(df: pd.DataFrame) -> Table:
    """The distillation comparison (bench.report.distillation.frame): per task, teacher and student, the trivial
    baseline, the teacher, the direct fine-tune and each distilled variant."""
    cols = [
        "task",
        "teacher",
        "student",
        "variant",
        "dev",
        "seeds",
        "vs direct (points)",
        "95% CI",
        "selected",
        "metrics",
        "train s",
        "p50 ms",
        "speed-up",
        "agreement",
        "flag",
        "status",
    ]
    if df.empty:
        empty = pd.DataFrame(columns=cols)
        return Table(empty, empty.copy(), {}, "no distill results")

    def num(v, fmt):
        return MISSING if v is None or pd.isna(v) else format(v, fmt)

    def text_of(v):
        return v if isinstance(v, str) and v else MISSING

    rows = []
    for r in df.itertuples():
        dev = (
            MISSING
            if pd.isna(r.dev)
            else (f"{100 * r.dev:.1f}±{100 * r.dev_std:.1f}" if pd.notna(r.dev_std) else f"{100 * r.dev:.1f}")
        )
        vs = num(r.vs_direct_points, "+.1f")
        if vs != MISSING and pd.notna(r.seeds) and r.pairs != r.seeds:
            vs += f" ({r.pairs:.0f} of {r.seeds:.0f} seeds paired)"
        ci = (
            MISSING
            if pd.isna(r.ci_low)
            else f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]" + (" within noise" if r.within_noise else "")
        )
        student = r.student + (f" ({r.setting})" if r.setting else "")
        rows.append(
            {
                "task": r.task,
                "teacher": r.teacher,
                "student": student,
                "variant": r.variant,
                "dev": f"{dev} {r.metric}" if isinstance(r.metric, str) and dev != MISSING else dev,
                "seeds": num(r.seeds, ".0f") if r.variant not in ("teacher", "trivial baseline") else MISSING,
                "vs direct (points)": vs,
                "95% CI": ci,
                "selected": text_of(r.selected),
                "metrics": text_of(r.metrics),
                "train s": num(r.train_s, ".0f"),
                "p50 ms": num(r.p50_ms, ".1f"),
                "speed-up": (num(r.speedup, ".2f") + "x") if pd.notna(r.speedup) else MISSING,
                "agreement": num(r.agreement, ".3f"),
                "flag": text_of(r.flag),
                "status": r.status,
            }
        )
    text = pd.DataFrame(rows, columns=cols)
    caption = (
        "Task distillation: the best trivial predictor on the same dev rows, the fine-tuned teacher, the same "
        "student fine-tuned directly (gold labels only) and each distilled variant. dev: the task's primary metric "
        "on the dev set (x100, mean±std over seeds; per seed the newest ok run). vs direct: the change against the "
        "direct fine-tune of the same student, teacher, setting and seed, in points, averaged over the seeds that "
        "have such a pair; 95% CI: over both seeds and dev examples, mean +- sqrt(t_{k-1}^2 var_seeds / k + "
        "z^2 var_examples), var_examples from a paired bootstrap of the dev rows (one seed: its percentile "
        "interval), 'within noise' when it contains 0. selected: the learning rate and epochs a "
        "tuned arm chose on its holdout (training rows kept back; notes below), each arm at its own choice. train "
        "s: training time of all stages, mean per run (the teacher row: the teacher's own fine-tune, when known). "
        "p50 ms: batch 1, sequence 128, eager fp32, teacher and student measured one after the other in each "
        "student's run, so speed-up is a ratio from one process. agreement: share of dev examples on which the "
        "student predicts the teacher's label. flag: a run's own flags with the seeds that raised them (its check "
        "against the trivial predictors on the dev rows), a variant not shown better than its best trivial "
        "predictor over its seeds (the interval over seeds and dev rows not above 0), fewer than 3 ok seeds, runs "
        "that are not ok, a selection "
        "that failed in part, training timed beside other load (its train s is not the recipe's cost), a "
        "speed-up measured beside other load or not judged for it: such a mean is not to be read as a settled "
        "figure. A student's label names what "
        "sets its config apart from the other runs of that student, a variant's name any distill setting that "
        "differs between its runs; status names each seed that failed or was interrupted, an earlier failed run "
        "a newer one superseded, and why a change has no interval."
    )
    return Table(text, pd.DataFrame(np.nan, index=text.index, columns=cols), {}, caption)


def selection_notes(df: pd.DataFrame) -> str:
    """Below the table: per task and tuned arm, the holdout slice, every grid point's holdout score, the choice
    (and the tie rule) and what the selection runs cost; one entry per record, however many variants take it."""
    lines, seen = [], set()
    teachers = df.groupby("task").teacher.nunique().to_dict()  # a task with two teachers: each line names its own
    for r in df.itertuples():
        rec = r.selection if isinstance(r.selection, dict) else None
        if not rec:
            continue
        key = (r.task, r.teacher, r.student, rec.get("arm"), json.dumps(rec.get("grid"), sort_keys=True, default=str))
        if key in seen:
            continue
        seen.add(key)
        points = ", ".join(
            f"lr {g['learning_rate']:g} x {g['epochs']:g} ep "
            + (f"{100 * g['holdout']:.1f}" if g.get("holdout") is not None else f"({g.get('status') or 'no score'})")
            for g in rec["grid"]
        )
        c = rec.get("chosen")
        cost = sum(g.get("train_s") or 0 for g in rec["grid"])
        lines.append(
            f"- {r.task}, "
            + (f"teacher {r.teacher}, " if teachers.get(r.task, 1) > 1 else "")
            + f"{rec.get('arm')} (its {rec.get('stage', 'prediction')} stage's schedule): "
            f"{rec.get('holdout_rows')} of {rec.get('labelled_rows')} labelled rows held out "
            f"(sample seed {rec.get('sample_seed')}), trained on the rest with seed {rec.get('seed')}, scored by "
            f"{rec.get('metric')} x100 on the holdout: {points}. Chosen: "
            + (f"lr {c['learning_rate']:g} x {c['epochs']:g} ep" if c else "none (no grid point scored)")
            + f" ({rec.get('tie_rule')}). Selection training: {cost:.0f} s."
        )
    if not lines:
        return ""
    return (
        "Selection (each arm's learning rate and epochs, chosen on held-out training rows; the dev set is scored "
        "only by the final runs, with all labelled rows):\n\n" + "\n".join(lines) + "\n"
    )
