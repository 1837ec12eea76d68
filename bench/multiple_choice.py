"""mode=finetune and mode=evaluate on multiple-choice tasks: the engine's Trainer on batch x choices x sequence,
k scores per example, accuracy, and the trivial predictors' bar (bench/tasks/mc_trivial.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from . import engine, env, tasks
from .config import Config
from .errors import check_finite
from .results import PREDICTIONS_FILE, write_jsonl
from .tasks import mc_trivial, metrics
from .tasks.multiple_choice import ChoiceCollator, encode, masked


class ChoiceTrainer(engine.GuardedTrainer):
    """Cross-entropy over each example's real choices: the filler choices of a mixed-k batch (ARC's 3- and
    5-choice questions beside 4-choice ones) are masked out of the softmax."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        mask, labels = inputs.pop("choice_mask", None), inputs.pop("labels")
        outputs = model(**inputs)
        logits = masked(outputs.logits.float(), mask)
        loss = F.cross_entropy(logits, labels.to(logits.device))
        return (loss, outputs) if return_outputs else loss


def collator(cfg: Config, tokenizer, max_length: int) -> ChoiceCollator:
    return ChoiceCollator(tokenizer, max_length=max_length if cfg.train.padding == "max_length" else None)


def predict_scores(
    model, dataset, collate: ChoiceCollator, batch_size: int, device: torch.device, precision: str
) -> List[np.ndarray]:
    """Each example's k scores (logits, filler choices dropped), in the dataset's order; shortest first."""
    order = np.argsort(np.asarray(dataset["length"]), kind="stable")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in dataset.column_names]
    out: List[np.ndarray] = [None] * len(order)  # type: ignore[list-item]
    model.eval().to(device)
    for i in range(0, len(order), batch_size):
        rows = dataset.select(order[i : i + batch_size])
        batch = collate([{n: rows[n][j] for n in names} for j in range(len(rows))])
        mask = batch.pop("choice_mask")
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
        for j, row in enumerate(order[i : i + batch_size]):
            out[row] = logits[j][mask[j].numpy()]
            check_finite(out[row], int(row), precision)
    return out


def evaluate_splits(
    cfg: Config, model, tokenizer, encoded, raw, device, precision: str, max_length: int
) -> Tuple[Dict[str, Any], Dict[str, Any], List[dict], Dict[str, List[np.ndarray]]]:
    """{split: (predictions, labels)}, timing, one predictions.jsonl row per example, and the scores."""
    splits, rows, all_scores, seconds, count = {}, [], {}, 0.0, 0
    for split in cfg.scored_splits:
        t0 = time.perf_counter()
        scores = predict_scores(
            model, encoded[split], collator(cfg, tokenizer, max_length), cfg.train.eval_batch_size, device, precision
        )
        seconds += time.perf_counter() - t0
        count += len(scores)
        preds = np.array([int(np.argmax(s)) for s in scores])
        labels = np.asarray(raw[split]["label"])
        splits[split], all_scores[split] = (preds, labels), scores
        ids = list(raw[split]["id"]) if "id" in raw[split].column_names else [""] * len(scores)
        for idx, source, s, p, y in zip(raw[split]["idx"], ids, scores, preds, labels):
            rows.append(
                {
                    "split": split,
                    "idx": int(idx),
                    **({"id": source} if source else {}),  # the release's own id (ARC, OpenBookQA, COPA)
                    "label": int(y),
                    "prediction": int(p),
                    "k": len(s),
                    "scores": [float(v) for v in s],
                }
            )
    timing = {
        "seconds": round(seconds, 3),
        "examples": count,
        "examples_per_second": round(count / seconds, 2) if seconds else None,
        "precision": precision,
    }
    return splits, timing, rows, all_scores


def trivial_section(cfg: Config, splits, raw) -> Dict[str, Any]:
    split = next(iter(splits))
    preds, labels = splits[split]
    train_labels = np.asarray(raw["train"]["label"]) if "train" in raw else None
    predictors = mc_trivial.per_example(raw[split]["choices"], labels, train_labels)
    section = mc_trivial.section(preds == labels, predictors)
    per_example = {name: t["scores"] for name, t in predictors.items()}
    out: Dict[str, Any] = {"trivial": section, "flags": [], "notes": [], "split": split, "per_example": per_example}
    v = section["vs_best"]
    if not v["beats_trivial"]:
        out["flags"].append(mc_trivial.NOT_BETTER)
        out["notes"].append(
            f"{mc_trivial.NOT_BETTER}: accuracy {v['primary_diff']:+.4f} over '{v['best']}' "
            f"(95% CI {v['low']}, {v['high']})"
        )
    return out


def run(cfg: Config, train: bool = True) -> Dict[str, Any]:
    """Fine-tune (when `train`) and evaluate; returns the result's sections."""
    device, precision, hyper, tokenizer, model, model_info = engine.setup(cfg, train)
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed, need_train=train)
    encoded = encode(raw, tokenizer, hyper.max_seq_length, cfg.train.padding == "max_length")
    described = engine.describe_task(cfg, model_info, raw, encoded, tokenizer, hyper.max_seq_length)
    described["task"]["choices"] = {s: sorted({len(c) for c in ds["choices"]}) for s, ds in raw.items()}
    out: Dict[str, Any] = {
        "model": model_info,
        "task": described["task"],
        "notes": described["notes"],
        "flags": described["flags"],
    }
    trainer = engine.make_trainer(
        cfg,
        model,
        tokenizer,
        encoded.get("train"),
        hyper,
        device,
        precision,
        collator=collator(cfg, tokenizer, hyper.max_seq_length),
        trainer_class=ChoiceTrainer,
    )
    if train:  # its `load`: what else ran on the machine while training
        out["train"] = engine.train_and_record(cfg, trainer, hyper, precision)
    if not env.is_main_process():
        return out
    splits, out["eval"], rows, _ = evaluate_splits(
        cfg, trainer.model, tokenizer, encoded, raw, device, precision, hyper.max_seq_length
    )
    out["metrics"] = metrics.score(cfg.task, splits)
    triv = trivial_section(cfg, splits, raw)
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    if cfg.train.save_predictions:  # each trivial predictor's score beside the model's on the examples it scored,
        # so that the report can judge the model against them over its seeds (bench.report.vs_trivial)
        scored = [row for row in rows if row["split"] == triv["split"]]
        for i, row in enumerate(scored):
            row["trivial"] = {name: float(s[i]) for name, s in triv["per_example"].items()}
        write_jsonl(Path(cfg.out_dir) / PREDICTIONS_FILE, rows)
    engine.tidy(cfg)
    return out
