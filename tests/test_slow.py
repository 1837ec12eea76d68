"""Real pretrained model (the packaged all-MiniLM-L6-v2) on real data: minutes, run by CI (`make test-full`)."""

import json
import os
import time
from pathlib import Path

import pytest
from conftest import load_script
from safetensors.torch import load_file, save_file

from bench import compare, env, resume
from bench.config import compose
from bench.runner import run

pytestmark = pytest.mark.slow
gate_suite = load_script("gate_suite")  # the MRPC run is defined once, there


def _made_already(cfg):
    """The same run made by this very code a moment ago, if BENCH_REUSE_RUNS names where.

    CI runs the regression gate before the tests; the gate's MRPC fine-tune is exactly this run (same config,
    commit, clean tree, data checksums and library versions: the resume key says so), so the test reads its
    result instead of training the same model twice. Anywhere else the test trains."""
    roots = [Path(p) for p in os.environ.get("BENCH_REUSE_RUNS", "").split(os.pathsep) if p]
    if not roots:
        return None
    key = resume.resume_key(cfg, env.capture(), resume.config_hash(cfg))
    return resume.find_completed(roots, key)


def test_minilm_mrpc_reaches_published_recipe_quality(glue_dir, tmp_path):
    """The gate's fine-tune (fp32 and the schedule its baselines ran pinned) on the full MRPC train split must
    learn, not collapse to the majority class.

    MRPC dev's all-positive predictor scores acc 0.684 / F1 0.812; run_glue.py's recipe reaches 0.733 / 0.829
    with this model. The bar is the gate baseline's (issue #11): acc >= 0.75 and F1 >= 0.83. fp32 on every
    machine class, as the gate suite runs it (benchmarks/gate_suite.py); bf16 training, the default on the
    AVX512-BF16 class, is exercised by the SST-2 checkpoint fixture below."""
    cfg = compose([*gate_suite.FINETUNE, f"data.dir={glue_dir}"], out_dir=str(tmp_path))  # the gate's own run
    done = _made_already(cfg)
    if done:
        print(f"reusing {done}: the identical run (same resume key), made by this commit")
    else:
        run(cfg)
    result = json.loads((done or tmp_path / "result.json").read_text())
    metrics = result["metrics"]
    print(f"minilm_l6 MRPC: {metrics}, train {result['train']['seconds']:.0f} s ({result['train']['precision']})")
    assert result["status"] == "ok"
    assert metrics["acc"] >= 0.75 and metrics["f1"] >= 0.83
    assert result["task"]["splits"] == {"train": 3668, "validation": 408}
    assert result["model"]["weights"] == "pretrained" and result["model"]["source"] == "package"


def _trivial_f1(squad_dir, n_articles_train: int, n_questions: int) -> dict:
    """Trivial readers on the same questions: the context's first three words, and its first sentence."""
    from bench.tasks import squad_metrics

    articles = json.loads((squad_dir / "dev-v1.1.json").read_text())["data"][n_articles_train:]
    rows = [(p["context"], qa) for a in articles for p in a["paragraphs"] for qa in p["qas"]][:n_questions]
    golds = {qa["id"]: [x["text"] for x in qa["answers"]] for _, qa in rows}
    guesses = {
        "first_three_words": {qa["id"]: " ".join(c.split()[:3]) for c, qa in rows},
        "first_sentence": {qa["id"]: c.split(". ")[0] for c, qa in rows},
    }
    return {name: squad_metrics.evaluate(g, golds)["f1"] for name, g in guesses.items()}


def test_minilm_squad_v1_split_by_article(squad_dir, tmp_path):
    """The first 38 articles of the v1.1 dev file to train (1500 questions, 1 epoch), 1000 questions of the other 10
    to evaluate, in windows of 256 tokens (stride 96), batch 8 (more updates per token in a short budget).

    Measured on the AVX2 class (fp32): EM 0.167 / F1 0.307 in 350 s. The assertion is relative to trivial readers
    on the same 1000 questions (first three context words, first sentence: F1 ~0.07 / ~0.11), so it proves
    reading, not formatting."""
    t0 = time.perf_counter()
    result = run(
        compose(
            [
                "model=minilm_l6",
                "task=squad_v1",
                f"data.dir={squad_dir}",
                "data.split_by_article=38",
                "data.max_train_samples=1500",
                "data.max_eval_samples=1000",
                "train.epochs=1",
                "train.batch_size=8",
                "train.learning_rate=1e-4",
                "train.max_seq_length=256",
                "task.doc_stride=96",
            ],
            out_dir=str(tmp_path),
        )
    )
    trivial = _trivial_f1(squad_dir, 38, 1000)
    print(
        f"minilm_l6 SQuAD v1.1 (38/10 articles): {result.metrics}, trivial {trivial}, {time.perf_counter() - t0:.0f} s"
    )
    assert result.task["splits"] == {"train": 1500, "validation": 1000}
    assert max(trivial.values()) < 0.15
    assert result.metrics["f1"] >= 2 * max(trivial.values()) and result.metrics["f1"] >= 0.24
    # and beyond noise above the result's own best trivial predictor (the overlap sentence, F1 0.209 here)
    best = result.trivial["vs_best"]
    assert best["best"] == "overlap sentence" and best["beats_trivial"], best
    ours = result.trivial["predictors"]["first 3 words"]["metrics"]["f1"]
    assert ours == pytest.approx(trivial["first_three_words"])  # the harness's predictor, worked out apart here
    assert result.metrics["exact_match"] >= 0.12
    preds = json.loads((tmp_path / "predictions.json").read_text())
    assert len(preds) == 1000


@pytest.fixture(scope="module")
def sst2_checkpoint(tmp_path_factory):
    from conftest import GLUE_DIR

    if not GLUE_DIR.is_dir():
        pytest.skip("real GLUE data not present")
    out = tmp_path_factory.mktemp("sst2")
    result = run(
        compose(
            [
                "model=minilm_l6",
                "task=sst2",
                f"data.dir={GLUE_DIR}",
                "data.max_train_samples=8000",
                "train.epochs=1",
                "train.save_checkpoint=true",
            ],
            out_dir=str(out / "train"),
        )
    )
    assert result.metrics["acc"] > 0.75
    return out / "train" / "checkpoint"


def test_backends_report_their_accuracy_cost(sst2_checkpoint, glue_dir, tmp_path):
    result = run(
        compose(
            [
                "model=minilm_l6",
                f"model.path={sst2_checkpoint}",
                "task=sst2",
                f"data.dir={glue_dir}",
                "mode=latency",
                "timing.backends=[auto]",
                "timing.with_accuracy=true",
                "timing.batch_sizes=[1]",
                "timing.seq_lens=[128]",
                "timing.min_seconds=1",
            ],
            out_dir=str(tmp_path),
        )
    )
    facts = result.timing["backends"]
    print({name: (b["accuracy"]["acc"], b.get("accuracy_change", {}).get("acc")) for name, b in facts.items()})
    assert facts["eager"]["accuracy"]["acc"] > 0.75
    assert {"eager", "int8"} <= set(facts) and set(facts) == set(result.timing["backends_resolved"])
    for name in set(facts) - {"eager"}:
        # compressed, not broken: within 2 points of fp32 on SST-2 dev (872 rows; MLPerf's 99% tier is ~0.9)
        assert abs(facts[name]["accuracy_change"]["acc"]) <= 0.02, (name, facts[name]["accuracy_change"])
        tiers = facts[name]["accuracy_tiers"]
        assert tiers["meets_99"] == (tiers["ratio"] >= 0.99) and tiers["tier"] in ("99.9%", "99%", "below 99%")
    assert facts["eager"]["accuracy_tiers"]["tier"] == "99.9%"  # the reference against itself
    # the deployers' graphs keep the fp32 predictions: fused fp32 to 99.9%, its int8 quantisation to MLPerf's 99%
    if "onnxruntime_fused" in facts:
        assert facts["onnxruntime_fused"]["accuracy_tiers"]["meets_99_9"], facts["onnxruntime_fused"]
        # int8 of the fused graph is held to the 2-point bound above, not to MLPerf's 99% tier: measured on the
        # AVX512-BF16 class it keeps 98.7% (SST-2 dev 79.0 against 80.0), below that tier (docs/backends.md)
        assert facts["onnxruntime_fused"]["build"]["fused_ops"]["Attention"] == 6  # MiniLM-L6: every layer
    assert result.metrics["acc"] == facts["eager"]["accuracy"]["acc"]
    rows = {r["backend"]: r for r in result.latency}
    # the timed batch's prediction is the fp32 model's, and its logits stay close to fp32's
    assert rows["int8"]["agreement_vs_fp32"]["argmax_agreement"] == 1.0, rows["int8"]["agreement_vs_fp32"]
    assert rows["int8"]["agreement_vs_fp32"]["max_rel_diff"] < 0.25, rows["int8"]["agreement_vs_fp32"]
    assert facts["int8"]["weight_bytes"] < facts["eager"]["weight_bytes"]


def test_gate_catches_a_corrupted_checkpoint(sst2_checkpoint, glue_dir, tmp_path):
    """The same checkpoint evaluated twice is deterministic (green); with its classifier negated, red."""
    args = ["model=minilm_l6", "task=sst2", "mode=evaluate", f"data.dir={glue_dir}"]
    base = run(compose([*args, f"model.path={sst2_checkpoint}"], out_dir=str(tmp_path / "base")))
    again = run(compose([*args, f"model.path={sst2_checkpoint}"], out_dir=str(tmp_path / "again")))
    assert base.metrics == again.metrics  # fixed checkpoint, CPU: bit-for-bit the same metrics
    bad = tmp_path / "corrupt"
    bad.mkdir()
    for f in sst2_checkpoint.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(bad / "model.safetensors"))
    weights["classifier.weight"] = -weights["classifier.weight"]
    weights["classifier.bias"] = -weights["classifier.bias"]
    save_file(weights, str(bad / "model.safetensors"), metadata={"format": "pt"})
    run(compose([*args, f"model.path={bad}"], out_dir=str(tmp_path / "cur")))
    assert compare.main([str(tmp_path / "base"), str(tmp_path / "again")]) == 0
    assert compare.main([str(tmp_path / "base"), str(tmp_path / "cur")]) == 1
