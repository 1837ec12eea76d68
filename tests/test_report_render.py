"""Every output format escapes what it prints: a name, flag, error or caption never changes a table's shape, runs
in a page, or stops LaTeX."""

import html
import re

import numpy as np
import pandas as pd
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
