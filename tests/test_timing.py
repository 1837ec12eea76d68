import json
import time

import numpy as np
import pytest
import torch
from conftest import tiny

from bench import env
from bench.config import BACKENDS, compose
from bench.errors import ConfigError
from bench.runner import run
from bench.timing import backends, measure
from bench.timing.stats import Latency

FAST = [
    "mode=latency",
    "timing.min_seconds=0",
    "timing.min_iterations=5",
    "timing.warmup_runs=2",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.backends=[eager]",
]


def calibrated(result) -> None:
    """Before a check of % of peak: skip it where both calibrations were disturbed by other load (the run then
    keeps no peak, by design: bench/timing/peak.py `calibrate`, tested on its own below)."""
    figures = (result.timing or {}).get("calibration_load") or {}
    if figures.get("disturbed"):
        pytest.skip(f"the GEMM calibration was disturbed by other load in both tries: {figures}")


def test_latency_statistics_on_known_samples():
    lat = Latency.from_values([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert lat.count == 100 and lat.mean == pytest.approx(0.0505)
    assert lat.p50 == pytest.approx(0.0505) and lat.p90 == pytest.approx(0.0901) and lat.p99 == pytest.approx(0.09901)
    assert lat.stdev == pytest.approx(np.std(np.arange(1, 101) / 1000, ddof=1))
    assert lat.cv == pytest.approx(lat.stdev / lat.mean) and lat.min == 0.001 and lat.max == 0.1
    assert lat.throughput(8, 1024) == pytest.approx({"sequences_per_s": 8 / 0.0505, "tokens_per_s": 1024 / 0.0505})
    skewed = Latency.from_values([0.01, 0.01, 0.01, 0.05])  # mean 20 ms, median 10 ms: throughput is per mean
    assert skewed.throughput(1, 100) == pytest.approx({"sequences_per_s": 50.0, "tokens_per_s": 5000.0})
    one = Latency.from_values([0.5])
    assert one.stdev == 0 and one.cv == 0
    with pytest.raises(ValueError):
        Latency.from_values([])
    with pytest.raises(ValueError):
        Latency.from_values([0.1, float("nan")])
    assert Latency.from_dict(lat.to_dict()) == lat


def test_timed_loop_honours_iterations_and_seconds():
    calls = []
    lat = measure.time_calls(
        lambda: calls.append(1), torch.device("cpu"), min_iterations=7, min_seconds=0.0, max_iterations=100
    )
    assert lat.count == 7 == len(calls)
    t0 = time.perf_counter()
    lat = measure.time_calls(
        lambda: None, torch.device("cpu"), min_iterations=1, min_seconds=0.05, max_iterations=10**9
    )
    # one iteration was asked for; the loop went on until 0.05 s had passed
    assert time.perf_counter() - t0 >= 0.05 and lat.count > 10
    with pytest.raises(ConfigError, match="timing.max_iterations=0 is below timing.min_iterations"):
        compose(["timing.max_iterations=0"])
    assert measure.time_calls(lambda: None, torch.device("cpu"), 1, 60.0, max_iterations=3).count == 3


def test_backend_names_agree_with_the_config_schema():
    assert sorted(backends.BACKENDS) == sorted(BACKENDS)
    with pytest.raises(ConfigError, match="timing.backends"):
        compose(["timing.backends=[eager,tensorrt]"])


# Every architecture family on the machine as it is, and bert on each CPU class with the other one faked, so
# that both the native-bf16 and the emulated-bf16 branch (and VNNI's int8 note) run on every machine.
@pytest.mark.parametrize(
    "family,cpu_class", [("bert", "avx2"), ("bert", "avx512-bf16"), ("mobilebert", None), ("distilbert", None)]
)
def test_every_backend_on_tiny_models(family, cpu_class, tmp_path, cpu_as):
    from conftest import AVX2, GENOA

    if cpu_class is not None:
        cpu_as(GENOA if cpu_class == "avx512-bf16" else AVX2)
    native, vnni = env.cpu_has_native_bf16(), env.cpu_has_vnni()
    fast = [o for o in FAST if not o.startswith("timing.calibrate=")]
    cfg = compose(
        [
            *tiny(family),
            *fast,
            "timing.calibrate=true",
            f"timing.backends=[{','.join(BACKENDS)}]",
            "timing.batch_sizes=[1,2]",
            "timing.seq_lens=[16]",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    rows = {(r["backend"], r.get("batch_size")): r for r in result.latency}
    cpu_ok = {"eager", "bf16", "int8", "compile"}
    for name in cpu_ok:
        for b in (1, 2):
            row = rows[(name, b)]
            assert row["status"] == "ok", row
            assert row["latency_s"]["count"] >= 5 and row["latency_s"]["p50"] > 0
            assert row["throughput"]["sequences_per_s"] == pytest.approx(b / row["latency_s"]["mean"])
            assert row["flops"] > 0 and row["memory"]["peak_rss_bytes"] > 50 * 2**20
    assert rows[("fp16", None)]["status"] == "unsupported" and "CUDA" in rows[("fp16", None)]["error"]
    # bf16 named explicitly runs everywhere, and is marked emulated exactly where the CPU lacks it
    assert rows[("bf16", 1)]["emulated"] is (not native) and result.timing["backends"]["bf16"]["emulated"] is (
        not native
    )
    assert any(n.startswith("bf16 (emulated)") for n in result.notes) is (not native)
    # a % of the GEMM peak only where that peak is a real one: calibrated bf16 where native, never when emulated
    calibrated(result)
    calibration = result.timing["calibration"]
    assert ("gemm_bf16_autocast_flops_per_s" in calibration) is native
    assert ("pct_of_gemm_peak" in rows[("bf16", 1)]) is native
    if not native:
        assert "emulated" in rows[("bf16", 1)]["peak_note"]
    assert "pct_of_gemm_peak" in rows[("eager", 1)] and "pct_of_gemm_peak" not in rows[("int8", 1)]
    assert ("no VNNI" in result.timing["backends"]["int8"]["note"]) is (not vnni)
    onnx = rows.get(("onnxruntime", 1)) or rows[("onnxruntime", None)]
    import importlib.util

    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):  # the [onnx] extra
        assert onnx["status"] == "ok" and onnx["agreement_vs_fp32"]["max_rel_diff"] < 1e-4
    else:
        assert onnx["status"] == "unsupported" and "pip install" in onnx["error"]
    facts = result.timing["backends"]
    assert facts["int8"]["weight_bytes"] < facts["eager"]["weight_bytes"]  # int8 Linear weights are smaller
    assert result.model["weights"] == "random" and any("weights: random" in n for n in result.notes)
    saved = json.loads((tmp_path / "result.json").read_text())
    # fp16 was asked for by name and cannot run on a CPU: the run is partial, and says which backend failed
    assert saved["status"] == "partial" and len(saved["latency"]) == len(result.latency)
    assert any(f.startswith("fp16: unsupported") for f in saved["failures"])


def test_flops_match_the_matmul_arithmetic():
    """BERT's FLOPs per token are dominated by 2 * (params in Linear layers); check the tracer against that."""
    from bench import models

    cfg = compose(tiny("bert"))
    model = models.build_random(cfg.model, cfg.task).eval()
    b, s = 2, 16
    batch = {"input_ids": torch.ones(b, s, dtype=torch.long), "attention_mask": torch.ones(b, s, dtype=torch.long)}
    h, layers, ffn = 32, 2, 64
    linear_per_token = layers * (4 * h * h + 2 * h * ffn)  # Q, K, V, O and the two FFN matrices
    attention = layers * 2 * (s * s * h)  # QK^T and attention x V, per sequence
    expected = 2 * (b * s * linear_per_token + b * attention) + 2 * b * (h * h + h * 2)  # + pooler and classifier
    assert measure.count_flops(model, batch) == expected


def test_failing_shape_is_recorded_and_the_grid_goes_on(tmp_path):
    # seq 600 is longer than the 512 position embeddings: that shape fails, the others run. A run refuses it up
    # front (tests/test_shapes.py); the latency mode itself, past that check, stands for a shape failing at run time
    from bench.runner import MODES

    cfg = compose([*tiny("bert"), *FAST, "timing.seq_lens=[16,600]", "timing.batch_sizes=[1]"], out_dir=str(tmp_path))
    by_seq = {r["seq_len"]: r for r in MODES["latency"](cfg)["latency"]}
    assert by_seq[16]["status"] == "ok"
    assert by_seq[600]["status"] == "failed" and by_seq[600]["error"]


def test_memory_figures_are_positive_and_sane(tmp_path):
    cfg = compose([*tiny("bert"), *FAST, "timing.batch_sizes=[1]", "timing.seq_lens=[16]"], out_dir=str(tmp_path))
    result = run(cfg)
    row, facts = result.latency[0], result.timing["backends"]["eager"]
    assert 0 < facts["rss_baseline_bytes"] <= facts["rss_after_load_bytes"] <= row["memory"]["peak_rss_bytes"] * 1.05
    assert row["memory"]["peak_rss_bytes"] < 8 * 2**30
    n_params = result.model["parameters"]
    assert facts["weight_bytes"] >= 4 * n_params  # fp32 weights (plus buffers)


def test_real_task_inputs_report_their_lengths(glue_dir, tmp_path):
    cfg = compose(
        [
            *tiny("bert"),
            *FAST,
            "task=mrpc",
            f"data.dir={glue_dir}",
            "timing.inputs=task",
            "timing.batch_sizes=[4]",
            "timing.seq_lens=[128]",
        ],
        out_dir=str(tmp_path),
    )
    row = run(cfg).latency[0]
    lengths = row["input_lengths"]
    assert row["status"] == "ok" and lengths["examples"] == 64  # 16 batches of 4
    assert 10 < lengths["mean"] < 128 and lengths["max"] <= 128
    assert row["tokens_per_batch"] < 4 * 128
    # the FLOPs are those of the batches the latency averages over, not of the first batch alone
    from bench import models
    from bench.timing import reference

    tokenizer, model, _ = models.load(cfg.model, cfg.task, seed=cfg.train.seed)
    batches = reference.shape_batches(cfg, tokenizer, backends.accepted_inputs(model), 4, 128)
    per_batch = [measure.count_flops(model, b) for b in batches]
    assert len(set(per_batch)) > 1 and row["flops"] == pytest.approx(np.mean(per_batch))


def _with_overflowing_bf16(glue_dir, tmp_path, monkeypatch, spoils) -> dict:
    """A latency run (eager and the real bf16 backend of a real tiny model, scored on RTE's dev rows) whose bf16
    logits turn NaN, as an overflow would, on the outputs for which `spoils(out)` is true."""
    from bench.timing import runner

    real = backends.prepare

    def overflowing(name, model, device):
        prepared = real(name, model, device)
        if name == "bf16":
            forward = prepared.forward
            prepared.forward = lambda ready: (lambda out: out * float("nan") if spoils(out) else out)(
                forward(ready).float()
            )
        return prepared

    monkeypatch.setattr(backends, "prepare", overflowing)
    cfg = compose(
        [
            *tiny("bert"),
            *FAST,
            "task=rte",
            f"data.dir={glue_dir}",
            "data.max_eval_samples=40",
            "timing.backends=[eager,bf16]",
            "timing.with_accuracy=true",
            "timing.batch_sizes=[2]",
            "timing.seq_lens=[16]",
        ],
        out_dir=str(tmp_path),
    )
    return runner.run(cfg)


def test_a_backend_whose_logits_overflow_fails_instead_of_keeping_its_tier(glue_dir, tmp_path, monkeypatch):
    """NaN logits have an argmax (class 0) all the same: scored, a backend that overflowed (fp16 on MobileBERT)
    kept 99.9 % of fp32's accuracy. Here every bf16 output turns NaN: the backend fails, saying why, and no
    agreement or tier is published for it."""
    result = _with_overflowing_bf16(glue_dir, tmp_path, monkeypatch, lambda out: True)
    facts = result["timing"]["backends"]
    assert facts["eager"]["status"] == "ok" and facts["eager"]["accuracy"]["primary"] is not None
    assert facts["bf16"]["status"] == "failed" and "NaN or infinite" in facts["bf16"]["reason"]
    assert "accuracy_tiers" not in facts["bf16"]
    row = next(r for r in result["latency"] if r["backend"] == "bf16")
    assert row["status"] == "failed" and "NaN" in row["error"]


def test_a_backend_finite_on_its_timed_shapes_but_not_on_the_dev_set_fails_and_keeps_its_timings_apart(
    glue_dir, tmp_path, monkeypatch
):
    """An overflow on the dev set's 32-row batches only: the backend fails (no speed of producing garbage), and
    the shapes timed before it are kept in its facts as `timed_before_failure` (they were dropped), never as rows."""
    result = _with_overflowing_bf16(glue_dir, tmp_path, monkeypatch, lambda out: out.shape[0] > 2)
    facts = result["timing"]["backends"]
    assert facts["bf16"]["status"] == "failed" and "NaN or infinite" in facts["bf16"]["reason"]
    assert "timing.backends.bf16.timed_before_failure" in facts["bf16"]["reason"]
    kept = facts["bf16"]["timed_before_failure"]
    assert [(s["batch_size"], s["seq_len"], s["status"]) for s in kept] == [(2, 16, "ok")]
    assert kept[0]["latency_s"]["mean"] > 0 and kept[0]["agreement_vs_fp32"]["argmax_agreement"] is not None


def test_agreement_refuses_non_finite_logits():
    from bench.errors import NonFiniteOutputError
    from bench.timing import reference
    from bench.timing.prepared import Prepared

    logits = torch.tensor([[0.5, 1.0], [float("inf"), 0.0]])
    prepared = Prepared(lambda b: b, lambda ready: logits, 0, "fp16")
    with pytest.raises(NonFiniteOutputError, match=r"row 1 of it"):
        reference.agreement(torch.zeros(2, 2), prepared, None)
    prepared.forward = lambda ready: logits.nan_to_num(posinf=2.0)
    assert reference.agreement(torch.zeros(2, 2), prepared, None)["argmax_agreement"] == 0.5
