"""mode=distill: TinyBERT's task distillation (intermediate layers, then the prediction layer) as a harness run.

The result holds the student's dev metrics (as `metrics`, so reports and the gate treat it like any run) and,
under `train.distill`, the settings and terms used, the teacher's dev metrics on the same rows, how close the
student's predictions are to the teacher's before and after, the direct fine-tune of the same student when
one exists below bench.resume_dir, and parameters/FLOPs/latency of both models measured in this process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from ..results import PREDICTIONS_FILE, write_jsonl
from ..tasks import metrics as task_metrics
from . import efficiency, init, internals, losses, mapping, teacher, transfer
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
    from, so copying and training tell one story (mapping.py)."""
    return mapping.resolve_map(
        cfg.distill.layer_map, student.config.num_hidden_layers, teacher_model.config.num_hidden_layers, copied
    )


def stage_hyper(cfg: Config, stage: str):
    base, sc = resolve_hyper(cfg), getattr(cfg.distill, stage)
    picked = {k: v for k, v in (("epochs", sc.epochs), ("learning_rate", sc.learning_rate)) if v is not None}
    if sc.scheduler == "constant":
        picked["warmup"] = 0.0  # a constant rate has no warm-up (task_distill.py's schedule 'none')
    source = f"distill.{stage} ({', '.join(picked)}) on {base.source}" if picked else base.source
    return dataclasses.replace(base, **picked, source=source)


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


def student_key(cfg: Config, teacher_id: str, copied: Optional[List[int]]) -> str:
    """What makes two runs 'the same student': model, init, copied layers (and teacher), task, data, schedule."""
    d = cfg.distill
    what = {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "arch": cfg.model.arch,
        "path": cfg.model.path,
        "init": d.init,
        "layers": copied,
        "teacher": teacher_id if d.init == "teacher_layers" else None,
        "max_train_samples": cfg.data.max_train_samples,
        "max_seq_length": cfg.train.max_seq_length,
        "seed": cfg.train.seed,
    }
    # the row selection and what is scored, where they differ from the defaults (so keys made before these
    # settings existed stay the same): a selection run scored on the holdout is never a dev run's partner
    what.update({k: v for k, v in (("sample_seed", cfg.data.sample_seed), ("holdout", cfg.data.holdout)) if v})
    if cfg.data.score != "dev":
        what["score"] = cfg.data.score
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def find_direct(cfg: Config, key: str) -> Optional[Dict[str, Any]]:
    """The newest direct fine-tune of the same student below bench.resume_dir: a distill run with only the
    hard-label term, or (for init=pretrained|random) a finetune run of the same model, task and data."""
    found = []
    for path in Path(cfg.bench.resume_dir).glob("**/result.json"):
        if "baselines" in path.parts or Path(cfg.out_dir or "") in path.parents:
            continue
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if r.get("status") != "ok":
            continue
        dist = (r.get("train") or {}).get("distill") or {}
        c = r.get("config") or {}
        same_distill = r.get("mode") == "distill" and dist.get("direct") and dist.get("student_key") == key
        same_finetune = (
            r.get("mode") == "finetune"
            and cfg.distill.init != "teacher_layers"
            and (c.get("model") or {}).get("arch") == cfg.model.arch
            and (c.get("model") or {}).get("pretrained") == (cfg.distill.init == "pretrained")
            and (c.get("task") or {}).get("name") == cfg.task.name
            and (c.get("data") or {}).get("max_train_samples") == cfg.data.max_train_samples
        )
        if same_distill or same_finetune:
            found.append((r.get("started_at", ""), str(path.parent), r))
    if not found:
        return None
    started, where, r = max(found)
    return {
        "run": where,
        "mode": r["mode"],
        "started_at": started,
        "metrics": r["metrics"],
        "train_seconds": (r.get("train") or {}).get("seconds"),
    }


def teacher_seconds(ckpt: Path) -> Optional[float]:
    """The teacher's own fine-tuning time, from the harness run beside its checkpoint (None otherwise)."""
    try:
        return (json.loads((Path(ckpt).parent / "result.json").read_text()).get("train") or {}).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None


def teacher_pass(cfg: Config, ckpt, teacher_model, train, tokenizer, layer_map):
    """The teacher's cached training-set outputs: logits, plus the layers the intermediate terms read."""
    if not cfg.distill.needs_teacher_outputs:
        return None, None
    on = cfg.distill.terms_on("intermediate") if "intermediate" in cfg.distill.stages else []
    hidden = [0, *layer_map] if {"embedding", "hidden"} & set(on) else []
    attention = list(layer_map) if "attention" in on else []
    pad = RowCollator(tokenizer, kinds.of(cfg.task).regression, cfg.train.padding == "dynamic").pad
    return teacher.load_or_compute(
        cfg.distill.cache_dir, ckpt, teacher_model, train, pad, cfg.train.eval_batch_size, hidden, attention
    )


def settings(
    cfg: Config, layer_map, copied, key: str, cache: Optional[Dict[str, Any]], map_source: Optional[str] = None
) -> Dict[str, Any]:
    d = cfg.distill
    terms = {stage: d.terms_on(stage) for stage in d.stages}
    return {
        "teacher": d.teacher,
        "init": d.init,
        "copied_layers": copied,  # teacher layers the student was built from (init=teacher_layers), else null
        "layer_map": layer_map,  # teacher layer each student layer learns in the intermediate stage
        "layer_map_source": map_source,
        "stages": list(d.stages),
        "terms_on": terms,
        "weights": dict(d.weights),
        "temperature": d.temperature,
        "mse_over": d.mse_over,
        "schedulers": {stage: getattr(d, stage).scheduler for stage in d.stages},
        "direct": all(t == ["hard"] for t in terms.values()),
        "student_key": key,
        "teacher_cache": cache,
    }


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
    transfer_rows, transfer_info = transfer.build(cfg, raw["train"], tokenizer, max_len)
    train = transfer.combine(encoded["train"], transfer_rows)  # labelled rows first, then the transfer rows
    described = describe_task(cfg, model_info, raw)
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
    outputs, cache = teacher_pass(cfg, ckpt, teacher_model, train, tokenizer, layer_map)
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
    stages = []
    for stage in cfg.distill.stages:
        # TinyBERT's W_h lives only while a term reads it: trained with the intermediate stage, then dropped, so
        # the student that is fine-tuned next, scored, timed and saved is the plain model
        needs_projection = stage == "intermediate" and {"embedding", "hidden"} & set(cfg.distill.terms_on(stage))
        if needs_projection:
            torch.manual_seed(cfg.train.seed)
            width = losses.projection(student.config.hidden_size, teacher_model.config.hidden_size)
            student.add_module(PROJECTION, width)
        stages.append(train_stage(cfg, stage, student, tokenizer, train, device, precision, outputs, layer_map))
        if hasattr(student, PROJECTION):
            delattr(student, PROJECTION)

    # evaluate_splits reads only a trainer's .model and .processing_class: both models are scored the same way
    splits, out["eval"], rows = evaluate_splits(
        cfg, SimpleNamespace(model=student, processing_class=tokenizer), encoded, raw, device, precision
    )
    out["eval"]["precision"] = precision
    out["metrics"] = task_metrics.score(cfg.task, splits)
    triv = trivial_section(cfg, splits, raw)  # a distilled student is held to the same bar as a fine-tuned one
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    teacher_splits, _, _ = evaluate_splits(
        cfg, SimpleNamespace(model=teacher_model, processing_class=tokenizer), encoded, raw, device, precision
    )
    teacher_metrics = task_metrics.score(cfg.task, teacher_splits)
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
        student.save_pretrained(str(Path(cfg.out_dir) / "checkpoint"))
        tokenizer.save_pretrained(str(Path(cfg.out_dir) / "checkpoint"))
    tidy(cfg)
    return out
