"""The transfer set (distill.transfer): rows without labels that the student learns the teacher's outputs on.

Sources, in the order given: `rest` (the training file's rows that neither the labelled rows nor the holdout
use), `file` (a file in the task's own format, read by the task's reader with its labels never parsed) and
`augment` (copies of the labelled rows, bench/distill/augment.py). Every source keeps its text columns only, so
no label of a transfer row reaches the student: each gets a filler label (-1, NaN for regression) that would fail
loudly if a loss ever read it, and `labelled` False, which keeps it out of the hard term. `max_rows` draws a
seeded sample of all sources together. The seed is data.sample_seed (else train.seed), like the labelled rows, so
students that differ only in train.seed learn from the same transfer rows.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections import Counter
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from .. import kinds, tasks
from ..config import Config
from ..errors import ConfigError
from . import augment
from .teacher import TOKEN_KEYS

TEXT_FIELDS = ("sentence1", "sentence2")


def seed_of(cfg: Config) -> int:
    return cfg.data.sample_seed if cfg.data.sample_seed is not None else cfg.train.seed


def _rest(cfg: Config) -> Dataset:
    rows = tasks.rest(cfg.task, cfg.data, seed=cfg.train.seed)
    if not len(rows):
        raise ConfigError(
            "distill.transfer.sources has `rest`, but this run trains on every row of the training file "
            f"(data.max_train_samples={cfg.data.max_train_samples}): no row is left; cap the labelled rows"
        )
    return rows


def _file(cfg: Config) -> Dataset:
    reader = importlib.import_module(kinds.of(cfg.task).readers)
    if not hasattr(reader, "read_texts"):
        raise ConfigError(f"distill.transfer.file: task kind {cfg.task.kind} has no reader for text-only rows")
    return Dataset.from_dict(reader.read_texts(cfg.distill.transfer.file, cfg.task))


def _augmented(cfg: Config, labelled: Dataset, columns) -> Dataset:
    texts = list(zip(*(labelled[c] for c in columns)))
    copies = augment.augment(texts, cfg.distill.transfer.augment, seed_of(cfg))
    flat = [copy for row in copies for copy in row]
    return Dataset.from_dict({c: [copy[i] for copy in flat] for i, c in enumerate(columns)})


def build(
    cfg: Config, labelled: Dataset, tokenizer, max_length: int, held_out: Sequence[Dataset] = ()
) -> Tuple[Optional[Dataset], Dict[str, Any]]:
    """(the encoded transfer rows, or None without sources; what the result records about them).

    `held_out`: the splits the run is scored on (dev, a holdout): a transfer row with the same words as one of
    their rows is dropped and counted, so that the student never learns the teacher's answer on a row it is
    scored on (a transfer file that is the dev file, a training sentence repeated in dev)."""
    t = cfg.distill.transfer
    if not t.sources:
        return None, None
    columns = list(TEXT_FIELDS[: len(cfg.task.local.text_columns)])
    scored = {augment._key(row) for ds in held_out for row in zip(*(ds[c] for c in columns))}
    parts, given, dropped = [], {}, {}
    for source in t.sources:
        if source == "rest":
            ds = _rest(cfg)
        elif source == "file":
            ds = _file(cfg)
        else:
            ds = _augmented(cfg, labelled, columns)
        ds = ds.select_columns(columns)  # labels, if the source had any, are dropped here, unread
        keep = [i for i, row in enumerate(zip(*(ds[c] for c in columns))) if augment._key(row) not in scored]
        dropped[source] = len(ds) - len(keep)
        if dropped[source]:
            ds = ds.select(keep)
        if not len(ds):  # a source named and giving nothing: the run would be plain distillation under its name
            why = f" ({dropped[source]} were rows of the scored splits, dropped)" if dropped[source] else ""
            raise ConfigError(f"distill.transfer.sources has `{source}`, but it gives no transfer rows{why}")
        given[source] = len(ds)
        parts.append(ds.add_column("source", [source] * len(ds)))
    rows = concatenate_datasets(parts)
    if t.max_rows and t.max_rows < len(rows):
        pick = np.random.default_rng(seed_of(cfg)).permutation(len(rows))[: t.max_rows]
        rows = rows.select(np.sort(pick))
    used = Counter(rows["source"])
    filler = float("nan") if kinds.of(cfg.task).regression else -1
    rows = rows.remove_columns("source").add_column("label", [filler] * len(rows))
    encoded = tasks.encode(DatasetDict({"transfer": rows}), tokenizer, max_length, cfg.train.padding == "max_length")
    info = {
        **dataclasses.asdict(t),
        "seed": seed_of(cfg),
        "rows_given": given,  # per source, before max_rows
        "dropped_as_scored": dropped,  # per source: rows with the words of a dev or holdout row
        "rows": {s: used.get(s, 0) for s in t.sources},
        "total": len(rows),
    }
    if "augment" not in t.sources:
        info.pop("augment")
    else:
        info["augment"]["probability_used"] = t.augment.resolved_probability
        info["augment"]["augmenter"] = t.augment.model or "nlpaug " + _nlpaug_version()
    return encoded["transfer"], info


def _nlpaug_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("nlpaug")
    except metadata.PackageNotFoundError:
        return "?"


def combine(labelled: Dataset, transfer: Optional[Dataset]) -> Dataset:
    """The rows a stage trains on: the labelled rows first (rows 0..n-1), then the transfer rows, each with its
    `row` (the teacher cache's index) and `labelled` flag; one Dataset, so every epoch shuffles them together."""
    keep = [c for c in (*TOKEN_KEYS, "labels", "length") if c in labelled.column_names]
    out = labelled.select_columns(keep).add_column("labelled", [True] * len(labelled))
    if transfer is not None and len(transfer):
        extra = transfer.select_columns(keep).add_column("labelled", [False] * len(transfer))
        out = concatenate_datasets([out, extra.cast(out.features)])
    return out.add_column("row", list(range(len(out))))
