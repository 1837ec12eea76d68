"""Tasks are data (bench/conf/task/*.yaml); this package turns a TaskConfig into datasets, features and metrics."""

from __future__ import annotations

import copy
import dataclasses
from typing import List, NamedTuple, Optional

import numpy as np
from datasets import Dataset, DatasetDict

from .. import kinds
from ..config import HOLDOUT, DataConfig, TaskConfig
from ..errors import ConfigError


def load(task: TaskConfig, data: DataConfig, seed: int = 42, need_train: bool = True) -> DatasetDict:
    """The task's eval splits (and train, when `need_train`), from `data.dir` when given, else from the Hub,
    then capped. With data.score=holdout the eval files are not read at all: such a run chooses settings, and the
    dev set it would be judged on must stay unseen."""
    local, remote = kinds.of(task).load_readers()
    if data.score == HOLDOUT:
        task = copy.copy(task)  # a shallow copy, so that __post_init__ (which wants eval files) is not re-run
        task.local = dataclasses.replace(task.local, eval_files={})
    dd = local(task, data, need_train) if data.dir else remote(task, need_train)
    return cap(dd, data, seed)


class TrainRows(NamedTuple):
    """Which rows of a training file a run uses: positions in the file, each list in the order drawn."""

    labelled: List[int]  # the rows trained on (data.max_train_samples of them, or all), holdout excluded
    holdout: List[int]  # data.holdout rows drawn from the labelled selection, held out for selection
    rest: List[int]  # rows of the file that neither the labelled rows nor the holdout use (transfer sets)


def train_rows(n_rows: int, data: DataConfig, seed: int) -> TrainRows:
    """The split of a training file of `n_rows` rows that `cap` applies: seeded by data.sample_seed (else the run's
    seed), so a teacher and its students fixed on one sample_seed see the same labelled rows whatever train.seed is.
    """
    sample_seed = data.sample_seed if data.sample_seed is not None else seed
    capped = bool(data.max_train_samples and data.max_train_samples < n_rows)
    if capped:
        # datasets' own shuffle, so that a given seed draws the rows it drew before this function existed
        order = Dataset.from_dict({"i": list(range(n_rows))}).shuffle(seed=sample_seed)["i"]
        chosen, rest = order[: data.max_train_samples], sorted(order[data.max_train_samples :])
    else:
        chosen, rest = list(range(n_rows)), []
    if data.holdout:
        if data.holdout >= len(chosen):
            raise ConfigError(
                f"data.holdout={data.holdout} leaves no training rows out of {len(chosen)}; hold out fewer rows"
            )
        picked = np.random.default_rng(sample_seed).permutation(len(chosen))[: data.holdout]
        held = set(picked.tolist())
        return TrainRows([r for i, r in enumerate(chosen) if i not in held], [chosen[i] for i in sorted(held)], rest)
    return TrainRows(list(chosen), [], rest)


def rest(task: TaskConfig, data: DataConfig, seed: int = 42) -> Dataset:
    """The training file's rows that a run with these settings neither trains on nor holds out (`train_rows`),
    without their labels (a transfer set: the teacher's outputs are its targets)."""
    local, remote = kinds.of(task).load_readers()
    full = (local(task, data, True) if data.dir else remote(task, True))["train"]
    return full.select(train_rows(len(full), data, seed).rest).remove_columns("label")


NOT_TEXT = ("label", "idx", "id")  # the columns that are not the example's text


def text_keys(ds: Dataset) -> Optional[List[tuple]]:
    """Each row's text (every column but the label and ids), whitespace and case folded: what makes two rows the
    same example to a model that reads them. None where there is no text column."""
    columns = [c for c in ds.column_names if c not in NOT_TEXT]
    if not columns:
        return None
    fold = lambda v: " ".join(str(v).split()).lower()  # noqa: E731
    return list(zip(*[[fold(v) for v in ds[c]] for c in columns]))


def cap(dd: DatasetDict, data: DataConfig, seed: int) -> DatasetDict:
    """Quick-run caps: a seeded random subset of train (sorted files would give one class), the first N of eval;
    with data.holdout, a seeded slice of the training rows becomes the split `holdout` and leaves train, and so do
    the training rows whose text is a held-out row's (a training file repeats some examples, SST-2's phrases
    among them): a holdout whose examples were trained on scores memory, not generalisation, and would favour
    the settings that memorise. How many went is `holdout_twins_dropped` on the returned DatasetDict, and each
    capped split's full row count `eval_rows_before_cap`; what the reader recorded on `dd` stays on it."""
    out, twins, cut = {}, 0, {}
    for split, ds in dd.items():
        if split == "train":
            rows = train_rows(len(ds), data, seed)
            labelled = rows.labelled
            if rows.holdout:
                out[HOLDOUT] = ds.select(rows.holdout)
                held, keys = text_keys(out[HOLDOUT]), text_keys(ds.select(labelled))
                if held is not None and keys is not None:
                    held = set(held)
                    labelled = [r for r, k in zip(labelled, keys) if k not in held]
                    twins = len(rows.labelled) - len(labelled)
            if len(labelled) < len(ds):
                ds = ds.select(labelled)
        elif data.max_eval_samples and data.max_eval_samples < len(ds):
            cut[split] = len(ds)
            ds = ds.select(range(data.max_eval_samples))
        out[split] = ds
    capped = DatasetDict(out)
    vars(capped).update(vars(dd))  # a reader's record (SQuAD's `articles_in_file`), kept as the splits are
    capped.holdout_twins_dropped = twins
    capped.eval_rows_before_cap = cut
    return capped


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
