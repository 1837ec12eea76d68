"""SWAG (allenai/swag, config `regular`) and HellaSwag (Rowan/hellaswag): Hub-only here (no training files
could be obtained offline), read as `run_swag.py` reads them.

SWAG: context `sent1`, each choice `sent2` + " " + `endingN` (N = 0..3), `label`. HellaSwag: context `ctx`,
choices `endings`, `label` as a string. Test rows carry no label and are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import DataError
from .multiple_choice import example


def describe(folder: Path, files: List[str]) -> str:
    return "SWAG and HellaSwag are read from the Hub only"


def read(path: Path, layout: str, ids: List[str] | None = None) -> List[Tuple[str, List[str], int]]:
    raise DataError(f"{path}: SWAG and HellaSwag have no local reader; leave data.dir unset to read the Hub")


def from_hub(where: str, row: Dict[str, Any], layout: str) -> Tuple[str, List[str], int] | None:
    label = row.get("label")
    if label in (None, "", -1):
        return None
    if "endings" in row:  # HellaSwag
        return example(where, layout, row.get("ctx"), list(row["endings"]), int(label))
    endings = [row.get(f"ending{i}") for i in range(4)]
    if any(e is None for e in endings) or "sent2" not in row:
        raise DataError(f"{where}: expected sent1, sent2 and ending0..ending3; {layout}")
    return example(where, layout, row.get("sent1"), [f"{row['sent2']} {e}" for e in endings], int(label))
