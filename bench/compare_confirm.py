"""The gate's rule for speed (`confirmed`): a latency or memory regression that `bench compare` finds counts only
when a re-measurement reproduces it. Used by benchmarks/gate.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Sequence

SPEED_FIGURES = ("latency p50 (ms)", "peak RSS over imports (MiB)")


def confirmed(
    baseline: Path,
    current: Path,
    remeasure: Callable[[Path], object],
    args: Sequence[str] = (),
    reports: Callable[[str], List[str]] = lambda tag: [],
    remeasure_baseline: Optional[Callable[[Path], object]] = None,
) -> int:
    """The gate's rule for speed: a latency or memory regression counts only when a re-measurement reproduces it.

    Shared VMs have slow spells that no load counter sees (a 1.8x step on a 1 ms model, with nothing else
    running in the VM, was seen once in 10 comparisons). A real slowdown is in the code and comes back; a spell
    does not. `remeasure(folder)` writes fresh latency results of the current code into `folder` (beside
    `current`); with `remeasure_baseline` the baseline (measured side by side) is measured again as well, so a
    slow spell during the first baseline measurement cannot hide a slowdown either. The second comparison
    decides. Only a slower figure is re-measured: a failed, partial or missing cell is red at once (fail
    closed). Both comparisons are printed, and saved when `reports(tag)` names files.
    Returns the exit code of `bench compare --speed-only` (0, 1 or 2).
    """
    from .compare import _main, main

    code, rows = _main([str(baseline), str(current), "--speed-only", *args, *reports("latency")])
    if code != 1:
        return code
    if any(r.regressed and r.figure not in SPEED_FIGURES for r in rows):
        print("bench compare: a latency run failed or is missing: a regression, not re-measured", flush=True)
        return 1
    again, base_again = _beside(Path(current), "remeasured"), Path(baseline)
    print(f"bench compare: a speed regression must reproduce; re-measuring into {again}", flush=True)
    if remeasure_baseline is not None:
        base_again = _beside(Path(baseline), "remeasured")
        remeasure_baseline(base_again)
    remeasure(again)
    code = main([str(base_again), str(again), "--speed-only", *args, *reports("latency-remeasured")])
    print(
        "bench compare: "
        + (
            "the re-measurement reproduced it: REGRESSION"
            if code == 1
            else "the re-measurement did not reproduce it: not a regression"
            if code == 0
            else "the re-measurement could not be compared"
        ),
        flush=True,
    )
    return code


def _beside(folder: Path, tag: str) -> Path:
    """A new folder next to `folder` (never pooled with it, never written into twice)."""
    again, n = folder.with_name(f"{folder.name}-{tag}"), 1
    while again.exists():
        n += 1
        again = folder.with_name(f"{folder.name}-{tag}-{n}")
    return again
