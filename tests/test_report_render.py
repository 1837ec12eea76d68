"""Every output format escapes what it prints: a name, flag, error or caption never changes a table's shape, runs
in a page, or stops LaTeX."""

import html
import re

import numpy as np
import pandas as pd
import pytest
from conftest import compile_tex

from bench.report import render
from bench.report.tables import Table

NASTY = "my|model_<b>x</b>&#%$~^{}\\ 1±2 ×3 ≥4 ≤5 – — … →\nsecond line"


def _table():
    text = pd.DataFrame(
        {"model": [NASTY, "plain"], "RTE": ["65.0±7.1", "60.0"], "flags": ["RTE: <script>alert(1)</script>", "-"]}
    )
    score = pd.DataFrame({"model": [np.nan, np.nan], "RTE": [65.0, 60.0], "flags": [np.nan, np.nan]})
    return Table(text, score, {"RTE": True}, f"caption with order_identity, 50% and {NASTY}")


def test_markdown_keeps_one_row_per_line_and_the_header_s_column_count():
    md = render.markdown(_table())
    lines = md.splitlines()
    header, rows = lines[0], lines[2:4]
    cells = lambda line: len(re.split(r"(?<!\\)\|", line.strip().strip("|")))  # noqa: E731
    assert cells(header) == 3 and all(cells(r) == 3 for r in rows)
    assert lines[4] == "" and "second line" in lines[2] and "**65.0±7.1**" in lines[2]


def test_html_escapes_cells_and_caption():
    page = render.html(_table())
    assert "<script>" not in page and "<b>x</b>" not in page
    assert html.escape("<script>alert(1)</script>") in page and "my|model_&lt;b&gt;x&lt;/b&gt;&amp;#%" in page
    assert "font-weight: bold" in page  # the best score still marked


def test_latex_compiles_with_every_special_character_in_cells_and_caption(tmp_path):
    tex = render.latex(_table(), "nasty")
    assert "\\caption{caption with order\\_identity, 50\\% and my" in tex
    (tmp_path / "nasty.tex").write_text(tex)
    compile_tex(tmp_path, ["nasty.tex"])


def _seeds(rows):
    return pd.DataFrame(
        [
            {"model": "m", "model_name": "m", "weights": "pretrained", "task": t, "metric": k, "mean": v, "std": 0.0}
            | {"n": 1, "flags": ""}
            for t, k, v in rows
        ]
    )


def test_published_figures_sit_under_their_own_metric_and_test_rows_are_never_ranked():
    """run_glue's README prints QQP as acc/F1 and our cell is F1/acc: it was shown swapped (90.7/87.5 read as F1
    90.7). The papers' GLUE test figures are F1 (MRPC, QQP) and Spearman (STS-B), one number in a two-metric cell."""
    from bench.report import published, tables

    qqp = [("qqp", "f1", 0.80), ("qqp", "acc", 0.95), ("stsb", "pearson", 0.5), ("stsb", "spearman", 0.5)]
    t = tables.glue_table(_seeds(qqp), pd.DataFrame(), {})
    rows = t.text.set_index("model")
    assert rows.loc["m", "QQP"] == "80.0/95.0" and rows.loc["BERT-base (cased)", "QQP"] == "87.5/90.7"
    assert rows.loc["BERT-base", "QQP"] == "71.2/-" and rows.loc["BERT-base", "STS-B"] == "-/85.8"
    mask = render.best_mask(t).set_index(t.text.model)
    # QQP: ours 87.5 (mean) is below run_glue's dev 89.1 and above every test figure: run_glue's is bold
    assert mask.loc["BERT-base (cased)", "QQP"] and not mask.loc["m", "QQP"]
    # STS-B: ours 50 is below every row; the test rows are never bold, run_glue's dev row is
    assert not mask.loc[[m for m in rows.index if rows.loc[m, "source"].startswith("published (test)")]].any().any()
    for p in published.GLUE:  # every figure names a metric its task's cell shows
        for task, value in p["tasks"].items():
            assert any(x is not None for x in published.by_metric(value, tables.glue_cells()[task][1]))
    with pytest.raises(ValueError, match="not among the cell's"):
        published.by_metric({"accuracy": 1.0}, ["acc"])
    with pytest.raises(ValueError, match="one number for the 2 metrics"):
        published.by_metric(88.9, ["f1", "acc"])


def test_the_significance_verdict_never_reads_a_missing_interval_as_a_difference():
    from bench.report.__main__ import significance_text

    pairs = pd.DataFrame(
        [
            {"task": "stsb", "model_a": "a", "model_b": "b", "diff": 0.02, "low": np.nan, "high": np.nan}
            | {"n": 10, "pairing": "3 seeds paired", "within_noise": False, "n_boot": 400, "draws": 0},
            {"task": "stsb", "model_a": "a", "model_b": "c", "diff": 0.05, "low": 0.01, "high": 0.09}
            | {"n": 10, "pairing": "3 seeds paired", "within_noise": False, "n_boot": 400, "draws": 256},
            {"task": "rte", "model_a": "a", "model_b": "d", "diff": -0.05, "low": -0.09, "high": -0.01}
            | {"n": 10, "pairing": "3 seeds paired", "within_noise": False, "n_boot": 400, "draws": 400},
            {"task": "rte", "model_a": "a", "model_b": "e", "diff": 0.01, "low": -0.02, "high": 0.03}
            | {"n": 10, "pairing": "3 seeds paired", "within_noise": True, "n_boot": 400},
        ]
    )
    assert list(significance_text(pairs).verdict) == [
        "no interval",
        "A better (256 of 400 resamples defined)",
        "B better",
        "within noise",
    ]


def test_speed_ups_are_plotted_for_one_shape_with_devices_and_choices_apart():
    from bench.report import plots

    def row(device, backend, seq, speedup, choices=0):
        return {"model": "m", "machine": "cls", "device": device, "backend": backend, "batch": 1, "seq": seq} | {
            "status": "ok",
            "speedup_vs_eager": speedup,
            "p50_ms": 10.0 / speedup,
            "choices": choices,
            "flags": "",
        }

    eff = pd.DataFrame(
        [
            row("cpu", "eager", 128, 1.0),
            row("cpu", "int8", 128, 2.0),
            row("cpu", "int8", 512, 4.0),  # another length: not pooled into the seq-128 bar
            row("cpu", "int8", 128, 9.0, choices=4),  # a multiple-choice head: batch x choices sequences
            row("cuda:0", "eager", 128, 1.0),
            row("cuda:0", "fp16", 128, 3.0),
        ]
    )
    table, batch, seq = plots.speedup_table(eff)
    assert (batch, seq) == (1, 128)
    assert table.loc["m (cpu)", "int8"] == 2.0 and table.loc["m (cuda:0)", "fp16"] == 3.0
    assert np.isnan(table.loc["m (cpu)", "fp16"]) and np.isnan(table.loc["m (cuda:0)", "int8"])


def test_the_glue_table_names_the_machine_class_its_times_come_from():
    from bench.report import tables

    eff = pd.DataFrame(
        [
            {"model": "m", "model_name": "m", "params_M": 22.0, "backend": "eager", "batch": 1, "seq": 128}
            | {"status": "ok", "device": "cpu", "flags": "", "p50_ms": 12.0, "GFLOPs": 2.9, "machine": "amd-x-avx2"}
        ]
    )
    t = tables.glue_table(_seeds([("rte", "acc", 0.6)]), eff, {"m": 22_000_000})
    assert t.text.set_index("model").loc["m", "CPU ms"] == "12.0"
    assert "CPU ms measured on: amd-x-avx2." in t.caption and "GPU ms measured on" not in t.caption


def test_an_avg_over_fewer_tasks_says_so_and_is_never_bold_or_plotted():
    """The auditor's case: A has CoLA and RTE (avg 55.0), B has RTE only; B's 65.0 was bolded as the best avg."""
    from bench.report import tables

    seeds = pd.concat(
        [
            _seeds([("cola", "mcc", 0.40), ("rte", "acc", 0.70)]),
            _seeds([("rte", "acc", 0.65)]).assign(model="B"),
            _seeds([("cola", "mcc", 0.30), ("rte", "acc", 0.60)]).assign(model="C"),
        ]
    )
    t = tables.glue_table(seeds, pd.DataFrame(), {}, with_published=False)
    rows = t.text.set_index("model")
    assert rows.loc["m", "avg"] == "55.0" and rows.loc["B", "avg"] == "- (1 of 2 tasks)"
    assert np.isnan(t.score.avg[1])  # no score: the accuracy/latency plot draws rows with one only
    assert list(render.best_mask(t).avg) == [True, False, False]
    md = render.markdown(t)
    assert "**55.0**" in md and "| - (1 of 2 tasks)" in md
    style, body = render.html(t).split("</style>")
    assert "_row0_col4" in style and "_row1_col4" not in style and "- (1 of 2 tasks)" in body  # avg is column 4
    tex = render.latex(t, "glue")
    assert "\\bfseries 55.0" in tex and "- (1 of 2 tasks)" in tex and "\\bfseries - (1" not in tex
    with_pub = tables.glue_table(seeds, pd.DataFrame(), {})
    assert not render.best_mask(with_pub).set_index(with_pub.text.model).loc["B", "avg"]


def test_a_test_rows_avg_over_one_metric_of_a_two_metric_cell_is_flagged():
    from bench.report import tables

    t = tables.glue_table(_seeds([("mrpc", "f1", 0.8), ("mrpc", "acc", 0.7), ("rte", "acc", 0.6)]), pd.DataFrame(), {})
    rows = t.text.set_index("model")
    assert rows.loc["m", "avg"] == "67.5"  # ours: (80 + 70) / 2 and 60
    assert rows.loc["BERT-base", "flags"].startswith("avg: MRPC by f1 only")
    assert rows.loc["BERT-base (cased)", "flags"] == "-"  # run_glue prints both: like ours
    assert "MRPC and QQP by F1 and STS-B by Spearman alone" in t.caption
