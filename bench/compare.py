"""python -m bench.compare BASELINE CURRENT  (also `bench compare`): the regression gate for CI.

Runs are matched by model, weights, task, mode, device, backend and shape. Accuracy regresses when a metric
drops by more than its tolerance; speed regresses only when the latency samples differ significantly
(two-sided Mann-Whitney U, as Google Benchmark's compare tool) AND the median grew by more than a factor
(as asv); peak memory regresses beyond a factor. Results from another machine are compared through the
same-run GEMM calibration, or refused. Exit status: 0 nothing regressed, 1 a regression, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from scipy.stats import mannwhitneyu

from .errors import BenchError
from .report.gather import find

# Measured here: a fixed seed on CPU reproduces every metric exactly (fp32 and bf16; see README "Regression
# gate"), so any drop is a real change. The default tolerates one flipped prediction in ~1000 examples.
DEFAULT_TOLERANCE = 0.001
# Measured on this project's shared 2-core VMs (benchmarks/gate_noise.py, 11 repeats of the same code):
# per-run medians wander up to 1.5x between processes, so factor 1.10 gave 4 false alarms in 10 consecutive
# comparisons and 1.50 gave none. On a quiet dedicated machine use --min-factor 1.1 (asv's default).
DEFAULT_MIN_FACTOR = 1.5


@dataclass
class Policy:
    tolerance: float = DEFAULT_TOLERANCE
    per_metric: Dict[str, float] = field(default_factory=dict)  # "f1" or "mrpc:f1" -> tolerance
    alpha: float = 0.05
    min_factor: float = DEFAULT_MIN_FACTOR  # the median must grow by more than this factor (as asv)
    memory_factor: float = 1.10

    def tolerance_for(self, task: str, metric: str) -> float:
        return self.per_metric.get(f"{task}:{metric}", self.per_metric.get(metric, self.tolerance))


@dataclass
class Row:
    key: str
    figure: str
    baseline: Optional[float]
    current: Optional[float]
    change: str
    verdict: str  # ok | improved | REGRESSION | refused | missing

    @property
    def regressed(self) -> bool:
        return self.verdict == "REGRESSION"


def _machine(r: Dict[str, Any]) -> Tuple:
    env = r.get("env", {})
    gpu = (env.get("gpu") or {}).get("name")
    return (env.get("cpu", {}).get("model"), env.get("cpu", {}).get("torch_threads"), gpu)


def _runs(results: List[Dict[str, Any]]) -> Dict[Tuple, List[Dict[str, Any]]]:
    runs: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in results:
        key = (r["model"]["name"], r["model"].get("weights"), r["task"]["name"], r["mode"])
        runs.setdefault(key, []).append(r)
    return runs


def _accuracy_rows(key: Tuple, base: List[Dict], cur: List[Dict], policy: Policy) -> List[Row]:
    rows = []
    names = [m for m in base[0].get("metrics", {}) if isinstance(base[0]["metrics"][m], (int, float))]
    for metric in names:
        b = [r["metrics"].get(metric) for r in base if isinstance(r["metrics"].get(metric), (int, float))]
        c = [r["metrics"].get(metric) for r in cur if isinstance(r["metrics"].get(metric), (int, float))]
        label = "/".join(str(k) for k in key)
        if not b or not c:
            rows.append(Row(label, metric, np.mean(b) if b else None, None, "", "missing"))
            continue
        mb, mc = float(np.mean(b)), float(np.mean(c))
        tol = policy.tolerance_for(key[2], metric)
        verdict = "REGRESSION" if mc < mb - tol else "improved" if mc > mb + tol else "ok"
        rows.append(Row(label, metric, mb, mc, f"{mc - mb:+.4f} (tol {tol:g})", verdict))
    return rows


def _latency_samples(rs: List[Dict[str, Any]]) -> Dict[Tuple, Dict[str, Any]]:
    """Per (device, backend, batch, seq): pooled samples, peak memory, the GEMM peak of its machine."""
    out: Dict[Tuple, Dict[str, Any]] = {}
    for r in rs:
        cal = (r.get("timing") or {}).get("calibration") or {}
        facts = (r.get("timing") or {}).get("backends") or {}
        for row in r.get("latency") or []:
            if row.get("status") != "ok":
                continue
            k = (row.get("device", "cpu"), row["backend"], row["batch_size"], row["seq_len"])
            e = out.setdefault(k, {"samples": [], "rss": [], "peak": cal.get(row.get("gemm_peak_key", ""))})
            e["samples"] += row["latency_s"]["samples"]
            # memory the measurement added over the process's imports: the import footprint depends on the
            # environment (installed extras moved it by ~65 MB here), the model's own memory does not
            before = (facts.get(row["backend"]) or {}).get("rss_baseline_bytes", 0)
            e["rss"].append(row["memory"]["peak_rss_bytes"] - before)
    return out


def _speed_rows(key: Tuple, base: List[Dict], cur: List[Dict], policy: Policy) -> List[Row]:
    rows = []
    same_machine = _machine(base[0]) == _machine(cur[0])
    b_all, c_all = _latency_samples(base), _latency_samples(cur)
    for shape in sorted(set(b_all) | set(c_all), key=str):
        label = "/".join(str(k) for k in key) + " " + "/".join(str(s) for s in shape)
        b, c = b_all.get(shape), c_all.get(shape)
        if not b or not c:
            rows.append(Row(label, "latency p50", None, None, "", "missing"))
            continue
        bs = np.asarray(b["samples"])
        if not same_machine:
            if not (b["peak"] and c["peak"]):
                rows.append(Row(label, "latency p50", float(np.median(bs)), float(np.median(c["samples"])),
                                f"machines differ {_machine(base[0])} vs {_machine(cur[0])}, no GEMM calibration",
                                "refused"))
                continue
            bs = bs * (b["peak"] / c["peak"])  # the baseline's latency expressed on this machine's GEMM peak
        cs = np.asarray(c["samples"])
        ratio = float(np.median(cs) / np.median(bs))
        p = float(mannwhitneyu(cs, bs, alternative="two-sided").pvalue)
        significant = p < policy.alpha
        verdict = ("REGRESSION" if significant and ratio > policy.min_factor
                   else "improved" if significant and ratio < 1 / policy.min_factor else "ok")
        note = "" if same_machine else " (calibrated)"
        rows.append(Row(label, "latency p50 (ms)", 1e3 * float(np.median(bs)), 1e3 * float(np.median(cs)),
                        f"x{ratio:.3f}, p={p:.2g}{note}", verdict))
        # memory is only attributable when each backend ran in a process of its own (timing.isolate)
        isolated = all(r.get("config", {}).get("timing", {}).get("isolate", True) for r in base + cur)
        if same_machine and isolated:
            mb, mc = max(b["rss"]), max(c["rss"])
            mem_ratio = mc / mb
            rows.append(Row(label, "peak RSS over imports (MB)", mb / 2**20, mc / 2**20, f"x{mem_ratio:.3f}",
                            "REGRESSION" if mem_ratio > policy.memory_factor else "ok"))
    return rows


def compare(baseline: List[Dict[str, Any]], current: List[Dict[str, Any]], policy: Policy) -> List[Row]:
    """Every compared figure; raises BenchError when nothing matches."""
    base_runs, cur_runs = _runs(baseline), _runs(current)
    common = [k for k in base_runs if k in cur_runs]
    if not common:
        raise BenchError(f"no run in the current results matches the baseline (baseline has {sorted(base_runs)}, "
                         f"current has {sorted(cur_runs)})")
    rows: List[Row] = []
    for key in common:
        b, c = base_runs[key], cur_runs[key]
        if key[3] == "latency":
            rows += _speed_rows(key, b, c, policy)
        else:
            rows += _accuracy_rows(key, b, c, policy)
    for key in base_runs:
        if key not in cur_runs:
            rows.append(Row("/".join(str(k) for k in key), "run", None, None, "not in current results", "missing"))
    return rows


def _load(path: Path, log) -> List[Dict[str, Any]]:
    if not path.exists():
        raise BenchError(f"{path}: no such file or folder")
    import io

    skipped = io.StringIO()
    found = find(path, skipped)
    if skipped.getvalue():
        log.write(skipped.getvalue())
    if not found:
        raise BenchError(f"{path}: no usable result.json (see the lines above for why each was skipped)")
    return found


def _tolerances(items: List[str]) -> Dict[str, float]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise BenchError(f"--tolerance {item!r}: expected METRIC=VALUE or TASK:METRIC=VALUE, e.g. f1=0.01") from None
    return out


def main(argv: Optional[List[str]] = None) -> int:
    from .report import gate
    from .results import write_atomic

    ap = argparse.ArgumentParser(prog="bench compare", description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path, help="a result.json or a folder of them")
    ap.add_argument("current", type=Path, help="a result.json or a folder of them")
    ap.add_argument("--tolerance", action="append", default=[], metavar="[TASK:]METRIC=VALUE",
                    help=f"allowed drop of a metric (fraction); default {DEFAULT_TOLERANCE} for every metric")
    ap.add_argument("--default-tolerance", type=float, default=DEFAULT_TOLERANCE)
    ap.add_argument("--alpha", type=float, default=0.05, help="significance level of the Mann-Whitney U test")
    ap.add_argument("--min-factor", type=float, default=DEFAULT_MIN_FACTOR,
                    help=f"smallest median latency ratio called a regression (default {DEFAULT_MIN_FACTOR})")
    ap.add_argument("--memory-factor", type=float, default=1.10)
    ap.add_argument("--junit", type=Path, help="write JUnit XML here")
    ap.add_argument("--markdown", type=Path, help="write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    args = ap.parse_args(argv)
    try:
        policy = Policy(args.default_tolerance, _tolerances(args.tolerance), args.alpha, args.min_factor,
                        args.memory_factor)
        rows = compare(_load(args.baseline, sys.stderr), _load(args.current, sys.stderr), policy)
    except BenchError as exc:
        print(f"bench compare: error: {exc}", file=sys.stderr)
        return 2
    print(gate.console(rows))
    print(f"\nbench compare: {gate.summary_line(rows)}")
    if args.junit:
        write_atomic(args.junit, gate.junit(rows))
    if args.markdown:
        write_atomic(args.markdown, gate.markdown(rows))
    if any(r.verdict == "refused" for r in rows):
        print("bench compare: some figures could not be compared (see 'refused'); exit 2", file=sys.stderr)
        return 2
    return 1 if any(r.regressed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
