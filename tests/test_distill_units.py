"""mode=distill, the parts checked without training: each loss against a hand computation, the layer
bookkeeping and layer copying, and the config's errors. The runs themselves are in test_distill_runs.py."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny
from transformers import BertConfig, BertForSequenceClassification

from bench.config import compose
from bench.distill import losses, mapping
from bench.distill.init import build_student
from bench.errors import ConfigError

# ---------------------------------------------------------------- losses, by hand


def test_soft_cross_entropy_matches_hand_computation_with_t_squared_scaling():
    s, t, temp = [1.0, 2.0, 0.5], [0.3, -1.0, 2.0], 2.0
    p = [math.exp(x / temp) for x in t]
    p = [x / sum(p) for x in p]
    z = math.log(sum(math.exp(x / temp) for x in s))
    log_q = [x / temp - z for x in s]
    hand = -sum(pi * qi for pi, qi in zip(p, log_q)) * temp**2
    got = losses.soft_cross_entropy(torch.tensor([s]), torch.tensor([t]), temp)
    assert got.item() == pytest.approx(hand, rel=1e-6)
    # T^2 scaling: at T=1 the same formula without any factor
    p1 = torch.softmax(torch.tensor(t), -1)
    hand1 = -(p1 * torch.log_softmax(torch.tensor(s), -1)).sum().item()
    assert losses.soft_cross_entropy(torch.tensor([s]), torch.tensor([t]), 1.0).item() == pytest.approx(hand1, rel=1e-6)
    # a batch is the mean of its rows
    two = losses.soft_cross_entropy(torch.tensor([s, s]), torch.tensor([t, t]), temp)
    assert two.item() == pytest.approx(hand, rel=1e-6)


def test_regression_distillation_is_mse_on_the_teachers_score():
    got = losses.regression_mse(torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [0.0]]))
    assert got.item() == pytest.approx(((1 - 2) ** 2 + (3 - 0) ** 2) / 2)
    hard = losses.hard_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([1.5, 2.0]), regression=True)
    assert hard.item() == pytest.approx((0.25 + 1.0) / 2)


def test_hidden_mse_excludes_padding_positions():
    s = torch.zeros(1, 3, 2)
    t = torch.tensor([[[1.0, 3.0], [2.0, 0.0], [100.0, 100.0]]])  # the last position is padding
    mask = torch.tensor([[1, 1, 0]])
    hand = ((1 + 9) / 2 + (4 + 0) / 2) / 2  # mean over width, then over the two real tokens
    assert losses.hidden_mse(s, t, mask).item() == pytest.approx(hand)


def test_attention_mse_averages_real_query_key_pairs_of_every_head():
    s = torch.zeros(1, 2, 3, 3)
    t = torch.full((1, 2, 3, 3), 1000.0)  # anything touching position 2 (padding) must not count
    t[0, 0, :2, :2] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t[0, 1, :2, :2] = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    mask = torch.tensor([[1, 1, 0]])
    hand = (1 + 4 + 9 + 16 + 0 + 0 + 0 + 4) / 8
    assert losses.attention_mse(s, t, mask).item() == pytest.approx(hand)
    with pytest.raises(ValueError, match="equal head counts"):
        losses.attention_mse(torch.zeros(1, 3, 3, 3), t, mask)


def test_layers_are_summed_through_the_projection():
    proj = losses.projection(2, 3)
    assert isinstance(proj, torch.nn.Linear) and tuple(proj.weight.shape) == (3, 2)
    assert proj(torch.zeros(4, 5, 2)).shape == (4, 5, 3)
    assert isinstance(losses.projection(384, 384), torch.nn.Identity)
    mask = torch.ones(1, 2)
    a, b = torch.randn(1, 2, 2), torch.randn(1, 2, 2)
    ta, tb = torch.randn(1, 2, 3), torch.randn(1, 2, 3)
    total = losses.layers_mse([a, b], [ta, tb], mask, projection=proj)
    assert total.item() == pytest.approx(
        (losses.hidden_mse(proj(a), ta, mask) + losses.hidden_mse(proj(b), tb, mask)).item()
    )


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize(
    "n, m, want", [(12, 4, [3, 6, 9, 12]), (6, 3, [2, 4, 6]), (6, 2, [3, 6]), (6, 6, [1, 2, 3, 4, 5, 6])]
)
def test_uniform_layer_map(n, m, want):
    assert mapping.uniform_map(m, n) == want


def test_the_layer_map_defaults_to_the_copied_layers_and_a_given_map_overrides_it():
    assert mapping.resolve_map(None, 3, 6, copied=[1, 3, 5]) == ([1, 3, 5], "copied layers")
    assert mapping.resolve_map(None, 3, 6) == ([2, 4, 6], "uniform")  # init=pretrained|random: nothing copied
    assert mapping.resolve_map([3, 1, 2], 3, 6, copied=[2, 4, 6]) == ([3, 1, 2], "distill.layer_map")
    with pytest.raises(ConfigError, match="names 2 teacher layers for a 3-layer student"):
        mapping.resolve_map([1, 2], 3, 6)
    with pytest.raises(ConfigError, match="only 6 layers"):
        mapping.resolve_map([2, 4, 7], 3, 6)


def _teacher_model(layers=4, width=32, labels=2, seed=0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=labels,
    )
    return BertForSequenceClassification(config).eval()


# by default the layers the intermediate stage will train it toward: 4->2 is 2, 4 (the teacher's last layer last)
@pytest.mark.parametrize("given, copied", [([], [2, 4]), (["distill.layers=[1,3]"], [1, 3])])
def test_teacher_layers_copies_exactly_the_chosen_layers(given, copied):
    t = _teacher_model()
    cfg = compose([*tiny("bert"), "task=sst2", *given])
    student, info = build_student(cfg, t)
    assert info["copied_teacher_layers"] == copied and student.config.num_hidden_layers == 2
    ts, ss = t.state_dict(), student.state_dict()
    for s_i, t_i in enumerate(c - 1 for c in copied):
        for name, value in ss.items():
            if f"encoder.layer.{s_i}." in name:
                assert torch.equal(value, ts[name.replace(f"layer.{s_i}.", f"layer.{t_i}.")]), name
    for name in ss:
        if ".embeddings." in name or ".pooler." in name:
            assert torch.equal(ss[name], ts[name]), name
    assert not torch.equal(ss["classifier.weight"], ts["classifier.weight"])  # a fresh head, as in TinyBERT


def test_teacher_layers_with_another_width_is_a_one_line_error():
    cfg = compose([*tiny("bert"), "model.arch.hidden_size=64", "task=sst2"])
    with pytest.raises(ConfigError, match=r"hidden_size 64 vs teacher 32") as info:
        build_student(cfg, _teacher_model())
    assert "\n" not in str(info.value)


def test_pretrained_init_needs_weights_and_random_init_builds_the_model_files_architecture():
    with pytest.raises(ConfigError, match="has no weights here"):
        build_student(compose([*tiny("bert"), "task=sst2", "distill.init=pretrained"]), _teacher_model())
    student, info = build_student(compose([*tiny("bert"), "task=sst2", "distill.init=random"]), _teacher_model())
    assert info["init"] == "random" and info["weights"] == "random" and student.config.num_hidden_layers == 2
    assert info["copied_teacher_layers"] is None


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["+distill.weights.kd=1"], "unknown loss name(s) ['kd']"),
        (["distill.weights.soft=-1"], "must be a finite number, 0 or more, got -1"),
        (["distill.weights.soft=inf"], "must be a finite number, 0 or more, got inf"),
        (["distill.weights.hard=nan"], "must be a finite number, 0 or more, got nan"),
        (["distill.transfer.sources=[web]"], "distill.transfer.sources entry"),
        (["distill.transfer.sources=[rest,rest]"], "names a source twice"),
        (["distill.transfer.sources=[file]"], "distill.transfer.file and the source `file` go together"),
        (["distill.transfer.file=x.tsv"], "distill.transfer.file and the source `file` go together"),
        (["distill.transfer.sources=[rest]", "distill.transfer.max_rows=0"], "distill.transfer.max_rows"),
        (["distill.transfer.augment.ops=[]"], "distill.transfer.augment.ops is empty"),
        (["distill.transfer.augment.ops=[shout]"], "distill.transfer.augment.ops entry"),
        (["distill.transfer.augment.per_row=0"], "distill.transfer.augment.per_row"),
        (["distill.transfer.augment.probability=0"], "must be in (0, 1]"),
        (["distill.transfer.augment.probability=1.5"], "must be in (0, 1]"),
        (["distill.transfer.augment.top_k=0"], "distill.transfer.augment.top_k"),
        (["distill.stages=[prediction,intermediate]"], "in that order"),
        (
            [
                "distill.stages=[intermediate]",
                "distill.weights.hidden=0",
                "distill.weights.attention=0",
                "distill.weights.embedding=0",
            ],
            "every one of its loss weights is 0",
        ),
        (["distill.temperature=0"], "must be a positive number"),
        (["distill.layers=[3,1]"], "increasing"),
        (["distill.layers=[0,1]"], "numbered from 1"),
        (["mode=distill"], "needs a fine-tuned teacher"),
        (["mode=distill", "distill.teacher=x", "task=squad_v1"], "kind 'squad', which it cannot distil"),
    ],
)
def test_bad_distill_settings_fail_at_composition(overrides, words):
    with pytest.raises(ConfigError) as info:
        compose(["model=minilm_l6", "task=sst2", *overrides])
    assert words in str(info.value)


def test_presets_for_the_ablation():
    assert compose(["+distill=direct"]).distill.terms_on("prediction") == ["hard"]
    assert compose(["+distill=prediction"]).distill.terms_on("prediction") == ["soft"]
    both = compose(["+distill=two_stage"]).distill
    assert both.stages == ["intermediate", "prediction"]
    assert both.terms_on("intermediate") == ["embedding", "hidden", "attention"]
    sweep = compose(["+sweep=distill_ablation", "distill.teacher=x"])
    assert sweep.mode.name == "distill"


def test_the_direct_partner_is_a_fine_tune_of_the_same_rows_seed_and_scored_split(tmp_path):
    """record.find_direct paired a dev-scored distill run (init=pretrained) with any fine-tune of the model and
    task, a holdout-scored selection run or another seed included."""
    import json

    from omegaconf import OmegaConf

    from bench.distill.record import find_direct

    def write(name, started, *over):
        c = compose(["model=minilm_l6", "task=sst2", "data.max_train_samples=100", *over])
        data = {"status": "ok", "mode": "finetune", "started_at": started, "metrics": {"acc": 0.5}}
        data["config"] = OmegaConf.to_container(OmegaConf.structured(c))
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(data))

    write("dev", "2026-01-01", "train.seed=1")
    write("holdout", "2026-01-02", "train.seed=1", "data.holdout=20", "data.score=holdout")
    write("seed2", "2026-01-03", "train.seed=2")
    cfg = compose(
        ["model=minilm_l6", "task=sst2", "mode=distill", "distill.teacher=x", "distill.init=pretrained"]
        + ["data.max_train_samples=100", "train.seed=1", f"bench.resume_dir={tmp_path}"],
        out_dir=str(tmp_path / "me"),
    )
    assert find_direct(cfg, "key")["run"] == str(tmp_path / "dev")
    write("named", "2026-01-04", "train.seed=1", "data.sample_seed=1")  # the same rows as sample_seed unset
    assert find_direct(cfg, "key")["run"] == str(tmp_path / "named")
