"""Timing inputs: synthetic token ids of an exact shape, or real tokenised dev examples of a task."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import torch

from .. import tasks
from ..config import Config


def synthetic(
    tokenizer, names: set, batch_size: int, seq_len: int, seed: int = 0, choices: int | None = None
) -> List[Dict[str, torch.Tensor]]:
    """One batch of random in-vocabulary ids framed by [CLS] ... [SEP], no padding; batch x choices x seq for a
    multiple-choice head (`choices`), each choice a full sequence."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch_size, seq_len) if choices is None else (batch_size, choices, seq_len)
    ids = torch.randint(1000, tokenizer.vocab_size, shape, generator=g)
    ids[..., 0] = tokenizer.cls_token_id
    ids[..., -1] = tokenizer.sep_token_id
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return [{k: v for k, v in batch.items() if k in names}]


def task_batches(
    cfg: Config, tokenizer, names: set, batch_size: int, seq_len: int, n_batches: int = 16
) -> List[Dict[str, torch.Tensor]]:
    """Consecutive dev examples truncated to `seq_len`, each batch padded to its longest (as served)."""
    encoded = _dev_encoded(cfg, tokenizer, seq_len)
    batches = []
    for i in range(0, min(len(encoded), n_batches * batch_size), batch_size):
        rows = encoded[i : i + batch_size]
        if len(rows["input_ids"]) < batch_size:
            break
        feats = [
            {k: rows[k][j] for k in ("input_ids", "attention_mask", "token_type_ids") if k in rows}
            for j in range(batch_size)
        ]
        padded = tokenizer.pad(feats, return_tensors="pt")
        batches.append({k: v for k, v in padded.items() if k in names})
    if not batches:
        raise ValueError(f"task {cfg.task.name}: fewer than {batch_size} dev examples for one batch")
    return batches


def _dev_encoded(cfg: Config, tokenizer, seq_len: int):
    dd = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed)
    split = next(iter(cfg.task.local.eval_files))
    dev = dd[split].shuffle(seed=cfg.train.seed)  # consecutive rows of a sorted file would share a length
    enc = tasks.encode(type(dd)({split: dev}), tokenizer, seq_len, pad_to_max=False)
    return enc[split]


def length_stats(batches: List[Dict[str, torch.Tensor]]) -> Dict[str, Any]:
    """Token-length distribution of the real examples used (non-padding tokens per sequence)."""
    lengths = np.concatenate([b["attention_mask"].sum(dim=1).numpy() for b in batches])
    p50, p90 = np.percentile(lengths, [50, 90])
    return {
        "examples": int(lengths.size),
        "mean": float(lengths.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "min": int(lengths.min()),
        "max": int(lengths.max()),
    }


def tokens_in(batch: Dict[str, torch.Tensor]) -> int:
    return int(batch["attention_mask"].sum())
