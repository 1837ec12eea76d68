"""Task kinds, defined once: what classification, regression, extractive QA (SQuAD) and multiple choice need.

A task file names its kind (`task.kind`); the model head, the readers, the pipeline that trains and scores it,
how its outputs become predictions and whether per-example predictions can be compared pairwise are looked up
here, once, instead of `if kind == ...` wherever they matter. A new kind is an entry here, the module its
pipeline and readers live in, and its task YAML files.

This module stays light (no torch, transformers or datasets at import): bench/config.py validates task.kind
against it while composing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict

import numpy as np

if TYPE_CHECKING:
    from .config import TaskConfig


def _classification_head(task: "TaskConfig") -> Dict[str, Any]:
    return {
        "num_labels": len(task.labels),
        "id2label": dict(enumerate(task.labels)),
        "label2id": {label: i for i, label in enumerate(task.labels)},
        "problem_type": "single_label_classification",
    }


@dataclass(frozen=True)
class Kind:
    name: str
    head: str  # the transformers Auto class that adds the task head
    head_kwargs: Callable[["TaskConfig"], Dict[str, Any]]  # its config values (labels, problem type)
    readers: str  # the module with load_local(task, data, need_train) and load_hub(task, need_train)
    pipeline: str  # "module:function" that runs mode=finetune/evaluate: run(cfg, train) -> result sections
    min_labels: int = 0  # label values a task file must list
    regression: bool = False  # one output per example, which is the prediction itself
    paired: bool = True  # predictions.jsonl holds one comparable prediction per example (paired bootstrap)
    distillable: bool = True  # mode=distill can train a student on it (one output vector per example)
    table: str = "glue"  # the report table its figures go to: "glue" (one column per task), "squad", "multiple_choice"
    choices: bool = False  # inputs are batch x choices x sequence, one score per choice (multiple choice)
    holdout: bool = True  # its pipeline can score the training rows data.holdout keeps back (data.score=holdout)

    def num_labels(self, task: "TaskConfig") -> int:
        return 1 if self.regression else len(task.labels)

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        """Class index per example, or the regression score itself."""
        logits = np.asarray(logits, dtype=np.float64)
        return logits.reshape(-1) if self.regression else logits.argmax(axis=-1)

    def run(self, cfg, train: bool) -> Dict[str, Any]:
        module, function = self.pipeline.split(":")
        return getattr(importlib.import_module(module), function)(cfg, train=train)

    def load_readers(self):
        """(local reader, Hub reader)."""
        module = importlib.import_module(self.readers)
        return module.load_local, module.load_hub


KINDS: Dict[str, Kind] = {
    "classification": Kind(
        "classification",
        head="AutoModelForSequenceClassification",
        head_kwargs=_classification_head,
        readers="bench.tasks.glue",
        pipeline="bench.finetune:run",
        min_labels=2,
    ),
    "regression": Kind(
        "regression",
        head="AutoModelForSequenceClassification",
        head_kwargs=lambda task: {"num_labels": 1, "problem_type": "regression"},
        readers="bench.tasks.glue",
        pipeline="bench.finetune:run",
        regression=True,
    ),
    # sliding windows and span post-processing: predictions are answer texts, scored by the official script
    "squad": Kind(
        "squad",
        head="AutoModelForQuestionAnswering",
        head_kwargs=lambda task: {},
        readers="bench.tasks.squad",
        pipeline="bench.qa:run",
        paired=False,
        distillable=False,
        holdout=False,  # questions share contexts: a holdout of rows would leak its contexts into training
        table="squad",
    ),
    # one context, k candidates (k may vary by example): k scores per example, the prediction their argmax
    "multiple_choice": Kind(
        "multiple_choice",
        head="AutoModelForMultipleChoice",
        head_kwargs=lambda task: {},
        readers="bench.tasks.multiple_choice",
        pipeline="bench.multiple_choice:run",
        table="multiple_choice",
        choices=True,
    ),
}


def of(task: "TaskConfig") -> Kind:
    """The task's kind (task.kind was checked against KINDS when the config was built)."""
    return KINDS[task.kind]
