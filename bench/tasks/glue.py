"""GLUE data from the standard download layout or the Hub, into one DatasetDict schema.

Every split has `sentence1`, optionally `sentence2`, `label` (int class index, or float for STS-B) and `idx`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List

from datasets import Dataset, DatasetDict

from .. import kinds
from ..config import DataConfig, TaskConfig
from ..errors import DataError
from . import hub

TEXT_FIELDS = ("sentence1", "sentence2")
GLUE_DIRS = "CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI"


def _layout(task: TaskConfig, data_dir: Path) -> str:
    files = ", ".join([task.local.train_file, *task.local.eval_files.values()])
    cols = task.local.text_columns + [task.local.label_column]
    how = "tab-separated, a header row naming the columns" if task.local.header else "tab-separated, no header"
    return (
        f"expected the standard GLUE download layout: {data_dir}/{task.local.dir_name}/ holding {files} "
        f"({how}; columns used: {cols}; one folder per task: {GLUE_DIRS})"
    )


def _column_index(spec: str, header: List[str] | None, path: Path, layout: str) -> int:
    """A column given by position ("3", "-1" for the last) or, when the file has a header, by name."""
    if spec.lstrip("-").isdigit():
        return int(spec)
    if header is None:
        raise DataError(f"{path}: column {spec!r} is a name, but this task's files have no header; {layout}")
    if spec not in header:
        raise DataError(f"{path}, line 1: the header has no column {spec!r} (it has {header}); {layout}")
    return header.index(spec)


def _bad_utf8(path: Path, layout: str) -> DataError:
    """The one-line error for bytes that are not UTF-8: the file, the line and the byte."""
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return DataError(
                    f"{path}, line {number}: byte {line[exc.start : exc.start + 1]!r} at column "
                    f"{exc.start + 1} is not UTF-8 text (expected UTF-8); {layout}"
                )
    return DataError(f"{path}: not UTF-8 text (expected UTF-8); {layout}")


def read_tsv(path: Path, task: TaskConfig, layout: str, labels: bool = True) -> Dict[str, list]:
    """Read one GLUE TSV with quoting disabled (MRPC, QNLI and STS-B hold unbalanced quotes).

    labels=False reads the text columns only: the label column need not exist, and is never parsed (rows
    without labels, such as a distillation transfer set); the result then has no `label` column."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; {layout}")
    try:
        return _read_tsv(path, task, layout, labels)
    except UnicodeDecodeError:
        raise _bad_utf8(path, layout) from None


def read_texts(path: Path, task: TaskConfig) -> Dict[str, list]:
    """A file in the task's local format, text columns only (its labels, if any, are never read)."""
    cols = task.local.text_columns
    how = "tab-separated, a header row naming the columns" if task.local.header else "tab-separated, no header"
    return read_tsv(
        Path(path).expanduser(), task, f"expected task {task.name}'s format ({how}; text columns {cols})", False
    )


def _read_tsv(path: Path, task: TaskConfig, layout: str, labels: bool = True) -> Dict[str, list]:
    columns: Dict[str, list] = {name: [] for name in TEXT_FIELDS[: len(task.local.text_columns)]}
    if labels:
        columns["label"] = []
    columns["idx"] = []
    # utf-8-sig: the MRPC header starts with a byte-order mark
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) if task.local.header else None
        if task.local.header and not header:
            raise DataError(f"{path}: the file is empty; {layout}")
        text_idx = [_column_index(c, header, path, layout) for c in task.local.text_columns]
        label_idx = _column_index(task.local.label_column, header, path, layout) if labels else None
        used = text_idx + ([label_idx] if labels else [])
        need = max([i + 1 for i in used] + [-i for i in used])
        # no row has more fields than the header (or, without one, the first row): a row with more would be
        # read with its texts cut at a stray tab (and a named column shifted), and no GLUE release has such a row;
        # a column counted from the end ("-1") is how a layout of varying width is read, so that one may vary
        fixed = all(i >= 0 for i in used)
        width, by = (len(header), "the header") if header else (None, "the first row")
        for row in _rows(reader, path, layout):
            if not row or row == [""]:
                continue
            where = f"{path}, line {reader.line_num}"
            if len(row) < need:
                raise DataError(f"{where}: {len(row)} tab-separated fields, at least {need} expected; {layout}")
            width = len(row) if width is None else width
            if fixed and len(row) > width:  # fewer is fine while every column read is there (a transfer set's
                raise DataError(  # rows may leave out the label its header names)
                    f"{where}: {len(row)} tab-separated fields where {by} has {width} (a tab inside a text?); {layout}"
                )
            for name, i in zip(columns, text_idx):
                columns[name].append(row[i])
            if labels:
                columns["label"].append(_parse_label(row[label_idx], task, where, layout))
            columns["idx"].append(len(columns["idx"]))
    if not columns["idx"]:
        raise DataError(f"{path}: no data rows; {layout}")
    return columns


def _rows(reader, path: Path, layout: str):
    """The reader's rows; a line the csv module cannot read (a field over its size limit) names the file and line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}, line {reader.line_num}: not readable as a tab-separated row ({exc}); {layout}")


def _parse_label(raw: str, task: TaskConfig, where: str, layout: str = "") -> float | int:
    """A row's label; a bad one is most often a shifted file or the wrong column, so the error names the layout."""
    tail = f"; {layout}" if layout else ""
    if kinds.of(task).regression:
        try:
            value = float(raw)
        except ValueError:
            why = f"label {raw!r} is not a number (task {task.name} is a regression)"
            raise DataError(f"{where}: {why}{tail}") from None
        if not math.isfinite(value):  # float() reads "nan" and "inf": a score no metric or loss can use
            raise DataError(f"{where}: label {raw!r} is not a finite number (task {task.name} is a regression){tail}")
        return value
    try:
        return task.labels.index(raw)
    except ValueError:
        raise DataError(f"{where}: label {raw!r} is not one of {task.labels}{tail}") from None


def load_local(task: TaskConfig, data: DataConfig, need_train: bool = True) -> DatasetDict:
    data_dir = Path(data.dir).expanduser()
    layout = _layout(task, data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data.dir={data_dir}: no such folder; {layout}")
    task_dir = data_dir / task.local.dir_name
    if not task_dir.is_dir():
        raise DataError(f"{task_dir}: no such folder; {layout}")
    # scoring reads only the evaluation split: a folder holding just dev.tsv is enough for it
    files = {**({"train": task.local.train_file} if need_train else {}), **task.local.eval_files}
    return DatasetDict(
        {split: Dataset.from_dict(read_tsv(task_dir / name, task, layout)) for split, name in files.items()}
    )


def load_hub(task: TaskConfig, need_train: bool = True) -> DatasetDict:
    raw = hub.load(task.hub.id, task.hub.config)
    renames = dict(zip(task.hub.text_columns, TEXT_FIELDS))
    renames[task.hub.label_column] = "label"
    out = {}
    for split in ["train"] * need_train + [*task.local.eval_files]:
        source = task.hub.train_split if split == "train" else split
        if source not in raw:
            raise DataError(f"{task.hub.id}/{task.hub.config} on the Hub has no split {source!r} (it has {list(raw)})")
        ds = raw[source].rename_columns(renames)
        if "idx" not in ds.column_names:
            ds = ds.add_column("idx", list(range(len(ds))))
        out[split] = ds.select_columns([*TEXT_FIELDS[: len(task.hub.text_columns)], "label", "idx"])
    return DatasetDict(out)
