"""The README's distillation table: does distilling a fine-tuned teacher beat fine-tuning the same student?

Per task: the packaged MiniLM-L6 fine-tuned as teacher (or a given checkpoint), then a 3-layer student initialised
from teacher layers 1, 3, 5, (a) fine-tuned directly, (b) prediction-layer distillation, (c) both of TinyBERT's
stages. Dev metrics, training time and the student's latency speed-up over the teacher (batch 1, sequence 128,
eager, both measured in the student's run). Exits 1 if any run fails (the others still run).

    python benchmarks/distill.py [--data ../shared/data/glue] [--tasks sst2 mrpc] [--train-rows 8000]
                                 [--teacher sst2=results/.../checkpoint] [--out results/bench/distill/STAMP]
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

from bench import schema
from bench.config import compose
from bench.distill import table as distill_table
from bench.report import plots
from bench.runner import run

VARIANTS = [("direct", "(a) fine-tuned directly"), ("prediction", "(b) prediction-layer distillation"),
            ("two_stage", "(c) intermediate + prediction")]
STUDENT = ["model=minilm_l6", "distill.layers=[1,3,5]"]


def fmt(metrics: Optional[Dict[str, float]], task: str) -> str:
    if not metrics:
        return "failed"
    if task == "mrpc":
        return f"{metrics['acc']:.4f} / {metrics['f1']:.4f}"
    return f"{metrics['primary']:.4f}"


def one(name: str, overrides: List[str], out: Path, failures: List[str]):
    try:
        return run(compose(overrides, out_dir=str(out / name)))
    except Exception as exc:  # recorded in the run's result.json; the table goes on without it
        traceback.print_exc()
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None


def task_rows(task: str, args, out: Path, failures: List[str]) -> List[str]:
    data = [f"task={task}", f"data.dir={args.data}", f"data.max_train_samples={args.train_rows}", *args.set]
    teacher = args.teacher.get(task)
    t_result = None
    if not teacher:
        t_result = one(f"{task}_teacher", ["model=minilm_l6", *data, "train.save_checkpoint=true"], out, failures)
        if t_result is None:
            return [f"| {task} | teacher MiniLM-L6 (6 x 384) | failed | | | |"]
        teacher = str(out / f"{task}_teacher")
    common = [*STUDENT, *data, "mode=distill", f"distill.teacher={teacher}", f"bench.resume_dir={out}",
              f"distill.cache_dir={out / 'teacher_cache'}", f"distill.intermediate.epochs={args.intermediate_epochs}",
              f"timing.min_seconds={args.latency_seconds}"]
    results = {v: one(f"{task}_{v}", [*common, f"+distill={v}"], out, failures) for v, _ in VARIANTS}
    ok = [r for r in results.values() if r is not None]
    d0 = ok[0].train["distill"] if ok else None
    t_train = f"{t_result.train['seconds']:.0f}" if t_result else "given"
    t_ms = f"{d0['efficiency']['teacher']['p50_ms']:.1f}" if d0 else ""
    rows = [f"| {task} | teacher MiniLM-L6 (6 x 384) | {fmt(d0['teacher_metrics'] if d0 else None, task)} | {t_train} | {t_ms} | 1.00x |"]
    direct = results["direct"].metrics["primary"] if results["direct"] else None
    for v, label in VARIANTS:
        r = results[v]
        if r is None:
            rows.append(f"| {task} | {label} | failed | | | |")
            continue
        eff = r.train["distill"]["efficiency"]
        gain = f" ({100 * (r.metrics['primary'] - direct):+.1f})" if direct is not None and v != "direct" else ""
        rows.append(f"| {task} | {label} | {fmt(r.metrics, task)}{gain} | {r.train['seconds']:.0f} | "
                    f"{eff['student']['p50_ms']:.1f} | {eff['speedup_p50']:.2f}x |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"])
    ap.add_argument("--train-rows", type=int, default=8000, help="training rows per task (MRPC has 3668)")
    ap.add_argument("--intermediate-epochs", type=float, default=10.0, help="TinyBERT: 10 without augmentation")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--teacher", action="append", default=[], metavar="TASK=DIR", help="reuse a fine-tuned teacher")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra overrides for every run (a smoke test: data.max_eval_samples=32 train.max_steps=2)")
    ap.add_argument("--out", default=f"results/bench/distill/{datetime.now():%Y%m%d-%H%M%S}")
    args = ap.parse_args()
    args.teacher = dict(t.split("=", 1) for t in args.teacher)
    out = Path(args.out)
    failures: List[str] = []
    lines = ["| task | model | dev acc (MRPC: acc / F1), change vs (a) in points | train s | p50 ms (b1, s128) | speed-up |",
             "|---|---|---|---|---|---|"]
    for task in args.tasks:
        lines += task_rows(task, args, out, failures)
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")
    # the report's table (mean±std over seeds, paired-bootstrap interval against the direct fine-tune, agreement
    # with the teacher, failed runs named) and each stage's loss curves, from the result files just written
    runs = [r for _, r in schema.walk(out) if not isinstance(r, str)]
    (out / "table_full.md").write_text(distill_table.markdown(distill_table.frame(runs)) + "\n")
    plots.distill_loss_curves(runs, out)
    (out / "failures.json").write_text(json.dumps(failures, indent=2))
    print("\n" + table + f"\n\n-> {out / 'table.md'}; with intervals: {out / 'table_full.md'}; loss curves: "
          f"{out}/distill_loss_*.png")
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
