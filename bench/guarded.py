"""The Trainer every fine-tuning mode runs: it stops at the first non-finite loss, and it counts the optimizer
steps that mixed precision skipped.

With fp16, a step whose gradients overflow is skipped by the loss scaler (the weights do not move and the scale
is halved): the loss stays finite, so nothing else would tell. A few skips at the start are the scaler finding
its scale; many mean a run that trained on fewer steps than its record says. `skipped_steps` is what
engine.train_and_record writes beside the step count.
"""

from __future__ import annotations

import torch
from transformers import Trainer, TrainerCallback

from .errors import NonFiniteLossError


class _CountSkipped(TrainerCallback):
    """After each optimizer step: did the accelerator's scaler skip it (gradients inf or NaN)?"""

    def __init__(self, trainer: "GuardedTrainer"):
        self.trainer = trainer

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.trainer.accelerator.optimizer_step_was_skipped:
            self.trainer.skipped_steps.append(state.global_step + 1)


class GuardedTrainer(Trainer):
    """Stops at the first NaN/inf loss: the Trainer would otherwise log a filtered average and train on garbage.
    Records which optimizer steps mixed precision skipped (`skipped_steps`, 1-based)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_steps: list = []
        self.add_callback(_CountSkipped(self))

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch or 0:.2f}); lower train.learning_rate, or use train.precision=fp32/bf16 "
                "instead of fp16 (MobileBERT overflows fp16)"
            )
        return loss
