"""The distillation table from result files alone: per task, teacher and student, the teacher, the student fine-tuned
directly and each distilled variant, with the dev figure (mean±std over seeds), the change against the direct
fine-tune with a paired-bootstrap 95% interval on the same dev examples, training time, latency and speed-up over
the teacher. Failed or interrupted distill runs are rows of their own, never left out in silence.

    python -m bench.distill.table RESULTS_DIR [--out table.md] [--bootstrap 2000]

`bench report` shows the same table (`distillation.md`, `.tex`, a section of the HTML page).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from .. import schema
from ..schema import Result
from .config import DISTILL_LOSSES

VARIANT_ORDER = {"teacher": 0, "fine-tuned directly": 1, "prediction layer": 2, "intermediate only": 3, "two-stage": 4}
# the loss terms each variant's name stands for; other terms on are named after it
STANDARD_TERMS = {"fine-tuned directly": {"hard"}, "prediction layer": {"soft"},
                  "intermediate only": {"embedding", "hidden", "attention"},
                  "two-stage": {"embedding", "hidden", "attention", "soft"}}
# config keys the variant's name already says, or that decide nothing about the student's figures
NOT_A_SETTING = ("mode", "distill.stages", "distill.weights", "distill.cache_dir", "distill.measure_latency", "timing",
                 "distill.teacher")
COLUMNS = ["task", "teacher", "student", "setting", "variant", "metric", "dev", "dev_std", "seeds", "metrics",
           "vs_direct_points", "ci_low", "ci_high", "within_noise", "train_s", "p50_ms", "speedup", "agreement",
           "status", "runs"]


def variant_of(config: Dict[str, Any]) -> str:
    """The variant a distill run's config asks for: its stages, plus any loss term beyond the variant's usual ones
    and any weight other than 1."""
    d = config.get("distill") or {}
    weights = {k: float(v) for k, v in (d.get("weights") or {}).items() if v and float(v) > 0}
    stages = [s for s in (d.get("stages") or []) if any(DISTILL_LOSSES.get(t) == s for t in weights)]
    if set(weights) == {"hard"}:
        name = "fine-tuned directly"
    else:
        name = {("prediction",): "prediction layer", ("intermediate",): "intermediate only",
                ("intermediate", "prediction"): "two-stage"}.get(tuple(stages), "+".join(stages) or "?")
    extra = [t for t in sorted(weights) if t not in STANDARD_TERMS.get(name, set())]
    scaled = [f"{t}={w:g}" for t, w in sorted(weights.items()) if w != 1.0]
    return name + (f" (+{'+'.join(extra)})" if extra else "") + (f" [{', '.join(scaled)}]" if scaled else "")


def _student(r: Result) -> str:
    cfg = r.config
    d = cfg.get("distill") or {}
    layers = (r.model.model_extra or {}).get("num_hidden_layers") or (
        len(d["layers"]) if d.get("layers") else ((cfg.get("model") or {}).get("arch") or {}).get("num_hidden_layers"))
    init = d.get("init", "?")
    copied = ((r.train.model_extra or {}).get("distill") or {}).get("copied_layers") if r.train else None
    copied = copied or (d.get("layers") if init == "teacher_layers" else None)
    what = f"{init} {list(copied)}" if copied else init
    return f"{r.model.name} {layers}L ({what})" if layers else f"{r.model.name} ({what})"


def _flat(d: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    from ..report.gather import _flat as flat

    return {k: v for k, v in flat(d, prefix).items()
            if not any(k == n or k.startswith(n + ".") for n in NOT_A_SETTING)}


def _distill_info(r: Result) -> Dict[str, Any]:
    return ((r.train.model_extra or {}).get("distill") or {}) if r.train else {}


def _teacher_train_s(teacher: str) -> Optional[float]:
    """The teacher's own fine-tuning time, when the teacher folder is a run folder of this harness."""
    for folder in (Path(teacher), Path(teacher).parent):
        path = folder / schema.RESULT_FILE
        if path.is_file():
            try:
                return (json.loads(path.read_text()).get("train") or {}).get("seconds")
            except (OSError, ValueError):
                return None
    return None


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def _results(source: Union[str, Path, Iterable[Result]]) -> List[Result]:
    if isinstance(source, (str, Path)):
        return [r for _, r in schema.walk(Path(source), exclude=("baselines", "gate")) if not isinstance(r, str)]
    return list(source)


def frame(source: Union[str, Path, Iterable[Result]], n_boot: int = 2000) -> pd.DataFrame:
    """One row per (task, teacher, student, setting, variant), seeds averaged, plus one teacher row per group.

    `source`: a results folder (every result.json below it, baselines and gate output left out) or Result objects
    (those of every status: failed and interrupted distill runs become rows that say so).
    """
    from ..report.stats import compare_runs

    runs = [r for r in _results(source) if r.mode == "distill"]
    if not runs:
        return pd.DataFrame(columns=COLUMNS)
    # the setting: what sets a run's config apart from the other distill runs of the same task and student
    by_student: Dict[Tuple[str, str], List[Result]] = {}
    for r in runs:
        by_student.setdefault((r.task.name, _student(r)), []).append(r)
    setting: Dict[int, str] = {}
    for group in by_student.values():
        flats = [_flat(r.config) for r in group]
        keys = sorted({k for f in flats for k in f})
        differing = [k for k in keys if len({f.get(k, "-") for f in flats}) > 1]
        for r, f in zip(group, flats):
            setting[id(r)] = ", ".join(f"{k}={f.get(k, '-')}".replace('"', "") for k in differing)
    groups: Dict[Tuple[str, str, str, str], Dict[str, List[Result]]] = {}
    for r in sorted(runs, key=lambda r: (r.seed if r.seed is not None else 0, r.started_at)):
        teacher = str((r.config.get("distill") or {}).get("teacher") or "?")
        key = (r.task.name, teacher, _student(r), setting[id(r)])
        groups.setdefault(key, {}).setdefault(variant_of(r.config), []).append(r)
    rows: List[Dict[str, Any]] = []
    for (task, teacher, student, sett), variants in groups.items():
        base = {"task": task, "teacher": teacher, "student": student, "setting": sett}
        ok_all = [r for rs in variants.values() for r in rs if r.status == "ok"]
        direct = {r.seed: r for r in variants.get("fine-tuned directly", []) if r.status == "ok"}
        t_metrics = [_distill_info(r).get("teacher_metrics") or {} for r in ok_all]
        effs = [_distill_info(r).get("efficiency") or {} for r in ok_all]
        rows.append({**base, "variant": "teacher", "metric": _primary_name(ok_all),
                     "dev": next((m.get("primary") for m in t_metrics if m.get("primary") is not None), None),
                     "metrics": _metrics_text([t_metrics[0]] if t_metrics else []), "seeds": None,
                     "train_s": _teacher_train_s(teacher),
                     "p50_ms": _mean((e.get("teacher") or {}).get("p50_ms") for e in effs), "speedup": 1.0 if effs else None,
                     "status": "ok" if ok_all else "no successful student run", "runs": teacher})
        for name, rs in variants.items():
            latest: Dict[Any, Result] = {}
            for r in rs:  # one run per seed: the newest
                latest[r.seed] = r
            rs = list(latest.values())
            ok = [r for r in rs if r.status == "ok"]
            dev = [r.metrics.get("primary") for r in ok]
            diffs, ci = [], None
            for r in ok:
                d = direct.get(r.seed)
                if d is None or name == "fine-tuned directly" or r.metrics.get("primary") is None or d.metrics.get("primary") is None:
                    continue
                diffs.append(100 * (r.metrics["primary"] - d.metrics["primary"]))
                if ci is None:  # the lowest seed's pair: the paired interval over the same dev examples
                    ci = compare_runs(r, d, n_boot=n_boot) or {}
            bad = [r for r in rs if r.status != "ok"]
            status = "ok" if not bad else "; ".join(
                f"seed {r.seed}: {r.status}" + (f" ({r.error.message[:120]})" if r.error else "") for r in bad)
            finite = [x for x in dev if x is not None]
            rows.append({**base, "variant": name, "metric": _primary_name(ok),
                         "dev": float(np.mean(finite)) if finite else None,
                         "dev_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
                         "seeds": len(finite), "metrics": _metrics_text([r.metrics for r in ok]),
                         "vs_direct_points": float(np.mean(diffs)) if diffs else None,
                         "ci_low": 100 * ci["low"] if ci else None, "ci_high": 100 * ci["high"] if ci else None,
                         "within_noise": ci.get("within_noise") if ci else None,
                         "train_s": _mean(((r.train.model_extra or {}).get("seconds") if r.train else None) for r in ok),
                         "p50_ms": _mean(((_distill_info(r).get("efficiency") or {}).get("student") or {}).get("p50_ms") for r in ok),
                         "speedup": _mean((_distill_info(r).get("efficiency") or {}).get("speedup_p50") for r in ok),
                         "agreement": _mean((((_distill_info(r).get("fidelity") or {}).get("after")) or {}).get("agreement") for r in ok),
                         "status": status, "runs": ", ".join(str(Path(r.path).parent) for r in rs if r.path)})
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["order"] = [VARIANT_ORDER.get(v.split(" (")[0].split(" [")[0], 5) for v in df.variant]
    df = df.sort_values(["task", "teacher", "student", "setting", "order", "variant"], kind="stable")
    return df.drop(columns="order").reset_index(drop=True)


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
    from ..report import render, tables

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
    df = frame(Path(args.root), n_boot=args.bootstrap)
    if df.empty:
        print(f"no distill results below {args.root}", file=sys.stderr)
        return 2
    text = markdown(df)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if (df.status == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
