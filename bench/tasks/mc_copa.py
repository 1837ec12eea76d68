"""COPA (Roemmele et al. 2011) in the SuperGLUE JSON-lines layout, and super_glue/copa on the Hub.

Row: {"premise": ..., "choice1": ..., "choice2": ..., "question": "cause" | "effect", "label": 0 | 1}.
The question changes how the premise reads ("My body cast a shadow": what caused it, or what followed?), so it
goes into the context. Formulation: the premise followed by the question as jiant, the SuperGLUE baseline
code, words it ("What was the cause of this?" / "What happened as a result?"), paired with each choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import DataError
from .multiple_choice import example, read_jsonl

QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}
ROW = (
    'one JSON object per line: {"premise": TEXT, "choice1": TEXT, "choice2": TEXT, '
    '"question": "cause" or "effect", "label": 0 or 1} (SuperGLUE COPA layout)'
)


def describe(folder: Path, files: List[str]) -> str:
    return f"expected {folder}/ holding {', '.join(files)}: {ROW}"


def convert(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int]:
    missing = [k for k in ("premise", "choice1", "choice2", "question", "label") if k not in row]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}; {layout}")
    if row["question"] not in QUESTIONS:
        raise DataError(f"{where}: question {row['question']!r} is neither 'cause' nor 'effect'; {layout}")
    if not isinstance(row["premise"], str):
        raise DataError(f"{where}: the premise is not text; {layout}")
    context = f"{row['premise']} {QUESTIONS[row['question']]}"
    return example(where, layout, context, [row["choice1"], row["choice2"]], row["label"])


def read(path: Path, layout: str, ids: List[str] | None = None) -> List[Tuple[str, List[str], int]]:
    return read_jsonl(path, layout, convert, ids)


def from_hub(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int] | None:
    if row.get("label", -1) == -1:  # the test split's hidden labels
        return None
    if isinstance(row.get("question"), int):  # some exports hold the ClassLabel index
        row = {**row, "question": ["cause", "effect"][row["question"]]}
    return convert(where, row, layout)
