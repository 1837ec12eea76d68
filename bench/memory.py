"""This process's peak resident memory, per run: benchmark scripts run their jobs in one process."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any, Dict


def trim() -> bool:
    """Hand the memory an earlier run freed back to the system: Python's garbage, then glibc's free lists
    (`malloc_trim`), which otherwise stay resident. False where the C library has no malloc_trim (not glibc)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def reset_peak_rss() -> bool:
    """Start a new peak-resident-memory window for this process (Linux: `5` to /proc/self/clear_refs resets VmHWM).

    Runs that share one process (a benchmark script runs its jobs in-process) would otherwise each report the
    process's peak so far. The window starts from the resident memory at the reset, so what an earlier run freed
    is handed back first (`trim`): else its freed, still resident, pages would count as this run's. False where
    the kernel does not offer it."""
    trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(since_reset: bool) -> Dict[str, Any]:
    """The peak resident memory in MiB: since `reset_peak_rss` (VmHWM) when that worked, else the process's
    lifetime peak (getrusage), with `scope` saying which."""
    if since_reset:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return {"mb": round(int(line.split()[1]) / 1024, 1), "scope": "run"}
        except (OSError, ValueError, IndexError):
            pass
    return {"mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "scope": "process"}
