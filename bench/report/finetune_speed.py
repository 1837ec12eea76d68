"""The fine-tune speed benchmark's summary (benchmarks/finetune_speed.py): each rung's wall time over the repeats,
its speed-up on transformers' run_glue.py recipe, each lever's own share, the dev scores, and whether any figure
was taken beside other work.

Speed-ups are paired: repeat r of a rung against repeat r of the recipe, run in one pass over the rungs (the
order alternating between passes), so that drift of the machine between passes cancels; the spread is the range
of those paired ratios. A rung with a
failed repeat or a training time taken beside other load (`train.load.disturbed`) says so in its row, and the
verdict refuses to call a target met on such figures.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import schema
from ..results import load_not_judged, trained_beside_load

RECIPE = "recipe"  # the rung every speed-up is taken against
TARGETS = {"native_bf16": 5.0, "fp32": 3.0}  # issue #20: the harness's defaults against the recipe, per CPU class


def _metric(results: Sequence[schema.Result], name: str) -> Optional[Tuple[float, float]]:
    values = [r.metrics.get(name) for r in results]
    values = [v for v in values if isinstance(v, float)]
    return (min(values), max(values)) if values else None


def _ok(r: Optional[schema.Result]) -> bool:
    return r is not None and r.status == "ok" and bool(r.duration_s)


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _disturbed(r: schema.Result) -> bool:
    """Timed beside other load, or not judged for it (a DDP rank): either way not a figure to judge a target on."""
    train = r.train.model_dump() if r.train else None
    return trained_beside_load(train) or load_not_judged(train)


def summarise(
    rungs: Sequence[Tuple[str, str, Optional[str]]], runs: Dict[str, List[Optional[schema.Result]]]
) -> Dict[str, Any]:
    """rungs: (key, label, the rung it adds one lever to) in ladder order, the recipe first (its own base None);
    runs[key]: that rung's results by repeat (None where the run raised). Returns {"rows": [...], "repeats": n}."""
    base = runs.get(RECIPE, [])
    rows = []
    means: Dict[str, Optional[float]] = {}
    for key, label, below in rungs:
        results = runs.get(key, [])
        ok = [r for r in results if _ok(r)]
        walls = [r.duration_s for r in ok]
        paired = [b.duration_s / r.duration_s for b, r in zip(base, results) if _ok(b) and _ok(r)]
        mean = means[key] = statistics.fmean(walls) if walls else None
        before = means.get(below) if below else None
        rows.append(
            {
                "key": key,
                "label": label,
                "runs": len(results),
                "failed": len(results) - len(ok),
                "wall_s": mean,
                "wall_range": (min(walls), max(walls)) if walls else None,
                "train_s": _mean([r.train.seconds for r in ok if r.train]),
                "speedup": statistics.fmean(paired) if paired else None,
                "speedup_range": (min(paired), max(paired)) if paired else None,
                "adds_to": below,
                "step": before / mean if before and mean else None,  # this lever's own share
                "acc": _metric(ok, "acc"),
                "f1": _metric(ok, "f1"),
                "precision": sorted({r.precision or "?" for r in ok}),
                "compiled": any((r.train.model_dump().get("compiled") if r.train else False) for r in ok),
                "disturbed": sum(_disturbed(r) for r in ok),
            }
        )
    return {"rows": rows, "repeats": max((len(v) for v in runs.values()), default=0)}


def verdict(summary: Dict[str, Any], harness: str, native_bf16: bool) -> Dict[str, Any]:
    """Whether the harness rung reaches the issue's target on this class, at equal or better dev F1 (the lowest
    of its repeats against the highest of the recipe's). Not judged (met None) on failed or disturbed runs."""
    rows = {r["key"]: r for r in summary["rows"]}
    target = TARGETS["native_bf16" if native_bf16 else "fp32"]
    h, b = rows.get(harness), rows.get(RECIPE)
    out: Dict[str, Any] = {"target": target, "class": "native bf16" if native_bf16 else "fp32 (no native bf16)"}
    problems = []
    for row in (b, h):
        if row is None or row["failed"] or row["speedup"] is None:
            problems.append(f"{row['label'] if row else 'a rung'}: failed or missing runs")
        elif row["disturbed"]:
            problems.append(f"{row['label']}: {row['disturbed']} run(s) trained beside other load")
    if problems or not (h and b and h["f1"] and b["f1"]):
        return {**out, "met": None, "why": "; ".join(problems) or "no F1 to compare"}
    f1_change = h["f1"][0] - b["f1"][1]
    out.update(speedup=h["speedup"], speedup_range=h["speedup_range"], f1_change=f1_change)
    out["met"] = h["speedup"] >= target and f1_change >= 0
    return out


def _range(value: Optional[float], rng: Optional[Tuple[float, float]], fmt: str) -> str:
    if value is None:
        return "-"
    text = format(value, fmt)
    if rng and len({format(x, fmt) for x in rng}) > 1:
        text += f" ({format(rng[0], fmt)}-{format(rng[1], fmt)})"
    return text


def _score(rng: Optional[Tuple[float, float]]) -> str:
    if not rng:
        return "-"
    return f"{rng[0]:.3f}" if f"{rng[0]:.3f}" == f"{rng[1]:.3f}" else f"{rng[0]:.3f}-{rng[1]:.3f}"


def table(summary: Dict[str, Any], machine: str, verdict_: Optional[Dict[str, Any]] = None) -> str:
    """Markdown: one row per rung; ranges are over the repeats (speed-ups paired with the recipe's repeat)."""
    lines = [
        f"Machine class `{machine}`, {summary['repeats']} repeat(s) per rung, alternating order; wall time is the "
        "whole run (load, tokenise, train, score dev); ranges over the repeats.",
        "",
        "| rung | wall s | speed-up on the recipe | this lever alone | dev acc | dev F1 | precision | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        note = []
        if r["failed"]:
            note.append(f"**{r['failed']} of {r['runs']} failed**")
        if r["disturbed"]:
            note.append(f"**{r['disturbed']} disturbed** (other load while training)")
        if r["compiled"]:
            note.append("torch.compile")
        lines.append(
            f"| {r['label']} | {_range(r['wall_s'], r['wall_range'], '.0f')} "
            f"| {_range(r['speedup'], r['speedup_range'], '.2f')}x "
            f"| {'-' if r['step'] is None else format(r['step'], '.2f') + 'x'} "
            f"| {_score(r['acc'])} | {_score(r['f1'])} | {'/'.join(r['precision']) or '-'} | {'; '.join(note)} |"
        )
    if verdict_:
        v = verdict_
        if v["met"] is None:
            lines += ["", f"Target {v['target']:g}x on this class ({v['class']}): **not judged**: {v['why']}."]
        else:
            lines += [
                "",
                f"Target {v['target']:g}x at equal or better dev F1 on this class ({v['class']}): "
                f"**{'met' if v['met'] else 'not met'}** ({v['speedup']:.2f}x, paired range "
                f"{v['speedup_range'][0]:.2f}-{v['speedup_range'][1]:.2f}; F1 {100 * v['f1_change']:+.2f} points, "
                "the harness's lowest repeat against the recipe's highest).",
            ]
    return "\n".join(lines) + "\n"
