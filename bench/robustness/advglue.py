"""AdvGLUE's adversarial dev rows (Wang et al., NeurIPS 2021): a local dev.json, or the Hub's `adv_glue`.

The local file is one JSON object: key (sst2, qqp, mnli, mnli-mm, qnli, rte) -> rows holding the GLUE Hub
columns of that task (sentence; question1/question2; premise/hypothesis; question/sentence; sentence1/sentence2)
and an integer `label` in the Hub's label order, which is the order of task.labels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..config import TaskConfig
from ..errors import DataError
from ..tasks import hub

FILE = "dev.json"
HUB_ID = "adv_glue"
HUB_CONFIGS = {"mnli-mm": "adv_mnli_mismatched"}  # the others are adv_<key>


def hub_config(key: str) -> str:
    return HUB_CONFIGS.get(key, f"adv_{key}")


def _file(path: str) -> Path:
    p = Path(path).expanduser()
    return p / FILE if p.is_dir() else p


def read_local(path: str) -> Dict[str, list]:
    """The whole local file: key -> rows; a one-line error naming the file and the expected layout."""
    f = _file(path)
    layout = "expected AdvGLUE's dev.json: an object of key -> list of rows with the task's columns and 'label'"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"robustness.advglue={path}: no such file ({f}); {layout}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{f}: not readable as JSON ({exc}); {layout}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise DataError(f"{f}: top level is not an object of lists; {layout}")
    return data


def rows(task: TaskConfig, key: str, path: str | None) -> Tuple[List[Tuple[str, ...]], List[int]]:
    """(texts per example, labels) of one AdvGLUE key, with the task's Hub column names."""
    columns = task.hub.text_columns
    if path is not None:
        data = read_local(path)
        if key not in data:
            raise DataError(f"{_file(path)}: no key {key!r} (it has {sorted(data)})")
        records, where = data[key], f"{_file(path)}[{key!r}]"
    else:
        hint = "read AdvGLUE's dev.json with robustness.advglue=DIR (for example ../shared/data/robustness/advglue)"
        ds = hub.load(HUB_ID, hub_config(key), hint=hint)
        records, where = list(ds["validation"]), f"{HUB_ID}/{hub_config(key)}"
    texts, labels = [], []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise DataError(f"{where}, row {i}: a {type(r).__name__}, not an object of {[*columns, 'label']}")
        missing = [c for c in [*columns, "label"] if c not in r]
        if missing:
            raise DataError(f"{where}, row {i}: no column(s) {missing} (task {task.name} reads {columns} and label)")
        label = r["label"]
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(task.labels):
            raise DataError(f"{where}, row {i}: label {label!r} is not an index into {task.labels}")
        bad = [c for c in columns if not isinstance(r[c], str) or not r[c].strip()]
        if bad:  # null, a list, an empty text: never scored as the text "None"
            raise DataError(f"{where}, row {i}: {bad} {'is' if len(bad) == 1 else 'are'} not (non-empty) text")
        texts.append(tuple(r[c] for c in columns))
        labels.append(label)
    if not texts:
        raise DataError(f"{where}: no rows")
    return texts, labels


def identity(texts: List[Tuple[str, ...]], labels: List[int]) -> Dict[str, Any]:
    """The rows a key's figures were scored on: their count and a hash of their texts and labels, in order."""
    digest = hashlib.sha256(json.dumps([texts, labels], ensure_ascii=False).encode()).hexdigest()[:16]
    return {"n": len(labels), "sha256": digest}
