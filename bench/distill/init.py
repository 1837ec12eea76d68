"""The student: teacher layers copied into a shallower copy of the teacher, its own pre-trained weights, or random."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Tuple

import torch
from transformers import PreTrainedModel

from .. import models
from ..config import Config
from ..errors import ConfigError
from . import mapping
from .internals import encoder_layers

# values that decide the shape of the embeddings and of one layer: they must match for weights to be copied
LAYER_SHAPE = ("model_type", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")


def check_copyable(arch: Dict[str, Any], teacher_config) -> None:
    """`teacher_layers` copies weights tensor for tensor; a different width cannot take them."""
    bad = [
        f"{k} {arch.get(k)} vs teacher {getattr(teacher_config, k, None)}"
        for k in LAYER_SHAPE
        if k in arch and arch.get(k) != getattr(teacher_config, k, None)
    ]
    if bad:
        raise ConfigError(
            "distill.init=teacher_layers copies the teacher's weights, so the student must have the teacher's "
            f"layer shape; mismatched: {', '.join(bad)}. Use distill.init=pretrained or random for this student"
        )


def copy_layers(teacher: PreTrainedModel, student: PreTrainedModel, layers: List[int]) -> None:
    """Embeddings, the chosen encoder layers (1-based) and the pooler, as DistilBERT initialises its student.

    The classifier stays freshly initialised, like every student head in TinyBERT, so prediction-layer
    distillation and direct fine-tuning start from the same point.
    """
    t, s = teacher.base_model, student.base_model
    s.embeddings.load_state_dict(t.embeddings.state_dict())
    t_layers, s_layers = encoder_layers(teacher), encoder_layers(student)
    if len(s_layers) != len(layers):
        raise ConfigError(f"{len(layers)} teacher layers to copy into a {len(s_layers)}-layer student")
    for i, layer in enumerate(layers):
        s_layers[i].load_state_dict(t_layers[layer - 1].state_dict())
    if getattr(t, "pooler", None) is not None and getattr(s, "pooler", None) is not None:
        s.pooler.load_state_dict(t.pooler.state_dict())


def from_teacher_layers(cfg: Config, teacher: PreTrainedModel) -> Tuple[PreTrainedModel, List[int]]:
    check_copyable(cfg.model.arch, teacher.config)
    n_teacher = teacher.config.num_hidden_layers
    if cfg.distill.layers is not None:
        layers = mapping.check_copy(cfg.distill.layers, n_teacher)
    else:
        # the layers the intermediate stage trains it toward (mapping.py: one layer story)
        layers = mapping.uniform_map(int(cfg.model.arch.get("num_hidden_layers", n_teacher)), n_teacher)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    torch.manual_seed(cfg.train.seed)  # the fresh classifier follows the run's seed
    student = type(teacher)(config)
    copy_layers(teacher, student, layers)
    return student, layers


def build_student(cfg: Config, teacher: PreTrainedModel) -> Tuple[PreTrainedModel, Dict[str, Any]]:
    """The student model and the result's description of how it was made."""
    init = cfg.distill.init
    layers = None
    if init == "teacher_layers":
        student, layers = from_teacher_layers(cfg, teacher)
    elif init == "pretrained":
        if cfg.model.source == "random":
            raise ConfigError(
                f"distill.init=pretrained, but model {cfg.model.name!r} has no weights here "
                "(model.pretrained=false or no public checkpoint); use distill.init=random"
            )
        student, _ = models.load_model(cfg.model, cfg.task, seed=cfg.train.seed)  # its head: new, trained here
    else:
        student = models.build_random(cfg.model, cfg.task, seed=cfg.train.seed)
    # without the prediction stage nothing trains the classifier: it is scored as initialised (TinyBERT always
    # follows the intermediate stage with the prediction stage), and the result says so wherever it is shown
    head = "trained" if "prediction" in cfg.distill.stages else "random"
    info = models.describe(cfg.model, student, head=head)
    if head == "random":  # the result's flag and note (engine.describe_task) say why
        info["head_note"] = (
            "head: random: distill.stages has no prediction stage, so the classifier was never trained; the dev "
            "figures score the encoder through an untrained head (chance-level by construction), not the variant"
        )
    info.update(
        {
            "weights": "random" if init == "random" else "pretrained",
            "init": init,
            "copied_teacher_layers": layers,
            "num_hidden_layers": student.config.num_hidden_layers,
            "hidden_size": student.config.hidden_size,
        }
    )
    return student, info
