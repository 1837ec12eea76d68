"""mode=distill: TinyBERT's task distillation (intermediate layers, then the prediction layer) as a harness run.

The result holds the student's dev metrics (as `metrics`, so reports and the gate treat it like any run) and,
under `train.distill`, the settings and terms used, the teacher's dev metrics on the same rows, how close the
student's predictions are to the teacher's before and after, the direct fine-tune of the same student when
one exists below bench.resume_dir, and parameters/FLOPs/latency of both models measured in this process.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from transformers import SchedulerType

from .. import env, kinds, memory, tasks
from ..config import Config
from ..engine import (
    describe_task,
    eval_collator,
    predict_in_order,
    resolve_hyper,
    tidy,
    train_and_record,
    training_args,
)
from ..errors import ConfigError
from ..finetune import evaluate_splits, trivial_section
from ..results import PREDICTIONS_FILE, WEIGHTS_KEY, write_jsonl
from ..tasks import metrics as task_metrics
from . import efficiency, init, internals, losses, mapping, teacher, transfer
from .record import find_direct, settings, student_key, teacher_seconds
from .trainer import PROJECTION, DistillTrainer, LossPlan, RowCollator

log = logging.getLogger("bench")


def check_pair(cfg: Config, student, teacher_model) -> None:
    """Fail before any training when the two models cannot be distilled as configured."""
    if student.config.vocab_size != teacher_model.config.vocab_size:
        raise ConfigError(
            f"student vocabulary {student.config.vocab_size} != teacher's {teacher_model.config.vocab_size}: "
            "both read the same token ids"
        )
    if cfg.distill.weights.get("attention", 0) > 0 and "intermediate" in cfg.distill.stages:
        internals.check_attention_support(student, "student")
        internals.check_attention_support(teacher_model, "teacher")
        s, t = student.config.num_attention_heads, teacher_model.config.num_attention_heads
        if s != t:
            raise ConfigError(
                f"attention distillation compares heads one to one: student {s} heads, teacher {t}; "
                "set distill.weights.attention=0"
            )


def layer_plan(cfg: Config, student, teacher_model, copied: Optional[List[int]]):
    """(the teacher layer each student layer learns, where that came from): by default the layers it was copied
    from, so copying and training tell one story (mapping.py). None without an intermediate term: nothing learns
    a teacher layer then, and a student deeper than its teacher is no error."""
    if not ("intermediate" in cfg.distill.stages and cfg.distill.terms_on("intermediate")):
        return None, "no intermediate stage"
    return mapping.resolve_map(
        cfg.distill.layer_map, student.config.num_hidden_layers, teacher_model.config.num_hidden_layers, copied
    )


def stage_hyper(cfg: Config, stage: str):
    sc = getattr(cfg.distill, stage)
    picked = {k: v for k, v in (("epochs", sc.epochs), ("learning_rate", sc.learning_rate)) if v is not None}
    if sc.scheduler == "constant":
        picked["warmup"] = 0.0  # a constant rate has no warm-up (task_distill.py's schedule 'none')
    return resolve_hyper(cfg, above=picked, above_name=f"distill.{stage}")


def stage_args(cfg: Config, stage: str, hyper, device, precision):
    """The stage's TrainingArguments: the run's, with the stage's schedule and the cache's row column kept."""
    args = training_args(cfg, hyper, device, precision, Path(cfg.out_dir))
    args.lr_scheduler_type = SchedulerType(getattr(cfg.distill, stage).scheduler)
    args.remove_unused_columns = False  # the `row` column indexes the teacher cache
    return args


def train_stage(
    cfg: Config, stage: str, student, tokenizer, train, device, precision, outputs, layer_map
) -> Dict[str, Any]:
    hyper = stage_hyper(cfg, stage)
    plan = LossPlan(
        weights={k: cfg.distill.weights[k] for k in cfg.distill.terms_on(stage)},
        temperature=cfg.distill.temperature,
        regression=kinds.of(cfg.task).regression,
        layer_map=layer_map,
        padded_to=hyper.max_seq_length if cfg.distill.mse_over == "padded" else None,
    )
    if not set(plan.weights) - {"hard"}:  # transfer rows have nothing to teach a stage of gold labels only
        train = train.filter(lambda labelled: labelled, input_columns="labelled")
    args = stage_args(cfg, stage, hyper, device, precision)
    trainer = DistillTrainer(
        model=student,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=RowCollator(tokenizer, plan.regression, cfg.train.padding == "dynamic"),
        plan=plan,
        teacher_outputs=outputs if set(plan.weights) - {"hard"} else None,
    )
    # the student is saved once, after the last stage, without the projection
    quiet = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, save_checkpoint=False))
    record = train_and_record(quiet, trainer, hyper, precision)
    return {
        "stage": stage,
        "terms": plan.weights,
        "scheduler": getattr(cfg.distill, stage).scheduler,
        **record,
        "loss_curve": trainer.curve,
    }


def fidelity(
    cfg: Config, student, teacher_logits: np.ndarray, encoded, tokenizer, device, precision
) -> Dict[str, float]:
    """How close the student's dev outputs are to the teacher's: what distillation optimises, measured directly."""
    split = cfg.scored_splits[0]
    (logits, *_) = predict_in_order(
        student, encoded[split], eval_collator(tokenizer), cfg.train.eval_batch_size, device, precision
    )
    s, t = torch.tensor(np.stack(logits)).float(), torch.tensor(teacher_logits).float()
    if kinds.of(cfg.task).regression:
        return {"mse_to_teacher": float(losses.regression_mse(s, t))}
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(s, -1), torch.log_softmax(t, -1), log_target=True, reduction="batchmean"
    )
    return {"agreement": float((s.argmax(-1) == t.argmax(-1)).float().mean()), "kl_to_teacher": float(kl)}


def teacher_pass(cfg: Config, ckpt, teacher_model, train, tokenizer, layer_map, device=None):
    """The teacher's cached training-set outputs: logits, plus the layers the intermediate terms read."""
    if not cfg.distill.needs_teacher_outputs:
        return None, None
    on = cfg.distill.terms_on("intermediate") if "intermediate" in cfg.distill.stages else []
    hidden = [0, *layer_map] if {"embedding", "hidden"} & set(on) else []
    attention = list(layer_map) if "attention" in on else []
    pad = RowCollator(tokenizer, kinds.of(cfg.task).regression, cfg.train.padding == "dynamic").pad
    return teacher.load_or_compute(
        cfg.distill.cache_dir, ckpt, teacher_model, train, pad, cfg.train.eval_batch_size, hidden, attention, device
    )


def train_stage_with_projection(
    cfg: Config, stage: str, student, teacher_model, tokenizer, train, device, precision, outputs, layer_map
) -> Dict[str, Any]:
    """One stage; TinyBERT's W_h lives only while a term reads it: trained with the intermediate stage, then
    dropped, so the student that is fine-tuned next, scored, timed and saved is the plain model."""
    if stage == "intermediate" and {"embedding", "hidden"} & set(cfg.distill.terms_on(stage)):
        torch.manual_seed(cfg.train.seed)
        width = losses.projection(student.config.hidden_size, teacher_model.config.hidden_size)
        student.add_module(PROJECTION, width)
    try:
        return train_stage(cfg, stage, student, tokenizer, train, device, precision, outputs, layer_map)
    finally:
        if hasattr(student, PROJECTION):
            delattr(student, PROJECTION)


def score_both(cfg: Config, out: Dict[str, Any], student, teacher_model, tokenizer, encoded, raw, device, precision):
    """Score the student into `out` (eval, metrics, the trivial bar a fine-tune is held to) and the teacher the
    same way; returns the student's prediction rows and the teacher's metrics."""
    # evaluate_splits reads only a trainer's .model and .processing_class: both models are scored the same way
    splits, out["eval"], rows = evaluate_splits(
        cfg, SimpleNamespace(model=student, processing_class=tokenizer), encoded, raw, device, precision
    )
    out["eval"]["precision"] = precision
    out["metrics"] = task_metrics.score(cfg.task, splits)
    triv = trivial_section(cfg, splits, raw)
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    teacher_splits, _, _ = evaluate_splits(
        cfg, SimpleNamespace(model=teacher_model, processing_class=tokenizer), encoded, raw, device, precision
    )
    return rows, task_metrics.score(cfg.task, teacher_splits)


def run(cfg: Config) -> Dict[str, Any]:
    """Distil, score student and teacher on the dev set, measure both; returns the result's sections."""
    windowed = memory.reset_peak_rss()  # this run's peak memory, not that of earlier runs in the same process
    device = env.setup_device(cfg.device)
    precision = env.resolve_precision(cfg.train.precision, device)
    ckpt, tokenizer, teacher_model = teacher.load(cfg.distill.teacher, cfg.task)
    student, model_info = init.build_student(cfg, teacher_model)
    check_pair(cfg, student, teacher_model)
    layer_map, map_source = layer_plan(cfg, student, teacher_model, model_info["copied_teacher_layers"])
    max_len = resolve_hyper(cfg).max_seq_length
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed)
    encoded = tasks.encode(raw, tokenizer, max_len, cfg.train.padding == "max_length")
    held_out = [raw[split] for split in raw if split != "train"]  # dev and a holdout: never transfer rows
    transfer_rows, transfer_info = transfer.build(cfg, raw["train"], tokenizer, max_len, held_out)
    train = transfer.combine(encoded["train"], transfer_rows)  # labelled rows first, then the transfer rows
    described = describe_task(cfg, model_info, raw, encoded, tokenizer, max_len)
    out: Dict[str, Any] = {
        "model": model_info,
        "task": described["task"],
        "notes": described["notes"],
        "flags": described["flags"],
    }
    copied = model_info["copied_teacher_layers"]
    if copied is not None and copied != layer_map and "intermediate" in cfg.distill.stages:
        out["notes"].append(
            f"layers: the student was copied from teacher layers {copied} but learns teacher layers {layer_map} "
            "(distill.layer_map)"
        )
    outputs, cache = teacher_pass(cfg, ckpt, teacher_model, train, tokenizer, layer_map, device)
    teacher_id = teacher.identity(ckpt)
    key = student_key(cfg, teacher_id, model_info["copied_teacher_layers"])
    model_info["teacher"] = {
        "checkpoint": str(ckpt),
        "architecture": teacher_model.config.model_type,
        "num_hidden_layers": teacher_model.config.num_hidden_layers,
        "hidden_size": teacher_model.config.hidden_size,
    }

    split = cfg.scored_splits[0]
    (t_logits, *_) = predict_in_order(
        teacher_model, encoded[split], eval_collator(tokenizer), cfg.train.eval_batch_size, device, precision
    )
    t_logits = np.stack(t_logits)
    before = fidelity(cfg, student, t_logits, encoded, tokenizer, device, precision)
    ctx = (tokenizer, train, device, precision, outputs, layer_map)
    stages = [train_stage_with_projection(cfg, stage, student, teacher_model, *ctx) for stage in cfg.distill.stages]
    rows, teacher_metrics = score_both(cfg, out, student, teacher_model, tokenizer, encoded, raw, device, precision)
    if cfg.data.score != "dev":
        out["notes"].append(
            f"scored on {split}, training rows held out from the student; the teacher may have been fine-tuned on "
            "them, so its figures there are no estimate of its dev figures"
        )
    summary = settings(cfg, layer_map, model_info["copied_teacher_layers"], key, cache, map_source)
    summary.update(
        {
            "teacher_id": teacher_id,
            "teacher_train_seconds": teacher_seconds(ckpt),
            "teacher_metrics": teacher_metrics,
            "fidelity": {
                "before": before,
                "after": fidelity(cfg, student, t_logits, encoded, tokenizer, device, precision),
            },
            "direct_finetune": None if summary["direct"] else find_direct(cfg, key),
            "efficiency": (
                efficiency.compare(student, teacher_model, tokenizer, cfg.timing, device)
                if cfg.distill.measure_latency
                else None
            ),
        }
    )
    summary["transfer"] = transfer_info
    # the most held resident during this run (since its start; the process's lifetime peak where the kernel
    # cannot reset it, said by peak_memory_scope), cache pages it mapped included
    peak = memory.peak_rss_mb(windowed)
    summary["peak_memory_mb"], summary["peak_memory_scope"] = peak["mb"], peak["scope"]
    out["train"] = {
        "seconds": round(sum(s["seconds"] for s in stages), 3),
        "examples": len(encoded["train"]),
        "precision": precision,
        "stages": stages,
        "distill": summary,
    }
    if cfg.train.save_predictions:
        write_jsonl(Path(cfg.out_dir) / PREDICTIONS_FILE, rows)
    if cfg.train.save_checkpoint:
        student.config.finetuning_task = cfg.task.name  # the folder says its task wherever it is copied
        setattr(student.config, WEIGHTS_KEY, model_info["weights"])  # and what the student started from
        student.save_pretrained(str(Path(cfg.out_dir) / "checkpoint"))
        tokenizer.save_pretrained(str(Path(cfg.out_dir) / "checkpoint"))
    tidy(cfg)
    return out
