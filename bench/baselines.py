"""Gate baselines per machine class: results/baselines/<class>/, one folder per class the project has run on.

Speed is only comparable on the same class of machine (an AVX2-only VM and an AVX512-BF16 one differ by up to
5x on the same code), so `make gate` compares latency only against its own class's baseline. With no
baseline for this class yet, it says so and still compares what carries across classes: the gate
fine-tune's accuracy (fp32 on every class), within CROSS_CLASS_TOLERANCE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List

MACHINE_FILE = "MACHINE.json"

# The gate fine-tune trains in fp32 on every class, so two classes differ only in their kernels' summation
# order. Measured on the AVX2 class as a stand-in for another class's kernels (the other class was not
# available to the session that set this): the full MRPC fine-tune with 1 thread and with 2 threads (different
# GEMM blockings) gave the same 408 predictions, acc 0.7819 / F1 0.8529 both. A class with AVX-512 kernels
# may still flip a few predictions; 0.02 allows about 8 of 408 flipped, far below the ~10 points that
# separate this fine-tune (acc 0.782) from one collapsed to the majority class (0.684).
CROSS_CLASS_TOLERANCE = 0.02


@dataclass
class Plan:
    """What the gate compares against: this class's baseline, or other classes' for accuracy only."""

    machine_class: str
    same_class: Path | None
    other_classes: List[Path]

    def describe(self) -> str:
        if self.same_class:
            return f"baseline for this machine class {self.machine_class}: {self.same_class}"
        others = ", ".join(p.name for p in self.other_classes) or "none"
        return (
            f"no baseline for this machine class {self.machine_class} (classes with one: {others}). Latency "
            f"is not compared across machine classes; accuracy is compared against each other class within "
            f"{CROSS_CLASS_TOLERANCE} (`make baseline` on this machine, committed, adds this class)."
        )


def classes(root: Path) -> List[Path]:
    """Baseline folders below `root`: those that hold a MACHINE.json (a half-made `.new-*` folder does not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MACHINE_FILE).is_file()
    )


def plan(root: Path, machine_class: str) -> Plan:
    found = classes(root)
    same = next((p for p in found if p.name == machine_class), None)
    return Plan(machine_class, same, [p for p in found if p.name != machine_class])


def write_machine_file(folder: Path, machine_class: str, fingerprint: dict, git: dict) -> None:
    text = json.dumps({"machine_class": machine_class, "machine": fingerprint, "git": git}, indent=2) + "\n"
    (Path(folder) / MACHINE_FILE).write_text(text)
