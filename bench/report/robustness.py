"""The robustness table (one row per model, variant and backend: a run, or the mean±std over seeds) and the plot of
clean accuracy against flip rate.

Read from mode=robustness results only: each cell is a figure with its count and 95% bootstrap interval, as the
run recorded it; a perturbation that changed no example reads 'unchanged', never a flip rate of 0.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from .. import compare_config
from ..schema import Result
from . import plots
from .gather import why
from .naming import differing, settings, variant_of
from .tables import MISSING, Table

CONTROL = "identity"  # scored twice: its flip rate says whether scoring is deterministic, not robustness
ORDER_CONTROL, ORDER_ANY = "order_identity", "order_any"  # multiple choice (bench/robustness/choices.py)


def _pct(fig: Optional[Dict[str, Any]], n: bool = True) -> str:
    if not fig or fig.get("value") is None:
        return MISSING
    ci = f" [{100 * fig['low']:.1f}, {100 * fig['high']:.1f}]" if fig.get("low") is not None else ""
    return f"{100 * fig['value']:.1f}{ci}" + (f" n={fig['n']}" if n else "")


def _figures(b) -> Dict[str, Any]:
    return b.model_dump() if hasattr(b, "model_dump") else dict(b)


def _variant(source: Optional[Dict[str, Any]]) -> str:
    """What trained the checkpoint: `fine-tuned` (mode=finetune), a distill run's variant name, or '-' (unknown)."""
    if not source:
        return "-"
    if source.get("mode") == "distill":
        return variant_of({"distill": source.get("distill") or {}})
    return "fine-tuned" if source.get("mode") == "finetune" else str(source.get("mode"))


def _pooled(inv: Dict[str, Any]) -> Optional[float]:
    """Every non-control perturbation's flips over all the inputs they changed."""
    n = sum(v["changed"] for k, v in inv.items() if k != CONTROL)
    flips = sum(
        v["flip_rate"]["value"] * v["changed"]
        for k, v in inv.items()
        if k != CONTROL and v["flip_rate"]["value"] is not None
    )
    return flips / n if n else None


def _settings(r: Result) -> Dict[str, str]:
    """What decided a run's figures besides its model, variant, reference and backend: the settings of the run
    that trained the checkpoint (`source.*`, less its seed; results written before they were recorded have none)
    and the robustness run's own (perturbation set and seed, rows scored, AdvGLUE rows)."""
    source = r.robustness.source or {}
    own = compare_config.figure_settings(r, False)
    drop = ("train.", "model.", "run.model_source")  # a robustness run trains nothing; its model is the source's
    return {
        **{f"source.{k}": v for k, v in (source.get("settings") or {}).items()},
        **{k: v for k, v in own.items() if not k.startswith(drop)},
    }


def _label_settings(recs: List[Dict[str, Any]]) -> None:
    """rec['setting']: what sets a record apart from the others of its task, model, variant, reference and
    backend ('' when nothing does), so that two experiments sharing a seed are two rows, each named."""
    by: Dict[tuple, List[Dict[str, Any]]] = {}
    for rec in recs:
        by.setdefault((rec["task"], rec["model"], rec["variant"], rec["reference"], rec["backend"]), []).append(rec)
    for group in by.values():
        flats = [rec["settings"] for rec in group]
        only_some = frozenset(k for f in flats for k in f if k.startswith("source."))  # older results lack them
        keys = differing(flats, only_some)
        for rec in group:
            rec["setting"] = settings(rec["settings"], keys, only_some)


def rows(rs: List[Result]) -> List[Dict[str, Any]]:
    """One record per (run, backend) with the numbers the table and plot show."""
    out = []
    for r in rs:
        if r.mode != "robustness" or r.robustness is None:
            continue
        ref = r.robustness.reference
        ref_path = Path(str(ref.get("checkpoint")))
        ref_name = (  # RUN/checkpoint is named by its run folder
            "self, eager fp32"
            if ref.get("checkpoint") == "this checkpoint"
            else (ref_path.parent.name if ref_path.name == "checkpoint" else ref_path.name)
        )
        source = r.robustness.source
        run_settings = _settings(r)  # one run's, shared by its backends' records
        for b in r.robustness.backends:
            b = _figures(b)
            inv = b.get("invariance") or {}
            flips = [
                v["flip_rate"]["value"] for k, v in inv.items() if k != CONTROL and v["flip_rate"]["value"] is not None
            ]
            out.append(
                {
                    "run": str(Path(r.path).parent) if r.path else "",
                    "started_at": r.started_at,
                    "model": r.model.name,
                    "task": r.task.name,
                    "variant": _variant(source),
                    "seed": source.get("seed") if source else None,
                    "backend": b["backend"],
                    "status": b["status"],
                    "error": b.get("error"),
                    "reference": ref_name,
                    "clean": b.get("clean_acc"),
                    "loyalty": b.get("loyalty"),
                    "advglue": b.get("advglue") or {},
                    "invariance": inv,
                    "orders": b.get("choice_orders") or {},
                    "flip_mean": float(np.mean(flips)) if flips else None,
                    "flip_pooled": _pooled(inv),
                    "machine": r.machine_class,
                    "weights": r.model.weights,
                    "head": r.model.head,
                    "flags": [f for f in r.flags if f != "head: random"],  # the model column shows that one
                    "settings": run_settings,
                }
            )
    _label_settings(out)
    return out


def groups(recs: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """Records of one (task, model, variant, reference, backend, status) across seeds: one per seed, the newest
    (an earlier run of the same seed, re-run, is set aside). A checkpoint no harness run trained (no seed known)
    is a group of its own."""
    by: Dict[tuple, Dict[Any, Dict[str, Any]]] = {}
    for rec in sorted(recs, key=lambda x: x["started_at"]):
        key = (rec["task"], rec["model"], rec["weights"], rec["head"], rec["variant"], rec["reference"])
        key += (rec["backend"], rec["setting"])
        key += (rec["status"],) + (() if rec["seed"] is not None else (rec["run"],))
        by.setdefault(key, {})[rec["seed"]] = rec
    return [list(seeds.values()) for seeds in by.values()]


def _spread(values: List[Optional[float]], unit: float = 100.0, digits: int = 1) -> str:
    """'mean±std (n seeds)' over the seeds that have a value; 'unchanged' when none has. One value has no spread
    (a ±0.0 would read as seeds that agree), so it is shown bare, as the GLUE table shows one seed."""
    v = [unit * x for x in values if x is not None]
    if not v:
        return "unchanged"
    part = "" if len(v) == len(values) else f" of {len(values)}"
    spread = f"±{np.std(v, ddof=1):.{digits}f}" if len(v) > 1 else ""
    return f"{np.mean(v):.{digits}f}{spread} ({len(v)}{part} seed{'s' * (len(values) > 1)})"


def _value(fig: Optional[Dict[str, Any]]) -> Optional[float]:
    return fig.get("value") if fig else None


def _flip_cell(recs: List[Dict[str, Any]], section: str, name: str) -> str:
    figs = [rec[section].get(name) for rec in recs]
    if all(f is None for f in figs):
        return MISSING
    if len(recs) == 1:
        return "unchanged" if figs[0]["changed"] == 0 else _pct(figs[0]["flip_rate"])
    return _spread([_value(f["flip_rate"]) if f else None for f in figs])


def _model_label(rec: Dict[str, Any]) -> str:
    """The model's name with what its figures are not: random weights, an untrained (random) head."""
    marks = [f"{part}: random" for part in ("weights", "head") if rec[part] == "random"]
    return rec["model"] + (f" ({'; '.join(marks)})" if marks else "")


def _line(recs: List[Dict[str, Any]], perts: List[str], orders: List[str]) -> Dict[str, str]:
    """One table line: a run's figures with their intervals, or the mean±std over the seeds of a group."""
    rec, many = recs[-1], len(recs) > 1
    line = {
        "task": rec["task"],
        "model": _model_label(rec),
        "variant": rec["variant"] + (f" ({rec['setting']})" if rec["setting"] else ""),
        "backend": rec["backend"] if rec["status"] == "ok" else f"{rec['backend']} ({rec['status']})",
        "seeds": ", ".join(str(x["seed"]) for x in recs) if rec["seed"] is not None else MISSING,
        "clean acc": _spread([_value(x["clean"]) for x in recs]) if many else _pct(rec["clean"]),
    }
    keys = sorted({k for x in recs for k, a in x["advglue"].items() if isinstance(a, dict) and "acc" in a})
    adv = []
    for k in keys:
        a = rec["advglue"].get(k) or {}
        trivial = f"trivial {100 * a['trivial']['value']:.1f}, n={a['acc']['n']}" if a else ""
        acc = [_value((x["advglue"].get(k) or {}).get("acc")) for x in recs]
        adv.append(f"{k}: {_spread(acc) if many else _pct(a.get('acc'), n=False)} ({trivial})")
    line["AdvGLUE acc"] = "; ".join(adv) or MISSING
    line["reference"] = rec["reference"]
    for col, part in (("label loyalty", "label"), ("prob. loyalty", "probability")):
        figs = [(x["loyalty"] or {}).get(part) for x in recs]
        line[col] = _spread([_value(f) for f in figs]) if many and any(figs) else _pct(figs[-1], n=False)
    d = [(x["loyalty"] or {}).get("disagreements") for x in recs]
    if many and all(d):
        mean = {k: np.mean([x[k] for x in d]) for k in ("n", "reference_right", "this_right", "both_wrong")}
        line["disagree (ref right/this right/both wrong)"] = (
            f"{mean['n']:.1f} ({mean['reference_right']:.1f}/{mean['this_right']:.1f}/{mean['both_wrong']:.1f})"
        )
    else:
        last = d[-1]
        line["disagree (ref right/this right/both wrong)"] = (
            f"{last['n']} ({last['reference_right']}/{last['this_right']}/{last['both_wrong']})" if last else MISSING
        )
    for p in perts:
        line[f"flip % {p}"] = _flip_cell(recs, "invariance", p)
    pooled = [x["flip_pooled"] for x in recs]
    line["flip % pooled"] = _spread(pooled) if many else (MISSING if pooled[-1] is None else f"{100 * pooled[-1]:.1f}")
    for o in orders:
        line[f"flip % {o}"] = _flip_cell(recs, "orders", o)
    flags = sorted(
        {
            f
            for x in recs
            for f in x["flags"]
            if f.startswith(f"{x['backend']}: ") or ": " not in f or x["backend"] == "-"  # a whole run's failure
        }
    )
    line["flags"] = "; ".join(flags) or MISSING  # a control that flipped, on any seed: no figure here is settled
    return line


def failed_rows(failed: List[Result]) -> List[Dict[str, Any]]:
    """One record per failed or interrupted robustness run: a line that says so, with its reason, never nothing."""
    out = []
    for r in failed:
        if r.mode != "robustness":
            continue
        reason = why(r)
        out.append(
            {
                "run": str(Path(r.path).parent) if r.path else "",
                "started_at": r.started_at,
                "model": r.model.name,
                "task": r.task.name,
                "variant": "-",
                "seed": None,
                "backend": "-",
                "status": r.status,
                "error": reason,
                "reference": "-",
                "clean": None,
                "loyalty": None,
                "advglue": {},
                "invariance": {},
                "orders": {},
                "flip_mean": None,
                "flip_pooled": None,
                "machine": r.machine_class,
                "weights": r.model.weights,
                "head": r.model.head,
                "flags": [f"run {r.status}: {reason[:120]}"],
                "settings": {},
                "setting": "",
            }
        )
    return out


def table(rs: List[Result], failed: List[Result] = ()) -> Optional[Table]:
    ok = rows(rs)
    # a failure that a later successful run of the same checkpoint (task, model, weights, head) replaced is history
    done = {}
    for rec in ok:
        k = (rec["task"], rec["model"], rec["weights"], rec["head"])
        done[k] = max(done.get(k, ""), str(rec["started_at"]))
    lost = [
        rec
        for rec in failed_rows(list(failed))
        if str(rec["started_at"]) >= done.get((rec["task"], rec["model"], rec["weights"], rec["head"]), "")
    ]
    recs = ok + lost
    if not recs:
        return None
    perts = sorted({k for rec in recs for k in rec["invariance"]}, key=lambda k: (k != CONTROL, k))
    orders = sorted({k for rec in recs for k in rec["orders"]}, key=lambda k: (k != ORDER_CONTROL, k == ORDER_ANY, k))
    text = pd.DataFrame([_line(g, perts, orders) for g in groups(recs)])
    machines = sorted({str(rec["machine"]) for rec in recs if rec["machine"]}) or ["not recorded"]
    caption = (
        "Robustness (mode=robustness), x100: a run's figure with its 95% bootstrap interval over the examples and "
        "n; where a row has several seeds, the mean±std over them (each seed's figures and intervals are in its "
        "own result file). variant: what trained the checkpoint (the run beside it). "
        "clean acc: dev accuracy; AdvGLUE acc: accuracy on the adversarial dev rows of the task's key, beside "
        "the majority-class predictor on the same rows; loyalty to the reference (label: same prediction; "
        "prob.: 1 - sqrt(JSD, base 2)); flip %: share of the examples a perturbation changed (n) whose "
        "prediction changed ('unchanged': it changed no model input, so it has no flip rate); identity is "
        "the control (scored twice: must be 0); pooled: all non-control perturbations' flips over all their "
        "changed examples; order_*: multiple choice, the share of the examples shown in that order of their "
        "candidates whose chosen answer changed (order_identity: the control; order_any: under any order). "
        f"Machine class: {', '.join(machines)}."
    )
    return Table(text, pd.DataFrame(np.nan, index=text.index, columns=text.columns), {}, caption)


def point_label(rec: Dict[str, Any]) -> str:
    """A point's label in the plot: run/backend, and what was random in the model (never shown as a real one)."""
    marks = [f"{part}: random" for part in ("weights", "head") if rec.get(part) == "random"]
    return f"{Path(rec['run']).name or rec['model']}/{rec['backend']}" + (f" ({'; '.join(marks)})" if marks else "")


def accuracy_vs_flip_rate(rs: List[Result], out: Path) -> List[Path]:
    """Clean accuracy (y) against pooled flip rate (x), one point per run and backend, one marker per task."""
    recs = [r for r in rows(rs) if r["status"] == "ok" and r["flip_pooled"] is not None and r["clean"]]
    if not recs:
        return []
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(plots.WIDTH_IN, 2.6))
        tasks = sorted({r["task"] for r in recs})
        for marker, task in zip(itertools.cycle("os^Dv<>ph*"), tasks):  # every task gets a marker
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
                    point_label(r),
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
