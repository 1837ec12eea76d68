"""One run, from typed config to result file: the function tests call without the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import compare_config, env, kinds, resume, schema, status
from .config import Config
from .errors import BenchError
from .results import RESULT_FILE, Result, now_stamp, write_atomic
from .resume import config_hash  # noqa: F401  (kept importable from here)

log = logging.getLogger("bench")
CLAIM_FILE = ".bench-claim"
REFUSED_FILE = "refused.json"  # a job refused its folder (another job's success is there): the sweep counts it
GROUPS = ("model", "task", "mode", "device")  # config groups: `model=x` sets model.name
NOT_A_JOB_SETTING = ("hydra.", "hydra/", "bench.", "out_dir", "data.dir")  # where and how, not what a job runs


def _finetune(cfg: Config) -> Dict[str, Any]:
    return kinds.of(cfg.task).run(cfg, train=True)  # each task kind names its pipeline (bench/kinds.py)


def _evaluate(cfg: Config) -> Dict[str, Any]:
    return kinds.of(cfg.task).run(cfg, train=False)


def _latency(cfg: Config) -> Dict[str, Any]:
    from .timing import runner as timing_runner

    return timing_runner.run(cfg)


def _distill(cfg: Config) -> Dict[str, Any]:
    if kinds.of(cfg.task).choices:  # k scores per example: its own prediction-layer distillation
        from .distill import choice

        return choice.run(cfg)
    from .distill import run as distill_run

    return distill_run.run(cfg)


def _robustness(cfg: Config) -> Dict[str, Any]:
    if kinds.of(cfg.task).choices:  # k candidates per example: its own inputs and the choice-order test
        from .robustness import choices

        return choices.run(cfg)
    from .robustness import run as robustness_run

    return robustness_run.run(cfg)


# each mode returns its result sections (model, task, metrics, ...); the runner owns status and writing
MODES: Dict[str, Callable[[Config], Dict[str, Any]]] = {
    "finetune": _finetune,
    "evaluate": _evaluate,
    "latency": _latency,
    "distill": _distill,
    "robustness": _robustness,
}


@contextlib.contextmanager
def claim(out_dir: Path) -> Iterator[None]:
    """Hold the run folder exclusively: a second live run in the same folder is refused at once.

    The claim is an exclusive lock (flock) on the claim file, taken before the file names its process, so a claim
    file that is still empty (its owner is writing it) is never mistaken for a stale one, as it was when
    staleness was judged from the pid it holds. The kernel releases the lock of a process that died (kill -9),
    so a claim left behind by one is taken over.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CLAIM_FILE
    fd = _lock_claim_file(path, out_dir)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a claimer that opened this inode sees it gone, retries
        os.close(fd)


def _lock_claim_file(path: Path, out_dir: Path) -> int:
    """An fd holding the exclusive lock on the claim file now at `path` (not on one already removed)."""
    for _ in range(20):
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = path.read_text().strip() if path.is_file() else ""
            who = f"process {owner}" if owner.isdigit() else "a process still writing its claim"
            raise BenchError(f"{out_dir} is in use by another run ({who}); each run needs its own folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its owner released the claim and removed the file meanwhile: claim the path anew
    raise BenchError(f"{out_dir}: could not claim the run folder")


def _override_key(override: str) -> Tuple[str, str]:
    """(dotted key, value) of a command-line override; a config group's choice (`model=x`) is its `.name`."""
    key, _, value = override.lstrip("+~").partition("=")
    return (f"{key}.name" if key in GROUPS else key), value


def other_job(old: schema.Result, config: Optional[Dict[str, Any]], overrides: Optional[List[str]]) -> List[str]:
    """How an earlier success in this job's folder differs from this job as the command line set them: its
    recorded overrides against these, or (a result written before overrides were recorded) its config's values at
    the keys these overrides set. Differences the command line did not make (new code, a changed default, the
    data) are not another job: that run is superseded, and moved aside. [] when it is this job."""
    if overrides is None or config is None:  # not run from a command line: no job to tell apart
        return []
    mine = [o for o in overrides if not o.lstrip("+~").startswith(NOT_A_JOB_SETTING)]
    if old.overrides is not None:
        theirs = [o for o in old.overrides if not o.lstrip("+~").startswith(NOT_A_JOB_SETTING)]
        return [f"{o} (earlier)" for o in sorted(set(theirs) - set(mine))] + [
            f"{o} (now)" for o in sorted(set(mine) - set(theirs))
        ]
    flat_old, flat_now = compare_config.flat_config(old.config), compare_config.flat_config(config)
    differ = []
    for o in mine:
        key, _ = _override_key(o)
        before, now = flat_old.get(key, "(not set)"), flat_now.get(key, "(not set)")
        if before != now:
            differ.append(f"{key}: {before} vs {now}".replace('"', ""))
    return differ


def mark_outcome(out_dir: Path, message: str, status: str = "refused") -> None:
    """A sweep job's outcome where its folder's result.json is not it (REFUSED_FILE, read by the sweep's summary):
    `refused` (another job's success is there), or `failed`/`interrupted` before the job started, in a folder
    whose earlier usable result stays."""
    record = {"refused_at": now_stamp(), "error": message, "status": status}
    write_atomic(Path(out_dir) / REFUSED_FILE, json.dumps(record) + "\n")


def existing_result(out_dir: Path, key: str, resuming: bool, config=None, overrides=None, in_sweep: bool = False):
    """What to do about a result.json already in the run folder: None (run), or the path to skip to.

    Without resume it is never touched (a run never writes over another). Resuming in the same folder (the
    same sweep run twice) skips a matching success and moves any other earlier outcome of the same job aside,
    kept, to re-run: result.json to result.json.previous-*, its other outputs into the folder previous-*/. A
    success of another job (`other_job`: a sweep re-run with other values into the same folder, whose job numbers
    now name other runs) is refused, not moved: a skip recorded by another job may point at it, and a report
    reads result.json files only. A marker (REFUSED_FILE) lets the sweep's summary count the refusal. A sweep's
    job that is not resuming (bench.force=true, bench.resume=never) re-runs the same way: the earlier outcome
    moved aside, kept (it was refused, and the summary counted the old result as this sweep's 'already complete').
    """
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    if not resuming and not in_sweep:
        raise BenchError(f"{path} already exists: each run writes a fresh folder, never over another")
    try:
        old = schema.read(path)
    except BenchError as exc:
        log.warning("resume: %s; re-running", exc)
        old = None
    if resuming and old is not None and old.status in ("ok", "skipped") and old.resume_key == key:
        return path
    # another job's usable result (a partial latency grid is shown in reports too) is refused, never moved
    differ = other_job(old, config, overrides) if old is not None and old.status in ("ok", "partial") else []
    if differ:
        shown = "; ".join(differ[:3]) + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")
        message = (
            f"{path} holds a successful run of another job ({shown}): a sweep re-run with other values into the "
            "same folder? Give a new hydra.sweep.dir (or move that folder away); it is not replaced"
        )
        mark_outcome(out_dir, message)
        raise BenchError(message)
    tag = f"previous-{os.getpid()}-{len(list(out_dir.glob(RESULT_FILE + '.previous-*')))}"
    # the run's outputs go aside with it (predictions, checkpoint): the re-run would write over them, leaving the
    # kept result without its own files. Hidden entries (Hydra's, the claim) and logs stay: the re-run's own.
    outputs = [
        p
        for p in out_dir.iterdir()
        if p.name != RESULT_FILE and not p.name.startswith((".", "previous-", RESULT_FILE)) and p.suffix != ".log"
    ]
    if outputs:
        folder = out_dir / tag
        folder.mkdir()
        for p in outputs:
            os.replace(p, folder / p.name)
    os.replace(path, path.with_name(f"{RESULT_FILE}.{tag}"))
    return None


def run(
    cfg: Config,
    resume_runs: bool = False,
    resume_roots=(),
    overrides: Optional[List[str]] = None,
    in_sweep: bool = False,
) -> Result:
    """Run `cfg` and write `<out_dir>/result.json`, complete, whatever happens.

    A failure is recorded (status `failed` with the reason; `interrupted` on Ctrl-C or SIGTERM) and then
    re-raised, so the caller decides how to report it. An existing result.json is never overwritten. With
    `resume_runs` (sweeps), a run whose resume key already has a successful result below bench.resume_dir,
    `resume_roots` (the sweep folder) or in its own folder is skipped.
    """
    if not cfg.out_dir:
        raise BenchError("no output folder: set out_dir (the CLI uses Hydra's run folder)")
    out_dir = Path(cfg.out_dir)
    if not env.is_main_process():
        return _run_mode(cfg, Result.start(cfg, env.capture(cfg.device.threads, cfg.device)), save=False)
    with claim(out_dir):
        result = Result.start(cfg, env.capture(cfg.device.threads, cfg.device))
        result.overrides = list(overrides) if overrides is not None else None
        try:  # resume keys hash the data files and walk earlier results: an interrupt there is recorded too
            result.config_hash = resume.config_hash(cfg)
            result.resume_key = resume.resume_key(cfg, result.env, result.config_hash)
            resuming = resume_runs and not cfg.bench.force
            same = existing_result(out_dir, result.resume_key, resuming, result.config, overrides, in_sweep)
            if same is not None:
                result.status = "skipped"
                result.notes.append(f"this folder already holds a successful result with the same resume key: {same}")
                log.info("skipped: %s already completed", same)
                return result  # that file is this run's record; nothing is written over it
            roots = [Path(cfg.bench.resume_dir), *map(Path, resume_roots)]
            if resuming and (done := resume.find_completed(roots, result.resume_key, exclude=out_dir / RESULT_FILE)):
                result.status = "skipped"
                result.notes.append(f"an identical run already completed: {done} (bench.force=true re-runs it)")
                result.save(out_dir)
                log.info("skipped: identical run already completed in %s", done)
                return result
        except KeyboardInterrupt as exc:
            result.fail(exc, status="interrupted")
            _save_keeping_the_real_error(result, out_dir)
            raise
        return _run_mode(cfg, result, save=True)


def _check_shapes(cfg: Config) -> None:
    """Every sequence length this run will feed a model, against that model's position limit (issue #16: a
    4096-token latency grid on a 512-position model failed every backend, one after the other): the model's, and
    the other checkpoint's the mode reads (distill.teacher, robustness.reference)."""
    import dataclasses

    from . import models

    train_len = cfg.train.max_seq_length or cfg.task.max_seq_length
    train_name = "train.max_seq_length" if cfg.train.max_seq_length else "task.max_seq_length"
    if cfg.mode.name == "latency":
        lengths = {"timing.seq_lens": cfg.timing.seq_lens}
        if cfg.timing.inputs == "task" or cfg.timing.with_accuracy:
            lengths["task.max_seq_length"] = [cfg.task.max_seq_length]
    elif cfg.mode.name == "robustness":  # it scores at the task's length
        lengths = {"task.max_seq_length": [cfg.task.max_seq_length]}
    else:
        lengths = {train_name: [train_len]}
    models.check_lengths(cfg.model, lengths)
    other = {
        "distill": ("distill.teacher", cfg.distill.teacher),
        "robustness": ("robustness.reference", cfg.robustness.reference),
    }
    key, path = other.get(cfg.mode.name, ("", None))
    ckpt = _checkpoint_folder(path) if path else None
    if ckpt is not None:  # one that is not there is the mode's to refuse, with its own message
        models.check_lengths(dataclasses.replace(cfg.model, name=f"{key}={path}", path=str(ckpt)), lengths)


def _checkpoint_folder(path: str):
    """A checkpoint folder (config.json), or the one a run folder holds (RUN/checkpoint); None when neither."""
    p = Path(path).expanduser()
    return next((c for c in (p, p / "checkpoint") if (c / "config.json").is_file()), None)


def _run_mode(cfg: Config, result: Result, save: bool) -> Result:
    try:
        _check_shapes(cfg)
        result.apply(MODES[cfg.mode.name](cfg))
        if save:
            result.status, failures = status.decide(
                result.mode, result.metrics, result.latency, result.timing, result.config
            )
            result.failures += failures
            if result.status == "ok" and result.failures:  # a mode's own failures (a named backend that
                result.status = "partial"  # could not run): the rest stands, but not as ok
        else:
            result.status = "ok"  # another DDP rank: it trained; rank 0 evaluates, decides and writes
    except KeyboardInterrupt as exc:
        result.fail(exc, status="interrupted")
        raise
    except BaseException as exc:
        result.fail(exc)
        raise
    finally:
        if save:
            _save_keeping_the_real_error(result, Path(cfg.out_dir))
    return result


def _save_keeping_the_real_error(result: Result, out_dir: Path) -> None:
    """Write the result; if that fails while another error is in flight, log it so the first one surfaces."""
    import sys

    in_flight = sys.exc_info()[1] is not None
    try:
        path = result.save(out_dir)
        log.info("result (%s): %s", result.status, path)
    except BenchError as exc:
        if not in_flight:
            raise
        log.error("bench: could not write the result: %s", exc)
