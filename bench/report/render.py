"""Tables to Markdown, LaTeX (booktabs, best value per column in bold) and HTML.

Every cell, header and caption is escaped for its format: a model or task name, a flag or an error message may
hold `|`, `<`, `_`, `%` or a line break, and none of them may change the table's shape or the page.
"""

from __future__ import annotations

import html as html_lib
import re

import numpy as np
import pandas as pd

from .tables import Table


def best_mask(table: Table) -> pd.DataFrame:
    """True where a cell holds its column's best score."""
    mask = pd.DataFrame(False, index=table.text.index, columns=table.text.columns)
    for col, higher in table.higher_is_better.items():
        if col not in table.score:
            continue
        values = pd.to_numeric(table.score[col], errors="coerce")
        if table.comparable is not None:
            values = values.where(pd.Series(table.comparable, index=values.index).astype(bool))
        if values.notna().sum() < 2:
            continue
        best = values.max() if higher else values.min()
        mask[col] = np.isclose(values, best) & values.notna()
    return mask


def _md(value) -> str:
    """A Markdown cell: a `|` would start another column and a line break another row."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def markdown(table: Table) -> str:
    text = table.text.copy().rename(columns=_md)
    mask = best_mask(table)
    for col, name in zip(table.text.columns, text.columns):
        text[name] = [f"**{_md(v)}**" if m else _md(v) for v, m in zip(table.text[col], mask[col])]
    return text.to_markdown(index=False) + f"\n\n{_md(table.caption)}\n"


def _styler(table: Table):
    mask = best_mask(table)
    css = mask.replace({True: "font-weight: bold;", False: ""})
    return table.text.style.hide(axis="index").apply(lambda _: css, axis=None)


# LaTeX's special characters, and the non-ASCII ones our captions and flags use that pdflatex's default input
# encoding does not set (one pass: a replacement is never escaped again)
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "≈": r"$\approx$",
    "→": r"$\rightarrow$",
    "−": r"$-$",
    "…": r"\ldots{}",
    "–": "--",
    "—": "---",
}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX))
_UNSET = {"±": r"$\pm$", **{k: v for k, v in _TEX.items() if ord(k[0]) > 127}}
_UNSET_RE = re.compile("|".join(re.escape(k) for k in _UNSET))


def tex_text(value) -> str:
    """Plain text as LaTeX source that prints it as written."""
    return _TEX_RE.sub(lambda m: _TEX[m.group(0)], " ".join(str(value).split("\n")))


def latex(table: Table, label: str) -> str:
    # pandas escapes LaTeX's specials in cells and headers; the characters pdflatex cannot take are set after
    styler = _styler(table).format(escape="latex").format_index(escape="latex", axis=1)
    body = styler.to_latex(
        hrules=True,
        convert_css=True,
        column_format="l" * len(table.text.columns),
        caption="@@CAPTION@@",
        label=f"tab:{label}",
        position="t",
    )
    body = _UNSET_RE.sub(lambda m: _UNSET[m.group(0)], body)
    return body.replace("@@CAPTION@@", tex_text(table.caption))


def html(table: Table) -> str:
    styler = _styler(table).format(escape="html").format_index(escape="html", axis=1)
    return (
        styler.set_table_attributes('class="bench-table"').to_html()
        + f"<p class='caption'>{html_lib.escape(table.caption)}</p>"
    )
