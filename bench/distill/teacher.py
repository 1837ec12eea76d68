"""The teacher: a fine-tuned checkpoint of the same task, and its training-set outputs cached on disk.

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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from .. import env, kinds
from ..config import TaskConfig
from ..errors import BenchError
from ..models import head_kwargs
from .internals import attention_scores

log = logging.getLogger("bench")
CACHE_FORMAT = 1
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class TeacherError(BenchError):
    """The teacher is missing, unreadable, or fine-tuned for something else."""


def checkpoint_dir(path: str) -> Path:
    """A checkpoint folder (config.json) or a run folder holding checkpoint/."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TeacherError(
            f"distill.teacher={p}: no such folder (give a fine-tuned checkpoint, or the run "
            "folder of a finetune run made with train.save_checkpoint=true)"
        )
    for candidate in (p, p / "checkpoint"):
        if (candidate / "config.json").is_file():
            return candidate
    raise TeacherError(
        f"distill.teacher={p}: no checkpoint there (no config.json in it or in {p / 'checkpoint'}); "
        "fine-tune one with train.save_checkpoint=true"
    )


def _run_task(ckpt: Path) -> Optional[str]:
    """The task a harness run trained the checkpoint on, from the run's result.json beside it."""
    result = ckpt.parent / "result.json"
    try:
        return json.loads(result.read_text())["task"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_task(model: PreTrainedModel, ckpt: Path, task: TaskConfig) -> None:
    """The teacher must have been fine-tuned for this task: same run task, label count and label names."""
    trained_on = _run_task(ckpt)
    if trained_on is not None and trained_on != task.name:
        raise TeacherError(f"distill.teacher={ckpt} was fine-tuned on {trained_on}, not on task {task.name}")
    want = head_kwargs(task)
    got_labels = model.config.num_labels
    if got_labels != want["num_labels"] or kinds.of(task).regression != (model.config.problem_type == "regression"):
        raise TeacherError(
            f"distill.teacher={ckpt} has {got_labels} output(s) "
            f"({model.config.problem_type or 'unknown problem type'}); "
            f"task {task.name} needs {want['num_labels']} ({task.kind})"
        )
    if not kinds.of(task).regression:
        names = [model.config.id2label[i] for i in range(got_labels)]
        if names != list(task.labels):
            raise TeacherError(
                f"distill.teacher={ckpt} predicts labels {names}; task {task.name} has {list(task.labels)}"
            )


def load(path: str, task: TaskConfig):
    """(checkpoint folder, tokenizer, model) of a fine-tuned teacher, checked against the task."""
    ckpt = checkpoint_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
        model = AutoModelForSequenceClassification.from_pretrained(str(ckpt))
    except (OSError, ValueError) as exc:
        raise TeacherError(f"distill.teacher={ckpt}: cannot load the checkpoint ({str(exc).splitlines()[0]})") from None
    check_task(model, ckpt, task)
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


@dataclass
class TeacherOutputs:
    """Per-example teacher outputs, stored flat and trimmed to each example's real tokens."""

    logits: torch.Tensor  # [N, C]
    lengths: torch.Tensor  # [N]
    hidden: Optional[torch.Tensor]  # [K, total tokens, H]: hidden_states at `hidden_layers`
    attention: Optional[torch.Tensor]  # flat: per example [A, heads, L, L]
    hidden_layers: List[int]
    attention_layers: List[int]
    heads: int

    def __post_init__(self) -> None:
        lengths = self.lengths.long()
        self._tok = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        per = len(self.attention_layers) * self.heads * lengths * lengths
        self._att = torch.cat([torch.zeros(1, dtype=torch.long), per.cumsum(0)])

    def batch(self, rows: torch.Tensor, length: int) -> Dict[str, Any]:
        """Logits [B, C], hidden states (K x [B, length, H]) and scores (A x [B, heads, length, length]),
        zero-padded."""
        rows = rows.long().cpu()
        out: Dict[str, Any] = {"logits": self.logits[rows]}
        if self.hidden is not None:
            k, _, width = self.hidden.shape
            hidden = torch.zeros(k, len(rows), length, width)
            for b, r in enumerate(rows.tolist()):
                a, e = self._tok[r].item(), self._tok[r + 1].item()
                hidden[:, b, : e - a] = self.hidden[:, a:e].float()
            out["hidden"] = list(hidden.unbind(0))
        if self.attention is not None:
            n_att = len(self.attention_layers)
            att = torch.zeros(n_att, len(rows), self.heads, length, length)
            for b, r in enumerate(rows.tolist()):
                n = int(self.lengths[r])
                block = self.attention[self._att[r] : self._att[r + 1]].float().view(n_att, self.heads, n, n)
                att[:, b, :, :n, :n] = block
            out["attention"] = list(att.unbind(0))
        return out


def compute(
    model: PreTrainedModel,
    dataset,
    collator,
    batch_size: int,
    hidden_layers: Sequence[int],
    attention_layers: Sequence[int],
) -> TeacherOutputs:
    """One teacher pass over `dataset` (shortest rows first, then back in order), fp32, no gradients."""
    order = np.argsort(np.asarray(dataset["length"]), kind="stable")
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in TOKEN_KEYS if n in dataset.column_names and n in accepted]
    n = len(order)
    logits, hidden, attention = [None] * n, [None] * n, [None] * n
    lengths_t = torch.zeros(n, dtype=torch.long)
    model.eval()
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        cols = dataset.select(idx)[:]  # one read per column, not one per row and column
        batch = collator([{k: cols[k][j] for k in names} for j in range(len(idx))])
        batch = {k: v for k, v in batch.items() if k in names}
        with torch.inference_mode():
            out = model(**batch, output_hidden_states=True)
            scores = attention_scores(model, out.hidden_states, attention_layers) if attention_layers else []
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for j, row in enumerate(idx):
            m = lengths_t[row] = lengths[j]
            logits[row] = out.logits[j].float()
            # fp16 halves the cache; scores and hidden states sit well inside its range
            hidden[row] = (
                torch.stack([out.hidden_states[h][j, :m] for h in hidden_layers]).half() if hidden_layers else None
            )
            attention[row] = torch.stack([s[j, :, :m, :m] for s in scores]).half().reshape(-1) if scores else None
    return TeacherOutputs(
        logits=torch.stack(logits),
        lengths=lengths_t,
        hidden=torch.cat(hidden, dim=1) if hidden_layers else None,
        attention=torch.cat(attention) if attention_layers else None,
        hidden_layers=list(hidden_layers),
        attention_layers=list(attention_layers),
        heads=model.config.num_attention_heads,
    )


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
        "format": CACHE_FORMAT,
        "teacher": teacher_id,
        "data": data_id,
        "hidden_layers": list(hidden_layers),
        "attention_layers": list(attention_layers),
        "code": code,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def _save(path: Path, outputs: TeacherOutputs, meta: Dict[str, Any]) -> None:
    """safetensors, written to a temporary file and renamed: a killed run leaves no half-written cache."""
    tensors = {"logits": outputs.logits.contiguous(), "lengths": outputs.lengths.contiguous()}
    if outputs.hidden is not None:
        tensors["hidden"] = outputs.hidden.contiguous()
    if outputs.attention is not None:
        tensors["attention"] = outputs.attention.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"bench": json.dumps(meta)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> Tuple[TeacherOutputs, Dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["bench"])
    t = load_file(str(path))
    return TeacherOutputs(
        logits=t["logits"],
        lengths=t["lengths"],
        hidden=t.get("hidden"),
        attention=t.get("attention"),
        hidden_layers=meta["hidden_layers"],
        attention_layers=meta["attention_layers"],
        heads=meta["heads"],
    ), meta


def load_or_compute(
    cache_dir: str,
    ckpt: Path,
    model: PreTrainedModel,
    dataset,
    collator,
    batch_size: int,
    hidden_layers: Sequence[int],
    attention_layers: Sequence[int],
) -> Tuple[TeacherOutputs, Dict[str, Any]]:
    """The teacher's outputs on `dataset`, from the cache when this teacher already saw this data."""
    teacher_id, data_id, code = identity(ckpt), data_identity(dataset), code_version()
    key = cache_key(teacher_id, data_id, hidden_layers, attention_layers, code)
    path = Path(cache_dir) / f"{key}.safetensors"
    info = {"key": key, "path": str(path), "teacher_sha256": teacher_id, "data_sha256": data_id, "code": code}
    if path.is_file():
        try:
            outputs, _ = _read(path)
            if len(outputs.logits) == len(dataset):
                log.info("teacher outputs: reusing the cache %s", path)
                return outputs, {**info, "reused": True, "bytes": path.stat().st_size}
        except Exception as exc:  # a damaged cache file is recomputed, not trusted
            log.warning("teacher cache %s unreadable (%s): recomputing", path, exc)
    log.info(
        "teacher outputs: computing on %d rows (layers: hidden %s, attention %s)",
        len(dataset),
        list(hidden_layers),
        list(attention_layers),
    )
    outputs = compute(model, dataset, collator, batch_size, hidden_layers, attention_layers)
    meta = {
        **info,
        "checkpoint": str(ckpt),
        "rows": len(dataset),
        "hidden_layers": list(hidden_layers),
        "attention_layers": list(attention_layers),
        "heads": outputs.heads,
    }
    _save(path, outputs, meta)
    return outputs, {**info, "reused": False, "bytes": path.stat().st_size}
