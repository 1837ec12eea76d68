"""mode=robustness: loyalty against hand-computed values, each perturbation on fixed sentences, the identity
control, AdvGLUE read for every key, and every figure recomputed from the per-example file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import GLUE_DIR, SHARED_DATA, compile_tex, tiny
from test_robustness_loyalty import _jsd2

from bench.config import compose
from bench.errors import ConfigError
from bench.robustness import perturb
from bench.runner import run

ADVGLUE = SHARED_DATA / "robustness" / "advglue" / "dev.json"


@pytest.mark.parametrize(
    "name, texts, expected",
    [
        ("typo", ["the movie was wonderful"], None),
        ("contractions_expand", ["it does n't work , i 'm sure"], ["it does not work , i am sure"]),
        ("contractions_expand", ["He can't come.", "He won't come."], ["He can not come.", "He will not come."]),
        ("contractions_make", ["it does not work , i 'm sure"], ["it does n't work , i 'm sure"]),
        ("contractions_make", ["He is not here.", "It is not here."], ["He isn't here.", "It isn't here."]),
        ("final_period", ["A fine film.", "It is good ."], ["A fine film", "It is good"]),
        ("punct_spacing", ["a fine , funny film ."], ["a fine, funny film."]),
        ("punct_spacing", ["A fine, funny film."], ["A fine , funny film ."]),
        ("identity", ["Anything at all."], ["Anything at all."]),
    ],
)
def test_each_perturbation_on_fixed_sentences(name, texts, expected):
    p = next(p for p in perturb.SETS["inv-v1"] if p.name == name)
    out = perturb.apply(p, texts, "inv-v1", 0, 7)
    if expected is not None:
        assert out == expected
    assert out == perturb.apply(p, texts, "inv-v1", 0, 7)  # deterministic


@pytest.mark.parametrize("name", ["typo", "char_drop", "char_double"])
def test_character_edits_change_one_word_the_same_way_in_both_sentences(name):
    p = next(p for p in perturb.SETS["inv-v1"] if p.name == name)
    texts = ["Paris hosted the summit.", "The summit was in Paris."]
    outs = {tuple(perturb.apply(p, texts, "inv-v1", s, 0)) for s in range(20)}
    assert len(outs) > 1  # the seed matters
    for a, b in outs:
        changed_a = [w for w, o in zip(a.split(), texts[0].split()) if w != o]
        changed_b = [w for w, o in zip(b.split(), texts[1].split()) if w != o]
        assert len(changed_a) == 1 and len(a.split()) == len(texts[0].split())  # one word, nothing else
        word = changed_a[0].strip(".")
        assert word.lower() in {w.strip(".").lower() for w in changed_b} or not changed_b  # consistently
        if name == "char_drop":
            assert len(a) == len(texts[0]) - 1
        if name == "char_double":
            assert len(a) == len(texts[0]) + 1
    typo = perturb.apply(perturb.SETS["inv-v1"][1], ["wonderful"], "inv-v1", 3, 0)[0]
    assert len(typo) == 9 and sum(x != y for x, y in zip(typo, "wonderful")) == 1
    i = next(k for k, (x, y) in enumerate(zip(typo, "wonderful")) if x != y)
    assert 0 < i < 8 and typo[i] in perturb.ADJACENT["wonderful"[i]]


def test_names_and_places_are_swapped_consistently_within_their_list():
    names = next(p for p in perturb.SETS["inv-v1"] if p.name == "person_names")
    places = next(p for p in perturb.SETS["inv-v1"] if p.name == "place_names")
    a, b = perturb.apply(names, ["Mary met John in Paris.", "John greeted Mary."], "inv-v1", 0, 1)
    new_mary, new_john = a.split()[0], a.split()[2]
    assert new_mary in perturb.FEMALE and new_mary != "Mary" and new_john in perturb.MALE and new_john != "John"
    assert b == f"{new_john} greeted {new_mary}." and a.endswith("in Paris.")
    (low,) = perturb.apply(names, ["john is great"], "inv-v1", 0, 1)
    assert low.split()[0] in {n.lower() for n in perturb.MALE} and low.endswith(" is great")
    c, d = perturb.apply(places, ["Paris is in France.", "Paris is big."], "inv-v1", 0, 2)
    city, country = c.split()[0], c.split()[3].rstrip(".")
    assert city in perturb.CITIES and city != "Paris" and country in perturb.COUNTRIES and d == f"{city} is big."
    assert perturb.apply(places, ["no place here"], "inv-v1", 0, 2) == ["no place here"]


def test_unknown_set_or_perturbation_is_a_one_line_error():
    with pytest.raises(ConfigError, match="inv-v1"):
        perturb.get("inv-v9")
    with pytest.raises(ConfigError, match="typo"):
        perturb.get("inv-v1", ["tyop"])


def test_regression_and_squad_tasks_are_refused_clearly():
    with pytest.raises(ConfigError, match="stsb is of kind 'regression'"):
        compose(["model=minilm_l6", "task=stsb", "mode=robustness"])
    with pytest.raises(ConfigError, match="no candidates to reorder"):
        compose(["model=minilm_l6", "task=sst2", "mode=robustness", "robustness.choice_orders=2"])
    with pytest.raises(ConfigError, match="0 or more"):
        compose(["model=minilm_l6", "task=copa", "mode=robustness", "robustness.choice_orders=-1"])
    assert compose(["model=minilm_l6", "task=copa", "mode=robustness"]).robustness.choice_orders is None


ONLY = "robustness.only=[identity,typo,char_double,contractions_expand,punct_spacing]"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny random BERT whose RTE predictions split about half and half: its classifier bias is moved to the
    median logit difference on the rows scored, so flips and disagreements can happen (a constant predictor
    would pass every test here whatever the code did)."""
    import torch

    from bench import models, tasks

    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={GLUE_DIR}", "data.max_eval_samples=24"])
    tok, model, _ = models.load(cfg.model, cfg.task, seed=3)
    ds = tasks.load(cfg.task, cfg.data, need_train=False)["validation"]
    model.eval()  # built from a config: in training mode, with dropout
    with torch.no_grad():
        logits = model(**tok(list(ds["sentence1"]), list(ds["sentence2"]), padding=True, return_tensors="pt")).logits
        model.classifier.weight.mul_(50.0)
        model.classifier.bias[1] -= 50.0 * float((logits[:, 1] - logits[:, 0]).median())
    out = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _run(tmp_path, ckpt, *extra, name="r", task="rte", rows=24, backends="[eager,int8]", only=ONLY):
    args = [
        *tiny("bert"),
        f"model.path={ckpt}",
        f"task={task}",
        "mode=robustness",
        f"data.dir={GLUE_DIR}",
        f"data.max_eval_samples={rows}",
        f"timing.backends={backends}",
        only,
        "robustness.bootstrap=200",
        "device.threads=1",
        *extra,
    ]  # one thread: on a shared 2-core machine two threads thrash
    if ADVGLUE.is_file():
        args.append(f"robustness.advglue={ADVGLUE.parent}")
    return run(compose(args, out_dir=str(tmp_path / name)))


def test_run_figures_recomputed_from_the_predictions_file(tmp_path, ckpt):
    r = _run(tmp_path, ckpt)
    assert r.status == "ok" and r.mode == "robustness" and r.model["weights"] == "pretrained"
    flips = [b["invariance"]["typo"]["flip_rate"]["value"] for b in r.robustness["backends"]]
    clean = [
        x["prediction"]
        for x in map(json.loads, (tmp_path / "r" / r.robustness["predictions"]).open())
        if x["set"] == "clean" and x["backend"] == "eager"
    ]
    assert 0 < sum(clean) < len(clean) and max(flips) > 0  # predictions vary, so the checks below can fail
    rows = [json.loads(x) for x in (tmp_path / "r" / r.robustness["predictions"]).read_text().splitlines()]
    by = {}
    for row in rows:
        by.setdefault((row["backend"], row["set"]), {})[row["idx"]] = row
    ref = by[("reference", "clean")]
    for b in r.robustness["backends"]:
        name = b["backend"]
        clean = by[(name, "clean")]
        idx = sorted(clean)
        assert len(idx) == 24 == b["clean_acc"]["n"]
        assert np.mean([clean[i]["prediction"] == clean[i]["label"] for i in idx]) == b["clean_acc"]["value"]
        assert r.metrics[f"{name}.acc"] == b["clean_acc"]["value"]
        assert np.mean([clean[i]["prediction"] == ref[i]["prediction"] for i in idx]) == b["loyalty"]["label"]["value"]
        pl = np.mean([1 - math.sqrt(max(_jsd2(ref[i]["probs"], clean[i]["probs"]), 0)) for i in idx])
        assert pl == pytest.approx(b["loyalty"]["probability"]["value"], abs=1e-9)
        for pname, inv in b["invariance"].items():
            pert = by.get((name, f"inv:{pname}"), {})
            assert len(pert) == inv["changed"] == inv["flip_rate"]["n"]
            if pert:
                flips = np.mean([pert[i]["prediction"] != clean[i]["prediction"] for i in pert])
                assert flips == inv["flip_rate"]["value"]
                assert np.mean([pert[i]["prediction"] == pert[i]["label"] for i in pert]) == inv["acc_after"]["value"]
                assert r.metrics[f"{name}.consistency.{pname}"] == 1 - flips
            else:
                assert inv["flip_rate"]["value"] is None and f"{name}.consistency.{pname}" not in r.metrics
        for key, adv in b["advglue"].items():
            if isinstance(adv, dict) and "acc" in adv:
                a = by[(name, f"advglue:{key}")]
                assert np.mean([x["prediction"] == x["label"] for x in a.values()]) == adv["acc"]["value"]
                assert np.mean([x["label"] == adv["majority"] for x in a.values()]) == adv["trivial"]["value"]


@pytest.mark.parametrize("task", ["sst2", "cola"])
def test_every_local_classification_task_runs(tmp_path, ckpt, task):
    """Issue 19 says every local classification task: SST-2 and CoLA read one sentence per row (the RTE tests
    cover pairs; the local GLUE copy has no 3-class task). The 2-label RTE checkpoint is a checkpoint of any
    2-label task; its clean predictions must be its own argmax on the task's one text column, scored here."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench import tasks

    r = _run(tmp_path, ckpt, task=task, rows=16, backends="[eager]", only="robustness.only=[identity,typo]")
    assert r.status == "ok" and r.task["name"] == task
    cfg = compose(["model=minilm_l6", f"task={task}", f"data.dir={GLUE_DIR}", "data.max_eval_samples=16"])
    ds = tasks.load(cfg.task, cfg.data, need_train=False)["validation"]
    columns = [c for c in ("sentence", "sentence1", "sentence2", "question") if c in ds.column_names]
    assert len(columns) == 1
    tok, model = AutoTokenizer.from_pretrained(ckpt), AutoModelForSequenceClassification.from_pretrained(ckpt)
    with torch.no_grad():
        want = [int(model(**tok(*(ds[c][i] for c in columns), return_tensors="pt")).logits.argmax()) for i in range(16)]
    rows = [json.loads(x) for x in (tmp_path / "r" / r.robustness["predictions"]).read_text().splitlines()]
    clean = {x["idx"]: x for x in rows if x["set"] == "clean" and x["backend"] == "eager"}
    assert [clean[i]["prediction"] for i in range(16)] == want
    assert [clean[i]["label"] for i in range(16)] == list(ds["label"])
    (eager,) = r.robustness["backends"]
    assert eager["clean_acc"]["n"] == 16 and eager["invariance"]["identity"]["changed"] == 16
    assert eager["invariance"]["typo"]["changed"] > 0


def test_identity_flips_nothing_and_a_checkpoint_is_loyal_to_itself(tmp_path, ckpt):
    r = _run(tmp_path, ckpt, f"robustness.reference={ckpt}")
    assert r.robustness["reference"]["checkpoint"] == str(ckpt)
    preds = {b["backend"]: b for b in r.robustness["backends"]}
    eager = preds["eager"]
    assert eager["loyalty"]["label"]["value"] == 1.0 and eager["loyalty"]["probability"]["value"] == 1.0
    for b in preds.values():
        ident = b["invariance"]["identity"]
        assert ident["changed"] == 24 and ident["flip_rate"]["value"] == 0.0  # scored twice, batch 1: exactly 0
    # the perturbation that changes no model input (BERT's tokenizer splits punctuation) is reported as such
    assert "punct_spacing" in r.robustness["unchanged"]
    assert eager["invariance"]["punct_spacing"]["flip_rate"] == {"value": None, "n": 0, "low": None, "high": None}
    assert any("punct_spacing" in n and "no flip rate" in n for n in r.notes)


def test_report_robustness_table_and_plot(tmp_path, ckpt):
    from bench.report.__main__ import build

    _run(tmp_path / "runs", ckpt, name="one")
    written = build(tmp_path / "runs", tmp_path / "report", ["md", "latex", "html"], n_boot=50)
    md = written["robustness.md"].read_text()
    assert "| rte" in md and "int8" in md and "unchanged" in md and "flip % typo" in md
    assert "Machine class: " in md and "\\begin{tabular}" in written["robustness.tex"].read_text()
    assert "id='robustness'" in written["report.html"].read_text()
    assert "accuracy_vs_flip_rate.png" in written
    # each point is labelled run/backend, with what was random in its model: the labels are in the SVG as text
    from bench import schema
    from bench.report import robustness

    recs = robustness.rows([schema.read(p) for p in (tmp_path / "runs").glob("**/result.json")])
    import xml.etree.ElementTree as ET

    svg = ET.parse(written["accuracy_vs_flip_rate.svg"])
    texts = {"".join(t.itertext()).strip() for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    labels = [robustness.point_label(r) for r in recs if r["status"] == "ok" and r["flip_pooled"] is not None]
    assert labels and all(label in texts for label in labels), (labels, texts)  # <text> elements, not outlines
    assert robustness.point_label({"run": "r/x", "model": "m", "backend": "int8", "weights": "trained"}) == "x/int8"
    label = robustness.point_label({"run": "", "model": "m", "backend": "eager", "weights": "random", "head": "random"})
    assert label == "m/eager (weights: random; head: random)"
    assert "robustness" not in written["glue.md"].read_text()  # not a GLUE row
    compile_tex(tmp_path / "report", [n for n in written if n.endswith(".tex")])  # its caption names order_*


def test_a_named_backend_that_cannot_run_here_makes_the_run_partial(tmp_path, ckpt):
    r = _run(tmp_path, ckpt, "timing.backends=[eager,fp16]", "robustness.only=[identity]", name="p")
    assert r.status == "partial" and any(f.startswith("fp16: unsupported here") for f in r.failures)
    fp16 = next(b for b in r.robustness["backends"] if b["backend"] == "fp16")
    assert fp16["status"] == "unsupported" and "CUDA" in fp16["error"] and "fp16.acc" not in r.metrics
    assert r.metrics["eager.acc"] is not None


def test_compare_gates_on_consistency_one_minus_flip_rate(tmp_path, ckpt):
    from bench import compare, schema

    r = _run(tmp_path, ckpt, "robustness.only=[identity,typo]", name="g")
    data = json.loads((tmp_path / "g" / "result.json").read_text())
    base = schema.parse(data, "base")
    worse = json.loads(json.dumps(data))
    worse["metrics"]["int8.consistency.typo"] = r.metrics["int8.consistency.typo"] - 0.05  # flips up 5 points
    rows = compare.compare([base], [schema.parse(worse, "current")], compare.Policy())
    verdicts = {row.figure: row.verdict for row in rows}
    assert verdicts["int8.consistency.typo"] == "REGRESSION" and verdicts["eager.consistency.typo"] == "ok"
    del worse["metrics"]["int8.consistency.typo"]  # the perturbation changed nothing this time: no figure
    rows = compare.compare([base], [schema.parse(worse, "current")], compare.Policy())
    assert {row.figure: row.verdict for row in rows}["int8.consistency.typo"] == "REGRESSION"  # fails closed


def test_a_backend_with_nan_outputs_fails_instead_of_scoring(tmp_path, ckpt, monkeypatch):
    """argmax of a NaN row is 0: without the check a broken backend got accuracy, loyalty 1 and an ok run."""
    import torch

    from bench.timing import backends as B

    real = B.prepare

    def broken_int8(name, model, device):
        prepared = real(name, model, device)
        if name == "int8":
            forward = prepared.forward
            prepared.forward = lambda feed: torch.full_like(torch.as_tensor(forward(feed)), float("nan"))
        return prepared

    monkeypatch.setattr(B, "prepare", broken_int8)
    r = _run(tmp_path, ckpt, "robustness.only=[identity]", name="nan")
    int8 = next(b for b in r.robustness["backends"] if b["backend"] == "int8")
    assert int8["status"] == "failed" and "non-finite" in int8["error"]
    assert r.status == "partial" and any(f.startswith("int8: failed") for f in r.failures)
    assert "int8.prob_loyalty" not in r.metrics and r.metrics["eager.acc"] is not None
