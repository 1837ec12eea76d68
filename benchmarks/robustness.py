"""docs/robustness.md's table: which compression keeps predictions loyal and robust, and which only keeps accuracy?

Per task, from the folder `benchmarks/distill.py` (or the commands in docs/robustness.md) trained into: the
fine-tuned MiniLM-L6 teacher scored on each backend (eager fp32, int8, bf16, onnxruntime; loyalty to itself on
eager fp32), then its 3-layer students (direct fine-tune and prediction-layer distillation) on eager fp32, loyal to
the teacher. Writes the report's robustness table and plot into --out. Exits 1 if any run fails.

    python benchmarks/robustness.py --runs results/bench/robustness [--tasks rte sst2] [--out DIR]
                                    [--data ../shared/data/glue] [--advglue ../shared/data/robustness/advglue]
"""

from __future__ import annotations

import argparse
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import List

from bench import schema
from bench.config import compose
from bench.report.__main__ import build
from bench.runner import run

STUDENTS = ("direct", "prediction")
TEACHER_BACKENDS = "timing.backends=[eager,int8,bf16,onnxruntime]"


def one(name: str, overrides: List[str], out: Path, failures: List[str]) -> None:
    done = out / name / schema.RESULT_FILE
    if done.is_file() and schema.read(done).status == "ok":
        print(f"{name}: kept the ok result already in {done}")
        return
    try:
        result = run(compose(overrides, out_dir=str(out / name)))
        if result.status != "ok":
            failures.append(f"{name}: status {result.status}: {'; '.join(result.failures)}")
    except Exception as exc:  # recorded in its result.json; the table goes on without it
        traceback.print_exc()
        failures.append(f"{name}: {type(exc).__name__}: {exc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="holds TASK_teacher, TASK_direct, TASK_prediction")
    ap.add_argument("--tasks", nargs="+", default=["rte", "sst2"])
    ap.add_argument("--students", nargs="*", default=list(STUDENTS), choices=list(STUDENTS))
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--advglue", default="../shared/data/robustness/advglue")
    ap.add_argument("--out", type=Path, default=Path(f"results/bench/robustness/scores-{datetime.now():%Y%m%d-%H%M%S}"))
    args = ap.parse_args()
    failures: List[str] = []
    for task in args.tasks:
        teacher = args.runs / f"{task}_teacher" / "checkpoint"
        common = [
            "model=minilm_l6",
            f"task={task}",
            "mode=robustness",
            f"data.dir={args.data}",
            f"robustness.advglue={args.advglue}",
        ]
        one(f"{task}_teacher", [*common, f"model.path={teacher}", TEACHER_BACKENDS], args.out, failures)
        for v in args.students:
            student = args.runs / f"{task}_{v}" / "checkpoint"
            one(
                f"{task}_{v}",
                [*common, f"model.path={student}", f"robustness.reference={teacher}", "timing.backends=[eager]"],
                args.out,
                failures,
            )
    written = build(args.out, args.out / "report", ["md", "latex", "html"], n_boot=200)
    if "robustness.md" in written:
        print(written["robustness.md"].read_text())
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
