"""mode=distill's config schema: the teacher, the student's initialisation, the loss terms and the stages.

Imported by bench/config.py (the `distill` node of Config): it sits in the bottom layer beside it, free of torch
and of everything above (bench/distill/ imports it, never the other way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .checks import choice, positive
from .errors import ConfigError

# mode=distill: loss term -> the stage it belongs to (TinyBERT: intermediate layers first, then the prediction layer)
DISTILL_LOSSES = {
    "embedding": "intermediate",
    "hidden": "intermediate",
    "attention": "intermediate",
    "soft": "prediction",
    "hard": "prediction",
}
DISTILL_STAGES = ["intermediate", "prediction"]
# a stage's learning-rate schedule: linear = warm-up (train.warmup or the recipe) then linear decay to 0;
# constant = no warm-up, no decay (task_distill.py's intermediate stage: BertAdam with schedule 'none')
SCHEDULERS = ["linear", "constant"]
# what the intermediate MSEs average over: tokens = real tokens (query/key pairs of real tokens); padded = every
# position of rows padded to the run's max_seq_length, as task_distill.py (padding contributes no error here)
MSE_OVER = ["tokens", "padded"]
# where rows without labels come from (distill.transfer.sources): the training file's unused rows, a file in the
# task's format, augmented copies of the labelled rows
TRANSFER_SOURCES = ["rest", "file", "augment"]
# the offline augmenter's operations (nlpaug, no downloads): name -> what one augmented row gets
AUGMENT_OPS = ["word_swap", "word_delete", "keyboard", "char_swap"]


@dataclass
class StageConfig:
    """One distillation stage's schedule; None takes the run's hyper-parameters (train.* or the model recipe)."""

    epochs: Optional[float] = None
    learning_rate: Optional[float] = None
    scheduler: str = "linear"  # linear | constant (SCHEDULERS)

    def __post_init__(self) -> None:
        positive("distill stage epochs", self.epochs)
        positive("distill stage learning_rate", self.learning_rate)
        choice("distill stage scheduler", self.scheduler, SCHEDULERS)


@dataclass
class AugmentConfig:
    """distill.transfer.augment: copies of the labelled rows with words changed; the teacher labels them."""

    # a masked LM (Hub id or local folder) proposing replacements in TinyBERT's manner; None: the offline operations
    model: Optional[str] = None
    ops: List[str] = field(default_factory=lambda: ["word_swap", "word_delete", "keyboard"])  # offline only
    per_row: int = 20  # augmented rows drawn per labelled row (TinyBERT: N=20 for GLUE)
    probability: Optional[float] = None  # share of words changed; None: 0.4 with a model (TinyBERT), else 0.3
    top_k: int = 15  # masked LM: candidates kept per word (TinyBERT's M)
    batch_size: int = 64  # masked LM: masked copies per forward pass

    def __post_init__(self) -> None:
        if not self.ops:
            raise ConfigError(f"distill.transfer.augment.ops is empty; choose from {AUGMENT_OPS}")
        for op in self.ops:
            choice("distill.transfer.augment.ops entry", op, AUGMENT_OPS)
        positive("distill.transfer.augment.per_row", self.per_row)
        positive("distill.transfer.augment.top_k", self.top_k)
        positive("distill.transfer.augment.batch_size", self.batch_size)
        if self.probability is not None and not 0 < self.probability <= 1:
            raise ConfigError(f"distill.transfer.augment.probability must be in (0, 1], got {self.probability}")

    @property
    def resolved_probability(self) -> float:
        return self.probability if self.probability is not None else (0.4 if self.model else 0.3)


@dataclass
class TransferConfig:
    """distill.transfer: rows without labels the student also learns the teacher's outputs on (none by default)."""

    sources: List[str] = field(default_factory=list)  # any of TRANSFER_SOURCES
    max_rows: Optional[int] = None  # a seeded sample of at most this many transfer rows (all sources together)
    file: Optional[str] = None  # source `file`: a file in the task's local format (its labels are never read)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for source in self.sources:
            choice("distill.transfer.sources entry", source, TRANSFER_SOURCES)
        if len(set(self.sources)) != len(self.sources):
            raise ConfigError(f"distill.transfer.sources={self.sources} names a source twice")
        positive("distill.transfer.max_rows", self.max_rows)
        if ("file" in self.sources) != (self.file is not None):
            raise ConfigError(
                f"distill.transfer.file and the source `file` go together: sources={self.sources}, file={self.file!r}"
            )


@dataclass
class DistillConfig:
    """Task distillation (mode=distill): a fine-tuned teacher, a student, the loss terms and the stages."""

    teacher: Optional[str] = None  # a fine-tuned checkpoint folder, or a run folder holding checkpoint/
    init: str = "teacher_layers"  # teacher_layers | pretrained | random
    layers: Optional[List[int]] = None  # teacher layers (1-based) copied by init=teacher_layers; None: uniform m*N/M
    # teacher layer each student layer learns (1-based); None: the copied layers, or uniform m*N/M without a copy
    layer_map: Optional[List[int]] = None
    stages: List[str] = field(default_factory=lambda: list(DISTILL_STAGES))
    # each term's weight; 0 turns it off. soft = logits at temperature T (MSE on the score for regression),
    # hard = the gold labels (0 in TinyBERT; direct fine-tuning is hard=1 with every other term 0)
    weights: Dict[str, float] = field(
        default_factory=lambda: {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "soft": 1.0, "hard": 0.0}
    )
    temperature: float = 1.0  # TinyBERT uses 1; DistilBERT 2 (soft targets are scaled by T^2)
    # task_distill.py: intermediate at a constant 5e-5 (its README runs 10 epochs; its MRPC/RTE/STS-B table says 20),
    # prediction 3 epochs at 3e-5 with 10% warm-up and linear decay
    intermediate: StageConfig = field(
        default_factory=lambda: StageConfig(epochs=10.0, learning_rate=5e-5, scheduler="constant")
    )
    prediction: StageConfig = field(
        default_factory=lambda: StageConfig(epochs=3.0, learning_rate=3e-5, scheduler="linear")
    )
    mse_over: str = "tokens"  # tokens | padded (MSE_OVER): the intermediate MSEs' denominator
    cache_dir: str = "results/cache/teacher"  # teacher outputs on the training set, keyed by teacher and data
    transfer: TransferConfig = field(default_factory=TransferConfig)  # rows without labels, taught by the teacher
    measure_latency: bool = True  # student and teacher at batch 1, sequence 128, eager, in this process

    def __post_init__(self) -> None:
        choice("distill.init", self.init, ["teacher_layers", "pretrained", "random"])
        choice("distill.mse_over", self.mse_over, MSE_OVER)
        unknown = sorted(set(self.weights) - set(DISTILL_LOSSES))
        if unknown:
            raise ConfigError(f"distill.weights: unknown loss name(s) {unknown}; known: {sorted(DISTILL_LOSSES)}")
        for name, w in self.weights.items():
            # NaN compares false with everything: it switched its term off silently and was recorded as NaN
            if isinstance(w, bool) or not math.isfinite(w) or w < 0:
                raise ConfigError(f"distill.weights.{name} must be a finite number, 0 or more, got {w}")
        for stage in self.stages:
            choice("distill.stages entry", stage, DISTILL_STAGES)
        if (
            not self.stages
            or sorted(self.stages, key=DISTILL_STAGES.index) != self.stages
            or len(set(self.stages)) != len(self.stages)
        ):
            raise ConfigError(
                f"distill.stages={self.stages}: name each of {DISTILL_STAGES} at most once, in that order"
            )
        for stage in self.stages:
            if not any(self.weights.get(k, 0) > 0 for k, s in DISTILL_LOSSES.items() if s == stage):
                raise ConfigError(f"distill.stages has {stage!r} but every one of its loss weights is 0")
        positive("distill.temperature", self.temperature)
        for what, values in (("distill.layers", self.layers), ("distill.layer_map", self.layer_map)):
            if values is not None and (not values or min(values) < 1):
                raise ConfigError(f"{what}={values}: teacher layers are numbered from 1")
        if self.layers is not None and (sorted(set(self.layers)) != list(self.layers)):
            raise ConfigError(f"distill.layers={self.layers} must be increasing, without repeats")
        if self.layers is not None and self.init != "teacher_layers":
            raise ConfigError(f"distill.layers only applies to distill.init=teacher_layers (got init={self.init})")
        if self.transfer.sources and not self.needs_teacher_outputs:
            raise ConfigError(
                f"distill.transfer.sources={self.transfer.sources} with only the hard-label term on: rows without "
                "labels teach nothing to a direct fine-tune (set distill.transfer.sources=[] or a teacher term)"
            )

    def terms_on(self, stage: str) -> List[str]:
        """The loss terms a stage optimises (weight above zero)."""
        return [k for k, s in DISTILL_LOSSES.items() if s == stage and self.weights.get(k, 0) > 0]

    @property
    def needs_teacher_outputs(self) -> bool:
        return any(t != "hard" for stage in self.stages for t in self.terms_on(stage))
