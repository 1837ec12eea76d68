"""mode=finetune and mode=evaluate on sequence classification/regression tasks: the engine's Trainer, then
per-example predictions, the task's metrics and the trivial predictors' bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from transformers import Trainer

from . import engine, env, kinds, tasks
from .config import Config
from .results import PREDICTIONS_FILE, write_jsonl
from .tasks import metrics, trivial


def evaluate_splits(
    cfg: Config, trainer: Trainer, encoded, raw, device, precision: str
) -> Tuple[Dict[str, Any], Dict[str, Any], List[dict]]:
    """Predict every eval split; returns {split: (predictions, labels)}, timing, and one row per example."""
    task, kind = cfg.task, kinds.of(cfg.task)
    splits, rows, seconds, count = {}, [], 0.0, 0
    for split in cfg.scored_splits:
        t0 = time.perf_counter()
        (logits, *_) = engine.predict_in_order(
            trainer.model,
            encoded[split],
            engine.eval_collator(trainer.processing_class),
            cfg.train.eval_batch_size,
            device,
            precision,
        )
        seconds += time.perf_counter() - t0
        count += len(encoded[split])
        preds = kind.predictions(np.stack(logits))
        labels = np.asarray(raw[split]["label"])
        splits[split] = (preds, labels)
        for i, (idx, p, y) in enumerate(zip(raw[split]["idx"], preds, labels)):
            row = {"split": split, "idx": int(idx), "label": y.item(), "prediction": p.item()}
            if not kind.regression:  # classification: the label names too
                row["label_name"], row["prediction_name"] = task.labels[int(y)], task.labels[int(p)]
            rows.append(row)
    timing = {
        "seconds": round(seconds, 3),
        "examples": count,
        "examples_per_second": round(count / seconds, 2) if seconds else None,
        "precision": precision,
    }
    return splits, timing, rows


def trivial_section(cfg: Config, splits: Dict[str, Any], raw) -> Dict[str, Any]:
    """The trivial predictors' scores on the same examples, and a flag when the model does not beat them."""
    train_labels = np.asarray(raw["train"]["label"]) if "train" in raw else None
    scores = trivial.scores(cfg.task, splits, train_labels)
    split = next(iter(splits))
    verdict = trivial.verdict(cfg.task, split, *splits[split], scores)
    out: Dict[str, Any] = {"trivial": {"predictors": scores, "vs_best": verdict}, "flags": [], "notes": []}
    if not verdict["beats_trivial"]:
        out["flags"].append(trivial.NOT_BETTER)
        out["notes"].append(
            f"{trivial.NOT_BETTER}: primary {verdict['primary_diff']:+.4f} over '{verdict['best']}' "
            f"(95% CI {verdict['low']}, {verdict['high']})"
        )
    return out


def run(cfg: Config, train: bool = True) -> Dict[str, Any]:
    """Fine-tune (when `train`) and evaluate; returns the result's sections."""
    device, precision, hyper, tokenizer, model, model_info = engine.setup(cfg, train)
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed, need_train=train)
    encoded = tasks.encode(raw, tokenizer, hyper.max_seq_length, cfg.train.padding == "max_length")
    described = engine.describe_task(cfg, model_info, raw, encoded, tokenizer, hyper.max_seq_length)
    out: Dict[str, Any] = {
        "model": model_info,
        "task": described["task"],
        "notes": described["notes"],
        "flags": described["flags"],
    }
    trainer = engine.make_trainer(cfg, model, tokenizer, encoded.get("train"), hyper, device, precision)
    if train:
        out["train"] = engine.train_and_record(cfg, trainer, hyper, precision)
    if not env.is_main_process():
        return out  # other DDP ranks stop after training; rank 0 evaluates and writes
    splits, out["eval"], rows = evaluate_splits(cfg, trainer, encoded, raw, device, precision)
    out["metrics"] = metrics.score(cfg.task, splits)
    triv = trivial_section(cfg, splits, raw)
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    if cfg.train.save_predictions:
        write_jsonl(Path(cfg.out_dir) / PREDICTIONS_FILE, rows)
    engine.tidy(cfg)
    return out
