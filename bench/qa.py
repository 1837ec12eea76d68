"""mode=finetune / mode=evaluate for extractive QA (SQuAD v1.1 and v2.0), through transformers.Trainer.

Training and prediction are the shared engine's (engine.py); what differs is the genuinely different part:
sliding windows over long contexts and span post-processing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict

from . import engine, env, tasks
from .config import Config
from .errors import ConfigError
from .results import write_atomic
from .tasks import squad, squad_metrics, squad_trivial, trivial


def split_flag(split: str, n: int, articles: int, train: bool) -> str:
    """The flag on a figure of data.split_by_article's held-out articles (numbered from 1, as a reader counts)."""
    scored = f"articles {n + 1}-{articles}" if articles > n + 1 else f"article {articles}"
    rest = f"trained on articles 1-{n}" if train else f"articles 1-{n} left out"
    return (
        f"{split}: {scored} of the {articles} in the dev file, {rest} (data.split_by_article): not comparable with "
        "published dev figures"
    )


def trivial_section(examples, predictions: Dict[str, str], golds, version_2: bool) -> Dict[str, Any]:
    """The trivial predictors' scores on the same questions, and a flag when the model does not beat them."""
    predictors = squad_trivial.predictions(examples["id"], examples["question"], examples["context"], version_2)
    section = squad_trivial.section(predictions, golds, predictors, version_2)
    out: Dict[str, Any] = {"trivial": section, "flags": [], "notes": []}
    v = section["vs_best"]
    if not v["beats_trivial"]:
        out["flags"].append(trivial.NOT_BETTER)
        out["notes"].append(
            f"{trivial.NOT_BETTER}: F1 {v['primary_diff']:+.4f} over '{v['best']}' (95% CI {v['low']}, {v['high']})"
        )
    return out


def run(cfg: Config, train: bool = True) -> Dict[str, Any]:
    """Fine-tune (when `train`) and evaluate extractive QA; returns the result's sections."""
    device, precision, hyper, tokenizer, model, model_info = engine.setup(cfg, train)
    task = cfg.task
    raw = tasks.load(task, cfg.data, seed=cfg.train.seed, need_train=train)
    if not train:  # split_by_article gives both; popped, not rebuilt, so the cap's record of what it cut stays
        raw.pop("train", None)
    if task.doc_stride >= hyper.max_seq_length - 64:  # the question and special tokens share the window
        raise ConfigError(
            f"task.doc_stride={task.doc_stride} leaves no room in windows of "
            f"{hyper.max_seq_length} tokens: keep it below max_seq_length - 64"
        )
    eval_split = next(iter(task.local.eval_files))
    pad = cfg.train.padding == "max_length"
    kwargs = {"tokenizer": tokenizer, "task": task, "max_length": hyper.max_seq_length, "pad": pad}
    features = {}
    if train:
        features["train"] = raw["train"].map(
            squad.train_features,
            batched=True,
            fn_kwargs=kwargs,
            remove_columns=raw["train"].column_names,
            desc="train windows",
        )
    features[eval_split] = raw[eval_split].map(
        squad.eval_features,
        batched=True,
        fn_kwargs=kwargs,
        remove_columns=raw[eval_split].column_names,
        desc="eval windows",
    )
    out = engine.describe_task(cfg, model_info, raw)
    out["model"] = model_info
    out["task"]["windows"] = {split: len(f) for split, f in features.items()}
    if cfg.data.split_by_article:
        out["task"]["split_by_article"] = cfg.data.split_by_article
        first = f"the first {cfg.data.split_by_article} articles of the evaluation file"
        out["notes"].append(
            (f"trained on {first} and evaluated" if train else f"evaluated without {first},")
            + " on the remaining ones (no SQuAD training file offline): not comparable with published dev-set figures"
        )
        out["flags"].append(split_flag(eval_split, cfg.data.split_by_article, raw.articles_in_file, train))
    trainer = engine.make_trainer(cfg, model, tokenizer, features.get("train"), hyper, device, precision)
    if train:
        out["train"] = engine.train_and_record(cfg, trainer, hyper, precision)
    if not env.is_main_process():
        return out  # other DDP ranks stop after training; rank 0 evaluates and writes
    t0 = time.perf_counter()
    start, end = engine.predict_in_order(
        trainer.model,
        features[eval_split],
        engine.eval_collator(tokenizer),
        cfg.train.eval_batch_size,
        device,
        precision,
        per_token=True,
    )
    predictions, null_margin = squad.postprocess(raw[eval_split], features[eval_split], start, end, task)
    seconds = time.perf_counter() - t0
    golds = dict(zip(raw[eval_split]["id"], (a["text"] for a in raw[eval_split]["answers"])))
    out["metrics"] = squad_metrics.evaluate(predictions, golds, task.version_2, null_margin if task.version_2 else None)
    out["metrics"]["primary"] = out["metrics"]["f1"]
    triv = trivial_section(raw[eval_split], predictions, golds, task.version_2)
    out["trivial"] = triv["trivial"]
    out["notes"] += triv["notes"]
    out["flags"] += triv["flags"]
    n = len(raw[eval_split])
    out["eval"] = {
        "seconds": round(seconds, 3),
        "examples": n,
        "windows": len(features[eval_split]),
        "examples_per_second": round(n / seconds, 2),
        "precision": precision,
        "null_threshold": task.null_threshold if task.version_2 else None,
    }
    folder = Path(cfg.out_dir)
    if cfg.train.save_predictions:
        # the official format: {question id: answer text}; v2.0 also the null-odds file its script reads
        write_atomic(folder / "predictions.json", json.dumps(predictions, ensure_ascii=False, indent=0) + "\n")
        if task.version_2:
            write_atomic(
                folder / "null_odds.json",
                json.dumps({q: (m if m != float("inf") else 1e9) for q, m in null_margin.items()}) + "\n",
            )
    engine.tidy(cfg)
    return out
