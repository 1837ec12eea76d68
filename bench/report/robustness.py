"""The robustness table (one row per run and backend) and the plot of clean accuracy against flip rate.

Read from mode=robustness results only: each cell is a figure with its count and 95% bootstrap interval, as the
run recorded it; a perturbation that changed no example reads 'unchanged', never a flip rate of 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from ..schema import Result
from . import plots
from .tables import MISSING, Table

CONTROL = "identity"  # scored twice: its flip rate says whether scoring is deterministic, not robustness


def _pct(fig: Optional[Dict[str, Any]], n: bool = True) -> str:
    if not fig or fig.get("value") is None:
        return MISSING
    ci = f" [{100 * fig['low']:.1f}, {100 * fig['high']:.1f}]" if fig.get("low") is not None else ""
    return f"{100 * fig['value']:.1f}{ci}" + (f" n={fig['n']}" if n else "")


def _figures(b) -> Dict[str, Any]:
    return b.model_dump() if hasattr(b, "model_dump") else dict(b)


def rows(rs: List[Result]) -> List[Dict[str, Any]]:
    """One record per (run, backend) with the numbers the table and plot show."""
    out = []
    for r in rs:
        if r.mode != "robustness" or r.robustness is None:
            continue
        ref = r.robustness.reference
        ref_name = (
            "self, eager fp32" if ref.get("checkpoint") == "this checkpoint" else Path(str(ref.get("checkpoint"))).name
        )
        for b in r.robustness.backends:
            b = _figures(b)
            inv = b.get("invariance") or {}
            flips = [
                v["flip_rate"]["value"] for k, v in inv.items() if k != CONTROL and v["flip_rate"]["value"] is not None
            ]
            pooled_n = sum(v["changed"] for k, v in inv.items() if k != CONTROL)
            pooled = (
                (
                    sum(
                        v["flip_rate"]["value"] * v["changed"]
                        for k, v in inv.items()
                        if k != CONTROL and v["flip_rate"]["value"] is not None
                    )
                    / pooled_n
                )
                if pooled_n
                else None
            )
            out.append(
                {
                    "run": str(Path(r.path).parent) if r.path else "",
                    "model": r.model.name,
                    "task": r.task.name,
                    "backend": b["backend"],
                    "status": b["status"],
                    "error": b.get("error"),
                    "reference": ref_name,
                    "clean": b.get("clean_acc"),
                    "loyalty": b.get("loyalty"),
                    "advglue": b.get("advglue") or {},
                    "invariance": inv,
                    "flip_mean": float(np.mean(flips)) if flips else None,
                    "flip_pooled": pooled,
                    "machine": r.machine_class,
                    "weights": r.model.weights,
                }
            )
    return out


def table(rs: List[Result]) -> Optional[Table]:
    recs = rows(rs)
    if not recs:
        return None
    perts = sorted({k for rec in recs for k in rec["invariance"]}, key=lambda k: (k != CONTROL, k))
    lines = []
    for rec in recs:
        line = {
            "task": rec["task"],
            "model": rec["model"] + (" (weights: random)" if rec["weights"] == "random" else ""),
            "backend": rec["backend"] if rec["status"] == "ok" else f"{rec['backend']} ({rec['status']})",
            "clean acc": _pct(rec["clean"]),
        }
        adv = [
            f"{k}: {_pct(a['acc'], n=False)} (trivial {100 * a['trivial']['value']:.1f}, n={a['acc']['n']})"
            for k, a in rec["advglue"].items()
            if isinstance(a, dict) and "acc" in a
        ]
        line["AdvGLUE acc"] = "; ".join(adv) or MISSING
        loy = rec["loyalty"] or {}
        line["reference"] = rec["reference"]
        line["label loyalty"] = _pct(loy.get("label"), n=False)
        line["prob. loyalty"] = _pct(loy.get("probability"), n=False)
        d = loy.get("disagreements")
        line["disagree (ref right/this right/both wrong)"] = (
            f"{d['n']} ({d['reference_right']}/{d['this_right']}/{d['both_wrong']})" if d else MISSING
        )
        for p in perts:
            inv = rec["invariance"].get(p)
            if inv is None:
                line[f"flip % {p}"] = MISSING
            elif inv["changed"] == 0:
                line[f"flip % {p}"] = "unchanged"
            else:
                line[f"flip % {p}"] = _pct(inv["flip_rate"])
        line["flip % pooled"] = MISSING if rec["flip_pooled"] is None else f"{100 * rec['flip_pooled']:.1f}"
        lines.append(line)
    text = pd.DataFrame(lines)
    machines = sorted({str(rec["machine"]) for rec in recs})
    caption = (
        "Robustness (mode=robustness), x100, each with its 95% bootstrap interval over the examples and n. "
        "clean acc: dev accuracy; AdvGLUE acc: accuracy on the adversarial dev rows of the task's key, beside "
        "the majority-class predictor on the same rows; loyalty to the reference (label: same prediction; "
        "prob.: 1 - sqrt(JSD, base 2)); flip %: share of the examples a perturbation changed (n) whose "
        "prediction changed ('unchanged': it changed no model input, so it has no flip rate); identity is "
        "the control (scored twice: must be 0); pooled: all non-control perturbations' flips over all their "
        f"changed examples. Machine class: {', '.join(machines)}."
    )
    return Table(text, pd.DataFrame(np.nan, index=text.index, columns=text.columns), {}, caption)


def accuracy_vs_flip_rate(rs: List[Result], out: Path) -> List[Path]:
    """Clean accuracy (y) against pooled flip rate (x), one point per run and backend, one marker per task."""
    recs = [r for r in rows(rs) if r["status"] == "ok" and r["flip_pooled"] is not None and r["clean"]]
    if not recs:
        return []
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(plots.WIDTH_IN, 2.6))
        for marker, task in zip("os^Dv<>", sorted({r["task"] for r in recs})):
            pts = [r for r in recs if r["task"] == task]
            ax.scatter(
                [100 * r["flip_pooled"] for r in pts],
                [100 * r["clean"]["value"] for r in pts],
                s=14,
                marker=marker,
                label=task,
                zorder=3,
            )
            for r in pts:
                ax.annotate(
                    f"{Path(r['run']).name or r['model']}/{r['backend']}",
                    (100 * r["flip_pooled"], 100 * r["clean"]["value"]),
                    textcoords="offset points",
                    xytext=(3, 2),
                    fontsize=5,
                )
        ax.set_xlabel("flip rate under perturbations (%, pooled, lower is better)")
        ax.set_ylabel("clean dev accuracy (%)")
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        paths = [out / "accuracy_vs_flip_rate.png", out / "accuracy_vs_flip_rate.svg"]
        fig.savefig(paths[0], dpi=200, bbox_inches="tight")
        fig.savefig(paths[1], bbox_inches="tight")
        plt.close(fig)
        return paths
