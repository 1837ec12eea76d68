"""The SQuAD table: EM/F1 per version, ours beside published rows (a pair of frames, as every table in tables.py)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import pandas as pd

from .. import kinds
from . import published
from .failed import FAILED, failure_flag, failures_of, row_models
from .tables import MISSING, Table, _cell, task_specs


def squad_tasks() -> List[str]:
    """The tasks whose figures go to the SQuAD table (their kind says so)."""
    return [name for name, s in task_specs().items() if kinds.KINDS[s.kind].table == "squad"]


def squad_table(seeds: pd.DataFrame, with_published: bool = True, failed: Optional[pd.DataFrame] = None) -> Table:
    text_rows, score_rows = [], []
    tasks = squad_tasks()
    specs = task_specs()
    columns = {"squad_v1": "v1.1 EM/F1", "squad_v2": "v2.0 EM/F1"}
    for model, _ in row_models([seeds, failed], tasks):
        agg = seeds[seeds.model == model] if not seeds.empty else seeds
        text, score, ns, flags = {"model": model, "source": "ours (dev)"}, {}, [], []
        for t, title in columns.items():
            sub = agg[agg.task == t] if not agg.empty else agg
            text[title], score[title], n = _cell(sub, list(specs[t].report.cell)) if len(sub) else (MISSING, np.nan, 0)
            ns += [n] if n else []
            if (bad := failures_of(failed, model, t)) is not None:
                text[title] = FAILED if text[title] == MISSING else text[title]
                flags.append(failure_flag(title, bad))
            found = {x for v in (sub.get("flags", []) if len(sub) else []) for x in v.split("; ") if x}
            flags += [f"{title}: {f}" for f in sorted(found)]
        text["seeds"] = str(min(ns)) if ns else MISSING
        text["flags"] = "; ".join(flags) or MISSING
        text_rows.append(text)
        score_rows.append(score)
    if with_published:
        for p in published.SQUAD:
            text_rows.append(
                {
                    "model": p["model"],
                    "source": f"published: {p['source']}",
                    "v1.1 EM/F1": "/".join(f"{x:.1f}" for x in p["v1"]) if p["v1"] else MISSING,
                    "v2.0 EM/F1": "/".join(f"{x:.1f}" for x in p["v2"]) if p["v2"] else MISSING,
                }
            )
            score_rows.append(
                {
                    "v1.1 EM/F1": np.mean(p["v1"]) if p["v1"] else np.nan,
                    "v2.0 EM/F1": np.mean(p["v2"]) if p["v2"] else np.nan,
                }
            )
    text = pd.DataFrame(text_rows).fillna(MISSING)
    return Table(
        text,
        pd.DataFrame(score_rows, columns=text.columns).reindex(columns=text.columns),
        {c: True for c in text.columns},
        "SQuAD EM/F1 (x100; ours: mean±std over seeds, each its newest run; seeds: the fewest of a cell). flags: "
        "a figure of data.split_by_article (scored on the dev file's last articles, trained on its first: not "
        "comparable with published dev figures), a score no better than its trivial predictor's, and runs that "
        "failed or were interrupted ('failed' where none succeeded); a run's own flag names its seeds when not every "
        "seed raised it.",
    )
