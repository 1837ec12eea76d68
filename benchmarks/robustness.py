"""docs/robustness.md's table: which compression keeps predictions loyal and robust, and which only keeps accuracy?

Per task, from the folder `benchmarks/distill.py` (or the commands in docs/robustness.md) trained into: the
fine-tuned MiniLM-L6 teacher scored on each backend (eager fp32, int8, bf16, onnxruntime; loyalty to itself on
eager fp32), then every seed of each student variant on eager fp32, loyal to the teacher. Writes the report's
robustness table (per model, variant and backend: the mean±std over seeds and their number; each seed's figures
stay in its own result file) and plot into --out. Exits 1 if any run fails.

Runs are found by their folder names, as benchmarks/distill.py writes them: TASK_teacher, TASK_VARIANT (seed 42)
and TASK_VARIANT_seedN (other seeds), each possibly re-run into NAME.rerun-N; of a job's folders, its newest ok
run with a checkpoint is scored. Any variant name is taken (`--students direct prediction two_stage ...`).

    python benchmarks/robustness.py --runs results/bench/distill/STAMP [--tasks rte sst2] [--out DIR]
                                    [--students direct prediction] [--data ../shared/data/glue]
                                    [--advglue ../shared/data/robustness/advglue]
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

from bench import schema
from bench.jobs import RERUN, run_job
from bench.report.__main__ import build

STUDENTS = ("direct", "prediction")  # the default variants; any other name is taken as given
TEACHER_BACKENDS = "timing.backends=[eager,int8,bf16,onnxruntime]"
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def jobs(runs: Path, pattern: str) -> Dict[str, List[Path]]:
    """Job name -> its folders (JOB, JOB.rerun-N) among `runs`' children, for job names matching `pattern`."""
    found: Dict[str, List[Path]] = {}
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        m = re.fullmatch(rf"(?P<job>{pattern})(?:{re.escape(RERUN)}\d+)?", folder.name)
        if m:
            found.setdefault(m["job"], []).append(folder)
    return found


def newest_ok(folders: List[Path]) -> Optional[Path]:
    """The folder of the newest ok run (by its start time) that saved a checkpoint; None when none did."""
    ok = []
    for folder in folders:
        try:
            r = schema.read(folder / schema.RESULT_FILE)
        except Exception:  # noqa: BLE001 (missing or unreadable: not a run to score)
            continue
        if r.status == "ok" and (folder / "checkpoint" / "config.json").is_file():
            ok.append((r.started_at, folder))
    return max(ok)[1] if ok else None


def students(runs: Path, task: str, variant: str) -> Dict[str, List[Path]]:
    """Every seed's job of one student variant: TASK_VARIANT (seed 42) and TASK_VARIANT_seedN."""
    return jobs(runs, rf"{re.escape(task)}_{re.escape(variant)}(?:_seed\d+)?")


def variant_name(text: str) -> str:
    if not VARIANT_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: a variant is a folder-name part (letters, digits, _ and -)")
    return text


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="holds TASK_teacher and TASK_VARIANT[_seedN] folders")
    ap.add_argument("--tasks", nargs="+", default=["rte", "sst2"])
    ap.add_argument(
        "--students", nargs="*", type=variant_name, default=list(STUDENTS), help="student variants (any names)"
    )
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--advglue", default="../shared/data/robustness/advglue")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for every run")
    ap.add_argument("--out", type=Path, default=Path(f"results/bench/robustness/scores-{datetime.now():%Y%m%d-%H%M%S}"))
    args = ap.parse_args(argv)
    failures: List[str] = []
    for task in args.tasks:
        teacher_folders = jobs(args.runs, rf"{re.escape(task)}_teacher").get(f"{task}_teacher", [])
        teacher = newest_ok(teacher_folders)
        if teacher is None:
            failures.append(
                f"{task}_teacher: no ok run with a checkpoint in {args.runs} ({len(teacher_folders)} found)"
            )
            continue
        common = [
            "model=minilm_l6",
            f"task={task}",
            "mode=robustness",
            f"data.dir={args.data}",
            f"robustness.advglue={args.advglue}",
        ]
        print(f"{task}: teacher {teacher}")
        teacher_overrides = [*common, f"model.path={teacher / 'checkpoint'}", TEACHER_BACKENDS, *args.set]
        run_job(f"{task}_teacher", teacher_overrides, args.out, failures)
        for v in args.students:
            found = students(args.runs, task, v)
            if not found:
                failures.append(f"{task}_{v}: no student folder ({task}_{v} or {task}_{v}_seedN) in {args.runs}")
            for job, folders in sorted(found.items()):
                student = newest_ok(folders)
                if student is None:
                    failures.append(f"{job}: no ok run with a checkpoint among {[f.name for f in folders]}")
                    continue
                print(f"{job}: student {student}")
                overrides = [
                    *common,
                    f"model.path={student / 'checkpoint'}",
                    f"robustness.reference={teacher / 'checkpoint'}",
                    "timing.backends=[eager]",
                    *args.set,  # last: they win
                ]
                run_job(job, overrides, args.out, failures)
    args.out.mkdir(parents=True, exist_ok=True)
    written = build(args.out, args.out / "report", ["md", "latex", "html"], n_boot=200)
    if "robustness.md" in written:
        print(written["robustness.md"].read_text())
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
