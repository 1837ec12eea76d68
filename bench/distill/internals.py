"""What the intermediate losses read from a model: its encoder layers and their attention scores."""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ..errors import ConfigError

# model_type -> the encoder's layer list, below the base model
ENCODER_LAYERS = {"bert": "encoder.layer", "mobilebert": "encoder.layer", "distilbert": "transformer.layer"}
# attention scores are recomputed from each layer's query and key projections, which only BERT's layout exposes
# in one place; other families can join by adding their projections here
ATTENTION_SCORES = {"bert"}


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    kind = model.config.model_type
    if kind not in ENCODER_LAYERS:
        raise ConfigError(
            f"distillation does not know where {kind!r} keeps its layers (known: {sorted(ENCODER_LAYERS)})"
        )
    return model.base_model.get_submodule(ENCODER_LAYERS[kind])


def check_attention_support(model: nn.Module, who: str) -> None:
    if model.config.model_type not in ATTENTION_SCORES:
        raise ConfigError(
            f"attention-score distillation needs a BERT-architecture {who} (got {model.config.model_type!r}); "
            "set distill.weights.attention=0 to distil the other terms"
        )


def attention_scores(
    model: nn.Module, hidden_states: Sequence[torch.Tensor], layers: Sequence[int]
) -> List[torch.Tensor]:
    """Scores QK^T/sqrt(d) before the mask and softmax, [B, heads, L, L], for each 1-based layer in `layers`.

    Layer l's input is hidden_states[l-1] (hidden_states[0] is the embedding output), so the scores are those the
    layer computed in the forward pass, whatever attention kernel (eager, SDPA) ran it; and they stay
    differentiable for the student.
    """
    blocks = encoder_layers(model)
    out = []
    for layer in layers:
        attn = blocks[layer - 1].attention.self
        h = hidden_states[layer - 1]
        shape = (*h.shape[:-1], -1, attn.attention_head_size)
        q = attn.query(h).view(shape).transpose(1, 2)
        k = attn.key(h).view(shape).transpose(1, 2)
        out.append(torch.matmul(q, k.transpose(-1, -2)) * attn.scaling)
    return out
