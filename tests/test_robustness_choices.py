"""mode=robustness on multiple-choice tasks (the choice-order test), the backend list's timing.exclude and the
up-front length check of the other checkpoint a mode reads, on tiny random models and real COPA / ARC rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GLUE_DIR, tiny

from bench.config import compose
from bench.errors import ConfigError
from bench.robustness import choices, figures
from bench.runner import run


def test_orders_start_with_the_reversal_then_new_seeded_shuffles():
    four = choices.orders(4, 5, seed=0, idx=7)
    assert four[0] == [3, 2, 1, 0] and four == choices.orders(4, 5, seed=0, idx=7)  # deterministic
    seen = {tuple(p) for p in four}
    assert len(seen) == 5 and (0, 1, 2, 3) not in seen and all(sorted(p) == [0, 1, 2, 3] for p in four)
    assert {tuple(choices.orders(4, 3, s, 7)[1]) for s in range(10)} != {tuple(four[1])}  # the seed matters
    # 2 candidates have one other order: later orders show nothing new, and say so (None), never the same again
    assert choices.orders(2, 3, seed=0, idx=0) == [[1, 0], None, None]
    assert choices.orders(3, 7, 1, 2)[5:] == [None, None] and len({tuple(p) for p in choices.orders(3, 5, 1, 2)}) == 5
    assert choices.order_names(3) == ["order_reversed", "order_shuffled_1", "order_shuffled_2"]


def test_any_order_figures_by_hand():
    clean, labels = np.array([0, 1, 2, 0]), np.array([0, 1, 0, 0])
    by_order = {
        "order_reversed": np.array([0, 2, 2, -1]),  # example 1 flips; example 3 not shown
        "order_shuffled_1": np.array([1, 1, -1, -1]),  # example 0 flips
    }
    out = figures.any_order(clean, by_order, labels, n_resamples=100)
    assert out["changed"] == 3 and out["flip_rate"]["value"] == pytest.approx(2 / 3) and out["flip_rate"]["n"] == 3
    assert out["acc_before"]["value"] == pytest.approx(2 / 3)  # examples 0, 1 right, 2 wrong
    assert out["acc_after"]["value"] == 0.0  # right under the original and every order shown: none of them
    none = figures.any_order(clean, {"order_shuffled_1": np.full(4, -1)}, labels)
    assert none["changed"] == 0 and none["flip_rate"]["value"] is None


def _mc(tmp_path, mc_dir, task, *extra, name="r"):
    args = [
        *tiny("bert"),
        f"task={task}",
        "mode=robustness",
        f"data.dir={mc_dir}",
        "data.max_eval_samples=16",
        "robustness.bootstrap=100",
        "device.threads=1",
        *extra,
    ]
    return run(compose(args, out_dir=str(tmp_path / name)))


def _rows(tmp_path, r, name="r"):
    by = {}
    for line in (tmp_path / name / r.robustness["predictions"]).read_text().splitlines():
        row = json.loads(line)
        by.setdefault((row["backend"], row["set"]), {})[row["idx"]] = row
    return by


def test_copa_choice_orders_recomputed_from_the_predictions_file(tmp_path, mc_dir):
    r = _mc(tmp_path, mc_dir, "copa", "timing.backends=[eager,int8]", "robustness.only=[identity,typo]")
    assert r.status == "ok" and r.model["weights"] == "random" and r.robustness["multiple_choice"]["choices"] == [2]
    by = _rows(tmp_path, r)
    for b in r.robustness["backends"]:
        name, orders = b["backend"], b["choice_orders"]
        clean = by[(name, "clean")]
        assert len(clean) == 16 and all(len(x["probs"]) == 2 for x in clean.values())
        assert 0 < sum(x["prediction"] for x in clean.values()) < 16  # the answers vary, so a flip could show
        # the control: the original order scored again flips nothing, on every backend
        assert orders["order_identity"]["changed"] == 16 and orders["order_identity"]["flip_rate"]["value"] == 0.0
        rev = by[(name, "order:order_reversed")]
        assert orders["order_reversed"]["changed"] == len(rev) == 16
        for i, x in rev.items():
            assert x["shown"] == [1, 0] and x["prediction"] == x["shown"][x["shown_prediction"]]
            assert x["probs"][x["prediction"]] == max(x["probs"])  # probabilities are the original candidates'
            if name == "eager":  # each candidate is scored on its own: mapped back, the same probabilities
                assert x["probs"] == pytest.approx(clean[i]["probs"], abs=1e-6)
        flips = np.mean([rev[i]["prediction"] != clean[i]["prediction"] for i in rev])
        assert orders["order_reversed"]["flip_rate"]["value"] == flips
        assert r.metrics[f"{name}.consistency.order_reversed"] == 1 - flips
        assert (
            np.mean([rev[i]["prediction"] == rev[i]["label"] for i in rev])
            == orders["order_reversed"]["acc_after"]["value"]
        )
        # 2 candidates have no second new order: those orders changed nothing and have no flip rate, no metric
        for o in ("order_shuffled_1", "order_shuffled_2"):
            assert orders[o]["changed"] == 0 and orders[o]["flip_rate"]["value"] is None
            assert f"{name}.consistency.{o}" not in r.metrics and (name, f"order:{o}") not in by
        assert orders["order_any"]["changed"] == 16 and f"{name}.consistency.order_any" in r.metrics
        # the text perturbations act on the context and both candidates: the typo'd word, everywhere it occurs
        assert b["invariance"]["typo"]["changed"] > 0 and "typo" in b["invariance"]
    assert set(r.robustness["multiple_choice"]["unchanged"]) == {"order_shuffled_1", "order_shuffled_2"}
    assert any("order_shuffled_1" in n and "no flip rate" in n for n in r.notes)
    assert r.robustness["backends"][0]["advglue"] == {"-": "AdvGLUE has no rows for task copa"}
    # the report's robustness table: a column per order, 'unchanged' where an order showed nothing new
    from bench.report.__main__ import build

    md = build(tmp_path, tmp_path / "report", ["md"], n_boot=50)["robustness.md"].read_text()
    header = md.splitlines()[0]
    assert "flip % order_identity" in header and "flip % order_reversed" in header and "flip % order_any" in header
    eager = next(line for line in md.splitlines() if "| eager " in line)
    assert "unchanged" in eager and "n=16" in eager and "| copa " in eager


def test_a_position_biased_backend_flips_exactly_where_the_order_moved_its_answer(tmp_path, mc_dir, monkeypatch):
    """A backend that prefers whatever is shown first: it picks the original candidate shown at position 0, so
    the reversal flips every example and a shuffle exactly those it starts with another candidate (recomputed
    from the permutations in the predictions file). Mapping back is what makes these counts right."""
    import torch

    from bench.timing import backends as B

    real = B.prepare

    def first_wins(name, model, device):
        prepared = real(name, model, device)
        forward = prepared.forward

        def biased(feed):
            logits = torch.as_tensor(forward(feed)).clone()
            logits[:, 0] += 100.0
            return logits

        prepared.forward = biased
        return prepared

    monkeypatch.setattr(B, "prepare", first_wins)
    r = _mc(tmp_path, mc_dir, "arc_easy", "timing.backends=[eager]", "robustness.perturbations=none")
    orders = r.robustness["backends"][0]["choice_orders"]
    by = _rows(tmp_path, r)
    assert all(x["prediction"] == 0 for x in by[("eager", "clean")].values())
    assert (
        orders["order_identity"]["flip_rate"]["value"] == 0.0 and orders["order_reversed"]["flip_rate"]["value"] == 1.0
    )
    for o in ("order_shuffled_1", "order_shuffled_2"):
        rows = by[("eager", f"order:{o}")]
        assert len(rows) == 16 == orders[o]["changed"]  # ARC's 3 to 5 candidates leave new orders for all
        assert all(x["prediction"] == x["shown"][0] for x in rows.values())
        assert orders[o]["flip_rate"]["value"] == np.mean([x["shown"][0] != 0 for x in rows.values()])
    assert orders["order_any"]["flip_rate"]["value"] == 1.0 and orders["order_any"]["acc_after"]["value"] == 0.0
    assert r.robustness["backends"][0]["invariance"] == {} and r.robustness["perturbation_set"] == "none"


def test_choice_orders_zero_scores_no_order(tmp_path, mc_dir):
    r = _mc(
        tmp_path, mc_dir, "copa", "timing.backends=[eager]", "robustness.only=[identity]", "robustness.choice_orders=0"
    )
    assert r.robustness["backends"][0]["choice_orders"] == {} and not any("order" in m for m in r.metrics)


def test_timing_exclude_takes_backends_out_of_auto(tmp_path, mc_dir):
    """exclude trims what `auto` brings; a backend named explicitly still runs (as in mode=latency)."""
    import torch

    from bench.timing import backends

    rest = [n for n in backends.auto(torch.device("cpu")) if n != "eager"]
    r = _mc(
        tmp_path,
        mc_dir,
        "copa",
        "timing.backends=[auto]",
        f"timing.exclude=[{','.join(rest)}]",
        "robustness.only=[identity]",
    )
    assert [b["backend"] for b in r.robustness["backends"]] == ["eager"] and r.robustness["backends_excluded"] == rest
    with pytest.raises(ConfigError, match="leaves no backend"):
        _mc(tmp_path, mc_dir, "copa", "timing.backends=[auto]", f"timing.exclude=[eager,{','.join(rest)}]", name="none")


@pytest.mark.parametrize("mode", ["robustness", "distill"])
def test_the_reference_or_teacher_is_checked_against_the_sequence_length_up_front(tmp_path, mode):
    """A reference (or teacher) with fewer positions than the run feeds it is refused before anything runs."""
    from bench import models

    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    short = compose([*tiny("bert"), "model.arch.max_position_embeddings=64", "task=rte"])
    tok, model, _ = models.load(short.model, short.task)
    model.save_pretrained(tmp_path / "short" / "checkpoint")
    tok.save_pretrained(tmp_path / "short" / "checkpoint")
    key = "robustness.reference" if mode == "robustness" else "distill.teacher"
    args = [*tiny("bert"), "task=rte", f"mode={mode}", f"data.dir={GLUE_DIR}", f"{key}={tmp_path / 'short'}"]
    with pytest.raises(ConfigError, match=rf"task.max_seq_length=\[128\].*{key}=.*max_position_embeddings is 64"):
        run(compose(args, out_dir=str(tmp_path / "run")))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and "robustness" not in (result.get("metrics") or {})
