"""This process's peak resident memory, per run: benchmark scripts run their jobs in one process."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any, Dict


def reset_peak_rss() -> bool:
    """Start a new peak-resident-memory window for this process (Linux: `5` to /proc/self/clear_refs resets VmHWM).

    Runs that share one process (a benchmark script runs its jobs in-process) would otherwise each report the
    process's peak so far. False where the kernel does not offer it."""
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
