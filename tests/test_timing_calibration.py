"""The GEMM calibration that each backend's % of peak stands against: its arithmetic, its load watch, its agreement
with a bare matmul loop, and the % of peak per backend and CPU class (both classes' branches on every machine)."""

import time

import pytest
import torch
from conftest import tiny
from test_timing import FAST, calibrated

from bench.config import compose
from bench.runner import run
from bench.timing import backends, measure


# calibration runs in the parent, so the faked flags decide it: both branches (bf16 peak calibrated where bf16 is
# native, none where it is emulated) run on every machine
@pytest.mark.parametrize("cpu_class", ["avx2", "avx512-bf16"])
def test_isolated_child_process_and_calibration(cpu_class, tmp_path, cpu_as):
    from conftest import AVX2, GENOA

    cpu_as(GENOA if cpu_class == "avx512-bf16" else AVX2)
    cfg = compose(
        [
            *tiny("bert"),
            "mode=latency",
            "timing.min_seconds=0",
            "timing.min_iterations=3",
            "timing.warmup_runs=1",
            "timing.batch_sizes=[1]",
            "timing.seq_lens=[8]",
            "timing.backends=[eager]",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    assert result.latency[0]["status"] == "ok"
    assert result.timing["backends"]["eager"]["peak_rss_process_bytes"] > 0  # measured in the child
    calibrated(result)
    cal = result.timing["calibration"]
    assert cal["gemm_fp32_flops_per_s"] > 1e9
    # a bf16 peak is calibrated only where bf16 is native: an emulated "peak" is not one (issue #10)
    assert ("gemm_bf16_autocast_flops_per_s" in cal) is (cpu_class == "avx512-bf16")
    assert 0 < result.latency[0]["pct_of_gemm_peak"] < 100


@pytest.mark.parametrize("disturbed_tries", [0, 1, 2])
def test_a_calibration_disturbed_by_other_load_is_measured_again_then_given_up(disturbed_tries, tmp_path, monkeypatch):
    """A GEMM peak measured while another process held a core is too low and every % of it too high: the load
    is watched over the calibration, a disturbed one is measured again once, and two disturbed ones leave no
    % of peak (the rows and the notes say why). The load is faked; the run, its model and its timing are real."""
    from contextlib import contextmanager

    from bench.timing import load

    calls, real_watch = [], load.watch

    def calibrate(device, native_bf16=True):
        calls.append(device)
        return {"gemm_fp32_flops_per_s": 1e12}

    @contextmanager
    def watch():
        before = len(calls)
        with real_watch() as figures:
            yield figures
        if len(calls) > before:  # this block held a calibration: busy or quiet as the case fakes it, whatever ran
            busy = len(calls) <= disturbed_tries
            figures.update(other_cores=1.0 if busy else 0.0, steal_fraction=0.0, disturbed=busy)

    monkeypatch.setattr(measure, "calibrate", calibrate)
    monkeypatch.setattr(load, "watch", watch)
    flags = [a for a in FAST if a != "timing.calibrate=false"] + ["timing.calibrate=true"]
    cfg = compose([*tiny("bert"), *flags, "timing.batch_sizes=[1]", "timing.seq_lens=[8]"], out_dir=str(tmp_path))
    result = run(cfg)
    row = result.latency[0]
    assert row["status"] == "ok" and len(calls) == min(disturbed_tries + 1, 2)
    assert result.timing["calibration_load"]["disturbed"] is (disturbed_tries == 2)
    if disturbed_tries < 2:
        assert row["pct_of_gemm_peak"] > 0 and result.timing["calibration"] == {"gemm_fp32_flops_per_s": 1e12}
    else:
        assert "pct_of_gemm_peak" not in row and result.timing["calibration"] == {}
        assert row["peak_note"].startswith("no % of peak: the GEMM calibration was disturbed (2 tries")
        assert any("calibration was disturbed" in n for n in result.notes)


def test_gemm_peak_is_the_best_rate_over_its_shapes(monkeypatch):
    """The arithmetic of the calibration, on known call times: 2*m*k*n FLOPs per matmul, the best shape's rate."""
    times = {1024 * 1024: 0.010, 1024 * 3072: 0.020}  # (m, n) -> best seconds of one call
    seen = []

    def best_time(fn, device, seconds):
        out = fn()
        seen.append((tuple(out.shape), seconds))
        return times[out.shape[0] * out.shape[1]]

    monkeypatch.setattr(measure, "_best_time", best_time)
    rate = measure.gemm_peak(torch.device("cpu"), torch.float32, seconds=1.0)
    assert seen == [((1024, 1024), 0.5), ((1024, 3072), 0.5)]  # each shape gets its share of the time
    assert rate == pytest.approx(max(2 * 1024**3 / 0.010, 2 * 1024 * 768 * 3072 / 0.020))
    assert measure.gemm_peak(torch.device("cpu"), torch.float32, shapes=((1024, 1024, 1024),)) == pytest.approx(
        2 * 1024**3 / 0.010
    )


def test_gemm_calibration_agrees_with_a_bare_matmul_loop():
    """The calibrated fp32 peak is what a plain timed torch.matmul loop reaches (best call of many). Two timings
    side by side: not judged (skipped) when other processes used the CPU meanwhile."""
    from bench.timing import load

    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        torch.matmul(a, b)
    with load.watch() as figures:
        best, t_end = float("inf"), time.perf_counter() + 1.0
        while time.perf_counter() < t_end:
            t = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t)
        bare = 2 * n**3 / best
        peak = measure.gemm_peak(torch.device("cpu"), torch.float32, seconds=1.0, shapes=((n, n, n),))
        default = measure.gemm_peak(torch.device("cpu"), torch.float32, seconds=1.0)
    if figures.get("disturbed"):
        pytest.skip(f"other processes used the CPU while the two were timed: {figures}")
    assert 0.67 < peak / bare < 1.5, (peak, bare)
    # the default calibration takes the best of its shapes: never below the square one's rate by much
    assert default > 0.67 * bare


def test_no_torch_backend_exceeds_its_gemm_peak_unflagged(tmp_path):
    """TinyBERT-4L at batch 8 x seq 128 keeps the GEMMs busy; its % of peak must stay a percentage, or say it is
    not one (a neighbour can slow the calibration unseen: that case is faked below, every time)."""
    cfg = compose(
        [
            "model=tinybert_4l",
            "model.pretrained=false",
            "mode=latency",
            "timing.backends=[auto]",
            "timing.batch_sizes=[8]",
            "timing.seq_lens=[128]",
            "timing.min_seconds=0.5",
            "timing.min_iterations=3",
            "timing.warmup_runs=1",
            "timing.isolate=false",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    calibrated(result)
    rows = {r["backend"]: r for r in result.latency}
    assert rows["eager"]["status"] == "ok" and rows["eager"]["pct_of_gemm_peak"] > 1
    for name, row in rows.items():
        if row.get("pct_of_gemm_peak") is not None:
            # above 100 only after a second calibration, and then flagged and named (the noisy-neighbour case)
            over = row["pct_of_gemm_peak"] > 100
            assert row["pct_of_gemm_peak"] < (150 if over else 105), (name, row["pct_of_gemm_peak"], result.timing)
            assert row.get("peak_exceeded", False) is over, (name, row["pct_of_gemm_peak"], result.timing)
            assert not over or any(f"{name} b8 s128" in n for n in result.notes)
            assert not over or result.timing["calibration_recheck"]["still_over"] > 0
        elif row["status"] == "ok":  # no percentage, and the row says why
            assert name in ("int8", "bf16", *backends.exported.CPU_RUNTIMES), name
            assert row["peak_note"].startswith("no % of peak")
    assert result.timing["backends_resolved"] == list(rows)


@pytest.mark.parametrize("second_peak", [1e6, 1e15])
def test_a_row_above_its_peak_recalibrates_then_flags(second_peak, tmp_path, monkeypatch):
    """A calibration slower than the model's own matmuls (faked: 1 MFLOP/s) puts a row above 100 % of peak: the
    peak is measured again, each kept as the better of the two; a fast second one clears the row, a slow one
    leaves it flagged in the result, its notes and the console table. The run and its timing are real."""
    from contextlib import contextmanager

    from bench.report.console import latency_frame
    from bench.timing import load

    calls, real_watch = [], load.watch

    def calibrate(device, native_bf16=True):
        calls.append(device)
        return {"gemm_fp32_flops_per_s": 1e6 if len(calls) == 1 else second_peak}

    @contextmanager
    def watch():  # a faked calibration lasts microseconds: one tick of another process must not read as load
        before = len(calls)
        with real_watch() as figures:
            yield figures
        if len(calls) > before:
            figures.update(other_cores=0.0, steal_fraction=0.0, disturbed=False)

    monkeypatch.setattr(measure, "calibrate", calibrate)
    monkeypatch.setattr(load, "watch", watch)
    flags = [a for a in FAST if a != "timing.calibrate=false"] + ["timing.calibrate=true"]
    cfg = compose([*tiny("bert"), *flags, "timing.batch_sizes=[1]", "timing.seq_lens=[8]"], out_dir=str(tmp_path))
    result = run(cfg)
    row, recheck = result.latency[0], result.timing["calibration_recheck"]
    assert len(calls) == 2 and recheck["first"] == {"gemm_fp32_flops_per_s": 1e6}
    assert result.timing["calibration"] == {"gemm_fp32_flops_per_s": second_peak}
    assert row["pct_of_gemm_peak"] == pytest.approx(100 * row["achieved_flops_per_s"] / second_peak)
    flagged = second_peak == 1e6
    assert row.get("peak_exceeded", False) is flagged and recheck["still_over"] == int(flagged)
    assert any("above 100 (eager b1 s8) after a second calibration:" in n for n in result.notes) is flagged
    assert ("% unsound" in latency_frame([result.to_dict()])["flags"][0]) is flagged


# the bf16 row's % of peak on both CPU classes, whichever this machine is: against a calibrated bf16 peak where
# bf16 is native, none (and the row says why) where it is emulated; the test above sees only this machine's branch
@pytest.mark.parametrize("cpu_class", ["avx2", "avx512-bf16"])
def test_bf16_percent_of_peak_follows_the_cpu_class(cpu_class, tmp_path, cpu_as):
    from conftest import AVX2, GENOA

    cpu_as(GENOA if cpu_class == "avx512-bf16" else AVX2)
    cfg = compose(
        [
            "model=tinybert_4l",
            "model.pretrained=false",
            *FAST,
            "timing.backends=[eager,bf16]",
            "timing.calibrate=true",
            "timing.batch_sizes=[8]",
            "timing.seq_lens=[32]",
            "timing.min_iterations=3",
            "timing.warmup_runs=1",
        ],
        out_dir=str(tmp_path),
    )
    result = run(cfg)
    calibrated(result)
    rows = {r["backend"]: r for r in result.latency}
    cal = result.timing["calibration"]
    bf16 = rows["bf16"]
    assert bf16["status"] == "ok" and 0 < rows["eager"]["pct_of_gemm_peak"] < 105
    if cpu_class == "avx512-bf16":
        assert not bf16["emulated"] and bf16["gemm_peak_key"] == "gemm_bf16_autocast_flops_per_s"
        assert 0 < bf16["pct_of_gemm_peak"] < 105, (bf16["pct_of_gemm_peak"], cal)
    else:
        assert bf16["emulated"] and "gemm_bf16_autocast_flops_per_s" not in cal
        assert "pct_of_gemm_peak" not in bf16 and bf16["peak_note"].startswith("no % of peak: "), bf16
        assert "emulated" in bf16["peak_note"] or "AVX512" in bf16["peak_note"], bf16["peak_note"]
