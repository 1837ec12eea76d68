"""Hydra callbacks: the end of a sweep prints what succeeded, failed or was skipped, and the comparison table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def collect(sweep_dir: Path) -> List[Dict[str, Any]]:
    out = []
    for path in sorted(Path(sweep_dir).glob("**/result.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            data = {"status": "unreadable", "error": {"message": str(exc)}}
        data["_path"] = str(path)
        out.append(data)
    return out


def summary(results: List[Dict[str, Any]]) -> str:
    from .report.console import latency_table

    lines = []
    counts: Dict[str, int] = {}
    for r in results:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    lines.append("sweep: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "sweep: no results")
    for r in results:
        if r.get("status") not in ("ok", "skipped"):
            lines.append(f"  {r.get('status')}: {r['_path']}: {(r.get('error') or {}).get('message', '')[:200]}")
    ok = [r for r in results if r.get("status") == "ok"]
    if any(r.get("latency") for r in ok):
        lines.append(latency_table([r for r in ok if r.get("latency")]))
    for r in ok:
        if r.get("metrics") and not r.get("latency"):
            m = ", ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items() if isinstance(v, (int, float)))
            lines.append(f"  {r['model'].get('name')} {r['task'].get('name')} ({r['model'].get('weights')}): {m}")
    return "\n".join(lines)


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(summary(collect(Path(config.hydra.sweep.dir))), flush=True)
