"""Hydra callbacks: the end of a sweep prints what succeeded, failed or was skipped, and the comparison table.

The summary reads the sweep folder through the one result reader; results that were already in the folder
before this sweep started (a sweep run twice into the same folder) are counted as such, never as new
successes. It counts jobs, not result files: a job folder (Hydra writes its `.hydra/` there before the job
starts) without a result.json is a job that died before it could write one (the result failed validation when
saved, a full disk, a failed early record), and it counts as failed. An earlier sweep's failure in a job folder
this sweep did not start (a larger sweep, earlier into the same folder) is listed as `earlier failed`, not
counted: it is not this sweep's. `SWEEP_OUTCOME` carries the verdict to
`bench.__main__`, which turns it into the exit status.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from . import schema

SWEEP_OUTCOME: Dict[str, Any] = {}
Entry = Tuple[Path, Union[schema.Result, str]]


def collect(sweep_dir: Path) -> List[Entry]:
    """(path, Result) or (path, why it is unreadable) for every result.json in the sweep folder."""
    return list(schema.walk(Path(sweep_dir)))


def jobs_without_result(sweep_dir: Path, entries: List[Entry], marker: Optional[str] = ".hydra") -> List[Path]:
    """Job folders of the sweep (those holding Hydra's `marker` folder) in which no result.json was written."""
    if not marker:  # hydra.output_subdir=null: jobs leave no trace of their own to count
        return []
    written = {path.parent.resolve() for path, _ in entries}
    jobs = {p.parent.parent.resolve() for p in Path(sweep_dir).glob(f"**/{marker}/config.yaml")}
    return sorted(j for j in jobs if j not in written and j != Path(sweep_dir).resolve())


def refused_jobs(sweep_dir: Path, since: Optional[str]) -> List[Tuple[Path, str]]:
    """(job folder, why) for each job of this sweep that refused its folder (bench.runner.REFUSED_FILE, written
    since the sweep started): the folder holds another job's success, which that job's result.json still is."""
    from .runner import REFUSED_FILE

    out = []
    for marker in sorted(Path(sweep_dir).glob(f"**/{REFUSED_FILE}")):
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError):
            record = {"refused_at": "", "error": "(unreadable refusal record)"}
        if not since or str(record.get("refused_at", "")) >= since:
            out.append((marker.parent, str(record.get("error", ""))))
    return out


def _job_started_before(result_path: Path, since: str) -> bool:
    """Whether the job folder holding `result_path` was last started before `since`: Hydra rewrites a job's
    `.hydra/config.yaml` when the job starts, so one older than the sweep is a job this sweep did not run (a
    larger sweep's, earlier into the same folder). False when there is no such file to tell by."""
    marker = Path(result_path).parent / ".hydra" / "config.yaml"
    try:
        started = datetime.fromtimestamp(marker.stat().st_mtime, timezone.utc)
    except OSError:
        return False
    return started < datetime.fromisoformat(since)


def _status(entry: Entry, since: Optional[str]) -> str:
    path, r = entry
    if isinstance(r, str):
        return "unreadable"
    if since and r.started_at < since and r.status in ("ok", "skipped"):
        return "already complete"  # written by an earlier sweep into this folder, not re-run now
    if since and r.started_at < since and _job_started_before(path, since):
        return f"earlier {r.status}"  # an earlier sweep's job that this sweep does not have: shown, not counted
    return r.status


def summary(
    entries: List[Entry], since: Optional[str] = None, missing: List[Path] = (), refused: List[Tuple[Path, str]] = ()
) -> str:
    from .report.console import latency_table

    counts: Dict[str, int] = {"no result": len(missing)} if missing else {}
    if refused:
        counts["refused"] = len(refused)
    for e in entries:
        counts[_status(e, since)] = counts.get(_status(e, since), 0) + 1
    lines = ["sweep: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "sweep: no results"]
    for e in entries:
        path, r = e
        st = _status(e, since)
        if st == "unreadable":
            lines.append(f"  unreadable: {r}")
        elif st.startswith("earlier "):
            lines.append(f"  {st}: {path}: not a job of this sweep (an earlier sweep's into this folder); not counted")
        elif st not in ("ok", "skipped", "already complete"):
            why = (r.error.message if r.error else "; ".join(r.failures))[:200]
            lines.append(f"  {st}: {path}: {why}")
    for job in missing:
        lines.append(f"  no result: {job}: the job ended without writing result.json (its log is in that folder)")
    for job, why in refused:
        lines.append(f"  refused: {job}: {why[:300]}")
    ok = [r for e in entries if not isinstance(r := e[1], str) and r.status in ("ok", "partial")]
    with_latency = [r.model_dump(mode="json") for r in ok if r.latency]
    if with_latency:
        lines.append(latency_table(with_latency))
    for r in ok:
        if r.metrics and not r.latency:
            m = ", ".join(f"{k}={v:.4f}" for k, v in r.metrics.items() if v is not None)
            flags = f" [{'; '.join(r.flags)}]" if r.flags else ""
            lines.append(f"  {r.model.name} {r.task.name} ({r.model.weights}): {m}{flags}")
    return "\n".join(lines)


def without_refused(entries: List[Entry], refused: List[Tuple[Path, str]]) -> List[Entry]:
    """The entries less those in a folder whose job refused it this sweep: that job's status is its refusal; the
    result.json there is another job's, counted once (it read as this sweep's 'already complete' too)."""
    gone = {Path(job).resolve() for job, _ in refused}
    return [e for e in entries if Path(e[0]).parent.resolve() not in gone]


def not_ok(
    entries: List[Entry], since: Optional[str] = None, missing: List[Path] = (), refused: List[Tuple[Path, str]] = ()
) -> int:
    counted = [_status(e, since) for e in entries]
    bad = sum(st not in ("ok", "skipped", "already complete") and not st.startswith("earlier ") for st in counted)
    return len(missing) + len(refused) + bad


def check_launcher(config: DictConfig) -> None:
    """A SLURM launcher (hydra/launcher=cluster) where there is no SLURM: one clear error before any job is
    submitted, where submitit's would be a traceback from deep inside the launcher."""
    import shutil

    from .errors import ConfigError

    target = str(config.hydra.launcher.get("_target_", ""))
    if target.endswith(".SlurmLauncher") and shutil.which("sbatch") is None:
        raise ConfigError(
            "hydra/launcher=cluster submits the sweep's jobs to SLURM, and there is no `sbatch` on this machine's "
            "PATH: run it on a SLURM login node, or run the sweep here with hydra/launcher=local_parallel (joblib) "
            "or hydra/launcher=submitit_local (the cluster launcher's code path, on this machine)"
        )


class StopSweep(BaseException):
    """A sweep that must not start. Hydra turns an Exception raised by a callback into a warning and goes on
    (hydra/_internal/callbacks.py): this one is no Exception, so it reaches bench.__main__, which prints it."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from . import signals
        from .errors import BenchError

        SWEEP_OUTCOME["started"] = True
        try:
            check_launcher(config)
        except BenchError as exc:
            raise StopSweep(exc) from None
        signals.start_sweep()  # before the launcher starts workers: a SIGTERM then reaches their jobs
        SWEEP_OUTCOME["started_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        entries = collect(Path(config.hydra.sweep.dir))
        missing = jobs_without_result(Path(config.hydra.sweep.dir), entries, config.hydra.output_subdir)
        since = SWEEP_OUTCOME.get("started_at")
        refused = refused_jobs(Path(config.hydra.sweep.dir), since)
        entries = without_refused(entries, refused)
        print(summary(entries, since, missing, refused), flush=True)
        SWEEP_OUTCOME["not_ok"] = not_ok(entries, since, missing, refused) or (0 if entries else 1)
