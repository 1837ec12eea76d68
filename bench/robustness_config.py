"""mode=robustness's config schema: the reference, the perturbation set, the adversarial file and the bootstrap.

Imported by bench/config.py (the `robustness` node of Config): at the bottom layer, beside distill_config.py,
it imports nothing of ours but checks and errors, and no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .checks import choice, positive
from .errors import ConfigError


@dataclass
class RobustnessConfig:
    """What mode=robustness scores besides clean dev accuracy (see docs/robustness.md)."""

    # another checkpoint of the same task to be loyal to (a teacher, BERT-base); None: this checkpoint, eager fp32
    reference: Optional[str] = None
    perturbations: str = "inv-v2"  # the named, versioned perturbation set (bench/robustness/perturb.py SETS)
    # task name -> how its release writes contractions (inv-v2's contractions_make writes them so): attached
    # "doesn't" (the default), ptb "does n't" (SST-2), split_apostrophe "doesn 't" (MRPC)
    contraction_style: Dict[str, str] = field(default_factory=lambda: {"sst2": "ptb", "mrpc": "split_apostrophe"})
    only: List[str] = field(default_factory=list)  # a subset of the set's perturbations; empty: all of them
    seed: int = 0  # perturbation seed: with the set's version it fixes every perturbed text
    # AdvGLUE dev.json, or the folder holding it; None: the Hub's adv_glue when data.dir is unset, else not scored
    advglue: Optional[str] = None
    # task name -> the AdvGLUE keys that hold its adversarial dev rows (MNLI: matched and mismatched)
    advglue_keys: Dict[str, List[str]] = field(default_factory=dict)
    # batch 1: a prediction never depends on its neighbours (int8 dynamic quantisation scales activations per
    # batch, and padding changes bf16 sums), so a flip is the perturbation's and not the batching's
    batch_size: int = 1
    bootstrap: int = 2000  # resamples for each figure's 95% percentile interval
    # multiple choice: how many other orders each example's candidates are shown in (the reversal, then seeded
    # shuffles); None: 3 on a multiple-choice task. Classification has no candidates to reorder: refused there
    choice_orders: Optional[int] = None

    def __post_init__(self) -> None:
        for task, style in self.contraction_style.items():
            choice(f"robustness.contraction_style.{task}", style, ["attached", "ptb", "split_apostrophe"])
        positive("robustness.batch_size", self.batch_size)
        positive("robustness.bootstrap", self.bootstrap)
        if self.choice_orders is not None and (isinstance(self.choice_orders, bool) or self.choice_orders < 0):
            raise ConfigError(f"robustness.choice_orders={self.choice_orders}: give a count, 0 or more (0: none)")
