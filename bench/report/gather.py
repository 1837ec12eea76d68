"""Every result.json below a folder, into tidy pandas frames; anything unusable is skipped with one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, TextIO, Tuple

import pandas as pd

from .. import results
from ..errors import BenchError


def find(root: Path, log: TextIO = sys.stderr) -> List[Dict[str, Any]]:
    """Complete, successful results below `root` (or the one file given); one line per skipped file."""
    root = Path(root)
    paths = [root] if root.is_file() else sorted(root.glob("**/result.json"))
    found = []
    for path in paths:
        try:
            data = results.load(path)
        except BenchError as exc:
            print(f"skipped: {exc}", file=log)
            continue
        if data.get("status") != "ok":
            reason = (data.get("error") or {}).get("message", "")
            print(f"skipped: {path}: status {data.get('status')!r} {reason[:160]}".rstrip(), file=log)
            continue
        missing = [k for k in ("model", "task", "config") if not data.get(k)]
        if missing:
            print(f"skipped: {path}: incomplete result (no {', '.join(missing)})", file=log)
            continue
        data["_path"] = str(path)
        found.append(data)
    return found


def label(r: Dict[str, Any]) -> str:
    """How a model is named in tables: random-weight results are marked wherever they are shown."""
    m = r["model"]
    return f"{m['name']} (weights: random)" if m.get("weights") == "random" else m["name"]


def metrics_frame(rs: List[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, metric) for finetune/evaluate results."""
    rows = []
    for r in rs:
        if r.get("mode") == "latency" or not r.get("metrics"):
            continue
        for metric, value in r["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"model": label(r), "model_name": r["model"]["name"], "weights": r["model"].get("weights"),
                             "task": r["task"]["name"], "metric": metric, "value": float(value),
                             "seed": r["config"]["train"]["seed"], "params": r["model"].get("parameters"),
                             "run": str(Path(r["_path"]).parent)})
    return pd.DataFrame(rows, columns=["model", "model_name", "weights", "task", "metric", "value", "seed", "params", "run"])


def efficiency_frame(rs: List[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (latency run, backend, shape), with the accuracy change each backend costs when measured."""
    from .console import latency_frame

    lat = [r for r in rs if r.get("latency")]
    df = latency_frame(lat)
    if df.empty:
        return df
    df["model"] = [label(r) for r in lat for _ in r["latency"]]
    df["model_name"] = [r["model"]["name"] for r in lat for _ in r["latency"]]
    df["device"] = [row.get("device", "cpu") for r in lat for row in r["latency"]]
    acc, why = [], []
    for r in lat:
        backends = (r.get("timing") or {}).get("backends", {})
        for row in r["latency"]:
            change = (backends.get(row["backend"]) or {}).get("accuracy_change") or {}
            acc.append(change.get("primary"))
            why.append((backends.get(row["backend"]) or {}).get("emulated_reason"))
    df["accuracy_change"] = acc
    df["emulated_reason"] = why
    return df


def seeds(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and n over seeds for each model, task and metric."""
    if df.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "mean", "std", "n"])
    g = df.groupby(["model", "model_name", "weights", "task", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def load_all(root: Path, log: TextIO = sys.stderr) -> Tuple[List[Dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    rs = find(root, log)
    return rs, metrics_frame(rs), efficiency_frame(rs)
