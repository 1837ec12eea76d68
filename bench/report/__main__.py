"""python -m bench.report RESULTS_DIR [--out DIR] [--format md,latex,html,csv]  (also `bench report ...`).

Gathers every result.json below RESULTS_DIR and writes the GLUE, SQuAD, efficiency and distillation tables, the
pairwise significance table, plots, and one self-contained HTML page.
"""

from __future__ import annotations

import argparse
import base64
import html as html_lib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from ..results import write_atomic
from ..schema import Result
from . import choice, distill_text, gather, plots, render, squad_tables, stats, tables, vs_trivial
from . import distillation as distill_table
from . import robustness as robustness_report

FORMATS = ("md", "latex", "html", "csv", "parquet")
EXIT_STATUS = (
    "exit status: 0 when every result.json found was read (failed or interrupted runs are listed as "
    "skipped, and shown in the tables: a flag on their model's row, 'failed' where no run of a cell "
    "succeeded, a row of the efficiency, robustness or distillation table, a row of the CSV); 1 when a "
    "result.json could not be read or is not a valid result (each is listed; the tables leave it out), or no "
    "run succeeded; 2 for bad arguments."
)


def build(
    root: Path,
    out: Path,
    formats: List[str],
    n_boot: int = 2000,
    log=None,
    include: Iterable[str] = (),
    unreadable: Optional[List[str]] = None,
    outcome: Optional[Dict[str, bool]] = None,
) -> Dict[str, Path]:
    """Write every table and plot for the results below `root` into `out`; returns what was written.

    Result files that could not be read (not JSON, not a valid result) are appended to `unreadable` when given;
    `outcome["usable"]` says whether any run succeeded (the tables may show failed runs only)."""
    log = log if log is not None else sys.stderr  # read at the call: a caller may have redirected it
    if "parquet" in formats:
        _needs_pyarrow()  # before anything is written
    unusable: List[Result] = []
    rs = gather.find(root, log, include, unusable=unusable, unreadable=unreadable)
    distill_runs = [r for r in [*rs, *unusable] if r.mode == "distill" and r.status in distill_table.SHOWN]
    failed = gather.failed_frame(rs, unusable)  # shown in the tables beside the ok runs, never left out
    lost = [r for r in unusable if r.mode == "robustness" and r.status in gather.FAILED_STATUSES]
    if not rs and not distill_runs and failed.empty and not lost:
        if (out / MANIFEST).is_file():  # an earlier report's tables would sit there as if they were these results'
            _forget_stale(out, {}, log)
        raise SystemExit(f"bench.report: no usable result.json below {root}")
    if outcome is not None:
        outcome["usable"] = bool(rs)  # ok distill runs are in rs; failed ones are shown, not a success
    metrics_df, eff = gather.metrics_frame(rs, log), gather.efficiency_frame(rs)
    out.mkdir(parents=True, exist_ok=True)
    seeds = gather.seeds(metrics_df)
    params = metrics_df.groupby("model")["params"].first().to_dict() if not metrics_df.empty else {}
    scored_failed = failed[failed["mode"] != "latency"]  # a failed latency run is an efficiency row only
    vs = vs_trivial.frame(rs, n_boot=n_boot, log=log)  # each model against the best trivial predictor, over its seeds
    named = {
        "glue": tables.glue_table(seeds, eff, params, failed=scored_failed, vs=vs),
        "squad": squad_tables.squad_table(seeds, failed=scored_failed),
        "efficiency": tables.efficiency_table(eff, failed),
    }
    tasks = set(seeds.task) if not seeds.empty else set()
    tasks |= set(scored_failed.task)
    if not tasks & set(squad_tables.squad_tasks()):
        named.pop("squad")
    if tasks & set(choice.cells()):
        named["multiple_choice"] = choice.choice_table(seeds, choice.trivial_frame(rs), failed=scored_failed, vs=vs)
    if eff.empty and not (failed["mode"] == "latency").any():
        named.pop("efficiency")
    if distill_runs:  # failed and interrupted distill runs included: the table names them
        named["distillation"] = distill_text.distill_table(distill_table.frame([*rs, *unusable], n_boot=n_boot))
    if (robust := robustness_report.table(rs, lost)) is not None:
        named["robustness"] = robust
    frames = [p for p in (stats.pairwise(rs, n_boot=n_boot), vs_trivial.as_pairs(vs)) if not p.empty]
    pairs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    written: Dict[str, Path] = {}
    for name, table in named.items():
        if "md" in formats:
            written[f"{name}.md"] = _write(out / f"{name}.md", render.markdown(table))
        if "latex" in formats:
            written[f"{name}.tex"] = _write(out / f"{name}.tex", render.latex(table, name))
    figures = _plots(named.get("glue"), eff, out) + plots.distill_loss_curves(distill_runs, out)
    figures += robustness_report.accuracy_vs_flip_rate(rs, out)
    if "html" in formats:
        written["report.html"] = _write(out / "report.html", page(named, pairs, figures))
    # failed and interrupted runs are rows of their own (kind=failed, with status and reason), never left out
    parts = [metrics_df.assign(kind="metric"), eff.assign(kind="latency"), failed.assign(kind="failed")]
    tidy = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    if "csv" in formats:
        written["results.csv"] = _write(out / "results.csv", tidy.to_csv(index=False))
    if "parquet" in formats:  # object columns as text, a missing value kept missing (not the text 'None')
        table = tidy.astype({c: "string" for c in tidy.columns if tidy[c].dtype == object})
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".results.parquet.", suffix=".tmp")
        os.close(fd)
        try:
            table.to_parquet(tmp)
            os.replace(tmp, out / "results.parquet")  # whole or not at all, as every other file here
        finally:
            Path(tmp).unlink(missing_ok=True)
        written["results.parquet"] = out / "results.parquet"
    if not pairs.empty:
        written["significance.csv"] = _write(out / "significance.csv", pairs.to_csv(index=False))
    for p in figures:
        written[p.name] = p
    _forget_stale(out, written, log)
    return written


MANIFEST = ".bench-report-files"  # what the last report wrote into its folder


def _forget_stale(out: Path, written: Dict[str, Path], log) -> None:
    """Remove what an earlier report wrote here and this one did not (a table or plot whose runs are gone would
    otherwise sit beside the new ones as if current); files the report never wrote are left alone."""
    manifest = out / MANIFEST
    try:
        before = set(json.loads(manifest.read_text())) if manifest.is_file() else set()
    except (OSError, ValueError):
        before = set()
    for name in sorted(before - set(written)):
        stale = out / Path(name).name  # a name from the file, never a path elsewhere
        if stale.is_file():
            stale.unlink()
            print(f"removed: {stale} (written by an earlier report; nothing in these results makes it now)", file=log)
    write_atomic(manifest, json.dumps(sorted(written)))


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _needs_pyarrow() -> None:
    if not _has_pyarrow():
        raise SystemExit("bench report: --format parquet needs pyarrow: pip install -e '.[parquet]'")


def _write(path: Path, text: str) -> Path:
    write_atomic(path, text)
    return path


def _plots(glue: Optional[tables.Table], eff: pd.DataFrame, out: Path) -> List[Path]:
    figs: List[Path] = []
    if glue is not None and not eff.empty:
        # ours, less each model's '- best trivial' row (a difference, not a score)
        ours = glue.text[glue.text.source.str.startswith("ours") & (glue.text.source != vs_trivial.GAP_SOURCE)]
        # the shown figure (a disturbed one is never bolded, so its score cell is empty), marked when disturbed
        flags = ours["flags"] if "flags" in ours else pd.Series("", index=ours.index)
        noisy = flags.astype(str).str.contains("CPU ms: disturbed", regex=False)
        pts = pd.DataFrame(
            {
                "model": ours.model.where(~noisy, ours.model + " (disturbed)"),
                "score": glue.score.loc[ours.index, "avg"],
                "latency_ms": pd.to_numeric(ours.get("CPU ms", pd.Series(index=ours.index)), errors="coerce"),
            }
        ).dropna()
        classes = tables.latency_classes(eff, "cpu")
        where = f"on {classes[0]}" if len(classes) == 1 else f"on {len(classes)} machine classes (see the GLUE flags)"
        figs += plots.accuracy_vs_latency(pts, out, where if classes else "")
    if not eff.empty:
        figs += plots.latency_vs_seq_len(eff, out)
        figs += plots.speedup_per_backend(eff, out)
    return figs


def significance_text(pairs: pd.DataFrame) -> pd.DataFrame:
    if pairs.empty:
        return pairs
    return pd.DataFrame(
        {
            "task": pairs.task,
            "model A": pairs.model_a,
            "model B": pairs.model_b,
            "A - B (x100)": (100 * pairs["diff"]).map("{:+.1f}".format),
            "95% CI": [
                f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" if np.isfinite([lo, hi]).all() else "-"
                for lo, hi in zip(pairs.low, pairs.high)
            ],
            "n": pairs.n,
            "seeds": pairs.pairing if "pairing" in pairs else "-",
            "verdict": [verdict(row) for row in pairs.to_dict("records")],
        }
    )


def verdict(row: Dict) -> str:
    """'A better', 'B better', 'within noise', or 'no interval' when the bootstrap gave none (every resample's
    metric undefined): NaN compares false, and was read as a difference. A share of undefined resamples is named."""
    low, high = row.get("low"), row.get("high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    out = "within noise" if row["within_noise"] else "A better" if row["diff"] > 0 else "B better"
    draws, n_boot = row.get("draws"), row.get("n_boot")
    if draws is not None and n_boot and not pd.isna(draws) and int(draws) < int(n_boot):
        out += f" ({int(draws)} of {int(n_boot)} resamples defined)"
    return out


def page(named: Dict[str, tables.Table], pairs: pd.DataFrame, figures: List[Path]) -> str:
    """One HTML file, plots embedded as data URIs: opens in a browser with no server and no other files."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>compact-bert-bench report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse;"
        "font-size:13px;margin:1em 0} th,td{border-bottom:1px solid #ccc;padding:3px 8px;text-align:left}"
        " .caption{color:#555;font-size:12px} img{max-width:520px;margin:0.5em}</style></head><body>",
        "<h1>compact-bert-bench report</h1>",
    ]
    titles = {
        "glue": "GLUE",
        "squad": "SQuAD",
        "efficiency": "Efficiency",
        "distillation": "Distillation",
        "robustness": "Robustness",
        "multiple_choice": "Multiple choice",
    }
    for name, table in named.items():
        parts.append(f"<h2 id='{name}'>{titles[name]}</h2>{render.html(table)}")
    sig = significance_text(pairs)
    if not sig.empty:
        parts.append("<h2 id='significance'>Differences on the same dev examples (paired bootstrap)</h2>")
        parts.append(sig.to_html(index=False, classes="bench-table"))
    pngs = [p for p in figures if p.suffix == ".png"]
    if pngs:
        parts.append("<h2 id='plots'>Plots</h2>")
        for p in pngs:
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<img alt='{html_lib.escape(p.stem)}' src='data:image/png;base64,{data}'>")
    # lets a headless browser confirm the page rendered: every image decoded, every table laid out
    parts.append(
        "<script>window.addEventListener('load',function(){var i=[].slice.call(document.images);"
        "document.body.setAttribute('data-images-ok',i.filter(function(x){return x.naturalWidth>0}).length);"
        "document.body.setAttribute('data-tables',document.querySelectorAll('table').length);});</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="bench report", description=__doc__.splitlines()[0], epilog=EXIT_STATUS)
    ap.add_argument("results", type=Path, help="a folder of runs (searched recursively) or one result.json")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: RESULTS/report)")
    ap.add_argument("--format", default="md,latex,html,csv", help=f"comma-separated, from {','.join(FORMATS)}")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for paired differences")
    ap.add_argument(
        "--include",
        action="append",
        default=[],
        choices=list(gather.EXCLUDED_BY_DEFAULT),
        help="also gather results/baselines or gate output (left out by default)",
    )
    args = ap.parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        ap.error(f"unknown format(s) {unknown}; choices: {', '.join(FORMATS)}")
    if not args.results.exists():
        ap.error(f"{args.results}: no such file or folder")
    if "parquet" in formats and not _has_pyarrow():  # before anything is written: a bad argument, exit 2
        ap.error("--format parquet needs pyarrow: pip install -e '.[parquet]'")
    out = args.out or (args.results if args.results.is_dir() else args.results.parent) / "report"
    try:  # before any work: a path that cannot be a folder is a bad argument, not a traceback at the end
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        ap.error(f"--out {out}: cannot be used as the output folder ({exc.strerror or exc})")
    unreadable: List[str] = []
    outcome: Dict[str, bool] = {}
    written = build(
        args.results, out, formats, args.bootstrap, include=args.include, unreadable=unreadable, outcome=outcome
    )
    for name in ("glue.md", "squad.md", "multiple_choice.md", "efficiency.md", "distillation.md", "robustness.md"):
        if name in written:
            print(written[name].read_text())
    print(f"bench.report: wrote {len(written)} files to {out}: {', '.join(sorted(written))}")
    if not outcome.get("usable", True):
        print(
            f"bench.report: no run below {args.results} succeeded; the tables show the failures only", file=sys.stderr
        )
        return 1
    if unreadable:  # a table built without some of its results must not pass for a complete one
        print(
            f"bench.report: {len(unreadable)} result file(s) could not be read and are not in the tables:",
            file=sys.stderr,
        )
        for why in unreadable:
            print(f"  {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
