"""The README's distillation table: does distilling a fine-tuned teacher beat fine-tuning the same student?

Per task: the packaged MiniLM-L6 fine-tuned as teacher (or a given checkpoint), then a 3-layer student initialised
from teacher layers 2, 4, 6 (the layers its intermediate stage learns), (a) fine-tuned directly, (b)
prediction-layer distillation, (c) both of TinyBERT's stages. Dev metrics, training time and the student's
latency speed-up over the teacher (batch 1, sequence 128, eager, both measured in the student's run). Exits 1 if
any run fails (the others still run).

Runs already in --out are reused only when their resume key is the one the job has now (bench/resume.py); one
made by other code, data, packages or another machine stays, and the job re-runs into OUT/JOB.rerun-N.

    python benchmarks/distill.py [--data ../shared/data/glue] [--tasks sst2 mrpc] [--train-rows 8000]
                                 [--seeds 42 43] [--variants direct prediction two_stage]
                                 [--teacher sst2=results/.../checkpoint] [--out results/bench/distill/STAMP]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from bench import env, resume, schema
from bench.config import compose
from bench.report import distillation as distill_table
from bench.report import plots
from bench.runner import run

DEFAULT_SEED = 42  # train.seed's default: the first seed keeps the plain folder names
RERUN = ".rerun-"  # out/JOB.rerun-N: a job re-run because its earlier results had another resume key

VARIANTS = {
    "direct": "(a) fine-tuned directly",
    "prediction": "(b) prediction-layer distillation",
    "two_stage": "(c) intermediate + prediction",
}
STUDENT = ["model=minilm_l6", "distill.layers=[2,4,6]"]  # mode=distill's default for 6->3, named: the map follows it


def _folders(out: Path, name: str) -> Iterator[Path]:
    """out/name, then out/name.rerun-2, -3, ...: where one job's runs go, oldest first."""
    yield out / name
    for i in itertools.count(2):
        yield out / f"{name}{RERUN}{i}"


def one(name: str, overrides: List[str], out: Path, failures: List[str], used: Dict[str, Path]):
    """Run one job, or reuse an ok result of it whose resume key is the one this job has now (the runner's key:
    config, code and its uncommitted state, machine class, packages, data). An earlier result with another key is
    kept where it is and the job re-runs into the next free folder (out/name.rerun-N), never over it. The folder
    used is recorded in `used`; a failure is recorded in `failures`, not raised."""
    try:
        cfg = compose(overrides, out_dir=str(out / name))
        key = resume.resume_key(cfg, env.capture(), resume.config_hash(cfg))
    except Exception as exc:  # a bad override: the run below reports it the usual way
        key = None
        print(f"{name}: no resume key ({type(exc).__name__}: {exc})", file=sys.stderr)
    stale = []
    for folder in _folders(out, name):
        done = folder / schema.RESULT_FILE
        if not done.is_file():
            break
        try:
            earlier = schema.read(done)
        except Exception as exc:  # noqa: BLE001 (unreadable: named, kept, and the job runs into a new folder)
            print(f"{name}: {done} is unreadable: {exc}", file=sys.stderr)
            continue
        if key and earlier.status == "ok" and earlier.resume_key == key:
            print(f"{name}: kept the ok result already in {done} (same resume key)")
            used[name] = folder
            return earlier
        if earlier.status == "ok":
            stale.append(str(done))
    if stale:
        print(
            f"{name}: {', '.join(stale)} came from other code, data, packages or machine (another resume key): "
            f"re-running into {folder}"
        )
    used[name] = folder
    try:
        result = run(compose(overrides, out_dir=str(folder)))
    except Exception as exc:  # recorded in the run's result.json; the table goes on without it
        traceback.print_exc()
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None
    if result.status != "ok":  # ended without raising but judged failed (a metric that is not finite)
        failures.append(f"{name}: status {result.status}: {'; '.join(result.failures)}")
    return result


def task_runs(task: str, args, out: Path, failures: List[str], used: Dict[str, Path]) -> None:
    data = [f"task={task}", f"data.dir={args.data}", f"data.max_train_samples={args.train_rows}", *args.set]
    teacher = args.teacher.get(task)
    if not teacher:
        name = f"{task}_teacher"
        if one(name, ["model=minilm_l6", *data, "train.save_checkpoint=true"], out, failures, used) is None:
            return
        teacher = str(used[name])
    common = [
        *STUDENT,
        *data,
        "mode=distill",
        f"distill.teacher={teacher}",
        f"bench.resume_dir={out}",
        f"distill.cache_dir={out / 'teacher_cache'}",
        f"distill.intermediate.epochs={args.intermediate_epochs}",
        f"timing.min_seconds={args.latency_seconds}",
    ]
    for seed in args.seeds:
        for v in args.variants:
            name = f"{task}_{v}" if seed == DEFAULT_SEED else f"{task}_{v}_seed{seed}"
            one(name, [*common, f"+distill={v}", f"train.seed={seed}"], out, failures, used)


def superseded(path: Path, out: Path, used: Dict[str, Path]) -> Optional[Path]:
    """The folder that replaced this result's folder in this invocation (a re-run of the same job), if any."""
    folder = path.parent
    if folder.parent.resolve() != out.resolve():
        return None
    job = folder.name.split(RERUN)[0]
    now = used.get(job)
    return now if now is not None and now.resolve() != folder.resolve() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"])
    ap.add_argument("--train-rows", type=int, default=8000, help="training rows per task (MRPC has 3668)")
    ap.add_argument("--intermediate-epochs", type=float, default=10.0, help="TinyBERT: 10 without augmentation")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--seeds", nargs="+", type=int, default=[DEFAULT_SEED], help="student seeds (the teacher: one)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--teacher", action="append", default=[], metavar="TASK=DIR", help="reuse a fine-tuned teacher")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra overrides for every run (a smoke test: data.max_eval_samples=32 train.max_steps=2)",
    )
    ap.add_argument(
        "--out",
        default=f"results/bench/distill/{datetime.now():%Y%m%d-%H%M%S}",
        help="output folder; runs already in it stay and join the table (add seeds to an earlier run)",
    )
    args = ap.parse_args()
    args.teacher = dict(t.split("=", 1) for t in args.teacher)
    out = Path(args.out)
    failures: List[str] = []
    used: Dict[str, Path] = {}
    for task in args.tasks:
        task_runs(task, args, out, failures, used)
    out.mkdir(parents=True, exist_ok=True)
    # the report's distillation table (mean±std over seeds, paired-bootstrap interval against the direct fine-tune,
    # agreement with the teacher, failed runs named) and each stage's loss curves, from every result in `out`
    runs = []
    for path, r in schema.walk(out):
        if (now := superseded(path, out, used)) is not None:
            print(f"superseded: {path} (another resume key; this job's result is now in {now})", file=sys.stderr)
        elif isinstance(r, str):
            print(f"skipped: {r}", file=sys.stderr)
            failures.append(f"unreadable result: {r}")
        else:
            runs.append(r)
    table = distill_table.markdown(distill_table.frame(runs))
    (out / "table.md").write_text(table + "\n")
    plots.distill_loss_curves(runs, out)
    (out / "failures.json").write_text(json.dumps(failures, indent=2))
    print("\n" + table + f"\n-> {out / 'table.md'}; loss curves: {out}/distill_loss_*.png")
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
