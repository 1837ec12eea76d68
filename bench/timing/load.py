"""How busy the rest of the machine was while a figure was measured: other processes' CPU time and steal.

A latency measured while another process held a core is not this model's latency. Linux's /proc/stat counts
every core's busy and stolen time; subtracting what this process used (its own CPU time) leaves the load of
everything else. A measurement is flagged `disturbed` when the others averaged more than
DISTURBED_OTHER_CORES cores, or the hypervisor stole more than DISTURBED_STEAL of the machine's time.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

# Measured on this project's 2-core VMs with nothing else running: the others average 0.00-0.05 cores over a
# timed loop (kernel threads, the session's shell). A second busy process reads 0.8-1.0. Between the two:
DISTURBED_OTHER_CORES = 0.25
DISTURBED_STEAL = 0.05  # fraction of all cores' time
# /proc/stat ticks every 10 ms: over a 0.02 s window a second busy process read 0 cores in 100 of 100 tries, over
# 0.1 s it was flagged 47 times in 100, over 0.5 s every time. A timed loop shorter than this is not judged.
MIN_JUDGED_S = 0.5


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class CpuTimes:
    busy_s: float  # all cores: user, nice, system, irq, softirq
    steal_s: float
    own_s: float  # this process, all threads (a measuring child counts its own)
    wall: float

    @classmethod
    def now(cls) -> Optional["CpuTimes"]:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = f.readline().split()
        except OSError:
            return None  # not Linux: no load figure, and no flag either
        if not fields or fields[0] != "cpu":
            return None
        v = [int(x) for x in fields[1:]] + [0] * 10
        user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
        t = os.times()  # this process's user and system time, every thread included
        hz = _ticks()
        return cls(
            busy_s=(user + nice + system + irq + softirq) / hz,
            steal_s=steal / hz,
            own_s=t.user + t.system,
            wall=time.perf_counter(),
        )


def between(a: Optional[CpuTimes], b: Optional[CpuTimes], cores: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """The machine's load between two readings, as average cores used by others and steal fraction."""
    if a is None or b is None:
        return None
    wall = b.wall - a.wall
    if wall <= 0:
        return None
    cores = cores or os.cpu_count() or 1
    # /proc/stat and os.times() tick at 1/HZ: over a short window the difference can dip a tick below zero
    other = max(0.0, (b.busy_s - a.busy_s) - (b.own_s - a.own_s)) / wall
    steal = max(0.0, b.steal_s - a.steal_s) / (wall * cores)
    disturbed = other > DISTURBED_OTHER_CORES or steal > DISTURBED_STEAL
    return {
        "other_cores": round(other, 3),
        "steal_fraction": round(steal, 4),
        "wall_s": round(wall, 3),
        "cores": cores,
        "threshold_other_cores": DISTURBED_OTHER_CORES,
        "threshold_steal": DISTURBED_STEAL,
        "disturbed": disturbed,
    }


@contextmanager
def watch() -> Iterator[Dict[str, Any]]:
    """`with watch() as load:` fills `load` with the block's figures (empty where /proc/stat is absent)."""
    out: Dict[str, Any] = {}
    start = CpuTimes.now()
    try:
        yield out
    finally:
        out.update(between(start, CpuTimes.now()) or {})


def stolen(figures: Dict[str, Any]) -> bool:
    """Whether the hypervisor stole more than its threshold, beyond what /proc/stat's ticks can tell.

    Each core's steal counter ticks at 1/HZ, so two readings can differ by up to one tick per core that no steal
    explains: over a 0.02 s window on 2 cores one tick reads as 25 % steal. That slack, 1 / (HZ * window) of the
    machine's time, is taken off before the comparison; it is 2 % at MIN_JUDGED_S and nothing to speak of above."""
    wall = figures.get("wall_s") or 0.0
    if wall <= 0:
        return False
    beyond = figures.get("steal_fraction", 0.0) - 1.0 / (_ticks() * wall)
    return beyond > figures.get("threshold_steal", DISTURBED_STEAL)


def judged_window(figures: Dict[str, Any]) -> Optional[bool]:
    """A timed loop's verdict from its `watch()` figures, which it updates: True/False, or None (not judged)
    when the window is too short for /proc/stat's 10 ms ticks (another process's core reads as 0, or as
    noise) and no steal beyond a tick's worth flags it; a reader then sees 'not judged', never a confident 'quiet'."""
    if not figures:  # no /proc/stat here, or no time passed: nothing to judge by, so no verdict
        return None
    if figures.get("wall_s", 0) < MIN_JUDGED_S and not stolen(figures):
        figures.update(
            disturbed=None,
            not_judged=f"a {figures['wall_s']} s window is too short to judge other load "
            f"(under {MIN_JUDGED_S} s; timing.min_seconds sets it)",
        )
    return None if figures.get("not_judged") else bool(figures.get("disturbed"))


def judged_for(figures: Dict[str, Any], ranks_here: int) -> Dict[str, Any]:
    """The figures of one of `ranks_here` processes of one run on this machine (DDP under torchrun).

    The other ranks are this run's own work, yet /proc/stat counts them as other processes: their CPU reads as
    other load, and every multi-process run would be flagged. Which part of the others' time is a sibling rank
    and which a stranger cannot be told apart from /proc/stat, so on that count such a run is not judged
    (`disturbed` null, with the reason) rather than flagged or cleared on a guess. Steal is no sibling's doing:
    a hypervisor that stole more than its threshold still flags the run."""
    if ranks_here <= 1 or not figures:
        return figures
    return {
        **figures,
        "disturbed": True if stolen(figures) else None,
        "not_judged": f"other load: {ranks_here - 1} other rank(s) of this run on this machine count as other "
        "processes in /proc/stat",
    }
