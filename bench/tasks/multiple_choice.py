"""Multiple-choice data: one context and k candidate answers, one of them gold, from local files or the Hub.

Every split has `context` (str), `choices` (list of k str; k may differ between examples, as in ARC),
`label` (the gold index) and `idx`. Each release layout has its reader module (`mc_arc`, `mc_copa`, `mc_piqa`,
`mc_swag`), named by the task file's `local.layout` / `hub.layout`; this module dispatches, encodes the
(context, choice) pairs and pads batches of them to batch x choices x sequence.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import torch
from datasets import Dataset, DatasetDict

from ..config import DataConfig, TaskConfig
from ..errors import DataError
from . import hub

FIELDS = ("context", "choices", "label", "idx")
# layout name -> the module that reads it (a layout is a file format, not a dataset: ARC's is also
# OpenBookQA's and CommonsenseQA's)
LAYOUTS = {
    "arc": "bench.tasks.mc_arc",
    "copa": "bench.tasks.mc_copa",
    "piqa": "bench.tasks.mc_piqa",
    "swag": "bench.tasks.mc_swag",
    "hellaswag": "bench.tasks.mc_swag",
    "hub_choices": "bench.tasks.mc_arc",
}


def layout_module(name: str, task: TaskConfig):
    if name not in LAYOUTS:
        raise DataError(f"task {task.name}: no multiple-choice reader for layout {name!r} (known: {sorted(LAYOUTS)})")
    return importlib.import_module(LAYOUTS[name])


def jsonl_rows(path: Path, layout: str, blank_lines: bool = True) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(`path, line N`, the row's object) for each non-blank line of a JSON-lines file (a UTF-8 byte-order mark is
    read past). `blank_lines=False`: a blank line before the last row is refused (a layout that pairs line N of
    this file with line N of another would otherwise pair the wrong rows)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; {layout}")
    blank = None
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            line = decoded(raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw, path, number, layout)
            if not line.strip():
                blank = blank or number
                continue
            where = f"{path}, line {number}"
            if blank and not blank_lines:
                raise DataError(f"{path}, line {blank}: blank, but rows follow it; {layout}")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not a JSON object ({exc.msg}); {layout}") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: a JSON {type(row).__name__}, not an object; {layout}")
            yield where, row


def read_jsonl(path: Path, layout: str, convert, ids: List[str] | None = None) -> List[Tuple[str, List[str], int]]:
    """A JSON-lines release's examples (`convert(where, row, layout)` each row); each row's own id appended to `ids`
    when given, in the same pass over the file."""
    out = []
    for where, row in jsonl_rows(path, layout):
        out.append(convert(where, row, layout))
        if ids is not None:
            ids.append(source_id(row))
    return out


def decoded(raw: bytes, path: Path, number: int, layout: str) -> str:
    """One line of a file as UTF-8 text, or an error naming the line and the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}, line {number}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); {layout}"
        ) from None


def example(where: str, layout: str, context: Any, choices: Any, label: Any) -> Tuple[str, List[str], int]:
    """Checks that every layout's example holds: a text context, at least two non-blank text choices, and a gold
    index among them."""
    if not isinstance(context, str) or not context.strip():
        what = "blank" if isinstance(context, str) else f"{type(context).__name__}, not text"
        raise DataError(f"{where}: the context is {what}; {layout}")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise DataError(f"{where}: expected at least 2 text choices, got {choices!r:.120}; {layout}")
    blank = [i for i, c in enumerate(choices) if not c.strip()]
    if blank:
        raise DataError(f"{where}: choice {blank[0]} of {len(choices)} is blank; {layout}")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
        raise DataError(f"{where}: gold answer {label!r} is not an index among the {len(choices)} choices; {layout}")
    return context, choices, label


def to_dataset(
    examples: List[Tuple[str, List[str], int]], path: Path | str, layout: str, ids: List[str] | None = None
) -> Dataset:
    """`ids`: each example's id in its source (ARC's "Mercury_7057260", COPA's idx), '' where it has none: the
    predictions file names them, so a row can be joined back to the release."""
    if not examples:
        raise DataError(f"{path}: no data rows; {layout}")
    cols: Dict[str, list] = {k: [] for k in FIELDS}
    for i, (context, choices, label) in enumerate(examples):
        cols["context"].append(context)
        cols["choices"].append(choices)
        cols["label"].append(label)
        cols["idx"].append(i)
    # every split has the column ('' where the source gives none): encode drops it from all splits alike
    cols["id"] = list(ids) if ids is not None and len(ids) == len(examples) else [""] * len(examples)
    return Dataset.from_dict(cols)


def source_id(row: Dict[str, Any]) -> str:
    """A row's own id, where its release gives one ('id'; COPA's 'idx')."""
    value = row.get("id", row.get("idx"))
    return "" if value is None else str(value)


def load_local(task: TaskConfig, data: DataConfig, need_train: bool = True) -> DatasetDict:
    if not task.local.layout:
        raise DataError(
            f"task {task.name} has no local reader here (Hub only: {task.hub.id}); "
            "leave data.dir unset to read it from the Hub"
        )
    reader = layout_module(task.local.layout, task)
    data_dir = Path(data.dir).expanduser()
    files = {**({"train": task.local.train_file} if need_train else {}), **task.local.eval_files}
    layout = reader.describe(data_dir / task.local.dir_name, list(files.values()))
    if not data_dir.is_dir():
        raise DataError(f"data.dir={data_dir}: no such folder; {layout}")
    if not (data_dir / task.local.dir_name).is_dir():
        raise DataError(f"{data_dir / task.local.dir_name}: no such folder; {layout}")
    splits = {}
    for split, name in files.items():
        path, ids = data_dir / task.local.dir_name / name, []
        splits[split] = to_dataset(reader.read(path, layout, ids), path, layout, ids)  # one pass: rows and ids
    return DatasetDict(splits)


def local_tasks() -> List[str]:
    """The multiple-choice tasks whose release files this harness reads (bench/conf/task/*.yaml with a layout)."""
    from omegaconf import OmegaConf

    from .. import CONF_DIR

    out = []
    for path in sorted((CONF_DIR / "task").glob("*.yaml")):
        spec = OmegaConf.load(path)
        if spec.get("kind") == "multiple_choice" and spec.get("local", {}).get("layout"):
            out.append(str(spec.name))
    return out


def offline_hint(task: TaskConfig) -> str:
    """How to do without the Hub for this task's data: its release files, or, for a Hub-only task, which tasks
    can run offline instead (pointing such a task at data.dir would only end in 'no local reader')."""
    if task.local.layout:
        return (
            f"read {task.name} from its release files with data.dir=DIR (for example "
            "data.dir=../shared/data/multiple_choice)"
        )
    return (
        f"task {task.name} is read from the Hub only here (no local reader), so it cannot run offline; the "
        f"multiple-choice tasks that read local files: {', '.join(local_tasks())}"
    )


def load_hub(task: TaskConfig, need_train: bool = True) -> DatasetDict:
    reader = layout_module(task.hub.layout or task.local.layout, task)
    raw = hub.load(task.hub.id, task.hub.config, hint=offline_hint(task))
    where_id = f"{task.hub.id}" + (f"/{task.hub.config}" if task.hub.config else "")
    out = {}
    for split in ["train"] * need_train + [*task.local.eval_files]:
        source = task.hub.train_split if split == "train" else split
        if source not in raw:
            raise DataError(f"{where_id} on the Hub has no split {source!r} (it has {list(raw)})")
        layout = f"expected the Hub layout {task.hub.layout or task.local.layout!r} of {where_id}"
        rows = [reader.from_hub(f"{where_id} {source} row {i}", row, layout) for i, row in enumerate(raw[source])]
        ids = [source_id(row) for row, r in zip(raw[source], rows) if r is not None]
        # SWAG/HellaSwag test rows carry no gold answer (label -1 or ""): they cannot be scored
        out[split] = to_dataset([r for r in rows if r is not None], where_id, layout, ids)
    return DatasetDict(out)


def encode(dd: DatasetDict, tokenizer, max_length: int, pad_to_max: bool) -> DatasetDict:
    """Tokenise each example's k (context, choice) pairs, truncating the longer first (as run_swag does);
    `length` is the example's total tokens (it sorts and groups batches)."""

    def fn(batch):
        firsts = [c for c, choices in zip(batch["context"], batch["choices"]) for _ in choices]
        seconds = [choice for choices in batch["choices"] for choice in choices]
        enc = tokenizer(
            firsts, seconds, truncation=True, max_length=max_length, padding="max_length" if pad_to_max else False
        )
        out: Dict[str, list] = {k: [] for k in enc}
        start = 0
        for choices in batch["choices"]:
            for k in enc:
                out[k].append(enc[k][start : start + len(choices)])
            start += len(choices)
        out["labels"] = batch["label"]
        out["length"] = [sum(len(ids) for ids in example) for example in out["input_ids"]]
        return out

    drop = [c for c in ("context", "choices", "label", "id") if c in next(iter(dd.values())).column_names]
    return dd.map(fn, batched=True, remove_columns=drop, desc="tokenising choices")


class ChoiceCollator:
    """Pads a batch of examples to batch x choices x sequence. Examples with fewer choices than the widest in
    the batch get filler choices ([CLS] [SEP]) that `choice_mask` marks as absent, so they never win or
    draw training signal (see `masked`)."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = 8, max_length: int | None = None):
        self.tokenizer, self.multiple, self.max_length = tokenizer, pad_to_multiple_of, max_length

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features[0]]
        width = max(len(f["input_ids"]) for f in features)
        filler = {
            "input_ids": [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id],
            "attention_mask": [1, 1],
            "token_type_ids": [0, 0],
        }
        flat, mask = [], []
        for f in features:
            k = len(f["input_ids"])
            flat += [{n: f[n][j] for n in names} for j in range(k)] + [{n: filler[n] for n in names}] * (width - k)
            mask.append([1] * k + [0] * (width - k))
        padding = "max_length" if self.max_length else True
        padded = self.tokenizer.pad(
            flat,
            padding=padding,
            max_length=self.max_length,
            pad_to_multiple_of=None if self.max_length else self.multiple,
            return_tensors="pt",
        )
        batch = {n: padded[n].view(len(features), width, -1) for n in names}
        batch["choice_mask"] = torch.tensor(mask, dtype=torch.bool)
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return batch


def masked(logits: torch.Tensor, choice_mask: torch.Tensor | None) -> torch.Tensor:
    """Filler choices' scores set to the lowest value: they are never the argmax and take no probability."""
    if choice_mask is None:
        return logits
    return logits.masked_fill(~choice_mask.to(logits.device), torch.finfo(logits.dtype).min)


def permuted(context: str, choices: List[str], label: int, order: List[int]) -> Tuple[str, List[str], int]:
    """The same example with its choices in `order` (a permutation of their indices), the gold index following
    the gold answer: the helper a choice-order robustness check needs."""
    if sorted(order) != list(range(len(choices))):
        raise ValueError(f"{order} is not a permutation of {len(choices)} choices")
    return context, [choices[i] for i in order], order.index(label)
