"""Exit codes and records as a user or CI sees them: signals, sweeps whose jobs fail, reruns, kills mid-write."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli, tiny, user_signals

LATENCY = [
    "mode=latency",
    "timing.backends=[eager]",
    "timing.batch_sizes=[1]",
    "timing.seq_lens=[8]",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.flops=false",
    "timing.warmup_runs=1",
]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_is_recorded_and_exits_with_its_code(tmp_path, sig, code):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            *tiny("bert"),
            *LATENCY,
            "timing.min_seconds=120",
            "timing.max_iterations=100000000",
            f"hydra.run.dir={out}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=user_signals,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / ".bench-claim").exists():  # the run has started
        time.sleep(0.2)
    time.sleep(4)  # into the measurement
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted"


def test_a_sweep_whose_jobs_fail_before_they_start_exits_non_zero(tmp_path):
    p = run_cli("-m", *tiny("bert"), "train.warmup=1.5,2.0", f"hydra.sweep.dir={tmp_path / 's'}", timeout=300)
    assert p.returncode == 6, p.stderr[-2000:]
    results = [json.loads(f.read_text()) for f in sorted((tmp_path / "s").glob("*/result.json"))]
    assert [r["status"] for r in results] == ["failed", "failed"]
    assert all("train.warmup" in r["error"]["message"] for r in results)
    assert "sweep: 2 failed" in p.stdout


def test_a_sweep_run_twice_into_its_folder_skips_what_completed(tmp_path):
    args = [
        "-m",
        *tiny("bert"),
        *LATENCY,
        "timing.min_seconds=0",
        "timing.min_iterations=2",
        "timing.seq_lens=[8],[16]",
        f"hydra.sweep.dir={tmp_path / 's'}",
        f"bench.resume_dir={tmp_path / 'none'}",
    ]
    first = run_cli(*args, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "sweep: 2 ok" in first.stdout
    second = run_cli(*args, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "already exists" not in second.stderr
    assert "sweep: 2 already complete" in second.stdout and "ok" not in second.stdout.split("sweep:")[1].split("\n")[0]


WRITER = """
import sys
from pathlib import Path
from bench.results import publish_new
publish_new(Path(sys.argv[1]) / "result.json", "x" * (400 * 2**20))
"""


def test_kill_9_during_the_write_leaves_no_result(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".result.json.*.tmp")):
        time.sleep(0.001)
    alive = proc.poll() is None  # the writer is inside its write window: the temporary file exists
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert alive and proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "result.json").exists()  # readers look for this name only: never a half file


def test_a_job_in_a_sweep_worker_marks_itself_while_it_runs(tmp_path, monkeypatch):
    """The mark is how the sweep's main process finds the jobs to forward a signal to (bench/signals.py)."""
    import os

    from bench import signals

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    monkeypatch.setattr(signals, "_state", signals._State())
    try:
        monkeypatch.setenv(signals.JOBS_ENV, f"{os.getppid()}:{tmp_path}")  # as a child of the sweep's process
        with signals.job():
            assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())]
            assert signals._running(tmp_path) == {os.getpid()}
        assert list(tmp_path.iterdir()) == []
        signals.on_signal(signal.SIGTERM, None)  # between two jobs: noted, not raised ...
        with pytest.raises(signals.Terminated, match="before this job ran"):
            signals.refuse_if_interrupted()  # ... and the next job is refused
        monkeypatch.setenv(signals.JOBS_ENV, f"{os.getpid()}:{tmp_path}")  # the sweep's own process: no mark
        with signals.job():
            assert list(tmp_path.iterdir()) == []
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
