"""The teacher: a fine-tuned checkpoint of the same task, and its outputs on the training rows (labelled and
transfer) cached on disk (bench/distill/cache.py: memory-mapped, fp16, each row only its own length).

The cache is keyed by the teacher's identity (a hash of its config and weight files), the data (a hash of the
tokenised training rows), what is stored (which layers) and the code that computed it (the harness's commit and
uncommitted state, torch and transformers versions), so several students reuse one teacher pass and a retrained
teacher, other data or other code never reads stale outputs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from .. import env, kinds
from ..config import TaskConfig
from ..errors import BenchError
from ..models import head_kwargs, run_task
from ..tasks.hub import unreadable_weights
from . import cache
from .internals import attention_scores

log = logging.getLogger("bench")
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class TeacherError(BenchError):
    """The teacher is missing, unreadable, or fine-tuned for something else."""


def checkpoint_dir(path: str, key: str = "distill.teacher") -> Path:
    """A checkpoint folder (config.json) or a run folder holding checkpoint/; `key`: the setting that named it
    (distill.teacher, robustness.reference), which the errors name."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TeacherError(
            f"{key}={p}: no such folder (give a fine-tuned checkpoint, or the run "
            "folder of a finetune run made with train.save_checkpoint=true)"
        )
    for candidate in (p, p / "checkpoint"):
        if (candidate / "config.json").is_file():
            return candidate
    raise TeacherError(
        f"{key}={p}: no checkpoint there (no config.json in it or in {p / 'checkpoint'}); "
        "fine-tune one with train.save_checkpoint=true"
    )


def check_task(config, ckpt: Path, task: TaskConfig, key: str = "distill.teacher", names: bool = True) -> None:
    """The checkpoint (its model config: read before the weights, so that another head's shape is this refusal,
    not a loading error) must have been fine-tuned for this task: same run task, label count and (`names`) label
    names; `config` None: the run task only (a multiple-choice head has one output whatever the task)."""
    trained_on = run_task(ckpt)
    if trained_on is not None and trained_on != task.name:
        raise TeacherError(f"{key}={ckpt} was fine-tuned on {trained_on}, not on task {task.name}")
    if trained_on is None:  # GLUE tasks share label counts and names ("0", "1"): only the record can tell them apart
        log.warning(
            "%s=%s: no record of the task it was fine-tuned on (no result.json beside it, no finetuning_task in "
            "its config.json); only its %s checked against %s",
            key,
            ckpt,
            "label count and names are" if names else "label count is",
            task.name,
        )
    if config is None:
        return
    want = head_kwargs(task)
    got_labels = config.num_labels
    if got_labels != want["num_labels"] or kinds.of(task).regression != (config.problem_type == "regression"):
        raise TeacherError(
            f"{key}={ckpt} has {got_labels} output(s) "
            f"({config.problem_type or 'unknown problem type'}); "
            f"task {task.name} needs {want['num_labels']} ({task.kind})"
        )
    if names and not kinds.of(task).regression:
        got = [config.id2label[i] for i in range(got_labels)]
        if got != list(task.labels):
            raise TeacherError(f"{key}={ckpt} predicts labels {got}; task {task.name} has {list(task.labels)}")


def load(path: str, task: TaskConfig):
    """(checkpoint folder, tokenizer, model) of a fine-tuned teacher, checked against the task."""
    ckpt = checkpoint_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
        model, info = AutoModelForSequenceClassification.from_pretrained(str(ckpt), output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 (re-raised unless it is a file that is not a checkpoint)
        if not isinstance(exc, (OSError, ValueError)) and not unreadable_weights(exc):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TeacherError(f"distill.teacher={ckpt}: cannot load the checkpoint ({first})") from None
    check_task(model.config, ckpt, task)
    if info.get("missing_keys"):  # loaded with a random head: its outputs would teach noise
        raise TeacherError(
            f"distill.teacher={ckpt} has no trained task head ({', '.join(sorted(info['missing_keys'])[:4])} "
            f"missing): fine-tune it on {task.name} first"
        )
    return ckpt, tokenizer, model.eval()


def identity(ckpt: Path) -> str:
    """A content hash of the config and weight files: a retrained teacher in the same folder is another teacher."""
    h = hashlib.sha256()
    files = sorted(p for p in ckpt.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    for p in files:
        h.update(p.name.encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def data_identity(dataset) -> str:
    """A hash of the tokenised rows, in order: what the cached outputs line up with."""
    h = hashlib.sha256()
    for name in ("input_ids", "token_type_ids"):
        if name in dataset.column_names:
            for row in dataset[name]:
                h.update(np.asarray(row, dtype=np.int32).tobytes() + b"|")
    return h.hexdigest()


def real_lengths(dataset, block: int = 4096) -> np.ndarray:
    """Each row's real tokens (its attention mask's sum): the cache's row sizes, known before the pass."""
    out = []
    for i in range(0, len(dataset), block):
        out += [int(np.sum(m)) for m in dataset[i : i + block]["attention_mask"]]
    return np.asarray(out, dtype=np.int32)


def compute(
    model: PreTrainedModel,
    dataset,
    collator,
    batch_size: int,
    hidden_layers: Sequence[int],
    attention_layers: Sequence[int],
    folder: Path,
    meta: Dict[str, Any],
    device: Optional[torch.device] = None,
) -> None:
    """One teacher pass over `dataset` (shortest rows first), fp32, no gradients, on the run's `device`, each
    batch written straight into the cache entry at `folder`: no more than one batch of outputs is ever in memory."""
    device = device or torch.device("cpu")
    lengths = real_lengths(dataset)
    order = np.argsort(lengths, kind="stable")
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in TOKEN_KEYS if n in dataset.column_names and n in accepted]
    writer = cache.Writer(
        folder,
        lengths,
        model.config.num_labels,
        hidden_layers,
        model.config.hidden_size,
        attention_layers,
        model.config.num_attention_heads,
    )
    model.eval().to(device)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        cols = dataset.select(idx)[:]  # one read per column, not one per row and column
        batch = collator([{k: cols[k][j] for k in names} for j in range(len(idx))])
        batch = {k: v.to(device) for k, v in batch.items() if k in names}
        with torch.inference_mode():
            out = model(**batch, output_hidden_states=True)
            scores = attention_scores(model, out.hidden_states, attention_layers) if attention_layers else []
            states = [out.hidden_states[h] for h in hidden_layers]
            hidden = torch.stack(states, 2).cpu().numpy() if states else None
            att = torch.stack(scores, 1).cpu().numpy() if scores else None  # [B, A, heads, L, L]
        logits = out.logits.float().cpu().numpy()
        for j, row in enumerate(idx):
            m = int(lengths[row])
            writer.put(
                int(row),
                logits[j],
                hidden[j, :m] if hidden is not None else None,
                att[j, :, :, :m, :m] if att is not None else None,
            )
    writer.finish(meta)


def code_version() -> Dict[str, Any]:
    """What computes the outputs besides the teacher: this harness's code and the libraries that run the model."""
    return {**env.code_identity(), "torch": torch.__version__, "transformers": transformers.__version__}


def cache_key(
    teacher_id: str,
    data_id: str,
    hidden_layers: Sequence[int],
    attention_layers: Sequence[int],
    code: Optional[Dict[str, Any]] = None,
) -> str:
    what = {
        "format": cache.FORMAT,
        "teacher": teacher_id,
        "data": data_id,
        "hidden_layers": list(hidden_layers),
        "attention_layers": list(attention_layers),
        "code": code,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def load_or_compute(
    cache_dir: str,
    ckpt: Path,
    model: PreTrainedModel,
    dataset,
    collator,
    batch_size: int,
    hidden_layers: Sequence[int],
    attention_layers: Sequence[int],
    device: Optional[torch.device] = None,
) -> Tuple[cache.TeacherOutputs, Dict[str, Any]]:
    """The teacher's outputs on `dataset`, memory-mapped from the cache; computed into it first when this teacher
    has not seen this data (a damaged or mismatched entry is rebuilt, with a warning)."""
    teacher_id, data_id, code = identity(ckpt), data_identity(dataset), code_version()
    key = cache_key(teacher_id, data_id, hidden_layers, attention_layers, code)
    path = Path(cache_dir) / key
    info = {"key": key, "path": str(path), "teacher_sha256": teacher_id, "data_sha256": data_id, "code": code}
    lengths = real_lengths(dataset)
    reused = path.exists()
    if reused:
        try:
            outputs = cache.open_entry(path, len(dataset), lengths, hidden_layers, attention_layers)
            log.info("teacher outputs: reusing the cache %s", path)
        except cache.CacheError as exc:  # a damaged entry is recomputed, never trusted
            log.warning("teacher cache %s cannot be used (%s): recomputing it", path, exc)
            reused = False
    if not reused:
        log.info(
            "teacher outputs: computing on %d rows into %s (layers: hidden %s, attention %s)",
            len(dataset),
            path,
            list(hidden_layers),
            list(attention_layers),
        )
        tmp = Path(cache_dir) / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        meta = {**info, "checkpoint": str(ckpt), "device": str(device or "cpu")}  # fp32 on either: one entry
        try:
            compute(model, dataset, collator, batch_size, hidden_layers, attention_layers, tmp, meta, device)
            expected = {"lengths": lengths, "hidden_layers": hidden_layers, "attention_layers": attention_layers}
            cache.publish(tmp, path, rows=len(dataset), **expected)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        outputs = cache.open_entry(path, len(dataset), lengths, hidden_layers, attention_layers)
    size = cache.folder_bytes(path)
    return outputs, {
        **info,
        "reused": reused,
        "rows": len(dataset),
        "bytes": size,
        "bytes_per_row": round(size / max(len(dataset), 1), 1),
        "tokens_per_row": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "format": cache.FORMAT,
    }
