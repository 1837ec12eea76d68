"""The distillation table from result files alone: per task and student, the teacher, the student fine-tuned
directly and each distilled variant, with dev figure, training time, latency and speed-up over the teacher.

    python -m bench.distill.table RESULTS_DIR [--out table.md]

Kept beside the mode rather than in bench/report/ for now; `bench report` can call `frame` and `markdown`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

VARIANT_ORDER = {"teacher": 0, "fine-tuned directly": 1, "prediction layer": 2, "intermediate only": 3, "two-stage": 4}


def variant(d: Dict[str, Any]) -> str:
    if d.get("direct"):
        return "fine-tuned directly"
    stages = d.get("stages") or []
    return {("prediction",): "prediction layer", ("intermediate",): "intermediate only"}.get(tuple(stages), "two-stage")


def _row(task: str, teacher: str, student: str, name: str, metric: Optional[float], train_s, p50_ms, speedup) -> Dict[str, Any]:
    return {"task": task, "teacher": teacher, "student": student, "variant": name, "dev": metric,
            "train_s": train_s, "p50_ms": p50_ms, "speedup": speedup}


def frame(root: Path) -> pd.DataFrame:
    """One row per distill run (newest per task, student and variant) plus one teacher row per group."""
    rows: List[Dict[str, Any]] = []
    teachers: Dict[tuple, Dict[str, Any]] = {}
    for path in sorted(Path(root).glob("**/result.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        d = (r.get("train") or {}).get("distill")
        if r.get("mode") != "distill" or r.get("status") != "ok" or not d:
            continue
        m = r["model"]
        task, teacher = r["task"]["name"], m.get("teacher", {}).get("checkpoint", "?")
        student = f"{m['name']} {m.get('num_hidden_layers')}L ({m.get('init')}" + (
            f" {d['copied_layers']})" if d.get("copied_layers") else ")")
        eff = d.get("efficiency") or {}
        s_ms, t_ms = (eff.get("student") or {}).get("p50_ms"), (eff.get("teacher") or {}).get("p50_ms")
        rows.append({**_row(task, teacher, student, variant(d), r["metrics"].get("primary"),
                            (r.get("train") or {}).get("seconds"), s_ms, eff.get("speedup_p50")),
                     "started_at": r.get("started_at", "")})
        teachers.setdefault((task, teacher, student), _row(task, teacher, student, "teacher",
                                                           d["teacher_metrics"].get("primary"), None, t_ms, 1.0))
    if not rows:
        return pd.DataFrame(columns=list(_row("", "", "", "", None, None, None, None)))
    df = pd.DataFrame(rows).sort_values("started_at").drop_duplicates(["task", "teacher", "student", "variant"], keep="last")
    df = pd.concat([df.drop(columns="started_at"), pd.DataFrame(list(teachers.values()))], ignore_index=True)
    direct = df[df.variant == "fine-tuned directly"].set_index(["task", "teacher", "student"])["dev"]
    df["vs_direct_points"] = [100 * (row.dev - direct[key]) if key in direct.index and row.variant not in
                              ("teacher", "fine-tuned directly") else None
                              for key, row in zip(zip(df.task, df.teacher, df.student), df.itertuples())]
    df["order"] = df.variant.map(VARIANT_ORDER)
    return df.sort_values(["task", "teacher", "student", "order"]).drop(columns="order").reset_index(drop=True)


def markdown(df: pd.DataFrame) -> str:
    shown = df.rename(columns={"dev": "dev (primary)", "train_s": "train s", "p50_ms": "p50 ms (b1, s128, eager)",
                               "speedup": "speed-up", "vs_direct_points": "vs direct (points)"})
    shown = shown.astype(object).where(shown.notna(), None)  # NaN would print as "nan"; None prints empty
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    df = frame(Path(args.root))
    if df.empty:
        print(f"no distill results below {args.root}", file=sys.stderr)
        return 2
    text = markdown(df)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
