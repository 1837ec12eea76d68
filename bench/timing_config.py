"""mode=latency's config schema: the backends, the shape grid, the timing loop and what is measured beside it.

Imported by bench/config.py (the `timing` node of Config, and BACKENDS re-exported there): at the bottom layer,
beside distill_config.py and robustness_config.py, it imports nothing of ours but checks and errors, and no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

from .checks import choice, positive
from .errors import ConfigError

BACKENDS = [
    "eager",
    "bf16",
    "fp16",
    "int8",
    "compile",
    "onnxruntime",
    "onnxruntime_fused",
    "onnxruntime_int8",
    "onnxruntime_int8_channel",  # per-channel weights; named explicitly, not in auto
    "openvino",
]
# `auto`: the backends that run natively on the device (bench/timing/backends.py `auto`), resolved at run time
BACKEND_CHOICES = ["auto", *BACKENDS]


@dataclass
class TimingConfig:
    batch_sizes: List[int] = field(default_factory=lambda: [1, 8])
    seq_lens: List[int] = field(default_factory=lambda: [128])
    backends: List[str] = field(default_factory=lambda: ["auto"])
    exclude: List[str] = field(default_factory=list)  # taken out of what `auto` resolves to; named backends still run
    warmup_runs: int = 10
    min_iterations: int = 10
    min_seconds: float = 10.0
    max_iterations: int = 100_000
    inputs: str = "synthetic"  # synthetic | task
    isolate: bool = True  # measure each model in a child process so peak RSS is its own
    with_accuracy: bool = False
    flops: bool = True
    calibrate: bool = True
    choices: List[int] = field(default_factory=lambda: [2, 4])  # multiple-choice tasks: batch x choices x seq

    def __post_init__(self) -> None:
        choice("timing.inputs", self.inputs, ["synthetic", "task"])
        for b in self.backends:
            choice("timing.backends entry", b, BACKEND_CHOICES)
        for b in self.exclude:
            choice("timing.exclude entry", b, BACKENDS)
        if not self.backends or not self.batch_sizes or not self.seq_lens:
            raise ConfigError("timing.backends, timing.batch_sizes and timing.seq_lens must each name at least one")
        for b in self.batch_sizes + self.seq_lens + self.choices:
            positive("timing batch size / sequence length / choices", b)
        positive("timing.min_iterations", self.min_iterations)
        if self.min_iterations < 2:  # one sample has no spread: its stdev and cv would read 0, a perfect quiet
            raise ConfigError(f"timing.min_iterations={self.min_iterations}: give 2 or more (a spread needs two)")
        if self.max_iterations < self.min_iterations:  # 0 made every shape fail with "no latency samples"
            raise ConfigError(f"timing.max_iterations={self.max_iterations} is below timing.min_iterations")
        if not math.isfinite(self.min_seconds) or self.min_seconds < 0 or self.warmup_runs < 0:
            # NaN compared false with every bound: the seconds floor was silently dropped
            raise ConfigError(
                f"timing.min_seconds ({self.min_seconds}) must be a finite number and timing.warmup_runs "
                f"({self.warmup_runs}) a count, neither negative"
            )
