"""Paper-column plots (3.4 in wide): accuracy vs latency with its Pareto front, latency vs sequence length,
speed-up per backend. Each is saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import List

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .naming import on_holdout, student_of, variant_of  # noqa: E402

WIDTH_IN = 3.4  # one column of a two-column paper
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "svg.fonttype": "none",  # text stays text in the SVG: editable in a paper's figure, searchable, testable
}


def pareto(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points no other point beats on both lower `x` and higher `y`, sorted by `x`."""
    front, best = [], -float("inf")
    for _, row in points.sort_values([x, y], ascending=[True, False]).iterrows():
        if row[y] > best:
            front.append(row)
            best = row[y]
    return pd.DataFrame(front)


def _save(fig, out: Path, name: str) -> List[Path]:
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def accuracy_vs_latency(points: pd.DataFrame, out: Path, machine: str = "") -> List[Path]:
    """`points`: model, latency_ms, score (one per model); `machine`: the class the latencies come from."""
    if len(points) < 1:
        return []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
        ax.scatter(points.latency_ms, points.score, s=14, zorder=3)
        for _, r in points.iterrows():
            ax.annotate(r.model, (r.latency_ms, r.score), textcoords="offset points", xytext=(3, 3), fontsize=6)
        front = pareto(points, "latency_ms", "score")
        ax.step(front.latency_ms, front.score, where="post", color="tab:red", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(f"CPU latency, p50 (ms, batch 1, seq 128, log scale){machine and chr(10) + machine}")
        ax.set_ylabel("dev score (avg over tasks, x100)")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3, which="both")
        return _save(fig, out, "accuracy_vs_latency")


def _marked(eff: pd.DataFrame) -> pd.DataFrame:
    """The rows as a plot names them: a model measured under other load (a disturbed time, or a speed-up over
    one) is drawn apart as '... (disturbed)', never pooled with calm rows; each model is named with its machine
    class where the rows come from more than one."""
    sel = eff
    if "machine" in sel and sel.machine.nunique() > 1:
        sel = sel.assign(model=sel.model + " [" + sel.machine.astype(str) + "]")
    if "device" in sel and sel.device.astype(str).str.split(":").str[0].nunique() > 1:  # CPU and CUDA apart
        sel = sel.assign(model=sel.model + " (" + sel.device.astype(str) + ")")
    if "choices" in sel:  # a multiple-choice head runs batch x choices sequences: not the single-sequence figure
        sel = sel[sel.choices.fillna(0) == 0]
    if "inputs" in sel:  # timing.inputs=task: dev rows shorter than their cap `seq`, drawn apart and named so
        task = sel["inputs"].fillna("synthetic") != "synthetic"
        sel = sel.assign(model=sel.model.where(~task, sel.model + " (task inputs)"))
    if "flags" in sel:
        noisy = sel["flags"].fillna("").astype(str).str.contains("disturbed")
        sel = sel.assign(model=sel.model.where(~noisy, sel.model + " (disturbed)"))
    return sel


def latency_vs_seq_len(eff: pd.DataFrame, out: Path) -> List[Path]:
    eff = _marked(eff)
    sel = eff[(eff.backend == "eager") & (eff.batch == 1) & (eff.status == "ok")]
    if "inputs" in sel:  # the x axis is the sequence's length: a task row's `seq` is only a cap
        sel = sel[sel["inputs"].fillna("synthetic") == "synthetic"]
    if sel.empty or sel.seq.nunique() < 2:
        return []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
        for model, g in sel.groupby("model"):
            g = g.groupby("seq", as_index=False).p50_ms.median()
            ax.plot(g.seq, g.p50_ms, marker="o", ms=3, label=model)
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel("latency, p50 (ms, batch 1)")
        ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3, which="both")
        return _save(fig, out, "latency_vs_seq_len")


def speedup_table(eff: pd.DataFrame):
    """(model x backend median speed-up, batch, seq): one shape only (batch 1, seq 128 where measured), devices
    and machine classes apart (`_marked`); None when fewer than two backends."""
    eff = _marked(eff)
    sel = eff[(eff.status == "ok") & eff.speedup_vs_eager.notna()]
    if sel.empty or sel.backend.nunique() < 2:
        return None, None, None
    batch = 1 if (sel.batch == 1).any() else sel.batch.min()
    sel = sel[sel.batch == batch]
    seq = 128 if (sel.seq == 128).any() else int(sel.seq.mode().iloc[0])  # one shape: speed-ups vary with length
    sel = sel[sel.seq == seq]
    table = sel.pivot_table(index="model", columns="backend", values="speedup_vs_eager", aggfunc="median")
    return table, int(batch), seq


def speedup_per_backend(eff: pd.DataFrame, out: Path) -> List[Path]:
    table, batch, seq = speedup_table(eff)
    if table is None:
        return []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
        table.plot.bar(ax=ax, width=0.8, rot=15)
        ax.axhline(1.0, color="black", lw=0.6)
        ax.set_ylabel(f"speed-up over eager fp32 (x, batch {batch}, seq {seq})")
        ax.set_xlabel("")
        ax.legend(title="backend", ncol=3)
        ax.grid(alpha=0.3, axis="y")
        return _save(fig, out, "speedup_per_backend")


def distill_loss_curves(runs: List, out: Path) -> List[Path]:
    """Per task, each ok distill run's training loss per stage: the curves the distillation table's figures come
    from. One line per run (named by student, variant and seed; by folder too where those collide); the
    intermediate stage's terms are drawn one by one (log scale)."""

    paths: List[Path] = []
    by_task: dict = {}
    for r in sorted(runs, key=lambda r: r.started_at):
        stages = r.train.stages if r.train else []
        if r.mode == "distill" and r.status == "ok" and stages and not on_holdout(r.config):  # no selection runs
            label = f"{student_of(r.config, r.model.name)}: {variant_of(r.config)}, seed {r.seed}"
            by_task.setdefault(r.task.name, []).append((label, Path(r.path).parent.name if r.path else "?", stages))
    for task, entries in sorted(by_task.items()):
        counts: dict = {}
        for label, _, _ in entries:
            counts[label] = counts.get(label, 0) + 1
        names = [
            s
            for s in ("intermediate", "prediction")
            if any(isinstance(st, dict) and st.get("stage") == s for _, _, v in entries for st in v)
        ]
        if not names:
            continue
        with plt.rc_context(STYLE):
            # a row of plots and, below each, its legend on an axis of its own: inside, a legend hid the curves
            n_int = sum(
                any(isinstance(st, dict) and st.get("stage") == "intermediate" for st in v) for _, _, v in entries
            )
            rows_in = 0.09 * (max(3 * n_int, len(entries)) + 1)  # legend lines: one per run (and intermediate term)
            fig, axes = plt.subplots(
                2,
                len(names),
                figsize=(WIDTH_IN * len(names), 2.6 + rows_in),
                squeeze=False,
                gridspec_kw={"height_ratios": [2.6, rows_in]},
            )
            for ax, below, stage in zip(axes[0], axes[1], names):
                for label, folder, stages in entries:
                    label = label if counts[label] == 1 else f"{label} ({folder})"
                    for st in (s for s in stages if isinstance(s, dict) and s.get("stage") == stage):
                        pts = [p for p in (st.get("loss_curve") or []) if isinstance(p, dict) and "step" in p]
                        curve_terms = sorted({k for p in pts for k in p if k.startswith("loss_")})
                        for term in curve_terms if stage == "intermediate" else ["loss"]:
                            xy = [(p["step"], p[term]) for p in pts if p.get(term) is not None]
                            if xy:
                                ax.plot(
                                    *zip(*xy),
                                    marker=".",
                                    markersize=3,
                                    linewidth=1,
                                    label=label if stage != "intermediate" else f"{label}: {term[5:]}",
                                )
                ax.set_title(f"{task}: {stage} stage")
                ax.set_xlabel("step")
                ax.set_ylabel("training loss" + (" (log)" if stage == "intermediate" else ""))
                if stage == "intermediate":
                    ax.set_yscale("log")
                below.axis("off")
                handles, labels = ax.get_legend_handles_labels()
                if handles:
                    below.legend(handles, labels, loc="upper center", fontsize=5, frameon=False)
            fig.tight_layout()
            paths += _save(fig, out, f"distill_loss_{task}")
    return paths
