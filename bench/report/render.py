"""Tables to Markdown, LaTeX (booktabs, best value per column in bold) and HTML."""

from __future__ import annotations

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
        if values.notna().sum() < 2:
            continue
        best = values.max() if higher else values.min()
        mask[col] = np.isclose(values, best) & values.notna()
    return mask


def markdown(table: Table) -> str:
    text = table.text.copy()
    mask = best_mask(table)
    for col in text.columns:
        text[col] = [f"**{v}**" if m else v for v, m in zip(text[col], mask[col])]
    return text.to_markdown(index=False) + f"\n\n{table.caption}\n"


def _styler(table: Table):
    mask = best_mask(table)
    css = mask.replace({True: "font-weight: bold;", False: ""})
    return table.text.style.hide(axis="index").apply(lambda _: css, axis=None)


def latex(table: Table, label: str) -> str:
    styler = _styler(table).format(escape="latex").format_index(escape="latex", axis=1)
    body = styler.to_latex(
        hrules=True,
        convert_css=True,
        column_format="l" * len(table.text.columns),
        caption=table.caption.replace("%", r"\%").replace("±", r"$\pm$"),
        label=f"tab:{label}",
        position="t",
    )
    return body.replace("±", r"$\pm$")


def html(table: Table) -> str:
    return (
        _styler(table).set_table_attributes('class="bench-table"').to_html() + f"<p class='caption'>{table.caption}</p>"
    )
