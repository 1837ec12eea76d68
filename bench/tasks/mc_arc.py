"""The ARC / OpenBookQA / CommonsenseQA release layout (JSON lines), and the Hub's version of it.

Release row: {"id": ..., "question": {"stem": ..., "choices": [{"label": "A", "text": ...}, ...]},
"answerKey": "B"}. ARC questions have 3, 4 or 5 choices, and some are labelled "1"-"4" instead of letters:
the gold index is the position of the choice whose label equals answerKey, whatever the labels are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import DataError
from .multiple_choice import example, read_jsonl

ROW = (
    'one JSON object per line: {"question": {"stem": TEXT, "choices": [{"label": "A", "text": TEXT}, ...]}, '
    '"answerKey": "A"} (ARC / OpenBookQA / CommonsenseQA release layout; 2 or more choices)'
)


def describe(folder: Path, files: List[str]) -> str:
    return f"expected {folder}/ holding {', '.join(files)}: {ROW}"


def _gold(where: str, labels: List[str], key: Any, layout: str) -> int:
    if not isinstance(key, str) or key.strip() not in labels:
        raise DataError(f"{where}: answerKey {key!r} is not one of the choice labels {labels}; {layout}")
    return labels.index(key.strip())


def convert(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int]:
    q = row.get("question")
    missing = [k for k in ("stem", "choices") if not isinstance(q, dict) or k not in q]
    missing = [f"question.{k}" for k in missing] + (["answerKey"] if "answerKey" not in row else [])
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}; {layout}")
    choices = q["choices"]
    if not isinstance(choices, list):
        raise DataError(
            f"{where}: question.choices is a JSON {type(choices).__name__} ({choices!r:.60}), not a list of "
            f'{{"label", "text"}} objects; {layout}'
        )
    try:
        labels = [str(c["label"]).strip() for c in choices]
        texts = [c["text"] for c in choices]
    except (KeyError, TypeError):
        raise DataError(f"{where}: every choice needs a label and a text; {layout}") from None
    if len(set(labels)) != len(labels):
        raise DataError(f"{where}: choice labels {labels} repeat; {layout}")
    return example(where, layout, q.get("stem"), texts, _gold(where, labels, row["answerKey"], layout))


def read(path: Path, layout: str, ids: List[str] | None = None) -> List[Tuple[str, List[str], int]]:
    return read_jsonl(path, layout, convert, ids)


def from_hub(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int] | None:
    """allenai/ai2_arc, allenai/openbookqa (`question_stem`), tau/commonsense_qa: choices as {"label": [...],
    "text": [...]}. Rows without an answer key (CommonsenseQA's test split) are dropped."""
    if not row.get("answerKey"):
        return None
    choices = row.get("choices") or {}
    labels = [str(x).strip() for x in choices.get("label", [])]
    stem = row["question_stem"] if "question_stem" in row else row.get("question")
    return example(where, layout, stem, list(choices.get("text", [])), _gold(where, labels, row["answerKey"], layout))
