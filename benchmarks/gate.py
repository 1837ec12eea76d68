"""The regression gate per machine class: `make gate` and `make baseline`.

    python benchmarks/gate.py check    [--baselines results/baselines] [--out results/gate/STAMP] [compare args...]
    python benchmarks/gate.py baseline [--baselines results/baselines] [--allow-dirty]

check: runs the gate suite (benchmarks/gate_suite.py), then compares it with results/baselines/<this class>/
with `bench compare` (accuracy, latency, memory). With no baseline for this class it says so and compares the
accuracy only, against every other class's baseline, within bench.baselines.CROSS_CLASS_TOLERANCE; latency is
listed as not compared. Exit 0 when nothing regressed, 1 on a regression, 2 on unusable input.

baseline: runs the suite from a clean tree, refuses a fine-tune that did not learn, and writes
results/baselines/<this class>/ (replacing that class's earlier baseline only once the new one is complete).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench import compare, env
from bench.baselines import CROSS_CLASS_TOLERANCE, plan, write_machine_file

HERE = Path(__file__).resolve().parent


def run_suite(out: Path, data: str, require_learning: bool = False) -> int:
    cmd = [sys.executable, str(HERE / "gate_suite.py"), str(out), "--data", data]
    if require_learning:
        cmd.append("--require-learning")
    print(f"gate: running the suite into {out}", flush=True)
    return subprocess.call(cmd)


def check(args, extra) -> int:
    cls = env.machine_class()
    p = plan(args.baselines, cls)
    print(f"gate: {p.describe()}", flush=True)
    if not p.same_class and not p.other_classes:
        print(f"gate: error: no baseline at all under {args.baselines}; run `make baseline` and commit it",
              file=sys.stderr)
        return 2
    suite_rc = run_suite(args.out, args.data)
    reports = ["--junit", str(args.out / "junit.xml"), "--markdown", str(args.out / "summary.md")]
    if p.same_class:
        code = compare.main([str(p.same_class), str(args.out), *reports, *extra])
    else:
        code = 0
        for other in p.other_classes:
            print(f"\ngate: accuracy against {other.name} (another machine class)", flush=True)
            rc = compare.main([str(other), str(args.out), "--accuracy-only",
                               "--default-tolerance", str(CROSS_CLASS_TOLERANCE), *reports, *extra])
            code = max(code, rc)
    if suite_rc and not code:
        print(f"gate: the suite itself exited {suite_rc}", file=sys.stderr)
        code = 1
    return code


def baseline(args) -> int:
    git = env.git_commit()
    if git.get("dirty") and not args.allow_dirty:
        print("gate: refusing to make a baseline from a tree with uncommitted changes (the result records "
              "`dirty`, and nobody could rebuild it); commit first, or pass --allow-dirty", file=sys.stderr)
        return 2
    cls = env.machine_class()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    new = Path(args.baselines) / f".new-{stamp}"
    rc = run_suite(new, args.data, require_learning=True)
    if rc:
        print(f"gate: the suite exited {rc}; no baseline written (its output stays in {new})", file=sys.stderr)
        return rc
    disturbed = _disturbed_rows(new)
    if disturbed:
        print(f"gate: refusing to make a baseline of latencies measured under other load ({', '.join(disturbed)}); "
              f"re-run `make baseline` on a quiet machine (its output stays in {new})", file=sys.stderr)
        return 3
    write_machine_file(new, cls, env.machine_fingerprint(env.gpu_info()), git)
    final = Path(args.baselines) / cls
    old = Path(args.baselines) / f".old-{stamp}"
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    print(f"gate: baseline for {cls} written to {final}; commit it")
    return 0


def _disturbed_rows(folder: Path) -> list:
    """Latency cells of the suite flagged `disturbed`: a baseline must be measured on a quiet machine."""
    import json

    out = []
    for path in sorted(folder.glob("*/result.json")):
        for row in json.loads(path.read_text()).get("latency") or []:
            if row.get("disturbed"):
                out.append(f"{path.parent.name} {row['backend']} b{row.get('batch_size')}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["check", "baseline"])
    ap.add_argument("--baselines", type=Path, default=Path("results/baselines"))
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--out", type=Path, default=Path(f"results/gate/{datetime.now():%Y%m%d-%H%M%S-%f}"))
    ap.add_argument("--allow-dirty", action="store_true")
    args, extra = ap.parse_known_args()
    return check(args, extra) if args.command == "check" else baseline(args)


if __name__ == "__main__":
    sys.exit(main())
