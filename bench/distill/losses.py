"""The distillation loss terms, on torch.nn.functional; masks exclude padding so cached and live tensors agree.

Shapes: logits [B, C]; hidden states [B, L, H]; attention scores [B, heads, L, L] (before softmax);
`mask` is the batch's attention mask [B, L] (1 = real token).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """-softmax(z_T/T) . log_softmax(z_S/T), averaged over the batch, times T^2.

    The T^2 factor (Hinton et al.) keeps the gradient's size independent of T, so the weight means the same
    at any temperature and beside the hard term. task_distill.py has no T^2 factor and takes .mean() over
    classes as well as rows: at T=1 its loss is this one divided by the number of classes.
    """
    t = temperature
    target = F.softmax(teacher_logits.float() / t, dim=-1)
    return F.cross_entropy(student_logits.float() / t, target) * (t * t)


def regression_mse(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """Prediction-layer distillation for regression (STS-B): MSE on the teacher's score.

    task_distill.py does not distil here: its prediction stage regresses on the gold scores (our hard term;
    distill.weights.soft=0, hard=1 runs that)."""
    return F.mse_loss(student_scores.float().reshape(-1), teacher_scores.float().reshape(-1))


def hard_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """The ordinary task loss against the gold labels."""
    if regression:
        return F.mse_loss(logits.float().reshape(-1), labels.float().reshape(-1))
    return F.cross_entropy(logits.float(), labels.long())


def hidden_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, padded_to: Optional[int] = None
) -> torch.Tensor:
    """MSE over real tokens (padding positions have no teacher value in the cache).

    `student` is already projected to the teacher's width. The error is summed over real tokens and divided by
    their count, or, with `padded_to` (distill.mse_over=padded), by B x padded_to positions: task_distill.py's
    MSELoss over rows padded to max_seq_length, the padded positions counted but contributing no error here.
    """
    err = F.mse_loss(student.float(), teacher.float(), reduction="none").mean(dim=-1)  # [B, L]
    m = mask.to(err.dtype)
    count = m.sum() if padded_to is None else m.new_tensor(float(m.shape[0] * padded_to))
    return (err * m).sum() / count.clamp_min(1)


def attention_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, padded_to: Optional[int] = None
) -> torch.Tensor:
    """MSE of attention scores over (query, key) pairs of real tokens, every head.

    TinyBERT zeroes the scores of padded keys (those at or below -100 once the mask is added) in both models and
    averages over all B x heads x L x L entries at L = max_seq_length; its padded query rows keep their real
    scores. Here the error is summed over real pairs and divided by their count (x heads), or with `padded_to`
    by B x heads x padded_to^2, TinyBERT's denominator.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"attention scores of different shapes: student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)} (distillation of attention needs equal head counts)"
        )
    err = F.mse_loss(student.float(), teacher.float(), reduction="none")  # [B, h, L, L]
    m = mask.to(err.dtype)
    pairs = (m[:, :, None] * m[:, None, :])[:, None]  # [B, 1, L, L]
    count = pairs.sum() if padded_to is None else m.new_tensor(float(m.shape[0] * padded_to * padded_to))
    return (err * pairs).sum() / (count * err.shape[1]).clamp_min(1)


def layers_mse(
    students: Sequence[torch.Tensor],
    teachers: Sequence[torch.Tensor],
    mask: torch.Tensor,
    term=hidden_mse,
    projection: nn.Module | None = None,
    padded_to: Optional[int] = None,
) -> torch.Tensor:
    """A term summed over mapped layers (TinyBERT sums, it does not average), projecting the student if asked."""
    total = torch.zeros((), device=mask.device)
    for s, t in zip(students, teachers, strict=True):
        total = total + term(projection(s) if projection is not None else s, t, mask, padded_to)
    return total


def projection(student_width: int, teacher_width: int) -> nn.Module:
    """TinyBERT's learned W_h (one map shared by the embedding and every layer); identity when widths match."""
    return nn.Identity() if student_width == teacher_width else nn.Linear(student_width, teacher_width)
