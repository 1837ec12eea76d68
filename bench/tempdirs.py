"""Temporary folders that a killed run does not strand: each is locked by the process that made it.

A latency run's ONNX builds (hundreds of MB for BERT-base) and a sweep's running-jobs folder are removed when the
run ends, however it ends, but not after a kill -9 or an out-of-memory kill. So each folder holds a lock file,
flock()ed by its maker for as long as it lives; the kernel drops the lock when the process dies, however it dies.
Making a folder first removes this user's folders of the same prefix whose lock nobody holds: their maker is
gone. A folder without a lock file (made by an older version, or where the file system has no flock) is left
alone, as is anything not this user's: only a later run that makes a folder of the same prefix removes one.

flock works across pid namespaces (containers sharing /tmp), where "is that pid alive?" does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from typing import Dict, List

log = logging.getLogger("bench")

LOCK = ".owner.lock"
_held: Dict[str, int] = {}  # folder -> the open descriptor holding its lock


def make(prefix: str) -> str:
    """A new temporary folder, locked by this process until `remove` (or its death); abandoned ones go first."""
    remove_abandoned(prefix)
    folder = tempfile.mkdtemp(prefix=prefix)
    # locked under another name, then renamed: no other process can find the lock file unlocked and take the
    # new folder for an abandoned one
    part = os.path.join(folder, LOCK + ".part")
    fd = os.open(part, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(part, os.path.join(folder, LOCK))
    except OSError as exc:  # a file system without flock (some cluster mounts): an unlocked folder, as mkdtemp's
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(part)
        log.debug("%s: not locked (%s); a kill -9 would leave it behind", folder, exc)
        return folder
    _held[folder] = fd
    return folder


def remove(folder: str) -> None:
    """Remove a folder `make` made (and let go of its lock)."""
    folder = str(folder)
    shutil.rmtree(folder, ignore_errors=True)
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)


def remove_abandoned(prefix: str, root: str | None = None) -> List[str]:
    """Remove this user's `prefix*` folders in the temporary folder whose lock no process holds; returns them."""
    root = root or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or entry.path in _held:
                continue
            fd = os.open(os.path.join(entry.path, LOCK), os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # gone meanwhile, not ours to read, or no lock file (an older version's): left alone
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its maker is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
            log.info("removed %s: left behind by a process that is gone (killed?)", entry.path)
        finally:
            os.close(fd)
    return removed
