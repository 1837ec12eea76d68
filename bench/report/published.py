"""Published figures (../shared/REFERENCE.md), shown beside ours and always labelled as published.

Values are percentages, as the papers print them, each under the name of the metric it is (the metric names of
the task files): a table orders them as the task's cell does, and shows '-' for a metric the source does not
print. GLUE test figures follow the BERT paper's convention, which the MobileBERT and TinyBERT papers keep: F1 for
MRPC and QQP, Spearman correlation for STS-B, accuracy elsewhere.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

_MOBILEBERT_PAPER = "MobileBERT paper (Sun et al. 2020), GLUE test"
_RUN_GLUE = "transformers run_glue.py README, bert-base-cased, dev"

# model, params (M), FLOPs (G), source, {task: value}, GLUE score as published
GLUE: List[Dict[str, Any]] = [
    {
        "model": "BERT-base",
        "params_M": 109,
        "GFLOPs": 22.5,
        "source": _MOBILEBERT_PAPER,
        "split": "test",
        "tasks": {
            "cola": 52.1,
            "sst2": 93.5,
            "mrpc": {"f1": 88.9},
            "stsb": {"spearman": 85.8},
            "qqp": {"f1": 71.2},
            "mnli": {"acc_m": 84.6, "acc_mm": 83.4},
            "qnli": 90.5,
            "rte": 66.4,
        },
        "glue": 78.3,
    },
    {
        "model": "MobileBERT-TINY",
        "params_M": 15.1,
        "GFLOPs": 3.1,
        "source": _MOBILEBERT_PAPER,
        "split": "test",
        "tasks": {
            "cola": 46.7,
            "sst2": 91.7,
            "mrpc": {"f1": 87.9},
            "stsb": {"spearman": 80.1},
            "qqp": {"f1": 68.9},
            "mnli": {"acc_m": 81.5, "acc_mm": 81.6},
            "qnli": 89.5,
            "rte": 65.1,
        },
        "glue": 75.8,
    },
    {
        "model": "MobileBERT",
        "params_M": 25.3,
        "GFLOPs": 5.7,
        "source": _MOBILEBERT_PAPER,
        "split": "test",
        "tasks": {
            "cola": 50.5,
            "sst2": 92.8,
            "mrpc": {"f1": 88.8},
            "stsb": {"spearman": 84.4},
            "qqp": {"f1": 70.2},
            "mnli": {"acc_m": 83.3, "acc_mm": 82.6},
            "qnli": 90.6,
            "rte": 66.2,
        },
        "glue": 77.7,
    },
    {
        "model": "MobileBERT w/o OPT",
        "params_M": 25.3,
        "GFLOPs": 5.7,
        "source": _MOBILEBERT_PAPER,
        "split": "test",
        "tasks": {
            "cola": 51.1,
            "sst2": 92.6,
            "mrpc": {"f1": 88.8},
            "stsb": {"spearman": 84.8},
            "qqp": {"f1": 70.5},
            "mnli": {"acc_m": 84.3, "acc_mm": 83.4},
            "qnli": 91.6,
            "rte": 70.4,
        },
        "glue": 78.5,
    },
    {
        "model": "TinyBERT-4",
        "params_M": 14.5,
        "GFLOPs": 1.2,
        "source": "TinyBERT paper (Jiao et al. 2020), GLUE test",
        "split": "test",
        "tasks": {
            "cola": 44.1,
            "sst2": 92.6,
            "mrpc": {"f1": 86.4},
            "stsb": {"spearman": 80.4},
            "qqp": {"f1": 71.3},
            "mnli": {"acc_m": 82.5, "acc_mm": 81.8},
            "qnli": 87.7,
            "rte": 66.6,
        },
        "glue": 77.0,
        "note": "task-specific distillation and data augmentation; plain fine-tuning scores lower",
    },
    {
        "model": "BERT-base (cased)",
        "params_M": 108,
        "GFLOPs": None,
        "source": _RUN_GLUE,
        "split": "dev",
        "tasks": {
            "cola": 56.53,
            "sst2": 92.32,
            "mrpc": {"f1": 88.85, "acc": 84.07},
            "stsb": {"pearson": 88.64, "spearman": 88.48},
            "qqp": {"acc": 90.71, "f1": 87.49},  # the README prints acc/F1
            "mnli": {"acc_m": 83.91, "acc_mm": 84.10},
            "qnli": 90.66,
            "rte": 65.70,
            "wnli": 56.34,
        },
        "glue": None,
    },
]

# SQuAD dev EM/F1, v1.1 and v2.0
SQUAD: List[Dict[str, Any]] = [
    {"model": "MobileBERT", "source": "MobileBERT paper, dev", "v1": (82.9, 90.0), "v2": (76.2, 79.2)},
    {"model": "MobileBERT-TINY", "source": "MobileBERT paper, dev", "v1": (81.4, 88.6), "v2": (74.4, 77.1)},
    {"model": "BERT-base", "source": "MobileBERT paper, dev", "v1": (80.8, 88.5), "v2": None},
    {"model": "TinyBERT-4", "source": "TinyBERT paper, dev", "v1": (72.7, 82.1), "v2": (68.2, 71.8)},
    {
        "model": "BERT-base (run_qa.py)",
        "source": "transformers run_qa.py README, dev",
        "v1": (81.22, 88.52),
        "v2": None,
    },
]

# Multiple choice, dev accuracy (%). CommonsenseQA is left out: its paper reports BERT on the test split, and no
# BERT-base dev figure is at hand precisely enough to print.
CHOICE: List[Dict[str, Any]] = [
    {"model": "BERT-base", "source": "BERT paper (Devlin et al. 2019), Table 4, dev", "tasks": {"swag": 81.6}},
]


def by_metric(value: Union[float, Dict[str, float]], metrics: List[str]) -> List[Optional[float]]:
    """A published figure in the order of a table cell's metrics: a plain number is the cell's one metric; a
    {metric: value} mapping gives each metric its own, None where the source prints none."""
    if isinstance(value, dict):
        unknown = set(value) - set(metrics)
        if unknown:  # a name that is not the task's metric would silently never be shown
            raise ValueError(f"published figure {value} names {sorted(unknown)}, not among the cell's {metrics}")
        return [value.get(m) for m in metrics]
    if len(metrics) != 1:
        raise ValueError(f"published figure {value} is one number for the {len(metrics)} metrics {metrics}: name it")
    return [float(value)]
