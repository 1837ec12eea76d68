"""python -m bench.compare BASELINE CURRENT  (also `bench compare`): the regression gate for CI.

Runs are matched by model, weights, head, task and mode (latency cells also by device, backend and shape).
The gate fails closed: a baseline run with no counterpart, a current run that is not `ok`, a metric that is
not finite, or a latency cell that failed is a regression. Accuracy regresses when a score drops by more than
its tolerance (a chosen threshold is shown, not gated: bench/compare_accuracy.py); speed as in
bench/compare_speed.py. Exit status: 0 nothing regressed, 1 a regression, 2 unusable input (unreadable or
invalid file, bad option, nothing matching, a comparison it cannot make: other library versions, other
precisions, paired accuracy runs whose settings differ, bench/compare_config.py, or whose example counts do).
The gate's rule that a speed regression must reproduce is bench/compare_confirm.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import compare_accuracy, compare_speed
from .compare_config import settings_keys
from .compare_inputs import load, package_versions, tolerances
from .errors import BenchError
from .schema import Result

# Measured here: a fixed seed on CPU reproduces every metric exactly (fp32 and bf16; see docs/gate.md), so any
# drop is a real change. The default tolerates one flipped prediction in ~1000 examples.
DEFAULT_TOLERANCE = 0.001
# Measured on this project's shared 2-core VMs (benchmarks/gate_noise.py, 11 repeats of the same code):
# per-run medians wander up to 1.5x between processes, so factor 1.10 gave 4 false alarms in 10 consecutive
# comparisons and 1.50 gave none. On a quiet dedicated machine use --min-factor 1.1 (asv's default).
DEFAULT_MIN_FACTOR = 1.5
# verdicts that make the gate exit 2: it could not judge, and silence would read as a pass
UNJUDGED = ("refused", "not comparable")


@dataclass
class Policy:
    tolerance: float = DEFAULT_TOLERANCE
    per_metric: Dict[str, float] = field(default_factory=dict)  # "f1" or "mrpc:f1" -> tolerance
    alpha: float = 0.05
    min_factor: float = DEFAULT_MIN_FACTOR  # the median must grow by more than this factor (as asv)
    memory_factor: float = 1.10
    accuracy_only: bool = False  # no baseline for this machine class: latency is listed, not compared
    cross_precision: bool = False  # with accuracy_only: compare accuracy across training precisions
    speed_only: bool = False  # latency and memory only (the gate's re-measurement of a suspected slowdown)
    ignore_config: Tuple[str, ...] = ()  # settings (dotted keys or prefixes) allowed to differ (compare_config.py)

    def tolerance_for(self, task: str, metric: str) -> float:
        return self.per_metric.get(f"{task}:{metric}", self.per_metric.get(metric, self.tolerance))


@dataclass
class Row:
    key: str
    figure: str
    baseline: Optional[float]
    current: Optional[float]
    change: str
    verdict: str  # ok | improved | REGRESSION | refused | not comparable | not compared | new

    @property
    def regressed(self) -> bool:
        return self.verdict == "REGRESSION"


Key = Tuple[str, str, str, str, str]


def run_key(r: Result) -> Key:
    return (r.model.name, r.model.weights, r.model.head, r.task.name, r.mode)


def _label(key: Key) -> str:
    name, weights, head, task, mode = key
    return "/".join([name, weights] + ([f"head {head}"] if head != "trained" else []) + [task, mode])


def _runs(results: List[Result]) -> Dict[Key, List[Result]]:
    runs: Dict[Key, List[Result]] = {}
    for r in results:
        runs.setdefault(run_key(r), []).append(r)
    return runs


def _status_rows(label: str, cur: List[Result]) -> List[Row]:
    """A current run that is not ok is a regression, whatever its figures say."""
    out = []
    for r in cur:
        if r.status != "ok":
            why = r.error.message if r.error else "; ".join(r.failures) or "no reason recorded"
            out.append(Row(label, "run status", None, None, f"{r.status}: {why[:200]} ({r.path})", "REGRESSION"))
    return out


def compare(baseline: List[Result], current: List[Result], policy: Policy) -> List[Row]:
    """Every compared figure; raises BenchError when nothing matches."""
    base_runs, cur_runs = _runs(baseline), _runs(current)
    if not any(k in cur_runs for k in base_runs if not (policy.speed_only and k[4] != "latency")):
        raise BenchError(
            f"no run in the current results matches the baseline (baseline has "
            f"{sorted(map(_label, base_runs))}, current has {sorted(map(_label, cur_runs))})"
        )
    if policy.ignore_config:
        known = settings_keys([r for r in baseline + current if r.mode != "latency"])
        unknown = [k for k in policy.ignore_config if not any(x == k or x.startswith(k + ".") for x in known)]
        if unknown:
            raise BenchError(
                f"--ignore-config {', '.join(unknown)}: no such setting in the paired accuracy runs (settings are "
                "compared as dotted keys, the schedule as resolved.<name>, e.g. resolved.learning_rate, "
                "data.max_train_samples, train.seed)"
            )
    rows: List[Row] = packages_rows(baseline, current)
    for key, b in base_runs.items():
        label, c = _label(key), cur_runs.get(key, [])
        if key[4] == "latency" and policy.accuracy_only:
            # its figures are not compared, but a latency run that failed or went missing is still a failure:
            # --accuracy-only is what the gate uses on a class without a baseline, and must not hide one
            rows += (
                _status_rows(label, c)
                if c
                else [Row(label, "run", None, None, "in the baseline, not in the current results", "REGRESSION")]
            )
            rows.append(Row(label, "latency", None, None, "not compared: --accuracy-only", "not compared"))
            continue
        if key[4] != "latency" and policy.speed_only:
            rows.append(Row(label, "accuracy", None, None, "not compared: --speed-only", "not compared"))
            continue
        if not c:
            rows.append(Row(label, "run", None, None, "in the baseline, not in the current results", "REGRESSION"))
            continue
        rows += _status_rows(label, c)
        if key[4] == "latency":
            rows += compare_speed.rows(label, b, c, policy, Row)  # failed cells come out with their reasons
        else:
            rows += compare_accuracy.rows(label, key[3], b, c, policy, Row)
    for key in cur_runs:
        if key not in base_runs:
            rows.append(Row(_label(key), "run", None, None, "not in the baseline", "new"))
    return rows


def packages_rows(baseline: List[Result], current: List[Result]) -> List[Row]:
    """A library version that differs from the baseline's makes the comparison 'not comparable' (exit 2).

    A new release of transformers or numpy can move a metric or a latency with no change of ours; reading that
    as a regression (or as a pass) would blame or clear the wrong thing. Packages recorded on one side only are
    not judged (older results record fewer). `make install` installs the locked versions (requirements/lock.txt)."""
    base, cur = package_versions(baseline), package_versions(current)
    differ = {n: (base[n], cur[n]) for n in sorted(set(base) & set(cur)) if base[n] != cur[n]}
    if not differ:
        return []
    text = ", ".join(
        f"{n} {'/'.join(sorted(map(str, b)))} vs {'/'.join(sorted(map(str, c)))}" for n, (b, c) in differ.items()
    )
    return [
        Row(
            "environment",
            "packages",
            None,
            None,
            f"{text}: results of other library versions; "
            "install the locked versions (make install) or remake the baseline",
            "not comparable",
        )
    ]


def _policy(args, baseline: List[Result]) -> Policy:
    if args.cross_precision and not args.accuracy_only:
        raise BenchError("--cross-precision needs --accuracy-only (it is for baselines of another machine class)")
    if args.speed_only and args.accuracy_only:
        raise BenchError("--speed-only and --accuracy-only exclude each other")
    if not 0 < args.alpha < 1:
        raise BenchError(f"--alpha must lie between 0 and 1, got {args.alpha}")
    for name in ("min_factor", "memory_factor"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 1):
            raise BenchError(f"--{name.replace('_', '-')} must be a finite factor >= 1, got {value}")
    # accuracy tolerances are not used by --speed-only (and a latency-only baseline has no metrics to name)
    per_metric = {} if args.speed_only else tolerances(args.tolerance, args.default_tolerance, baseline)
    return Policy(
        args.default_tolerance,
        per_metric,
        args.alpha,
        args.min_factor,
        args.memory_factor,
        args.accuracy_only,
        args.cross_precision,
        args.speed_only,
        tuple(args.ignore_config),
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench compare", description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path, help="a result.json or a folder of them")
    ap.add_argument("current", type=Path, help="a result.json or a folder of them")
    ap.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="[TASK:]METRIC=VALUE",
        help=f"allowed drop of a metric (fraction); default {DEFAULT_TOLERANCE} for every metric",
    )
    ap.add_argument("--default-tolerance", type=float, default=DEFAULT_TOLERANCE)
    ap.add_argument("--alpha", type=float, default=0.05, help="significance level of the Mann-Whitney U test")
    ap.add_argument(
        "--min-factor",
        type=float,
        default=DEFAULT_MIN_FACTOR,
        help=f"smallest median latency ratio called a regression (default {DEFAULT_MIN_FACTOR})",
    )
    ap.add_argument("--memory-factor", type=float, default=1.10)
    ap.add_argument(
        "--accuracy-only",
        action="store_true",
        help="compare accuracy only; latency runs are listed as not compared (a baseline of another "
        "machine class, or the accuracy half of the gate)",
    )
    ap.add_argument(
        "--cross-precision",
        action="store_true",
        help="with --accuracy-only: compare accuracy even when the runs' precisions differ",
    )
    ap.add_argument(
        "--speed-only",
        action="store_true",
        help="compare latency and memory only; accuracy runs are listed as not compared",
    )
    ap.add_argument(
        "--ignore-config",
        action="append",
        default=[],
        metavar="KEY",
        help="a setting allowed to differ between paired accuracy runs, as the 'settings differ' line names it (a "
        "dotted key or a prefix: resolved.learning_rate, data.max_train_samples, train.seed); without it such a "
        "pair is 'not comparable' (exit 2)",
    )
    ap.add_argument("--junit", type=Path, help="write JUnit XML here")
    ap.add_argument("--markdown", type=Path, help="write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    return _main(argv)[0]


def _main(argv: Optional[List[str]] = None) -> Tuple[int, List[Row]]:
    """The exit code and the compared rows."""
    from .report import gate
    from .results import write_atomic

    args = _parser().parse_args(argv)
    try:
        baseline = load(args.baseline, "baseline")
        rows = compare(baseline, load(args.current, "current"), _policy(args, baseline))
    except BenchError as exc:
        print(f"bench compare: error: {exc}", file=sys.stderr)
        return 2, []
    print(gate.console(rows))
    print(f"\nbench compare: {gate.summary_line(rows)}")
    if args.junit:
        write_atomic(args.junit, gate.junit(rows))
    if args.markdown:
        write_atomic(args.markdown, gate.markdown(rows))
    regressed = any(r.regressed for r in rows)
    if any(r.verdict in UNJUDGED for r in rows):
        # exit 2 even beside a regression: when the runs differ in settings or libraries, a figure that moved may
        # be that difference; both codes fail, and the rows name each regression and each figure not judged
        print(
            "bench compare: some figures could not be compared (see 'refused' / 'not comparable'); exit 2"
            + (" (and some regressed: see REGRESSION)" if regressed else ""),
            file=sys.stderr,
        )
        return 2, rows
    return (1 if regressed else 0), rows


if __name__ == "__main__":
    sys.exit(main())
