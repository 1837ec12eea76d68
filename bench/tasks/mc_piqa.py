"""PIQA (Bisk et al. 2020) in its release layout: questions in `NAME.jsonl` ({"goal", "sol1", "sol2"}), labels
in `NAME-labels.lst` beside it, one 0/1 per line, line N of one matching line N of the other. On the Hub
(ybisk/piqa) the label is in the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import DataError
from .multiple_choice import decoded, example, jsonl_rows, source_id

ROW = (
    'NAME.jsonl with one JSON object per line {"goal": TEXT, "sol1": TEXT, "sol2": TEXT}, and NAME-labels.lst '
    "beside it holding the gold solution of each line, 0 or 1, one per line (PIQA release layout)"
)


def describe(folder: Path, files: List[str]) -> str:
    return f"expected {folder}/ holding {', '.join(files)} and their -labels.lst files: {ROW}"


def labels_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-labels.lst")


def _labels(path: Path, layout: str) -> List[int]:
    """One 0/1 per line; blank lines only at the end (line N is question N's label: a blank line inside would
    give every later question its neighbour's label)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (PIQA keeps its labels beside the questions); {layout}")
    with path.open("rb") as f:
        lines = [decoded(raw, path, number, layout).strip().lstrip("\ufeff") for number, raw in enumerate(f, 1)]
    while lines and not lines[-1]:
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        if line not in ("0", "1"):
            raise DataError(f"{path}, line {number}: label {line!r} is not 0 or 1; {layout}")
        out.append(int(line))
    return out


def convert_with_label(where: str, row: Dict[str, Any], label: int, layout: str) -> Tuple[str, List[str], int]:
    missing = [k for k in ("goal", "sol1", "sol2") if k not in row]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}; {layout}")
    return example(where, layout, row["goal"], [row["sol1"], row["sol2"]], label)


def read(path: Path, layout: str, ids: List[str] | None = None) -> List[Tuple[str, List[str], int]]:
    """The file's examples with their labels from the -labels.lst file beside it; each row's own id appended to
    `ids` when given (one pass over the file)."""
    labels = _labels(labels_path(path), layout)
    rows = list(jsonl_rows(path, layout, blank_lines=False))
    if len(rows) != len(labels):
        first = (  # where the pairing first fails: a question without a label, or a label without a question
            f"{rows[len(labels)][0]} has no label"
            if len(rows) > len(labels)
            else f"{labels_path(path)}, line {len(rows) + 1} labels no question"
        )
        raise DataError(
            f"{path}: {len(rows)} questions but {labels_path(path)} holds {len(labels)} labels "
            f"(one per question expected): {first}; {layout}"
        )
    if ids is not None:
        ids.extend(source_id(row) for _, row in rows)
    return [convert_with_label(where, row, label, layout) for (where, row), label in zip(rows, labels)]


def from_hub(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int] | None:
    if row.get("label", -1) == -1:
        return None
    return convert_with_label(where, row, int(row["label"]), layout)
