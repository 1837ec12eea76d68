"""The checkpoints a robustness run reads besides the one it scores: the reference it measures loyalty to, and the
run that trained the scored checkpoint (what the report groups its seeds by)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional

from transformers import AutoConfig

from .. import compare_config, kinds, models, schema
from ..config import Config
from ..distill import teacher
from ..errors import BenchError
from ..results import RESULT_FILE
from ..tasks import hub


def load_reference(cfg: Config):
    """(tokenizer, model, description) of robustness.reference (a checkpoint, or the run folder holding one),
    refused unless it was fine-tuned for this task: its run task and label count are read (from the run's result
    and its config) before its weights, so another head is this refusal, not a loading error. Its identity (a hash
    of its config and weight files) goes into the result: loyalty to another reference is another figure, and the
    gate compares it so."""
    key = "robustness.reference"
    ckpt = teacher.checkpoint_dir(cfg.robustness.reference, key)
    config = None  # a multiple-choice head has one output whatever the task's choices: its run task is checked
    if not kinds.of(cfg.task).choices:
        config = hub.call(f"the config of {key}={ckpt}", AutoConfig.from_pretrained, str(ckpt))
    # label names are not compared: a checkpoint of this task fine-tuned elsewhere names its labels its own way
    # ("negative"/"positive", LABEL_0/LABEL_1 against SST-2's "0"/"1"), and the model loads with the task's names
    teacher.check_task(config, ckpt, cfg.task, key, names=False)
    spec = dataclasses.replace(
        cfg.model, name=f"reference:{Path(cfg.robustness.reference).name}", path=str(ckpt), allow_random_head=False
    )
    tok, model, info = models.load(spec, cfg.task, seed=cfg.train.seed, need_head=True)
    described = {"checkpoint": cfg.robustness.reference, "identity": teacher.identity(ckpt), "backend": "eager"}
    return tok, model, {**info, **described}


def source_run(spec) -> Optional[Dict[str, Any]]:
    """What trained the checkpoint scored, from the run's result.json beside it (RUN/checkpoint): its folder, mode,
    seed and distillation settings, so a report can group students by variant and average them over seeds.
    None when the checkpoint is not a harness run's (or its result cannot be read)."""
    if spec.source != "path":
        return None
    folder = Path(spec.path).expanduser().resolve()
    result = folder.parent / RESULT_FILE if folder.name == "checkpoint" else folder / RESULT_FILE
    try:
        r = schema.read(result)
    except BenchError:
        return None
    settings = compare_config.figure_settings(r, bool(compare_config.resolved_schedule(r)))
    return {
        "run": str(result.parent),
        "mode": r.mode,
        "status": r.status,
        "seed": r.seed,
        "distill": r.config.get("distill") if r.mode == "distill" else None,
        # what else decided the checkpoint (the schedule as resolved, the rows, the model): seeds of one
        # experiment are averaged in a report, two experiments that share a seed are told apart
        "settings": {k: v for k, v in settings.items() if k != "train.seed"},
    }
