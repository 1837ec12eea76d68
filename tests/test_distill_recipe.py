"""mode=distill: tests that would catch a wrong recipe rather than a wrong formula.

Which student layer meets which teacher layer (a teacher whose layer k outputs the constant k), attention scores
against the model's own attentions, the width projection's life, STS-B's soft target, and the knobs (temperature,
the hard/soft mix, each stage's schedule, what the intermediate MSEs average over)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import GLUE_DIR, QUICK, tiny
from transformers import BertConfig, BertForSequenceClassification

from bench import models, tasks
from bench.config import compose
from bench.distill import cache, init, internals, losses, run
from bench.distill.trainer import PROJECTION, LossPlan, RowCollator, compute_terms
from bench.runner import run as run_bench

ARCH = dict(vocab_size=30522, hidden_size=32, num_attention_heads=2, intermediate_size=64)  # tiny("bert")'s shape
INTERMEDIATE = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0}


def make_constant(model, values) -> None:
    """Layer k (1-based) of `model` outputs values[k-1] at every position and width, and its attention scores are
    values[k-1] for every head and (query, key) pair; the embedding output is 0.

    Each layer's closing LayerNorm gets weight 0 and bias v; its query and key projections are bias only, q = 1
    and k = v / sqrt(d), so q.k / sqrt(d) = v. A copy of such a layer carries its constant with it."""
    with torch.no_grad():
        ln = model.bert.embeddings.LayerNorm
        ln.weight.zero_(), ln.bias.zero_()
        for layer, v in zip(internals.encoder_layers(model), values, strict=True):
            layer.output.LayerNorm.weight.zero_(), layer.output.LayerNorm.bias.fill_(float(v))
            att = layer.attention.self
            att.query.weight.zero_(), att.query.bias.fill_(1.0)
            att.key.weight.zero_(), att.key.bias.fill_(float(v) / math.sqrt(att.attention_head_size))


def constant_teacher(layers: int):
    model = BertForSequenceClassification(BertConfig(num_hidden_layers=layers, num_labels=2, **ARCH)).eval()
    make_constant(model, range(1, layers + 1))
    return model


def sst2_rows(cfg, tokenizer, n=8):
    raw = tasks.load(cfg.task, cfg.data)
    train = tasks.encode(raw, tokenizer, 128, False)["train"]
    return train.add_column("row", list(range(len(train))))


@pytest.mark.parametrize(
    "overrides, student_values, copied, layer_map, source, want",
    [
        # the default: built from the layers it learns (4->2: 2, 4), so a copy starts at zero loss
        ([], None, [2, 4], [2, 4], "copied layers", 0.0),
        (["distill.layers=[1,3]"], None, [1, 3], [1, 3], "copied layers", 0.0),
        # an override that is not the identity nor the copy: student layer 1 (a copy of 2) meets teacher layer 3,
        # student layer 2 (a copy of 4) meets teacher layer 1: (2-3)^2 + (4-1)^2
        (["distill.layer_map=[3,1]"], None, [2, 4], [3, 1], "distill.layer_map", 10.0),
        # 4->3: copies 1, 2, 4 (uniform m*N//M), learns 3, 1, 2: (1-3)^2 + (2-1)^2 + (4-2)^2
        (
            ["model.arch.num_hidden_layers=3", "distill.layer_map=[3,1,2]"],
            None,
            [1, 2, 4],
            [3, 1, 2],
            "distill.layer_map",
            9.0,
        ),
        # nothing copied: the uniform map; a student whose layers hold 4 and 2 meets teacher layers 2 and 4,
        # (4-2)^2 + (2-4)^2 = 8 (the swapped pairing would give 0)
        (["distill.init=random"], [4, 2], None, [2, 4], "uniform", 8.0),
    ],
)
def test_each_student_layer_meets_the_teacher_layer_the_map_names(
    tmp_path, overrides, student_values, copied, layer_map, source, want
):
    """Through the real path: student construction, the map's resolution, the teacher pass into the cache (which
    stores the mapped layers), the cache's batches and the loss terms."""
    cfg = compose(
        [*tiny("bert"), "task=sst2", f"data.dir={GLUE_DIR}", "data.max_train_samples=8", *overrides],
        out_dir=str(tmp_path / "run"),
    )
    teacher_model = constant_teacher(4)
    ckpt = tmp_path / "teacher"
    teacher_model.save_pretrained(str(ckpt))
    student, info = init.build_student(cfg, teacher_model)
    if student_values is not None:
        make_constant(student, student_values)
    got_map, got_source = run.layer_plan(cfg, student, teacher_model, info["copied_teacher_layers"])
    assert (info["copied_teacher_layers"], got_map, got_source) == (copied, layer_map, source)

    tokenizer = models.load_tokenizer(cfg.model)
    train = sst2_rows(cfg, tokenizer)
    cfg.distill.cache_dir = str(tmp_path / "cache")
    outputs, _ = run.teacher_pass(cfg, ckpt, teacher_model, train, tokenizer, got_map)
    collate = RowCollator(tokenizer, regression=False)
    batch = collate([train[i] for i in range(8)])  # rows of different lengths, padded together
    rows, labels = batch.pop("row"), batch.pop("labels")
    student.eval().add_module(PROJECTION, losses.projection(32, 32))
    n = batch["attention_mask"].sum(1).float()
    width = batch["input_ids"].shape[1]
    for padded_to, hidden_share, pair_share in (
        (None, 1.0, 1.0),  # real tokens only
        (128, n.sum() / (8 * 128), (n * n).sum() / (8 * 128 * 128)),  # task_distill.py's denominators
    ):
        plan = LossPlan(INTERMEDIATE, 1.0, False, got_map, padded_to=padded_to)
        with torch.no_grad():
            terms = compute_terms(plan, student, dict(batch), rows, labels, outputs)
        assert terms["embedding"].item() == pytest.approx(0.0, abs=1e-6)
        assert terms["hidden"].item() == pytest.approx(want * float(hidden_share), rel=1e-5, abs=1e-6)
        assert terms["attention"].item() == pytest.approx(want * float(pair_share), rel=1e-5, abs=1e-6)
    assert width < 128 and n.min() < n.max()  # the padded denominators differ from the real-token ones


# ---------------------------------------------------------------- attention scores, against the model itself


def test_attention_scores_are_what_the_model_softmaxes_into_its_attentions():
    """softmax(scores + mask) equals the attentions the model returns, layer by layer, padded rows included; the
    scores read from an SDPA forward (which returns no attentions) are the same."""
    torch.manual_seed(0)
    eager = BertForSequenceClassification(BertConfig(num_hidden_layers=3, num_labels=2, **ARCH)).eval()
    eager.set_attn_implementation("eager")
    sdpa = BertForSequenceClassification(BertConfig(num_hidden_layers=3, num_labels=2, **ARCH)).eval()
    sdpa.load_state_dict(eager.state_dict())
    assert sdpa.config._attn_implementation == "sdpa"
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:], mask[2, 2:] = 0, 0
    with torch.no_grad():
        out = eager(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        fast = sdpa(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    additive = (1 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    layers = [1, 2, 3]
    for scores in (
        internals.attention_scores(eager, out.hidden_states, layers),
        internals.attention_scores(sdpa, fast.hidden_states, layers),
    ):
        assert len(scores) == 3
        for s, a in zip(scores, out.attentions, strict=True):
            assert s.shape == a.shape == (3, 2, 9, 9)
            assert torch.allclose(torch.softmax(s + additive, -1), a, atol=1e-5)
    # and they are the scores before the mask: finite at padded keys, unlike what the softmax saw
    assert torch.isfinite(scores[0][2, :, :, 5:]).all() and scores[0][2, :, :, 5:].abs().max() < 100


# ---------------------------------------------------------------- the width projection's life


def test_a_narrower_student_trains_the_projection_in_the_intermediate_stage_and_saves_without_it(
    teachers, tmp_path, monkeypatch
):
    made = []
    real = losses.projection

    def spy(student_width, teacher_width):
        module = real(student_width, teacher_width)
        made.append((module, {k: v.clone() for k, v in module.state_dict().items()}))
        return module

    monkeypatch.setattr(losses, "projection", spy)
    cfg = compose(
        [
            *tiny("bert"),
            "model.arch.hidden_size=16",  # the teacher is 32 wide; 2 heads of 8
            "task=sst2",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            f"distill.teacher={teachers['sst2']}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "distill.init=random",
            "distill.intermediate.epochs=1",
            "distill.prediction.epochs=1",
            "distill.measure_latency=false",
            "train.save_checkpoint=true",
        ],
        out_dir=str(tmp_path / "run"),
    )
    result = run_bench(cfg)
    assert result.status == "ok" and len(made) == 1
    module, before = made[0]
    assert isinstance(module, torch.nn.Linear) and tuple(module.weight.shape) == (32, 16)
    after = module.state_dict()
    assert not torch.allclose(after["weight"], before["weight"]), "the projection was not trained"
    # gone from the student that was scored and saved
    from safetensors import safe_open

    ckpt = tmp_path / "run" / "checkpoint"
    with safe_open(str(ckpt / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not [k for k in keys if PROJECTION in k]
    assert json.loads((ckpt / "config.json").read_text())["hidden_size"] == 16
    saved = sum(p.numel() for p in BertForSequenceClassification.from_pretrained(str(ckpt)).parameters())
    assert result.model["parameters"] == saved


# ---------------------------------------------------------------- STS-B: the soft term is the teacher's score


def test_regression_soft_term_reads_the_teachers_score_not_the_gold_one(tmp_path):
    torch.manual_seed(0)
    student = BertForSequenceClassification(
        BertConfig(num_hidden_layers=2, num_labels=1, problem_type="regression", **ARCH)
    ).eval()
    teacher_scores = torch.tensor([[0.5], [4.5], [2.0], [1.0]])
    gold = torch.tensor([3.0, 1.0, 5.0, 0.0])  # far from the teacher's
    writer = cache.Writer(tmp_path / "entry", np.array([4, 6, 3, 5]), 1, [], 32, [], 2)  # logits only, on disk
    for r, score in enumerate(teacher_scores.numpy()):
        writer.put(r, score, None, None)
    writer.finish({})
    cached = cache.open_entry(tmp_path / "entry", rows=4)
    rows = torch.tensor([2, 0, 3])
    inputs = {"input_ids": torch.randint(1000, 2000, (3, 6)), "attention_mask": torch.ones(3, 6, dtype=torch.long)}
    plan = LossPlan({"soft": 1.0, "hard": 1.0}, 1.0, True, [])
    with torch.no_grad():
        terms = compute_terms(plan, student, dict(inputs), rows, gold[rows], cached)
        scores = student(**inputs).logits.reshape(-1)
    assert terms["soft"].item() == pytest.approx(F.mse_loss(scores, teacher_scores[rows].reshape(-1)).item(), rel=1e-6)
    assert terms["hard"].item() == pytest.approx(F.mse_loss(scores, gold[rows]).item(), rel=1e-6)
    assert abs(terms["soft"].item() - terms["hard"].item()) > 1.0


# ---------------------------------------------------------------- the knobs


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_term_gradient_keeps_its_size_at_any_temperature(temperature):
    """With the T^2 factor, d loss / d z_s = T (softmax(z_s/T) - softmax(z_t/T)) / B (Hinton et al.): for logits
    small against T that is (z_s - z_t) / (C B), the same at every T. Without the factor it would shrink as 1/T^2."""
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    losses.soft_cross_entropy(student, teacher, temperature).backward()
    t = temperature
    want = t * (torch.softmax(student.detach() / t, -1) - torch.softmax(teacher / t, -1)) / 4
    assert torch.allclose(student.grad, want, atol=1e-6)
    # Hinton's high-temperature limit: zero-mean logits small against T give (z_s - z_t) / (C B), free of T
    centre = lambda z: z - z.mean(-1, keepdim=True)  # noqa: E731
    small_s, small_t = centre(0.01 * student.detach()).requires_grad_(), centre(0.01 * teacher)
    losses.soft_cross_entropy(small_s, small_t, t).backward()
    assert torch.allclose(small_s.grad, (small_s.detach() - small_t) / (3 * 4), rtol=0.05, atol=2e-5)


def test_knobs_temperature_hard_soft_mix_schedules_and_padded_mse_in_one_run(teachers, tmp_path):
    """Two stages with the reference's constant intermediate rate, a linear prediction schedule, soft and hard mixed
    at T=2, and the MSEs over padded positions: each knob is applied and recorded."""
    cfg = compose(
        [
            *tiny("bert"),
            "task=sst2",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            f"distill.teacher={teachers['sst2']}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "distill.measure_latency=false",
            "distill.intermediate.epochs=1",
            "distill.intermediate.learning_rate=2e-4",
            "distill.prediction.epochs=2",
            "distill.prediction.learning_rate=1e-4",
            "distill.weights.soft=0.25",
            "distill.weights.hard=0.75",
            "distill.temperature=2",
            "distill.mse_over=padded",
        ],
        out_dir=str(tmp_path / "run"),
    )
    result = run_bench(cfg)
    d, (inter, pred) = result.train["distill"], result.train["stages"]
    assert (d["temperature"], d["mse_over"]) == (2.0, "padded")
    assert d["schedulers"] == {"intermediate": "constant", "prediction": "linear"}
    assert (inter["scheduler"], inter["hyper"]["warmup"]) == ("constant", 0.0)
    assert pred["terms"] == {"soft": 0.25, "hard": 0.75}
    # the constant stage logs its rate unchanged at every step; the linear one decays
    assert [p["learning_rate"] for p in inter["loss_curve"]] == [2e-4] * len(inter["loss_curve"]) != []
    rates = [p["learning_rate"] for p in pred["loss_curve"]]
    peak = rates.index(max(rates))
    assert len(rates) >= 4 and peak <= 1 and rates[peak:] == sorted(rates[peak:], reverse=True)
    assert rates[-1] < 0.5 * rates[peak]
    # the logged loss of each step is the weighted sum of the two terms
    for p in pred["loss_curve"]:
        assert {"loss_soft", "loss_hard"} <= set(p)
        assert p["loss"] == pytest.approx(0.25 * p["loss_soft"] + 0.75 * p["loss_hard"], abs=2e-4)
