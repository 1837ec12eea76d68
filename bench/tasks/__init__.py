"""Tasks are data (bench/conf/task/*.yaml); this package turns a TaskConfig into datasets, features and metrics."""

from __future__ import annotations

from datasets import DatasetDict

from .. import kinds
from ..config import DataConfig, TaskConfig


def load(task: TaskConfig, data: DataConfig, seed: int = 42, need_train: bool = True) -> DatasetDict:
    """The task's eval splits (and train, when `need_train`), from `data.dir` when given, else from the Hub,
    then capped."""
    local, remote = kinds.of(task).load_readers()
    dd = local(task, data, need_train) if data.dir else remote(task, need_train)
    return cap(dd, data, seed)


def cap(dd: DatasetDict, data: DataConfig, seed: int) -> DatasetDict:
    """Quick-run caps: a seeded random subset of train (sorted files would give one class), the first N of eval."""
    out = {}
    for split, ds in dd.items():
        if split == "train" and data.max_train_samples and data.max_train_samples < len(ds):
            ds = ds.shuffle(seed=seed).select(range(data.max_train_samples))
        elif split != "train" and data.max_eval_samples and data.max_eval_samples < len(ds):
            ds = ds.select(range(data.max_eval_samples))
        out[split] = ds
    return DatasetDict(out)


def encode(dd: DatasetDict, tokenizer, max_length: int, pad_to_max: bool) -> DatasetDict:
    """Tokenise sentence pairs (truncating the longer first, as run_glue does) and keep a `length` column."""
    pair = "sentence2" in next(iter(dd.values())).column_names

    def fn(batch):
        texts = (batch["sentence1"], batch["sentence2"]) if pair else (batch["sentence1"],)
        enc = tokenizer(*texts, truncation=True, max_length=max_length, padding="max_length" if pad_to_max else False)
        enc["labels"] = batch["label"]
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    drop = ["sentence1", "sentence2"] if pair else ["sentence1"]
    return dd.map(fn, batched=True, remove_columns=drop + ["label"], desc="tokenising")
