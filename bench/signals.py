"""SIGTERM and Ctrl-C: a run records `interrupted`, and so does every job a sweep has started.

A single run, and a sweep on Hydra's basic launcher (its jobs run in the main process), turns SIGTERM into
`Terminated`, a KeyboardInterrupt: the runner records the result as `interrupted` and the process exits 143
(Ctrl-C: 130).

Jobs that run in worker processes (the joblib launcher `local_parallel`; submitit_local) never see a signal
sent to the sweep's main process, and joblib ends its workers with SIGKILL as soon as the main process stops
waiting for them: nothing would be recorded. So the sweep's main process keeps a folder of running jobs (named
in $BENCH_SWEEP_JOBS): a job in a worker process (a child of the main process) marks itself there while it
runs. On SIGTERM (or SIGINT) the main process forwards the signal to every marked job, waits up to
FORWARD_GRACE_S until each has recorded its result and unmarked itself, and only then raises, which stops the
launcher. A job that recorded an interrupt never returns to its worker's queue (the worker would start the
next job): it waits there to be ended with the sweep, and ends itself if the main process goes away.

Once a process is being interrupted, a repeated signal is ignored (a second Ctrl-C too, in a single run): it must
not cut the recording short (SIGKILL is the way to stop at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from . import errors, tempdirs

log = logging.getLogger("bench")

JOBS_ENV = "BENCH_SWEEP_JOBS"
FORWARD_GRACE_S = 60.0  # how long a sweep waits for its jobs to record an interrupt before it stops them


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the run can record that it was interrupted."""


class _State:
    owned: Optional[str] = None  # the running-jobs folder this process (a sweep's main process) made
    worker: bool = False  # this process runs a sweep's jobs for another process
    in_job: bool = False
    interrupted: bool = False
    mark: Optional[Path] = None


_state = _State()


def exit_code(exc: BaseException) -> int:
    return errors.EXIT_SIGTERM if isinstance(exc, Terminated) else errors.EXIT_SIGINT


def _interrupt(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGTERM:
        return Terminated(f"terminated by signal {signum}")
    return KeyboardInterrupt(f"interrupted by signal {signum}")


def on_signal(signum, frame):  # noqa: ARG001
    if _state.interrupted:  # already stopping: the result is being recorded, and a second Ctrl-C must not cut it
        with contextlib.suppress(OSError):  # os.write: safe where a print could be re-entered
            os.write(2, b"bench: already stopping, recording the result (kill -9 stops at once, recording nothing)\n")
        return
    _state.interrupted = True
    if _state.owned:
        _forward_to_jobs(signum)
    if _state.worker and not _state.in_job:
        return  # between two jobs: the next one is refused at its start
    raise _interrupt(signum)


def install() -> None:
    """SIGTERM raises `Terminated` in this process (the CLI's main process and every job)."""
    signal.signal(signal.SIGTERM, on_signal)


# --- the sweep's main process --------------------------------------------------------------------------------


def start_sweep() -> None:
    """Before the launcher starts: a folder where jobs in other processes mark themselves while they run."""
    folder = tempdirs.make("bench-sweep-jobs-")  # locked: a killed sweep's folder is removed by a later one
    _state.owned = folder
    os.environ[JOBS_ENV] = f"{os.getpid()}:{folder}"  # worker processes are started later and inherit it
    install()
    signal.signal(signal.SIGINT, on_signal)


def end_sweep() -> None:

    if _state.owned:
        tempdirs.remove(_state.owned)
        if os.environ.get(JOBS_ENV) == f"{os.getpid()}:{_state.owned}":
            del os.environ[JOBS_ENV]
        _state.owned = None
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _running(folder: Path) -> set:
    pids = set()
    for p in folder.glob("[0-9]*"):
        with contextlib.suppress(ValueError):
            pid = int(p.name)
            if _alive(pid):
                pids.add(pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 (gone, or not ours to look at)
        return False


def _forward_to_jobs(signum: int) -> None:
    """Send the signal to every job running in another process; wait until each has recorded its result."""
    folder = Path(_state.owned)
    signalled: set = set()
    deadline = time.monotonic() + FORWARD_GRACE_S
    running = _running(folder)
    while running and time.monotonic() < deadline:
        for pid in running - signalled:  # a worker that starts a job meanwhile is signalled too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            signalled.add(pid)
        time.sleep(0.05)
        running = _running(folder)
    if running:
        print(
            f"bench: jobs {sorted(running)} did not record the interrupt within {FORWARD_GRACE_S:.0f} s; "
            "they are stopped unrecorded",
            file=sys.stderr,
            flush=True,
        )


# --- a job ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def job() -> Iterator[None]:
    """Around one job: signals are recorded; in a sweep's worker process, the job is marked while it runs."""
    install()
    owner, _, folder = os.environ.get(JOBS_ENV, "").partition(":")
    if not owner.isdigit() or int(owner) != os.getppid() or not os.path.isdir(folder):
        # a single run, a job in the sweep's own process (the signal reaches it directly), or a process that is
        # not the sweep's worker (a run started from inside a job). Ctrl-C as SIGTERM: the first one interrupts,
        # a second one while the interrupt is recorded is ignored (Python's own handler would raise again there,
        # and the result.json being written would be lost). Not where Python installed no handler (SIGINT ignored).
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, on_signal)
        try:
            yield
        finally:
            if previous is signal.default_int_handler:
                signal.signal(signal.SIGINT, previous)
        return
    _state.worker = True
    signal.signal(signal.SIGINT, on_signal)  # Ctrl-C reaches the whole process group; the first one counts
    _state.mark = Path(folder) / str(os.getpid())
    _state.mark.touch()
    _state.in_job = True
    try:
        yield
    finally:
        _state.in_job = False
        _unmark()


def refuse_if_interrupted() -> None:
    """At the start of a job: a worker that was told to stop between two jobs records this one as interrupted."""
    if _state.interrupted:
        raise Terminated("the sweep was terminated before this job ran")


def _unmark() -> None:
    if _state.mark is not None:
        _state.mark.unlink(missing_ok=True)
        _state.mark = None


def after_interrupt() -> None:
    """After a job recorded its interrupt. In a sweep's worker process this never returns: the worker must not
    take the next job, so it waits to be ended with the sweep (or ends itself when the sweep's process is gone)."""
    if not _state.worker:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for handler in logging.getLogger().handlers + log.handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    _state.in_job = False
    _unmark()
    parent = os.getppid()
    deadline = time.monotonic() + FORWARD_GRACE_S + 30
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(errors.EXIT_SIGTERM)
