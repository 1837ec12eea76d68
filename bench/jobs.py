"""One job of a benchmark script that can be stopped and started again (benchmarks/distill.py, robustness.py).

A job is a name and its overrides; its result goes to OUT/NAME. An ok result already there is reused only when its
resume key (bench/resume.py: config, code and its uncommitted state, machine class, packages, data) is the one the
job has now. One with another key is kept where it is, never overwritten, and the job runs into the next free
folder, OUT/NAME.rerun-2, -3, ...; a later invocation finds and reuses that re-run.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from . import env, resume, schema, signals
from .config import compose
from .runner import run

RERUN = ".rerun-"  # OUT/NAME.rerun-N: a job re-run because its earlier results had another resume key


def folders(out: Path, name: str) -> Iterator[Path]:
    """out/name, then out/name.rerun-2, -3, ...: where one job's runs go, oldest first."""
    yield out / name
    for i in itertools.count(2):
        yield out / f"{name}{RERUN}{i}"


def run_job(
    name: str, overrides: List[str], out: Path, failures: List[str], used: Optional[Dict[str, Path]] = None
) -> Optional[schema.Result]:
    """Run one job, or reuse its ok result with the same resume key; returns its result.json as read back
    (bench.schema.Result; None when the run raised).

    The folder used is recorded in `used` (when given); a failure is appended to `failures`, not raised, so the
    rest of a benchmark goes on."""
    try:
        cfg = compose(overrides, out_dir=str(out / name))
        key = resume.resume_key(cfg, env.capture(device=cfg.device), resume.config_hash(cfg))
    except Exception as exc:  # a bad override: the run below reports it the usual way
        key = None
        print(f"{name}: no resume key ({type(exc).__name__}: {exc})", file=sys.stderr)
    stale = []
    for folder in folders(out, name):
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
            if used is not None:
                used[name] = folder
            return earlier
        if earlier.status == "ok":
            stale.append(str(done))
    if stale:
        print(
            f"{name}: {', '.join(stale)} came from other code, data, packages or machine (another resume key): "
            f"re-running into {folder}"
        )
    if used is not None:
        used[name] = folder
    # SIGTERM (a scheduler, `kill`) then records this job as interrupted and stops the benchmark, as it does for
    # the CLI; without it the process died with the job's folder left without a result.json
    signals.install()
    try:
        result = run(compose(overrides, out_dir=str(folder)))
    except Exception as exc:  # recorded in the run's result.json; the benchmark goes on without it
        traceback.print_exc()
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None
    if result.status != "ok":  # ended without raising but judged failed (a metric that is not finite)
        failures.append(f"{name}: status {result.status}: {'; '.join(result.failures)}")
    # the record as written (bench.schema.Result), the same type a reused result has
    return schema.read(folder / schema.RESULT_FILE)
