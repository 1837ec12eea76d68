"""transformers.Trainer with the distillation loss: the harness's guarded Trainer, only compute_loss differs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from transformers import DataCollatorWithPadding, default_data_collator

from ..engine import GuardedTrainer
from . import losses
from .cache import TeacherOutputs
from .internals import attention_scores
from .teacher import TOKEN_KEYS

PROJECTION = "distill_projection"  # attribute of the student while training, so the optimiser trains it too


class RowCollator:
    """Pads as the fine-tune path does and keeps each row's position in the training set (the cache index) and
    whether it has a label (transfer rows have none: `labelled` False, their `labels` a filler never used)."""

    def __init__(self, tokenizer, regression: bool, dynamic: bool = True):
        # multiples of 8, as in engine.make_trainer: few distinct shapes for oneDNN to compile
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8) if dynamic else default_data_collator
        self.label_dtype = torch.float32 if regression else torch.long

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        batch = dict(self.pad([{k: f[k] for k in TOKEN_KEYS if k in f} for f in features]))
        batch["row"] = torch.tensor([f["row"] for f in features], dtype=torch.long)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=self.label_dtype)
        batch["labelled"] = torch.tensor([bool(f.get("labelled", True)) for f in features], dtype=torch.bool)
        return batch


@dataclass
class LossPlan:
    """What one stage optimises: the terms that are on, with their weights, and how layers line up."""

    weights: Dict[str, float]  # only terms with a weight above zero
    temperature: float
    regression: bool
    layer_map: List[int]  # the teacher layer each student layer learns (1-based)
    padded_to: Optional[int] = None  # distill.mse_over=padded: the intermediate MSEs' rows count this many positions

    @property
    def intermediate(self) -> bool:
        return any(k in self.weights for k in ("embedding", "hidden", "attention"))


def compute_terms(
    plan: LossPlan,
    model,
    inputs: Dict[str, torch.Tensor],
    rows: torch.Tensor,
    labels: torch.Tensor,
    teacher: Optional[TeacherOutputs],
    labelled: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """Each enabled loss term on one batch (unweighted). The teacher's terms cover every row; the hard term only
    the rows with `labelled` True (all when None), and is absent from a batch of transfer rows alone."""
    accepted = inspect.signature(model.forward).parameters  # DistilBERT takes no token_type_ids
    out = model(**{k: v for k, v in inputs.items() if k in accepted}, output_hidden_states=plan.intermediate)
    mask = inputs["attention_mask"]
    t: Dict[str, Any] = {}
    if teacher is not None:
        t = teacher.batch(rows, inputs["input_ids"].shape[1])
        t = {k: [x.to(mask.device) for x in v] if isinstance(v, list) else v.to(mask.device) for k, v in t.items()}
    w, terms = plan.weights, {}
    if "soft" in w:
        terms["soft"] = (
            losses.regression_mse(out.logits, t["logits"])
            if plan.regression
            else losses.soft_cross_entropy(out.logits, t["logits"], plan.temperature)
        )
    if "hard" in w:
        if labelled is None or bool(labelled.all()):
            terms["hard"] = losses.hard_loss(out.logits, labels, plan.regression)
        elif bool(labelled.any()):  # a transfer row's label is a filler: it is never indexed
            keep = labelled.to(out.logits.device)
            terms["hard"] = losses.hard_loss(out.logits[keep], labels[keep], plan.regression)
    proj = getattr(model, PROJECTION, None)
    if "embedding" in w:  # the cache's hidden states: index 0 is the embedding output, m is student layer m's target
        terms["embedding"] = losses.hidden_mse(proj(out.hidden_states[0]), t["hidden"][0], mask, plan.padded_to)
    # student layer m (hidden_states[m], scores of layer m) meets the cache's m-th stored layer, which teacher_pass
    # stored in layer_map order: the pairing is the cache's order
    if "hidden" in w:
        terms["hidden"] = losses.layers_mse(
            out.hidden_states[1:], t["hidden"][1:], mask, projection=proj, padded_to=plan.padded_to
        )
    if "attention" in w:
        scores = attention_scores(model, out.hidden_states, range(1, len(plan.layer_map) + 1))
        terms["attention"] = losses.layers_mse(
            scores, t["attention"], mask, term=losses.attention_mse, padded_to=plan.padded_to
        )
    return terms


class DistillTrainer(GuardedTrainer):
    """Loss = sum of weighted terms; each term's running mean is logged and kept as a loss curve."""

    def __init__(self, *args, plan: LossPlan, teacher_outputs: Optional[TeacherOutputs], **kwargs):
        super().__init__(*args, **kwargs)
        self.plan, self.teacher_outputs = plan, teacher_outputs
        self.curve: List[Dict[str, float]] = []
        self._sums: Dict[str, float] = {}
        self._counts: Dict[str, int] = {}  # per term: a batch of transfer rows alone has no hard term

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        rows, labels, labelled = inputs.pop("row"), inputs.pop("labels"), inputs.pop("labelled", None)
        terms = compute_terms(self.plan, model, inputs, rows, labels, self.teacher_outputs, labelled)
        loss = sum(self.plan.weights[k] * v for k, v in terms.items())
        for k, v in terms.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v.detach())
            self._counts[k] = self._counts.get(k, 0) + 1
        return (loss, None) if return_outputs else loss

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if self._counts and "loss" in logs:
            logs.update({f"loss_{k}": round(v / self._counts[k], 6) for k, v in self._sums.items()})
            kept = {k: v for k, v in logs.items() if k.startswith("loss") or k == "learning_rate"}
            self.curve.append({"step": self.state.global_step, **kept})  # the rate shows the stage's schedule
            self._sums, self._counts = {}, {}
        super().log(logs, start_time)
