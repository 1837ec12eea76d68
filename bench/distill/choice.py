"""mode=distill on multiple-choice tasks: prediction-layer distillation, one vector of k scores per example.

The student learns the teacher's softmax over each example's k choices (soft term, temperature T) and, when
weighted, the gold choice (hard term); a mixed-k batch masks its filler choices in both models' scores. The
intermediate terms (embeddings, hidden states, attention) would compare batch x choices x seq activations
and are not offered for this kind yet: `distill=prediction` is the setting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForMultipleChoice, AutoTokenizer

from .. import env, tasks
from ..config import Config
from ..engine import describe_task, tidy, train_and_record
from ..errors import ConfigError
from ..models import run_task
from ..multiple_choice import ChoiceTrainer, collator, evaluate_splits, predict_scores, trivial_section
from ..results import PREDICTIONS_FILE, WEIGHTS_KEY, write_jsonl
from ..tasks import metrics as task_metrics
from ..tasks.hub import unreadable_weights
from ..tasks.multiple_choice import encode, masked
from . import init, losses
from .record import find_direct, settings, student_key, teacher_seconds
from .run import stage_args, stage_hyper
from .teacher import TeacherError, checkpoint_dir, identity

INTERMEDIATE = ("embedding", "hidden", "attention")


def load_teacher(path: str, task_name: str):
    """(checkpoint, tokenizer, model) of a teacher fine-tuned on this multiple-choice task, its head trained."""
    ckpt = checkpoint_dir(path)
    trained_on = run_task(ckpt)
    if trained_on is not None and trained_on != task_name:
        raise TeacherError(f"distill.teacher={ckpt} was fine-tuned on {trained_on}, not on task {task_name}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
        model, info = AutoModelForMultipleChoice.from_pretrained(str(ckpt), output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 (re-raised unless it is a file that is not a checkpoint)
        if not isinstance(exc, (OSError, ValueError)) and not unreadable_weights(exc):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TeacherError(f"distill.teacher={ckpt}: cannot load the checkpoint ({first})") from None
    if info.get("missing_keys"):
        raise TeacherError(
            f"distill.teacher={ckpt} has no trained multiple-choice head "
            f"({', '.join(sorted(info['missing_keys'])[:4])} missing): "
            f"fine-tune it on {task_name} first"
        )
    return ckpt, tokenizer, model.eval()


def padded(scores: List[np.ndarray]) -> torch.Tensor:
    """k scores per example -> [N, max k], the missing choices at the lowest value (no probability)."""
    width = max(len(s) for s in scores)
    out = torch.full((len(scores), width), torch.finfo(torch.float32).min)
    for i, s in enumerate(scores):
        out[i, : len(s)] = torch.as_tensor(s)
    return out


class RowChoiceCollator:
    """The multiple-choice batch plus each example's row in the training set (the teacher scores' index)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, features):
        batch = self.inner(
            [{k: f[k] for k in ("input_ids", "attention_mask", "token_type_ids", "labels") if k in f} for f in features]
        )
        batch["row"] = torch.tensor([f["row"] for f in features], dtype=torch.long)
        return batch


class ChoiceDistillTrainer(ChoiceTrainer):
    def __init__(self, *args, teacher_scores: torch.Tensor, weights: Dict[str, float], temperature: float, **kw):
        super().__init__(*args, **kw)
        self.teacher_scores, self.weights, self.temperature = teacher_scores, weights, temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        rows, mask, labels = inputs.pop("row"), inputs.pop("choice_mask"), inputs.pop("labels")
        logits = masked(model(**inputs).logits.float(), mask)
        loss = logits.new_zeros(())
        if self.weights.get("soft"):
            teacher = self.teacher_scores[rows.cpu()][:, : logits.shape[1]].to(logits.device)
            loss = loss + self.weights["soft"] * losses.soft_cross_entropy(logits, teacher, self.temperature)
        if self.weights.get("hard"):
            loss = loss + self.weights["hard"] * F.cross_entropy(logits, labels.to(logits.device))
        return (loss, None) if return_outputs else loss


def _fidelity(student: List[np.ndarray], teacher: List[np.ndarray]) -> Dict[str, float]:
    agree = float(np.mean([np.argmax(s) == np.argmax(t) for s, t in zip(student, teacher)]))
    s, t = padded(student), padded(teacher)
    kl = F.kl_div(torch.log_softmax(s, -1), torch.log_softmax(t, -1), log_target=True, reduction="none")
    kl = kl.masked_fill(t <= torch.finfo(torch.float32).min, 0.0).sum(-1).mean()
    return {"agreement": agree, "kl_to_teacher": float(kl)}


def run(cfg: Config) -> Dict[str, Any]:
    """Distil a multiple-choice student from a fine-tuned teacher; returns the result's sections."""
    d = cfg.distill
    if d.transfer.sources:
        raise ConfigError(
            f"task {cfg.task.name} is multiple choice: its distillation learns from the labelled rows only "
            f"(distill.transfer.sources={d.transfer.sources} is for classification and regression tasks)"
        )
    on = {t for stage in d.stages for t in d.terms_on(stage)}
    if "intermediate" in d.stages or on & set(INTERMEDIATE):
        raise ConfigError(
            f"task {cfg.task.name} is multiple choice: only prediction-layer distillation is offered "
            "(distill=prediction, or distill.stages=[prediction] with soft/hard weights)"
        )
    device = env.setup_device(cfg.device)
    precision = env.resolve_precision(cfg.train.precision, device)
    ckpt, tokenizer, teacher_model = load_teacher(d.teacher, cfg.task.name)
    student, model_info = init.build_student(cfg, teacher_model)
    hyper = stage_hyper(cfg, "prediction")
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed)
    encoded = encode(raw, tokenizer, hyper.max_seq_length, cfg.train.padding == "max_length")
    train = encoded["train"].add_column("row", list(range(len(encoded["train"]))))
    out: Dict[str, Any] = describe_task(cfg, model_info, raw, encoded, tokenizer, hyper.max_seq_length)
    out["model"] = model_info
    collate = collator(cfg, tokenizer, hyper.max_seq_length)
    bs = cfg.train.eval_batch_size
    teacher_train = padded(predict_scores(teacher_model, encoded["train"], collate, bs, device, precision))
    split = cfg.scored_splits[0]
    teacher_dev = predict_scores(teacher_model, encoded[split], collate, bs, device, precision)
    before = _fidelity(predict_scores(student, encoded[split], collate, bs, device, precision), teacher_dev)
    args = stage_args(cfg, "prediction", hyper, device, precision)  # keeps the `row` column: the scores' index
    weights = {k: d.weights[k] for k in d.terms_on("prediction")}
    trainer = ChoiceDistillTrainer(
        model=student,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=RowChoiceCollator(collate),
        teacher_scores=teacher_train,
        weights=weights,
        temperature=d.temperature,
    )
    quiet = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, save_checkpoint=False))
    record = train_and_record(quiet, trainer, hyper, precision)
    splits, out["eval"], rows, scores = evaluate_splits(
        cfg, student, tokenizer, encoded, raw, device, precision, hyper.max_seq_length
    )
    out["metrics"] = task_metrics.score(cfg.task, splits)
    triv = trivial_section(cfg, splits, raw)
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    teacher_splits, *_ = evaluate_splits(
        cfg, teacher_model, tokenizer, encoded, raw, device, precision, hyper.max_seq_length
    )
    teacher_id = identity(ckpt)
    key = student_key(cfg, teacher_id, model_info["copied_teacher_layers"])
    summary = settings(cfg, [], model_info["copied_teacher_layers"], key, None)
    summary.update(
        {
            "teacher_id": teacher_id,
            "teacher_train_seconds": teacher_seconds(ckpt),
            "teacher_metrics": task_metrics.score(cfg.task, teacher_splits),
            "fidelity": {"before": before, "after": _fidelity(scores[split], teacher_dev)},
            "direct_finetune": None if summary["direct"] else find_direct(cfg, key),
            "efficiency": None,
        }
    )
    out["train"] = {
        "seconds": record["seconds"],
        "examples": len(train),
        "precision": precision,
        "stages": [{"stage": "prediction", "terms": weights, "scheduler": d.prediction.scheduler, **record}],
        "distill": summary,
    }
    model_info["teacher"] = {
        "checkpoint": str(ckpt),
        "architecture": teacher_model.config.model_type,
        "num_hidden_layers": teacher_model.config.num_hidden_layers,
        "hidden_size": teacher_model.config.hidden_size,
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
