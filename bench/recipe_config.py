"""A model's fine-tuning recipe: its schedule and the per-task schedules chosen on held-out rows.

The ``recipe`` node of ModelConfig (bench/config.py re-exports these names); a bottom-layer module beside
bench/config.py, free of torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from .checks import positive
from .errors import ConfigError


@dataclass
class TaskRecipe:
    """One task's schedule for a model, over the model's recipe: a value left None keeps the model's.
    Checked by ModelConfig, which can name the model and the task."""

    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    epochs: Optional[float] = None
    warmup: Optional[float] = None
    weight_decay: Optional[float] = None
    source: str = ""  # required: how the values were chosen (on which rows)


@dataclass
class RecipeConfig:
    """A model's recommended fine-tuning hyper-parameters, with where they come from; ``tasks`` holds a task's
    own schedule where one was chosen for it (on held-out training rows, never on the dev set that scores it)."""

    learning_rate: float = 2e-5
    batch_size: int = 32
    epochs: float = 3.0
    warmup: float = 0.0  # fraction of the training steps
    weight_decay: float = 0.0
    source: str = ""
    tasks: Dict[str, TaskRecipe] = field(default_factory=dict)


def check_task_recipes(model: str, recipe: RecipeConfig) -> None:
    """Each recipe.tasks entry names a task, says how it was chosen, and holds values train.* would accept."""
    from . import task_names

    known = task_names()
    for task, entry in recipe.tasks.items():
        where = f"model {model!r}: recipe.tasks.{task}"
        if task not in known:
            raise ConfigError(f"{where}: {task!r} is not a task; the tasks are: {', '.join(known)}")
        if not entry.source:
            raise ConfigError(f"{where} needs a source (how its values were chosen, on which rows)")
        for key in ("learning_rate", "batch_size", "epochs"):
            positive(f"{where}.{key}", getattr(entry, key))
        if entry.warmup is not None and not 0 <= entry.warmup < 1:
            raise ConfigError(f"{where}.warmup must be a fraction of the steps in [0, 1), got {entry.warmup!r}")
        if entry.weight_decay is not None and entry.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay must be >= 0, got {entry.weight_decay!r}")
