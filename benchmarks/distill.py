"""The README's distillation table: does distilling a fine-tuned teacher beat fine-tuning the same student?

Per task: the packaged MiniLM-L6 fine-tuned as teacher (or a given checkpoint) on a fixed set of labelled rows
(data.sample_seed), then a 3-layer student built from teacher layers 2, 4, 6 (the layers its
intermediate stage learns), in the variants of VARIANTS (per task by default as issue
17's "Measure and publish" lists them). Each arm's learning rate and epochs are chosen first, from one shared grid,
on the labelled rows less a seeded holdout, scored on that holdout only (data.score=holdout; the first seed only);
then every variant runs on all labelled rows at its arm's choice for every seed, and the dev set is scored once
per run. The teacher and the labelled rows stay fixed across seeds: a seed moves the new parts' initialisation and
the data order only. Dev metrics, training time, the student's latency speed-up over the teacher; exits 1 if any
run fails (the others still run).

Runs already in --out are reused only when their resume key is the one the job has now (bench/resume.py); one
made by other code, data, packages or another machine stays, and the job re-runs into OUT/JOB.rerun-N. So the
benchmark can be stopped and started again with the same command.

    python benchmarks/distill.py [--data ../shared/data/glue] [--tasks sst2 mrpc] [--train-rows 8000]
                                 [--seeds 42 43 44] [--variants direct prediction ...] [--sample-seed 42]
                                 [--grid-lr 3e-5 5e-5 1e-4] [--grid-epochs 3 6] [--holdout-fraction 0.1]
                                 [--select-two-stage] [--teacher sst2=results/.../checkpoint] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from bench import schema, selection, tasks
from bench.config import compose
from bench.jobs import RERUN, run_job
from bench.report import distillation as distill_table
from bench.report import plots

DEFAULT_SEEDS = [42, 43, 44]
DEFAULT_SEED = 42  # train.seed's default: that seed keeps the plain folder names
STUDENT = ["model=minilm_l6", "distill.layers=[2,4,6]"]  # mode=distill's default for 6->3, named: the map follows it
# The teachers' schedule, pinned: the published teachers were fine-tuned at minilm_l6's model-wide recipe, and a
# task's own entry in the model file (recipe.tasks, e.g. MRPC's, issue #20) must not retrain them
TEACHER = [
    "model=minilm_l6",
    "train.learning_rate=5e-5",
    "train.batch_size=32",
    "train.epochs=3",
    "train.warmup=0.1",
    "train.weight_decay=0.01",
    "train.save_checkpoint=true",
]


class Variant(NamedTuple):  # a NamedTuple, not a dataclass: tests load this script without registering it
    title: str
    preset: str  # bench/conf/distill/<preset>.yaml
    arm: str  # whose selected schedule it runs at: its own, or that of the arm it adds to
    extra: Tuple[str, ...] = ()


def transfer(sources: str, max_rows: Optional[int] = None) -> Tuple[str, ...]:
    """Overrides of a transfer set (distill.transfer.*: rows without labels, the teacher's outputs as targets)."""
    return (f"distill.transfer.sources=[{sources}]", *([f"distill.transfer.max_rows={max_rows}"] if max_rows else []))


TRANSFER_ROWS = 20_000
VARIANTS: Dict[str, Variant] = {
    "direct": Variant("(a) fine-tuned directly", "direct", "direct"),
    "prediction": Variant("(b) prediction-layer distillation", "prediction", "prediction"),
    "prediction_transfer": Variant(
        "(b+T) (b) with a transfer set of unused training rows",
        "prediction",
        "prediction",
        transfer("rest", TRANSFER_ROWS),
    ),
    "prediction_augment": Variant(
        "(b) with the offline augmenter's rows", "prediction", "prediction", transfer("augment")
    ),
    "two_stage": Variant("(c) intermediate + prediction", "two_stage", "two_stage"),
    "two_stage_transfer": Variant(
        "(c+T) (c) with that transfer set", "two_stage", "two_stage", transfer("rest", TRANSFER_ROWS)
    ),
}
# issue 17, "Measure and publish": SST-2 (a), (b), (b+T), (c), (c+T); MRPC (a), (b), (c) and (b) with the augmenter
DEFAULT_VARIANTS = {
    "sst2": ["direct", "prediction", "prediction_transfer", "two_stage", "two_stage_transfer"],
    "mrpc": ["direct", "prediction", "two_stage", "prediction_augment"],
}
BASIC = ["direct", "prediction", "two_stage"]  # any other task


def arm_of(variant: str, select_two_stage: bool) -> str:
    """The arm whose selection a variant runs at: two stages take the prediction arm's choice for their prediction
    stage unless asked to select their own (each of its grid points repeats the intermediate stage)."""
    arm = VARIANTS[variant].arm
    return "prediction" if arm == "two_stage" and not select_two_stage else arm


def data_overrides(task: str, args) -> List[str]:
    """The labelled rows, the same for the teacher and every student run whatever train.seed is."""
    return [
        f"task={task}",
        f"data.dir={args.data}",
        f"data.max_train_samples={args.train_rows}",
        f"data.sample_seed={args.sample_seed}",
        *args.set,
    ]


def holdout_slice(task: str, args) -> Dict[str, int]:
    """How many labelled rows the task has here (the cap, or the whole training file when it is smaller) and how
    many of them the selection runs hold out (--holdout-fraction, at least 1)."""
    cfg = compose([f"task={task}", f"data.dir={args.data}"])
    n = len(tasks.load(cfg.task, cfg.data, need_train=True)["train"])
    labelled = min(n, args.train_rows) if args.train_rows else n
    return {
        "labelled_rows": labelled,
        "holdout_rows": max(1, round(args.holdout_fraction * labelled)),
        "sample_seed": args.sample_seed,
    }


def student_common(task: str, args, teacher: str, out: Path) -> List[str]:
    return [
        *STUDENT,
        *data_overrides(task, args),
        "mode=distill",
        f"distill.teacher={teacher}",
        f"bench.resume_dir={out}",
        f"distill.cache_dir={out / 'teacher_cache'}",
        f"distill.intermediate.epochs={args.intermediate_epochs}",
        f"timing.min_seconds={args.latency_seconds}",
    ]


def selection_job(task: str, arm: str, point: selection.Point, common: List[str], holdout: int, seed: int):
    """(name, overrides) of one grid point: trained on the labelled rows less the holdout, scored on the holdout
    only (the dev file is not read), no latency measured."""
    return f"{task}_select_{arm}_{point.label}", [
        *common,
        f"+distill={VARIANTS[arm].preset}",
        *point.overrides(),
        f"data.holdout={holdout}",
        "data.score=holdout",
        f"train.seed={seed}",
        "distill.measure_latency=false",
    ]


def final_job(task: str, variant: str, seed: int, point: selection.Point, common: List[str]):
    """(name, overrides) of one final run: every labelled row (the holdout refitted), the arm's chosen schedule."""
    v = VARIANTS[variant]
    name = f"{task}_{variant}" if seed == DEFAULT_SEED else f"{task}_{variant}_seed{seed}"
    return name, [*common, f"+distill={v.preset}", *v.extra, *point.overrides(), f"train.seed={seed}"]


def select(task: str, arm: str, common: List[str], slice_: Dict[str, int], args, out: Path, job: Callable, used):
    """Run (or reuse) the arm's grid on the holdout with the first seed; returns the selection record."""
    points = selection.grid(args.grid_lr, args.grid_epochs)
    seed = args.seeds[0]

    def run_point(p: selection.Point):
        name, overrides = selection_job(task, arm, p, common, slice_["holdout_rows"], seed)
        job(name, overrides)
        done = used.get(name, out / name) / schema.RESULT_FILE
        return (schema.read(done) if done.is_file() else None), str(done.parent)

    scores, runs, metric = selection.score(points, run_point)
    rec = selection.record(arm, points, scores, runs, {**slice_, "seed": seed}, metric)
    chosen = rec["chosen"]
    print(f"{task} {arm}: " + (f"chose {chosen} on the holdout" if chosen else "no setting chosen (no grid run ok)"))
    return rec


def task_runs(task: str, args, out: Path, failures: List[str], used: Dict[str, Path], job=None) -> None:
    """The teacher, each needed arm's selection, then every variant and seed at its arm's choice."""
    job = job or (lambda name, overrides: run_job(name, overrides, out, failures, used))
    variants = args.variants or DEFAULT_VARIANTS.get(task, BASIC)
    teacher = args.teacher.get(task)
    if not teacher:
        name = f"{task}_teacher"
        if job(name, [*TEACHER, *data_overrides(task, args)]) is None:
            return
        teacher = str(used[name])
    common = student_common(task, args, teacher, out)
    try:
        slice_ = holdout_slice(task, args)
    except Exception as exc:  # noqa: BLE001 (unreadable data: named, and the next task goes on)
        failures.append(f"{task}: cannot count its labelled rows for the holdout: {type(exc).__name__}: {exc}")
        return
    arms = {arm_of(v, args.select_two_stage) for v in variants}
    records = {arm: select(task, arm, common, slice_, args, out, job, used) for arm in sorted(arms)}
    for seed in args.seeds:
        for v in variants:
            rec = records[arm_of(v, args.select_two_stage)]
            if not rec["chosen"]:
                failures.append(f"{task}_{v} seed {seed}: not run: arm {rec['arm']} chose no setting")
                continue
            name, overrides = final_job(task, v, seed, selection.Point(**rec["chosen"]), common)
            job(name, overrides)
            if name in used:  # the record beside the run: the table's 'selected' column and notes read it
                selection.write(used[name], {**rec, "variant": v})


def superseded(path: Path, out: Path, used: Dict[str, Path]) -> Optional[Path]:
    """The folder that replaced this result's folder in this invocation (a re-run of the same job), if any."""
    folder = path.parent
    if folder.parent.resolve() != out.resolve():
        return None
    job = folder.name.split(RERUN)[0]
    now = used.get(job)
    return now if now is not None and now.resolve() != folder.resolve() else None


def parse(argv: Optional[List[str]] = None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"])
    ap.add_argument("--train-rows", type=int, default=8000, help="labelled rows per task (MRPC has 3668)")
    ap.add_argument("--sample-seed", type=int, default=42, help="seed of the labelled rows and the holdout (fixed)")
    ap.add_argument("--intermediate-epochs", type=float, default=10.0, help="TinyBERT: 10 without augmentation")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--seeds", nargs="+", type=int, default=DEFAULT_SEEDS, help="student seeds; selection: the first")
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        help="for every task (default: per task, SST-2 "
        + ", ".join(DEFAULT_VARIANTS["sst2"])
        + "; MRPC "
        + ", ".join(DEFAULT_VARIANTS["mrpc"])
        + "): "
        + "; ".join(f"{k} {v.title}" for k, v in VARIANTS.items()),
    )
    ap.add_argument("--grid-lr", nargs="+", type=float, default=[3e-5, 5e-5, 1e-4], help="learning rates to select")
    ap.add_argument("--grid-epochs", nargs="+", type=float, default=[3.0, 6.0], help="epoch counts to select")
    ap.add_argument("--holdout-fraction", type=float, default=0.1, help="labelled rows held out for selection")
    ap.add_argument(
        "--select-two-stage", action="store_true", help="two stages select their own prediction-stage schedule"
    )
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
    args = ap.parse_args(argv)
    if not 0 < args.holdout_fraction < 1:
        ap.error(f"--holdout-fraction must be in (0, 1), got {args.holdout_fraction}")
    try:
        selection.grid(args.grid_lr, args.grid_epochs)
    except ValueError as exc:
        ap.error(str(exc))
    args.teacher = dict(t.split("=", 1) for t in args.teacher)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    out = Path(args.out)
    failures: List[str] = []
    used: Dict[str, Path] = {}
    for task in args.tasks:
        task_runs(task, args, out, failures, used)
    out.mkdir(parents=True, exist_ok=True)
    # the report's distillation table (trivial baseline, mean±std over seeds, the change against the direct
    # fine-tune with its seeds-and-examples interval, each arm's selection, flags) and each stage's loss curves,
    # from every result in `out` (selection runs, scored on the holdout, are left out of both)
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
