"""One backend measured in a child process of its own, which never outlives the run that started it.

Why a child: its peak memory is its own and a crash costs only this backend. Why not ProcessPoolExecutor:
its `with` block waits for the running task on the way out, so Ctrl-C or SIGTERM in the parent was handled
only once the backend had finished (12.5 s measured), and a parent killed with -9 left the child running.
Here the parent polls, so an interrupt stops the child at once; the child asks the kernel for SIGKILL when
its parent dies (prctl PR_SET_PDEATHSIG) and, where that is missing, watches its parent's pid.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing import get_context
from typing import Any, Callable, Dict

PR_SET_PDEATHSIG = 1
POLL_S = 0.1
STOP_GRACE_S = 3.0


def _die_with_parent(parent_pid: int) -> None:
    try:  # Linux: the kernel kills us the moment the parent thread exits, however it exits
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # every platform: a reparented child is an orphan
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


class Stopped(BaseException):
    """The parent stopped this child (SIGTERM): raised so that the backend's `finally` blocks run (its temporary
    export folder, hundreds of MB for BERT-base, is removed) before the process ends."""


def _stopped(signum, frame) -> None:
    raise Stopped("stopped by the run that started it")


def _entry(conn, parent_pid: int, fn: Callable[..., Dict[str, Any]], args: tuple) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, _stopped)
    stopped = False
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which records it for this backend
        stopped = isinstance(exc, Stopped)
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))[-3000:]))
        except OSError:  # a stopped child's parent no longer listens
            pass
    finally:
        conn.close()
    if stopped:  # the backend's `finally` blocks have run; the interpreter's own teardown (torch's modules, 1.3 s
        sys.stdout.flush()  # measured) would only keep the stopping parent waiting, so the child ends here
        sys.stderr.flush()
        os._exit(128 + signal.SIGTERM)  # the status a SIGTERM'd process reports; nothing reads it, none misleads


def _stop(proc) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(STOP_GRACE_S)  # time to clean up (Stopped), then the kill
    if proc.is_alive():
        proc.kill()
        proc.join(1.0)


def run_isolated(fn: Callable[..., Dict[str, Any]], *args: Any) -> Dict[str, Any]:
    """`fn(*args)` in a fresh spawned process; its return value, or a dict with status failed and the reason.

    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by bench.__main__) stops the child before it
    propagates, so the caller can record `interrupted` straight away.
    """
    ctx = get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_entry, args=(send, os.getpid(), fn, args), daemon=True)
    proc.start()
    send.close()
    try:
        while not recv.poll(POLL_S):  # short waits: a signal handler runs between them
            if not proc.is_alive() and not recv.poll(0):
                proc.join()
                return {
                    "status": "failed",
                    "reason": f"the measuring process died (exit code {proc.exitcode}; killed for memory?)",
                }
        try:
            message = recv.recv()
        except EOFError:
            proc.join()
            return {"status": "failed", "reason": f"the measuring process died (exit code {proc.exitcode})"}
    except BaseException:
        _stop(proc)
        raise
    finally:
        recv.close()
    proc.join(5.0)
    _stop(proc)
    if message[0] == "ok":
        return message[1]
    print(message[2], file=sys.stderr)
    return {"status": "failed", "reason": message[1][:500]}
