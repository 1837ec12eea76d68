"""What a run's status means, decided in one place from what it produced.

`ok` only when every requested cell succeeded and every metric is finite; `partial` when some cells of a
latency grid failed (listed in `failures`); `failed` when a metric is NaN or infinite, or nothing succeeded.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple


def _requested_backends(timing: Optional[Dict[str, Any]], config: Dict[str, Any]) -> List[str]:
    # backends resolved automatically (not named by the user) may be unsupported here without it being a failure
    requested = (timing or {}).get("backends_requested")
    if requested is None:
        requested = (config.get("timing") or {}).get("backends") or []
    return list(requested)


def _latency_failures(rows: List[Dict[str, Any]], requested: List[str]) -> Tuple[List[str], int]:
    failures, ok = [], 0
    for row in rows:
        where = f"{row.get('backend')} batch {row.get('batch_size')} seq {row.get('seq_len')}"
        status = row.get("status")
        if status == "ok":
            ok += 1
        elif status == "unsupported":
            if row.get("backend") in requested:
                failures.append(f"{row.get('backend')}: unsupported here ({row.get('error') or row.get('reason')})")
        else:
            failures.append(f"{where}: {status} ({row.get('error') or 'no reason given'})")
    return failures, ok


def decide(
    mode: str,
    metrics: Dict[str, Any],
    latency: Optional[List[Dict[str, Any]]],
    timing: Optional[Dict[str, Any]],
    config: Dict[str, Any],
) -> Tuple[str, List[str]]:
    """(status, failures) for a run that finished without an exception."""
    failures = [
        f"metric {k} is not finite ({v})"
        for k, v in metrics.items()
        if v is None or (isinstance(v, float) and not math.isfinite(v))
    ]
    if failures:
        return "failed", failures
    if mode == "latency":
        cell_failures, ok = _latency_failures(latency or [], _requested_backends(timing, config))
        if ok == 0:
            return "failed", cell_failures or ["no latency cell was measured"]
        if cell_failures:
            return "partial", cell_failures
    elif not metrics:
        return "failed", ["the run produced no metrics"]
    return "ok", []
