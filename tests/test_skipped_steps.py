"""fp16's loss scaler skips an optimizer step whose gradients overflowed; the loss stays finite, so nothing else
would tell that a run trained on fewer steps than it says. Mixed-precision fp16 needs CUDA, so here the
accelerator's answer to "was this step skipped?" is faked on a real (tiny) fine-tune; the counting, the record
and the note or flag are the harness's own."""

import pytest
from accelerate.optimizer import AcceleratedOptimizer
from conftest import tiny

from bench.config import compose
from bench.results import SKIPPED_FLAG
from bench.runner import run

QUICK = ["train.batch_size=8", "data.max_train_samples=80", "data.max_eval_samples=16", "train.logging_steps=1"]


def _skipping(monkeypatch, skip):
    """The optimizer steps numbered in `skip` (1-based) read as skipped, however often they are asked about."""
    steps = []
    real_step = AcceleratedOptimizer.step

    def step(self, *args, **kwargs):
        steps.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(AcceleratedOptimizer, "step", step)
    monkeypatch.setattr(AcceleratedOptimizer, "step_was_skipped", property(lambda self: len(steps) in skip))


@pytest.mark.parametrize("steps, skip, loud", [(10, {1}, False), (4, {1, 3}, True), (4, set(), None)])
def test_steps_the_scaler_skipped_are_recorded_and_said(steps, skip, loud, glue_dir, tmp_path, monkeypatch):
    _skipping(monkeypatch, skip)
    cfg = compose(
        [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK, f"train.max_steps={steps}"],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    assert result.status == "ok", result.failures
    assert result.train["steps"] == steps and result.train["skipped_steps"] == sorted(skip)
    said = f"{len(skip)} of {steps} optimizer steps skipped by the fp16 loss scaler"
    flagged = [f for f in result.flags if said in f]
    noted = [n for n in result.notes if said in n]
    if loud is None:  # no skip: nothing said
        assert not [x for x in result.flags + result.notes if "loss scaler" in x]
    else:
        assert (len(skip) / steps > SKIPPED_FLAG) == loud
        assert (len(flagged), len(noted)) == ((1, 0) if loud else (0, 1))
        assert loud or "the scaler finding its scale" in noted[0]
