"""The regression gate per machine class: `make gate` and `make baseline`.

    python benchmarks/gate.py check    [--baselines results/baselines] [--out results/gate/STAMP] [compare args...]
    python benchmarks/gate.py baseline [--baselines results/baselines] [--allow-dirty]

check: runs the gate suite (benchmarks/gate_suite.py), then compares it with results/baselines/<this class>/ with `bench
compare`: accuracy against the committed results, latency and memory side by side. Two machines of one class differ by
up to ~1.4x from one session to the next (measured: the AVX2 class's committed MobileBERT eager 110.4 ms read 81.2 ms in
a later session), which would hide a 2x slowdown or invent one. So the baseline's own code (its commit, from
MACHINE.json, checked out in a temporary git worktree) is measured again on this machine in the same run, right after
the current code, and latency is compared between those two; when the baseline's code cannot be measured, the gate
cannot judge (exit 2). When that commit is not in the clone (a shallow clone) or MACHINE.json names none, the gate exits
2, unless --committed-latency asks for the committed figures by name (with a warning: they drift ~1.4x between sessions
and can pass a 2x slowdown). A speed regression must also reproduce: both sides are measured once more (OUT-remeasured,
OUT-baseline-code-remeasured) and that second comparison decides (`compare_confirm.confirmed`); a failed or missing
latency cell is red at once. The side by side isolates the `bench` code: both sides run in this environment, so a
slowdown that comes from a changed library version is not seen by it (the results' `env.packages` record the versions,
and `bench compare` calls results of other versions "not comparable", exit 2). With no baseline for this class it says
so, compares the accuracy only (and fails any run that did not end ok), against every other class's baseline, within
bench.baselines.CROSS_CLASS_TOLERANCE; latency is listed as not compared. Exit 0 when nothing regressed, 1 on a
regression, 2 on unusable input.

baseline: runs the suite from a clean tree, refuses a fine-tune that did not learn, and writes
results/baselines/<this class>/ (replacing that class's earlier baseline only once the new one is complete).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bench import compare, compare_confirm, env
from bench.baselines import CROSS_CLASS_TOLERANCE, MACHINE_FILE, plan, write_machine_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parent  # git runs here, wherever the gate is started from


def run_suite(out: Path, data: str, require_learning: bool = False, only: str = "", code: Path | None = None) -> int:
    """The gate suite into `out`; with `code`, the `bench` package of that source tree is measured instead."""
    cmd = [sys.executable, str(HERE / "gate_suite.py"), str(out), "--data", data]
    if require_learning:
        cmd.append("--require-learning")
    if only:
        cmd += ["--only", only]
    print(
        f"gate: running the suite{f' ({only} only)' if only else ''}{f' with the code of {code}' if code else ''} "
        f"into {out}",
        flush=True,
    )
    return subprocess.call(cmd, env=code_env(code))


def code_env(code: Path | None) -> dict:
    """The environment in which `import bench` finds the package of the source tree `code` (None: this one)."""
    environ = dict(os.environ)
    if code is not None:  # PYTHONPATH comes before the editable install on sys.path
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), environ.get("PYTHONPATH")]))
    return environ


def baseline_commit(folder: Path) -> str:
    """The commit the baseline was made from (MACHINE.json), or "" when it was not recorded."""
    try:
        git = json.loads((folder / MACHINE_FILE).read_text()).get("git") or {}
    except (OSError, ValueError):
        return ""
    return git.get("commit") or ""


@contextmanager
def checkout(commit: str):
    """That commit's tree in a temporary git worktree (None when the clone does not have the commit)."""
    if not commit or subprocess.call(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ):
        yield None
        return
    tree = Path(tempfile.mkdtemp(prefix="gate-baseline-code-")) / "tree"
    made = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), commit],
        capture_output=True,
        text=True,
    )
    if made.returncode:
        shutil.rmtree(tree.parent, ignore_errors=True)
        raise GateError(f"git worktree add {commit[:12]} failed: {made.stderr.strip()}")
    try:
        yield tree
    finally:
        subprocess.call(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
        shutil.rmtree(tree.parent, ignore_errors=True)


class GateError(Exception):
    """The gate cannot judge (exit 2), as opposed to a regression (exit 1)."""


def speed_check(p, args, extra, reports) -> int:
    """Latency and memory: the baseline's code measured side by side with the current code, confirmed on red."""
    commit = baseline_commit(p.same_class)

    def measure_current(out: Path) -> None:
        run_suite(out, args.data, only="latency")

    with checkout(commit) as tree:
        if tree is None:
            why = (
                f"the baseline's commit {commit} is not in this clone (a shallow clone, or history rewritten)"
                if commit
                else f"{p.same_class / MACHINE_FILE} records no commit (missing or malformed)"
            )
            if not args.committed_latency:
                # the committed figures were measured in another session: same-class machines drift ~1.4x
                # between sessions, so comparing with them could pass a 2x slowdown. Fail closed.
                raise GateError(
                    f"{why}, so its code cannot be measured side by side with this code. Fetch the "
                    f"history (git fetch --unshallow), or pass --committed-latency to compare with the "
                    f"committed figures (which can pass a 2x slowdown: they drift ~1.4x between sessions)"
                )
            print(
                f"gate: WARNING: {why}; comparing latency with the committed figures as asked "
                f"(--committed-latency): same-class machines differ by up to ~1.4x between sessions, so a 2x "
                f"slowdown may pass unseen.",
                flush=True,
            )
            return compare_confirm.confirmed(p.same_class, args.out, measure_current, extra, reports)

        def measure_baseline(out: Path) -> None:
            print(f"gate: measuring the baseline's code (commit {commit[:12]}) on this machine", flush=True)
            if run_suite(out, args.data, only="latency", code=tree):
                raise GateError(
                    f"the baseline's code (commit {commit[:12]}) could not be measured (see above); "
                    f"nothing to compare latency with"
                )

        base = args.out.with_name(args.out.name + "-baseline-code")
        measure_baseline(base)
        print(f"\ngate: latency and memory against the baseline's code measured now ({base})", flush=True)
        return compare_confirm.confirmed(
            base, args.out, measure_current, extra, reports, remeasure_baseline=measure_baseline
        )


def check(args, extra) -> int:
    cls = env.machine_class()
    p = plan(args.baselines, cls)
    print(f"gate: {p.describe()}", flush=True)
    if not p.same_class and not p.other_classes:
        print(
            f"gate: error: no baseline at all under {args.baselines}; run `make baseline` and commit it",
            file=sys.stderr,
        )
        return 2
    if args.out.exists() and any(args.out.iterdir()):  # its old runs would be compared as the current ones
        print(
            f"gate: error: {args.out} is not empty; give a new --out (results are never overwritten)", file=sys.stderr
        )
        return 2
    suite_rc = run_suite(args.out, args.data)
    reports_dir = args.out / "reports"

    def reports(tag: str) -> list:  # one JUnit and one Markdown file per comparison, none written over another
        reports_dir.mkdir(parents=True, exist_ok=True)
        return ["--junit", str(reports_dir / f"junit-{tag}.xml"), "--markdown", str(reports_dir / f"summary-{tag}.md")]

    codes = []
    if p.same_class:
        print(f"\ngate: accuracy against {p.same_class}", flush=True)
        codes.append(compare.main([str(p.same_class), str(args.out), "--accuracy-only", *reports("accuracy"), *extra]))
        try:
            codes.append(speed_check(p, args, extra, reports))
        except GateError as exc:
            print(f"gate: error: {exc}", file=sys.stderr)
            codes.append(2)
    else:
        for other in p.other_classes:
            print(f"\ngate: accuracy against {other.name} (another machine class)", flush=True)
            codes.append(
                compare.main(
                    [
                        str(other),
                        str(args.out),
                        "--accuracy-only",
                        "--default-tolerance",
                        str(CROSS_CLASS_TOLERANCE),
                        *reports(other.name),
                        *extra,
                    ]
                )
            )
    print(f"\ngate: JUnit and Markdown summaries in {reports_dir}", flush=True)
    code = 1 if 1 in codes else max(codes)  # a regression is reported as one even when another part could not judge
    if suite_rc and not code:
        print(f"gate: the suite itself exited {suite_rc}", file=sys.stderr)
        code = 1
    return code


def baseline(args) -> int:
    git = env.git_commit()
    if git.get("dirty") and not args.allow_dirty:
        print(
            "gate: refusing to make a baseline from a tree with uncommitted changes (the result records "
            "`dirty`, and nobody could rebuild it); commit first, or pass --allow-dirty",
            file=sys.stderr,
        )
        return 2
    cls = env.machine_class()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    new = Path(args.baselines) / f".new-{stamp}"
    rc = run_suite(new, args.data, require_learning=True)
    if rc:
        print(f"gate: the suite exited {rc}; no baseline written (its output stays in {new})", file=sys.stderr)
        return rc
    not_ok = _not_ok_runs(new)
    if not_ok:  # the suite's exit code says so too; this holds even if a run was written by other means
        print(
            f"gate: refusing to make a baseline of runs that did not end ok ({', '.join(not_ok)}); its output "
            f"stays in {new}",
            file=sys.stderr,
        )
        return 3
    disturbed = _disturbed_rows(new)
    if disturbed:
        print(
            f"gate: refusing to make a baseline of latencies measured under other load ({', '.join(disturbed)}); "
            f"re-run `make baseline` on a quiet machine (its output stays in {new})",
            file=sys.stderr,
        )
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


def _not_ok_runs(folder: Path) -> list:
    """The suite's runs in `folder` whose status is not ok (or whose result cannot be read), by name."""
    from bench import schema

    out = [
        f"{p.parent.name}: {r}" if isinstance(r, str) else f"{p.parent.name} {r.status}"
        for p, r in schema.walk(folder)
        if isinstance(r, str) or r.status != "ok"
    ]
    if not any(folder.glob("*/result.json")):
        out.append("no result.json at all")
    return out


def _disturbed_rows(folder: Path) -> list:
    """Latency cells of the suite flagged `disturbed`: a baseline must be measured on a quiet machine."""
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
    ap.add_argument(
        "--committed-latency",
        action="store_true",
        help="check: when the baseline's commit is not in this clone, compare latency with the committed "
        "figures instead of exiting 2 (they drift ~1.4x between sessions: a weak check)",
    )
    args, extra = ap.parse_known_args()
    return check(args, extra) if args.command == "check" else baseline(args)


if __name__ == "__main__":
    sys.exit(main())
