"""Hydra callbacks: the end of a sweep prints what succeeded, failed or was skipped, and the comparison table.

The summary reads the sweep folder through the one result reader; results that were already in the folder
before this sweep started (a sweep run twice into the same folder) are counted as such, never as new
successes. It counts jobs, not result files: a job folder (Hydra writes its `.hydra/` there before the job
starts) without a result.json is a job that died before it could write one (the result failed validation when
saved, a full disk, a failed early record), and it counts as failed. An earlier sweep's failure (or missing
result) in a job folder this sweep did not start (a larger sweep, earlier into the same folder: `earlier_jobs`)
is listed as `earlier failed` (`earlier no result`), not counted: it is not this sweep's. `SWEEP_OUTCOME`
carries the verdict to `bench.__main__`, which turns it into the exit status.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple, Union

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


def earlier_jobs(sweep_dir: Path, marker: Optional[str] = ".hydra") -> Set[Path]:
    """Job folders that this sweep did not start: a larger sweep's, earlier into the same folder.

    Hydra's sweeper writes `multirun.yaml` into the sweep folder when a sweep starts, and each job rewrites its
    `<marker>/config.yaml` when it starts, both on the sweep folder's file system (so one clock, whichever
    machine ran the job): a job whose config is older than the sweep's multirun.yaml is not this sweep's. Empty
    (every job counted) when either file is missing."""
    if not marker:
        return set()
    try:
        started = (Path(sweep_dir) / "multirun.yaml").stat().st_mtime
    except OSError:
        return set()
    out = set()
    for config in Path(sweep_dir).glob(f"**/{marker}/config.yaml"):
        with contextlib.suppress(OSError):
            if config.stat().st_mtime < started:
                out.add(config.parent.parent.resolve())
    return out


Marked = Tuple[Path, str, str]  # (job folder, why, status) of a job whose result.json is not its own outcome


def refused_jobs(sweep_dir: Path, since: Optional[str]) -> List[Marked]:
    """(job folder, why, status) for each job of this sweep whose outcome is a marker (bench.runner.REFUSED_FILE,
    written since the sweep started), not its folder's result.json: one that refused its folder (another job's
    success is there: `refused`), or failed before it started in a folder whose earlier usable result stays
    (`failed`, `interrupted`)."""
    from .runner import REFUSED_FILE

    out = []
    for marker in sorted(Path(sweep_dir).glob(f"**/{REFUSED_FILE}")):
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError):
            record = {"refused_at": "", "error": "(unreadable refusal record)"}
        if not since or str(record.get("refused_at", "")) >= since:
            out.append((marker.parent, str(record.get("error", "")), str(record.get("status", "refused"))))
    return out


def _status(entry: Entry, since: Optional[str], earlier: Set[Path] = frozenset()) -> str:
    path, r = entry
    if isinstance(r, str):
        return "unreadable"
    if since and r.started_at < since and r.status in ("ok", "skipped"):
        return "already complete"  # written by an earlier sweep into this folder, not re-run now
    if since and r.started_at < since and Path(path).parent.resolve() in earlier:
        return f"earlier {r.status}"  # an earlier sweep's job that this sweep does not have: shown, not counted
    return r.status


def _marked(item) -> Marked:
    return (item[0], item[1], item[2] if len(item) > 2 else "refused")


def summary(
    entries: List[Entry],
    since: Optional[str] = None,
    missing: List[Path] = (),
    refused: List[Marked] = (),
    earlier: Set[Path] = frozenset(),
) -> str:
    from .report.console import latency_table

    now = [j for j in missing if Path(j).resolve() not in earlier]
    counts: Dict[str, int] = {"no result": len(now)} if now else {}
    if len(now) < len(missing):
        counts["earlier no result"] = len(missing) - len(now)
    for _, _, status in map(_marked, refused):
        counts[status] = counts.get(status, 0) + 1
    for e in entries:
        counts[_status(e, since, earlier)] = counts.get(_status(e, since, earlier), 0) + 1
    lines = ["sweep: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "sweep: no results"]
    for e in entries:
        path, r = e
        st = _status(e, since, earlier)
        if st == "unreadable":
            lines.append(f"  unreadable: {r}")
        elif st.startswith("earlier "):
            lines.append(f"  {st}: {path}: not a job of this sweep (an earlier sweep's into this folder); not counted")
        elif st not in ("ok", "skipped", "already complete"):
            why = (r.error.message if r.error else "; ".join(r.failures))[:200]
            lines.append(f"  {st}: {path}: {why}")
    for job in missing:
        if Path(job).resolve() in earlier:
            lines.append(f"  earlier no result: {job}: not a job of this sweep (an earlier sweep's); not counted")
        else:
            lines.append(f"  no result: {job}: the job ended without writing result.json (its log is in that folder)")
    for job, why, status in map(_marked, refused):
        lines.append(f"  {status}: {job}: {why[:300]}")
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


def without_refused(entries: List[Entry], refused: List[Marked]) -> List[Entry]:
    """The entries less those in a folder whose job's outcome is a marker this sweep: that job's status is the
    marker's; the result.json there is another job's or an earlier one, counted once (it read as this sweep's
    'already complete' too)."""
    gone = {Path(item[0]).resolve() for item in refused}
    return [e for e in entries if Path(e[0]).parent.resolve() not in gone]


def not_ok(
    entries: List[Entry],
    since: Optional[str] = None,
    missing: List[Path] = (),
    refused: List[Marked] = (),
    earlier: Set[Path] = frozenset(),
) -> int:
    counted = [_status(e, since, earlier) for e in entries]
    bad = sum(st not in ("ok", "skipped", "already complete") and not st.startswith("earlier ") for st in counted)
    return len([j for j in missing if Path(j).resolve() not in earlier]) + len(refused) + bad


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
        folder = Path(config.hydra.sweep.dir)
        entries = collect(folder)
        missing = jobs_without_result(folder, entries, config.hydra.output_subdir)
        since = SWEEP_OUTCOME.get("started_at")
        refused = refused_jobs(folder, since)
        entries = without_refused(entries, refused)
        earlier = earlier_jobs(folder, config.hydra.output_subdir)
        print(summary(entries, since, missing, refused, earlier), flush=True)
        SWEEP_OUTCOME["not_ok"] = not_ok(entries, since, missing, refused, earlier) or (0 if entries else 1)
