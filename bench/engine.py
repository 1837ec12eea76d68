"""The training engine every mode that trains shares: finetune (classification, regression), SQuAD and distill.

Hyper-parameters and where they came from, the guarded Trainer and its arguments, train-and-record, and
prediction in dataset order. Speed comes from the Trainer's own levers, not home-made loops: dynamic padding
(DataCollatorWithPadding), length-grouped batches (train_sampling_strategy="group_by_length") and bf16
autocast where the hardware has it.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

from . import env, gpu, models
from .config import Config
from .errors import check_finite
from .guarded import GuardedTrainer
from .results import WEIGHTS_KEY, weights_of


@dataclass
class Hyper:
    """The hyper-parameters a run actually used: the override where given, else the task's entry in the model's
    recipe, else the model's recipe."""

    learning_rate: float
    batch_size: int
    epochs: float
    warmup: float
    weight_decay: float
    max_seq_length: int
    source: str


SCHEDULE = ("learning_rate", "batch_size", "epochs", "warmup", "weight_decay")


def resolve_hyper(cfg: Config, above: Optional[Dict[str, Any]] = None, above_name: str = "") -> Hyper:
    """Each value from the first layer that sets it: ``above`` (a distill stage's own schedule, named
    ``above_name``), train.*, the task's own entry in the model recipe (recipe.tasks.<task>), the model's recipe.
    ``source`` names only the layers a value was taken from."""
    t, r = cfg.train, cfg.model.recipe
    own = r.tasks.get(cfg.task.name)
    layers = [
        (above_name, above or {}),
        ("overrides", {k: getattr(t, k) for k in SCHEDULE}),
        (cfg.task.name, {k: getattr(own, k) for k in SCHEDULE} if own else {}),
        ("model", {k: getattr(r, k) for k in SCHEDULE}),
    ]
    values: Dict[str, Any] = {}
    taken: Dict[str, List[str]] = {name: [] for name, _ in layers}
    for k in SCHEDULE:
        name, layer = next((n, lay) for n, lay in layers if lay.get(k) is not None)
        values[k] = layer[k]
        taken[name].append(k)
    source = r.source or "model recipe"
    if taken[cfg.task.name]:
        source = f"{cfg.task.name} ({', '.join(taken[cfg.task.name])}): {own.source}; otherwise {source}"
    if taken["overrides"]:
        source = "overrides on " + source
    if taken[above_name]:
        source = f"{above_name} ({', '.join(taken[above_name])}) on {source}"
    max_seq_length = t.max_seq_length if t.max_seq_length is not None else cfg.task.max_seq_length
    return Hyper(**values, max_seq_length=max_seq_length, source=source)


def predict_in_order(
    model, dataset, collator, batch_size: int, device: torch.device, precision: str, per_token: bool = False
) -> List[list]:
    """Each model output (logits; or start and end logits) per row, in the dataset's order.

    Rows run shortest-first so batches carry little padding, then go back to their places. This is a plain
    loop on the unwrapped model rather than Trainer.predict: transformers 5 length-groups eval batches under
    group_by_length and shards them under DDP, in orders that cannot be mapped back to the examples.
    """
    order = np.argsort(np.asarray(dataset["length"]), kind="stable")
    names = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in dataset.column_names]
    names = [n for n in names if n in inspect.signature(model.forward).parameters]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    outputs: List[list] = []
    model.eval().to(device)
    for i in range(0, len(order), batch_size):
        rows = dataset.select(order[i : i + batch_size])
        feats = [{n: rows[n][j] for n in names} for j in range(len(rows))]
        batch = {k: v.to(device) for k, v in collator(feats).items() if k in names}
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(**batch)
        heads = (
            [out.logits] if hasattr(out, "logits") and out.logits is not None else [out.start_logits, out.end_logits]
        )
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        if not outputs:
            outputs = [[None] * len(order) for _ in heads]
        for h, tensor in enumerate(heads):
            values = tensor.float().cpu().numpy()
            for j, row in enumerate(order[i : i + batch_size]):
                # per-token outputs (QA) keep their row's own length: padding positions are dropped
                outputs[h][row] = values[j][: lengths[j]] if per_token else values[j]
                check_finite(outputs[h][row], int(row), precision)
    return outputs


def eval_collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)


@dataclass(repr=False)  # TrainingArguments' own repr, which hides hub tokens
class RunDeviceArguments(TrainingArguments):
    """TrainingArguments that train on the run's device (bench.gpu.hold), not on transformers' cuda:0 with
    DataParallel over every visible GPU."""

    bench_device: Optional[str] = None  # the run's device, e.g. "cuda:1"; None: transformers' own choice

    @cached_property
    def _setup_devices(self) -> torch.device:
        chosen = TrainingArguments._setup_devices.func(self)
        return gpu.hold(self, chosen, torch.device(self.bench_device)) if self.bench_device else chosen


def training_args(cfg: Config, hyper: Hyper, device: torch.device, precision: str, out_dir: Path) -> TrainingArguments:
    return RunDeviceArguments(
        bench_device=str(device),
        output_dir=str(out_dir / "checkpoint"),
        per_device_train_batch_size=hyper.batch_size,
        per_device_eval_batch_size=cfg.train.eval_batch_size,
        learning_rate=hyper.learning_rate,
        num_train_epochs=hyper.epochs,
        max_steps=cfg.train.max_steps,
        warmup_steps=hyper.warmup,  # transformers 5: a float below 1 is a fraction of the steps
        weight_decay=hyper.weight_decay,
        seed=cfg.train.seed,
        data_seed=cfg.train.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device.type == "cpu",
        train_sampling_strategy="group_by_length" if cfg.train.group_by_length else "random",
        length_column_name="length",
        save_strategy="no",  # the final model is saved once, on request (train.save_checkpoint)
        eval_strategy="no",
        logging_steps=cfg.train.logging_steps,
        logging_nan_inf_filter=False,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
        torch_compile=cfg.train.compile,  # the model compiled once (inductor), shapes marked dynamic as they vary
    )


def make_trainer(
    cfg: Config,
    model,
    tokenizer,
    train_dataset,
    hyper: Hyper,
    device,
    precision: str,
    collator=None,
    trainer_class=None,
) -> Trainer:
    """The guarded Trainer; a task kind whose batches are not token sequences passes its own collator (and
    Trainer subclass, for its loss)."""
    if collator is None and cfg.train.padding == "dynamic":
        # multiples of 8 feed tensor cores on GPU, and on CPU they bound the number of distinct shapes that
        # oneDNN compiles and caches kernels for (SQuAD windows take every length up to 384)
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    elif collator is None:
        collator = default_data_collator
    return (trainer_class or GuardedTrainer)(
        model=model,
        args=training_args(cfg, hyper, device, precision, Path(cfg.out_dir)),
        data_collator=collator,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )


def ranks_on_this_machine(world_size: int) -> int:
    """The processes of this run that /proc/stat sees: torchrun's LOCAL_WORLD_SIZE, else the whole world."""
    try:
        return int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError:
        return world_size


def train_and_record(cfg: Config, trainer: Trainer, hyper: Hyper, precision: str) -> Dict[str, Any]:
    """Train, save the model when asked, and return the result's `train` section.

    `load` is what else ran on the machine meanwhile (bench/timing/load.py): a training time taken beside other
    work says so (`disturbed`), wherever the seconds are shown; one rank of a DDP run is not judged (its siblings
    read as other load: load.judged_for)."""
    from .timing import load

    if cfg.train.compile:
        import torch._inductor.config as inductor

        inductor.compile_threads = 1  # compile in this process: a worker pool would read as other load
    with load.watch() as machine_load:
        out = trainer.train()
    if cfg.train.save_checkpoint:
        trainer.model.config.finetuning_task = cfg.task.name  # the folder says its task wherever it is copied
        # and what its training started from: a fine-tune of random weights stays 'weights: random' when scored
        setattr(trainer.model.config, WEIGHTS_KEY, weights_of(cfg.model.source, cfg.model.path))
        trainer.save_model(str(Path(cfg.out_dir) / "checkpoint"))  # weights, config and tokenizer
    return {
        "seconds": round(out.metrics["train_runtime"], 3),
        "examples": len(trainer.train_dataset),
        "epochs": out.metrics.get("epoch", hyper.epochs),
        "steps": out.global_step,
        "skipped_steps": list(getattr(trainer, "skipped_steps", [])),  # the fp16 scaler's (guarded.GuardedTrainer)
        "examples_per_second": round(out.metrics["train_samples_per_second"], 2),
        "final_loss": out.training_loss if math.isfinite(out.training_loss) else None,
        "precision": precision,
        "padding": cfg.train.padding,
        "group_by_length": cfg.train.group_by_length,
        "world_size": trainer.args.world_size,  # > 1 under torchrun (DDP)
        "compiled": bool(cfg.train.compile),
        "threads": torch.get_num_threads(),
        "load": load.judged_for(machine_load, ranks_on_this_machine(trainer.args.world_size)) or None,
        "hyper": asdict(hyper),
    }


class Setup(NamedTuple):
    """What every fine-tuning mode starts from (a NamedTuple: read it by name; it still unpacks in this order)."""

    device: torch.device
    precision: str
    hyper: Any
    tokenizer: Any
    model: Any
    model_info: Dict[str, Any]


def setup(cfg: Config, train: bool) -> Setup:
    """Device, precision, hyper-parameters and the model: the start every fine-tuning mode shares.

    Scoring without training (`train=False`) refuses a checkpoint whose task head is missing."""
    device = env.setup_device(cfg.device)
    precision = env.resolve_precision(cfg.train.precision, device)
    hyper = resolve_hyper(cfg)
    tokenizer, model, info = models.load(cfg.model, cfg.task, seed=cfg.train.seed, need_head=not train)
    if info["head"] == "new":
        info["head"] = "trained"  # this run trains it
    return Setup(device, precision, hyper, tokenizer, model, info)


def tidy(cfg: Config) -> None:
    ckpt = Path(cfg.out_dir) / "checkpoint"
    if ckpt.is_dir() and not any(ckpt.iterdir()):
        ckpt.rmdir()  # the Trainer makes its output folder even when nothing is saved


def truncated_rows(raw_split, enc_split, tokenizer, max_length: int, chunk: int = 1000) -> int:
    """How many rows of a split the encoding cut at `max_length` (a multiple-choice row: any of its pairs). A row
    can have been cut only if its real tokens (its attention mask's sum: padding to max_length does not count)
    reach the limit; only those are tokenised again, whole, a chunk at a time."""
    masks = enc_split["attention_mask"] if "attention_mask" in enc_split.column_names else enc_split["input_ids"]
    at = []
    for i, m in enumerate(masks):
        pairs = m if m and isinstance(m[0], list) else [m]
        real = max((sum(p) if "attention_mask" in enc_split.column_names else len(p) for p in pairs), default=0)
        if real >= max_length:
            at.append(i)
    count = 0
    for start in range(0, len(at), chunk):
        rows = raw_split.select(at[start : start + chunk])
        kw = {"return_attention_mask": False, "return_token_type_ids": False, "verbose": False}
        if "choices" in rows.column_names:
            for c, ch in zip(rows["context"], rows["choices"]):
                count += any(len(t) > max_length for t in tokenizer([c] * len(ch), list(ch), **kw)["input_ids"])
        else:
            texts = [list(rows[c]) for c in ("sentence1", "sentence2") if c in rows.column_names]
            count += sum(len(t) > max_length for t in tokenizer(*texts, **kw)["input_ids"])
    return count


def describe_task(
    cfg: Config, model_info: Dict[str, Any], raw, encoded=None, tokenizer=None, max_length: Optional[int] = None
) -> Dict[str, Any]:
    """The `task` section, with the notes and flags a reader must not miss. With the encoded splits: how many rows
    each split's encoding cut at max_length (`truncated`), and a note when any was."""
    out: Dict[str, Any] = {
        "task": {
            "name": cfg.task.name,
            "source": "local" if cfg.data.dir else "hub",
            "data_dir": cfg.data.dir,
            "splits": {split: len(ds) for split, ds in raw.items()},
            "eval_splits": cfg.scored_splits,
        },
        "notes": [],
        "flags": [],
    }
    if encoded is not None and tokenizer is not None and max_length:
        cut = {s: truncated_rows(raw[s], encoded[s], tokenizer, max_length) for s in encoded if s in raw}
        out["task"]["truncated"] = cut
        for split, n in cut.items():
            if n:
                out["notes"].append(
                    f"{n} of {len(raw[split])} {split} rows were cut at max_seq_length={max_length} (the model saw "
                    "their first tokens only)"
                )
    for split, total in getattr(raw, "eval_rows_before_cap", {}).items():  # a figure of a slice, said where shown
        out["flags"].append(f"{split}: first {len(raw[split])} of {total} rows (data.max_eval_samples)")
    twins = getattr(raw, "holdout_twins_dropped", 0)
    if twins:
        out["task"]["holdout_twins_dropped"] = twins
        out["notes"].append(
            f"{twins} training row(s) left out: their text is a held-out row's (data.holdout scores examples the "
            "model did not train on)"
        )
    if model_info["weights"] == "random" and model_info.get("source") == "path":
        out["notes"].append(
            "weights: random: this checkpoint was trained from randomly initialised weights (no pretraining): its "
            "metrics say nothing about the pretrained model"
        )
    elif model_info["weights"] == "random":
        out["notes"].append("weights: random (exact architecture, untrained): metrics say nothing about the model")
    if model_info.get("head") == "random":
        out["flags"].append("head: random")
        out["notes"].append(model_info.get("head_note") or HEAD_RANDOM_NOTE)
    return out


HEAD_RANDOM_NOTE = "head: random (the checkpoint has no trained task head; model.allow_random_head=true)"
