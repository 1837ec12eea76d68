"""The regression gate's outputs: a console table, JUnit XML and a Markdown summary for CI systems."""

from __future__ import annotations

from typing import List
from xml.etree import ElementTree as ET

import pandas as pd


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "run": r.key,
                "figure": r.figure,
                "baseline": r.baseline,
                "current": r.current,
                "change": r.change,
                "verdict": r.verdict,
            }
            for r in rows
        ]
    )


def console(rows) -> str:
    df = frame(rows)
    return df.to_string(index=False, float_format=lambda x: f"{x:.4g}", na_rep="-")


def summary_line(rows) -> str:
    counts = frame(rows).verdict.value_counts().to_dict()
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def _md_cells(df):
    """Every text cell escaped for a Markdown table (an error message with a `|` or a line break in it would
    otherwise split the CI summary's table); numbers and missing values as they are."""
    import pandas as pd

    from .render import _md

    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):  # object or pandas' own string dtype
            out[col] = [v if v is None or pd.isna(v) or isinstance(v, (int, float)) else _md(v) for v in out[col]]
    return out


def markdown(rows) -> str:
    df = _md_cells(frame(rows))
    bad = df[df.verdict.isin(["REGRESSION", "refused", "not comparable"])]
    unjudged = df.verdict.isin(["refused", "not comparable"]).any()
    head = "### Regression gate: " + (
        "**FAILED**" if (df.verdict == "REGRESSION").any() else "**could not compare**" if unjudged else "passed"
    )
    parts = [head, "", summary_line(rows), ""]
    if not bad.empty:
        parts += [bad.to_markdown(index=False, floatfmt=".4g"), ""]
    parts += [
        "<details><summary>all compared figures</summary>",
        "",
        df.to_markdown(index=False, floatfmt=".4g"),
        "",
        "</details>",
        "",
    ]
    return "\n".join(parts)


def junit(rows: List) -> str:
    """One testcase per compared figure; a regression is a failure, a refused or not comparable one an error,
    a figure listed but not compared (another machine class, a run new in the current results) skipped."""
    suite = ET.Element(
        "testsuite",
        name="bench.compare",
        tests=str(len(rows)),
        failures=str(sum(r.verdict == "REGRESSION" for r in rows)),
        errors=str(sum(r.verdict in ("refused", "not comparable") for r in rows)),
        skipped=str(sum(r.verdict in ("not compared", "new") for r in rows)),
    )
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=r.key, name=r.figure)
        text = f"baseline {r.baseline}, current {r.current}, {r.change}"
        if r.verdict == "REGRESSION":
            ET.SubElement(case, "failure", message=f"regression: {r.change}").text = text
        elif r.verdict in ("refused", "not comparable"):
            ET.SubElement(case, "error", message=r.change).text = text
        elif r.verdict in ("not compared", "new"):
            ET.SubElement(case, "skipped", message=r.change)
        else:
            case.set("status", r.verdict)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True)
