"""Machine classes, native-backend resolution, the load monitor and the isolated child's lifetime."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from conftest import AVX2, GENOA, ROOT, tiny, user_signals

from bench import env, results
from bench.report.console import describe, latency_table
from bench.timing import backends, load
from bench.timing.runner import accuracy_tiers

CPU = torch.device("cpu")


def test_machine_class_is_stable_and_tells_the_two_epyc_classes_apart(cpu_as):
    real = env.machine_class()
    assert real == env.machine_class() and "/" not in real and " " not in real
    assert env.capture()["machine_class"] == real
    cpu_as(AVX2)
    avx2 = env.machine_class(env.machine_fingerprint())
    cpu_as(GENOA)
    genoa = env.machine_class(env.machine_fingerprint())
    assert avx2 != genoa and "bf16" in genoa and "bf16" not in avx2 and "avx512" in genoa
    fp = env.machine_fingerprint({"name": "NVIDIA H200", "capability": "9.0"})
    assert env.machine_class(fp).startswith("nvidia-h200-sm90-")


def test_auto_backends_follow_the_cpu_class(cpu_as):
    cpu_as(AVX2)
    auto = backends.resolve(["auto"], CPU)
    assert auto[:2] == ["eager", "int8"] and "bf16" not in auto and "compile" not in auto
    assert backends.emulated_reason("bf16", CPU) and "emulated" in backends.emulated_reason("bf16", CPU)
    assert backends.resolve(["auto", "bf16"], CPU)[-1] == "bf16"  # named explicitly: it runs, marked emulated
    cpu_as(GENOA)
    assert "bf16" in backends.resolve(["auto"], CPU) and backends.emulated_reason("bf16", CPU) is None
    assert backends.resolve(["eager", "auto", "eager"], CPU).count("eager") == 1


def test_load_between_two_readings():
    a = load.CpuTimes(busy_s=100.0, steal_s=1.0, own_s=10.0, wall=0.0)
    quiet = load.between(a, load.CpuTimes(busy_s=101.9, steal_s=1.0, own_s=11.9, wall=1.0), cores=2)
    assert quiet["other_cores"] == 0 and not quiet["disturbed"]
    busy = load.between(a, load.CpuTimes(busy_s=102.9, steal_s=1.0, own_s=11.9, wall=1.0), cores=2)
    assert busy["other_cores"] == pytest.approx(1.0) and busy["disturbed"]
    stolen = load.between(a, load.CpuTimes(busy_s=101.0, steal_s=1.3, own_s=11.0, wall=1.0), cores=2)
    assert stolen["steal_fraction"] == pytest.approx(0.15) and stolen["disturbed"]
    assert "steal 15%" in describe(stolen) and describe(quiet) == ""


def test_a_ddp_rank_keeps_its_figures_but_is_not_judged():
    """Under torchrun the sibling ranks read as other load: a two-rank run must not be flagged (nor cleared) on
    that count; steal, which no sibling causes, still flags it."""
    from bench.engine import ranks_on_this_machine

    a = load.CpuTimes(busy_s=100.0, steal_s=1.0, own_s=10.0, wall=0.0)
    busy = load.between(a, load.CpuTimes(busy_s=102.9, steal_s=1.0, own_s=11.9, wall=1.0), cores=2)
    assert load.judged_for(busy, 1) is busy and busy["disturbed"]
    ranked = load.judged_for(busy, 2)
    assert ranked["disturbed"] is None and "1 other rank" in ranked["not_judged"]
    assert ranked["other_cores"] == busy["other_cores"] and busy["disturbed"]  # the figures stay; the input is kept
    stolen = load.between(a, load.CpuTimes(busy_s=102.0, steal_s=1.3, own_s=11.0, wall=1.0), cores=2)
    assert load.judged_for(stolen, 2)["disturbed"] is True
    assert load.judged_for({}, 2) == {}  # no /proc/stat: nothing to judge
    assert not results.trained_beside_load({"load": ranked}) and results.load_not_judged({"load": ranked})
    assert results.trained_beside_load({"load": busy}) and not results.load_not_judged({"load": busy})
    assert results.load_not_judged({"stages": [{"load": busy}, {"load": ranked}]})
    # two nodes of two ranks: /proc/stat sees the two of this node, torchrun's LOCAL_WORLD_SIZE
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCAL_WORLD_SIZE", "2")
        assert ranks_on_this_machine(4) == 2
        mp.delenv("LOCAL_WORLD_SIZE")
        assert ranks_on_this_machine(4) == 4


def test_a_busy_neighbour_is_seen():
    """A real second process spinning on a core while we wait: the monitor must see about one core of it."""
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<5: pass"])
    try:
        time.sleep(0.3)
        with load.watch() as seen:
            time.sleep(1.5)
    finally:
        spin.kill()
        spin.wait()
    assert seen["other_cores"] > 0.5 and seen["disturbed"], seen


def test_accuracy_tiers_are_mlperfs_two_targets():
    assert accuracy_tiers({"primary": 0.8996}, {"primary": 0.9})["tier"] == "99.9%"
    t = accuracy_tiers({"primary": 0.895}, {"primary": 0.9})
    assert t["tier"] == "99%" and t["meets_99"] and not t["meets_99_9"]
    assert accuracy_tiers({"primary": 0.85}, {"primary": 0.9})["tier"] == "below 99%"
    assert accuracy_tiers({"primary": 0.1}, {"primary": 0.0})["ratio"] is None


def test_tables_mark_emulated_and_disturbed_rows():
    row = {
        "backend": "bf16",
        "batch_size": 1,
        "seq_len": 128,
        "status": "ok",
        "emulated": True,
        "disturbed": True,
        "load": {
            "other_cores": 0.9,
            "steal_fraction": 0.0,
            "threshold_other_cores": 0.25,
            "threshold_steal": 0.05,
            "disturbed": True,
        },
        "latency_s": {"p50": 0.01, "p90": 0.02, "cv": 0.1, "mean": 0.01},
        "throughput": {"sequences_per_s": 100.0},
        "memory": {"peak_rss_bytes": 2**28},
    }
    eager = {**row, "backend": "eager", "emulated": False, "disturbed": False, "load": None}
    text = latency_table([{"model": {"name": "m", "weights": "random"}, "latency": [eager, row]}])
    assert "bf16 (emulated)" in text and "disturbed: other load 0.90 cores" in text


def _start_latency_run(tmp_path):
    args = [
        sys.executable,
        "-m",
        "bench",
        *tiny("bert"),
        "mode=latency",
        "timing.backends=[eager]",
        "timing.batch_sizes=[1]",
        "timing.seq_lens=[16]",
        "timing.min_seconds=120",
        "timing.calibrate=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=user_signals
    )
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until the child is inside its timed loop
        if "shape 1/1" in line or time.time() > deadline:
            break
    time.sleep(1.0)
    children = psutil.Process(proc.pid).children(recursive=True)
    measuring = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert proc.poll() is None and measuring, "the run or its measuring child is not running"
    return proc, measuring


def _gone(p: psutil.Process, within: float) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_measuring_child_at_once(sig, tmp_path):
    proc, children = _start_latency_run(tmp_path)
    path = tmp_path / "run" / "result.json"
    t0 = time.time()
    proc.send_signal(sig)
    while not path.exists() and time.time() - t0 < 30:
        time.sleep(0.02)
    recorded = time.time() - t0
    assert recorded < 2.0, f"took {recorded:.1f} s to record the interruption"  # the child ran for 120 s more
    assert json.loads(path.read_text())["status"] == "interrupted"
    assert all(_gone(c, 2.0) for c in children)
    assert proc.wait(timeout=30) == (143 if sig == signal.SIGTERM else 130)


def test_a_killed_parent_leaves_no_measuring_child(tmp_path):
    proc, children = _start_latency_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert all(_gone(c, 3.0) for c in children), [c.pid for c in children]


def test_gate_plan_picks_this_class_or_explains_the_cross_class_checks(tmp_path):
    from bench.baselines import CROSS_CLASS_TOLERANCE, classes, plan, write_machine_file

    root = tmp_path / "baselines"
    assert plan(root, "a").same_class is None and classes(root) == []
    for cls in ("genoa-bf16", "milan-avx2"):
        (root / cls).mkdir(parents=True)
        write_machine_file(root / cls, cls, {"isa": []}, {"commit": "x", "dirty": False})
    (root / ".new-123").mkdir()  # an unfinished baseline is no class
    (root / "stray").mkdir()  # nor is a folder without MACHINE.json
    assert [p.name for p in classes(root)] == ["genoa-bf16", "milan-avx2"]
    same = plan(root, "milan-avx2")
    assert same.same_class == root / "milan-avx2" and "baseline for this machine class" in same.describe()
    other = plan(root, "sapphire-amx")
    assert other.same_class is None and [p.name for p in other.other_classes] == ["genoa-bf16", "milan-avx2"]
    text = other.describe()
    assert "no baseline for this machine class sapphire-amx" in text and "Latency is not compared" in text
    assert str(CROSS_CLASS_TOLERANCE) in text


def test_a_latency_row_measured_beside_a_busy_process_is_flagged(tmp_path):
    from bench.config import compose
    from bench.runner import run

    spin = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<60: pass"])
    try:
        time.sleep(0.3)
        result = run(
            compose(
                [
                    *tiny("bert"),
                    "mode=latency",
                    "timing.backends=[eager]",
                    "timing.batch_sizes=[1]",
                    "timing.seq_lens=[16]",
                    "timing.min_seconds=1",
                    "timing.warmup_runs=2",
                    "timing.isolate=false",
                    "timing.calibrate=false",
                    "device.threads=1",
                ],
                out_dir=str(tmp_path),
            )
        )
    finally:
        spin.kill()
        spin.wait()
    row = result.latency[0]
    assert row["load"]["other_cores"] > 0.5 and row["disturbed"] is True
    assert any(n.startswith("disturbed:") for n in result.notes)
    assert "disturbed: other load" in latency_table([result.to_dict()])


def test_peak_memory_is_the_runs_own_after_a_reset_and_says_so_where_it_cannot_be(monkeypatch):
    """Benchmark jobs share one process: a run's peak must not be an earlier run's (bench.env.reset_peak_rss)."""
    import builtins

    import numpy as np

    from bench import memory

    big = np.ones(400 * 2**20 // 8)  # 400 MiB touched, then freed: the process's lifetime peak holds it
    del big
    lifetime = memory.peak_rss_mb(False)
    assert lifetime["scope"] == "process"
    if memory.reset_peak_rss():
        windowed = memory.peak_rss_mb(True)
        assert windowed["scope"] == "run" and windowed["mb"] < lifetime["mb"] - 300
    real_open = builtins.open

    def no_clear_refs(path, *a, **k):
        if str(path) == "/proc/self/clear_refs":
            raise PermissionError(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_clear_refs)
    assert memory.reset_peak_rss() is False
    assert memory.peak_rss_mb(False)["scope"] == "process"  # the lifetime peak, named as such


def test_the_window_starts_after_an_earlier_runs_freed_memory_is_handed_back():
    """An earlier run's many small allocations, freed, stayed resident in glibc's free lists: the next window's
    peak started from them. reset_peak_rss trims first (malloc_trim), so the window starts from what is in use."""
    from bench import memory

    def rss_mb() -> float:
        for line in open("/proc/self/status").read().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        pytest.skip("no /proc/self/status")

    if not memory.trim():
        pytest.skip("no malloc_trim in this C library")
    before = rss_mb()
    # ~200 MB in blocks below glibc's mmap threshold, each followed by a small block that stays: the freed blocks
    # are holes glibc cannot give back by shrinking its heap (only malloc_trim releases their pages)
    chunks, keep = [], []
    for _ in range(3000):
        chunks.append(bytearray(64 * 1024))
        keep.append(bytearray(600))  # above pymalloc's 512 bytes: from glibc's heap too
    grown = rss_mb()
    del chunks
    assert grown - before > 150
    memory.reset_peak_rss()
    assert rss_mb() < grown - 120  # handed back, not carried into the new window
    if memory.peak_rss_mb(True)["scope"] == "run":
        assert memory.peak_rss_mb(True)["mb"] < grown - 120
    assert len(keep) == 3000
