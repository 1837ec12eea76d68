"""Layer bookkeeping, 1-based as the papers write it (layer 0 is the embedding output).

One layer story: a student built from teacher layers (distill.init=teacher_layers) is trained toward the same
teacher layers it was built from, so an exact copy of a layer starts the intermediate stage at zero loss on it.
The default copy is TinyBERT's uniform map (6->3: 2, 4, 6), so the student's last layer is the teacher's last,
the one the teacher's classifier reads.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..errors import ConfigError


def uniform_map(student_layers: int, teacher_layers: int) -> List[int]:
    """TinyBERT's uniform strategy: student layer m learns teacher layer m*N/M (12->4: 3, 6, 9, 12)."""
    if not 0 < student_layers <= teacher_layers:
        raise ConfigError(f"a {student_layers}-layer student cannot map onto a {teacher_layers}-layer teacher")
    # integer division keeps the last student layer on the teacher's last layer when N/M is not whole (6->4: 1,3,4,6)
    return [m * teacher_layers // student_layers for m in range(1, student_layers + 1)]


def resolve_map(
    given: Optional[List[int]], student_layers: int, teacher_layers: int, copied: Optional[List[int]] = None
) -> Tuple[List[int], str]:
    """The teacher layer each student layer learns, and where that choice came from.

    `distill.layer_map` when given (checked); else the teacher layers the student was copied from; else (a
    student with its own or random weights) the uniform map."""
    if given is not None:
        if len(given) != student_layers:
            raise ConfigError(
                f"distill.layer_map={list(given)} names {len(given)} teacher layers "
                f"for a {student_layers}-layer student"
            )
        if max(given) > teacher_layers:
            raise ConfigError(f"distill.layer_map={list(given)}: the teacher has only {teacher_layers} layers")
        return list(given), "distill.layer_map"
    if copied is not None:
        return list(copied), "copied layers"
    return uniform_map(student_layers, teacher_layers), "uniform"


def check_copy(layers: List[int], teacher_layers: int) -> List[int]:
    if max(layers) > teacher_layers:
        raise ConfigError(f"distill.layers={list(layers)}: the teacher has only {teacher_layers} layers")
    return list(layers)
