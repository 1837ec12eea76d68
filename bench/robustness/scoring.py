"""One backend's forward passes as class (or choice) probabilities, for mode=robustness (bench/robustness/run.py,
bench/robustness/choices.py): float64 softmax in the examples' order, and a backend whose outputs are not finite
fails instead of scoring argmax(NaN) = 0.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..timing import backends as B
from ..timing.reference import as_array

Example = Tuple[str, ...]


class NonFiniteOutput(RuntimeError):
    """A backend produced NaN or infinite logits: its figures would be wrong (argmax of NaN is 0), so it failed."""


def probabilities(
    prepared: B.Prepared, tokenizer, examples: Sequence[Example], max_length: int, batch_size: int, names: set
) -> np.ndarray:
    """Softmax outputs (float64) per example, in order; shortest first in batches, then put back in place."""
    out = np.zeros((len(examples), 0))
    if not examples:
        return out
    lengths = [sum(len(t) for t in ex) for ex in examples]
    order = np.argsort(lengths, kind="stable")
    rows: List[Optional[np.ndarray]] = [None] * len(examples)
    for i in range(0, len(order), batch_size):
        chunk = [examples[j] for j in order[i : i + batch_size]]
        enc = tokenizer(
            *zip(*chunk),
            truncation=True,
            max_length=max_length,
            padding=True,
            pad_to_multiple_of=8,
            return_tensors="pt",
        )
        batch = {k: v for k, v in enc.items() if k in names}
        for j, p in zip(order[i : i + batch_size], softmax(prepared, batch)):
            rows[j] = p
    return np.stack(rows)


def softmax(prepared: B.Prepared, batch: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> np.ndarray:
    """One forward pass's class (or choice) probabilities in float64; `mask` marks the real entries of each row
    (a multiple-choice batch's filler choices get probability 0). Non-finite outputs fail the backend."""
    logits = prepared.forward(prepared.convert(batch))
    logits = torch.as_tensor(as_array(logits), dtype=torch.float64)  # an OrtValue too (IO binding on CUDA)
    real = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    if not torch.isfinite(logits[real]).all():
        raise NonFiniteOutput(
            f"{prepared.dtype}: non-finite logits for {int((~torch.isfinite(logits[real])).sum())} values"
        )
    return torch.softmax(logits.masked_fill(~real, float("-inf")), dim=-1).numpy()


def token_ids(tokenizer, examples: Sequence[Example], max_length: int) -> List[List[int]]:
    return [tokenizer(*ex, truncation=True, max_length=max_length)["input_ids"] for ex in examples]
