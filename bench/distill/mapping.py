"""Layer bookkeeping, 1-based as the papers write it (layer 0 is the embedding output)."""

from __future__ import annotations

from typing import List, Optional

from ..errors import ConfigError


def uniform_map(student_layers: int, teacher_layers: int) -> List[int]:
    """TinyBERT's uniform strategy: student layer m learns teacher layer m*N/M (12->4: 3, 6, 9, 12)."""
    if not 0 < student_layers <= teacher_layers:
        raise ConfigError(f"a {student_layers}-layer student cannot map onto a {teacher_layers}-layer teacher")
    # integer division keeps the last student layer on the teacher's last layer when N/M is not whole (6->4: 1,3,4,6)
    return [m * teacher_layers // student_layers for m in range(1, student_layers + 1)]


def evenly_spaced(student_layers: int, teacher_layers: int) -> List[int]:
    """Teacher layers to copy by default: the first of each block of N/M layers (6->3: 1, 3, 5; 12->4: 1, 4, 7, 10).

    DistilBERT copies every other layer starting at the bottom; this generalises it to any N/M.
    """
    if not 0 < student_layers <= teacher_layers:
        raise ConfigError(f"cannot copy {student_layers} layers out of a {teacher_layers}-layer teacher")
    return [1 + (m * teacher_layers) // student_layers for m in range(student_layers)]


def resolve_map(given: Optional[List[int]], student_layers: int, teacher_layers: int) -> List[int]:
    """The teacher layer each student layer learns: `distill.layer_map` when given (checked), else uniform."""
    if given is None:
        return uniform_map(student_layers, teacher_layers)
    if len(given) != student_layers:
        raise ConfigError(
            f"distill.layer_map={list(given)} names {len(given)} teacher layers for a {student_layers}-layer student"
        )
    if max(given) > teacher_layers:
        raise ConfigError(f"distill.layer_map={list(given)}: the teacher has only {teacher_layers} layers")
    return list(given)


def check_copy(layers: List[int], teacher_layers: int) -> List[int]:
    if max(layers) > teacher_layers:
        raise ConfigError(f"distill.layers={list(layers)}: the teacher has only {teacher_layers} layers")
    return list(layers)
