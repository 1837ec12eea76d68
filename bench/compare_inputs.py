"""What `bench compare` reads before it compares: the result files, the --tolerance values, the package versions.

Kept apart from bench/compare.py, which judges; every error here is unusable input (exit 2), never skipped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List

from . import schema
from .compare_accuracy import role
from .errors import BenchError
from .schema import Result


def package_versions(results: List[Result]) -> Dict[str, set]:
    """Each recorded package's versions over these results (`env.packages`)."""
    out: Dict[str, set] = {}
    for r in results:
        for name, version in (getattr(r.env, "packages", None) or {}).items():
            out.setdefault(name, set()).add(version)
    return out


def load(path: Path, role: str) -> List[Result]:
    """Every result below `path`; an unreadable or invalid file is an error (exit 2), never skipped."""
    if not path.exists():
        raise BenchError(f"{path}: no such file or folder")
    found: List[Result] = []
    for file, r in schema.walk(path):
        if isinstance(r, str):
            raise BenchError(f"{role}: {r}")
        if r.status == "skipped":
            continue  # a pointer to a result that lives elsewhere, not a run
        if role == "baseline" and r.status != "ok":
            raise BenchError(f"baseline: {file} has status {r.status!r}: a baseline must be a successful run")
        found.append(r)
    if not found:
        raise BenchError(f"{path}: no result.json there")
    return found


def tolerances(items: List[str], default: float, baseline: List[Result]) -> Dict[str, float]:
    """--tolerance values: finite, non-negative, naming a metric (and task) the baseline has."""
    known = {m for r in baseline for m in r.metrics} | {f"{r.task.name}:{m}" for r in baseline for m in r.metrics}
    check_non_negative("--default-tolerance", default)
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise BenchError(
                f"--tolerance {item!r}: expected METRIC=VALUE or TASK:METRIC=VALUE, e.g. f1=0.01"
            ) from None
        check_non_negative(f"--tolerance {item!r}", out[name])
        if name not in known:
            raise BenchError(
                f"--tolerance {item!r}: no metric {name!r} in the baseline (it has "
                f"{sorted(m for m in known if ':' not in m)})"
            )
        kind = role(name.rpartition(":")[2])
        if kind != "score":  # a tolerance that would judge nothing must not look as if it were set
            raise BenchError(f"--tolerance {item!r}: {name!r} is a {kind}, not a score, and is not gated by tolerance")
    return out


def check_non_negative(what: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise BenchError(f"{what}: must be a finite number >= 0, got {value}")
