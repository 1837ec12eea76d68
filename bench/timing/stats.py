"""Measurements as values with a constructor: statistics are computed once, from the raw samples."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Per-call latency statistics in seconds, with the samples kept for noise-aware comparison."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    stdev: float
    cv: float  # coefficient of variation: stdev / mean
    min: float
    max: float
    total: float
    samples: List[float] = field(repr=False, default_factory=list)

    @classmethod
    def from_values(cls, samples: Sequence[float]) -> "Latency":
        x = np.asarray(samples, dtype=np.float64)
        if x.size == 0:
            raise ValueError("no latency samples")
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError("latency samples must be finite and non-negative")
        mean = float(x.mean())
        stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
        p50, p90, p95, p99 = (float(v) for v in np.percentile(x, [50, 90, 95, 99]))
        return cls(
            count=int(x.size),
            mean=mean,
            p50=p50,
            p90=p90,
            p95=p95,
            p99=p99,
            stdev=stdev,
            cv=stdev / mean if mean > 0 else math.nan,
            min=float(x.min()),
            max=float(x.max()),
            total=float(x.sum()),
            samples=[float(v) for v in x],
        )

    def throughput(self, batch_size: int, tokens_per_batch: float, choices: Optional[int] = None) -> Dict[str, float]:
        """Items per second from the mean latency (MLPerf Offline style). A multiple-choice batch holds
        batch x choices sequences (as its tokens count them) for batch examples: both rates are given."""
        out = {"sequences_per_s": batch_size * (choices or 1) / self.mean, "tokens_per_s": tokens_per_batch / self.mean}
        if choices:
            out["examples_per_s"] = batch_size / self.mean
        return out

    def to_dict(self, keep_samples: bool = True) -> Dict[str, Any]:
        d = asdict(self)
        if not keep_samples:
            d.pop("samples")
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Latency":
        return cls.from_values(d["samples"]) if d.get("samples") else cls(**{**d, "samples": []})
