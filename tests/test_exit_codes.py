"""Exit codes and records as a user or CI sees them: signals, sweeps whose jobs fail, reruns, kills mid-write."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


# The real CLI, with the write of an interrupted result slowed down (and announced by a file): a second Ctrl-C is
# sent while that result is being written.
SLOW_RECORD = """
import os, sys, time
from pathlib import Path
from bench import results

real = results.publish_new

def publish_new(path, text):
    if '"status": "interrupted"' in text:
        Path(os.environ["WRITING"]).touch()
        time.sleep(3)
    return real(path, text)

results.publish_new = publish_new
from bench.__main__ import main
sys.argv = ["bench", *sys.argv[1:]]
main()
"""


def test_a_second_ctrl_c_while_the_interrupt_is_recorded_loses_nothing(tmp_path):
    """A single run kept Python's own SIGINT handler: a second Ctrl-C raised inside the write of the interrupted
    result, and nothing was recorded. It is ignored now, as a second SIGTERM always was."""
    out, writing, script = tmp_path / "run", tmp_path / "writing", tmp_path / "slow_record.py"
    script.write_text(SLOW_RECORD)
    args = [*tiny("bert"), *LATENCY, "timing.min_seconds=120", "timing.max_iterations=100000000"]
    proc = subprocess.Popen(
        [sys.executable, str(script), *args, f"hydra.run.dir={out}"],
        cwd=ROOT,
        env={**os.environ, "WRITING": str(writing), "PYTHONPATH": str(ROOT)},  # this checkout's bench
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=user_signals,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / ".bench-claim").exists():
        time.sleep(0.2)
    time.sleep(4)  # into the measurement
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    deadline = time.time() + 60
    while time.time() < deadline and not writing.exists():
        time.sleep(0.05)
    assert writing.exists() and proc.poll() is None  # the interrupted result is being written now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert (out / "result.json").exists(), err[-2000:]  # was lost: the second KeyboardInterrupt cut the write
    assert json.loads((out / "result.json").read_text())["status"] == "interrupted"
    assert "already stopping" in err


@pytest.mark.parametrize(
    "case, code, status",
    [("nan_loss", 3, "failed"), ("backend_cannot_run", 4, "partial"), ("no_cell_measured", 5, "failed")],
)
def test_a_single_run_exits_with_its_status_code(case, code, status, tmp_path, request):
    """The exit codes of docs/result-file.md that a user's script branches on, as the CLI returns them."""
    if case == "nan_loss":
        glue = request.getfixturevalue("glue_dir")
        args = [*tiny("bert"), "task=rte", f"data.dir={glue}", "data.max_train_samples=48", "train.batch_size=16"]
        args += ["data.max_eval_samples=32", "train.max_steps=20", "train.learning_rate=1e6", "train.precision=fp32"]
    else:  # fp16 asked for by name cannot run on a CPU: beside eager the run is partial, alone nothing is measured
        backends = "[eager,fp16]" if case == "backend_cannot_run" else "[fp16]"
        latency = [a for a in LATENCY if not a.startswith("timing.backends=")]
        args = [*tiny("bert"), *latency, "device=cpu", f"timing.backends={backends}", "timing.min_seconds=0"]
    p = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert p.returncode == code, (p.stdout[-1500:], p.stderr[-1500:])
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == status
    assert "Traceback" not in p.stderr  # a status, not a crash
    if case == "nan_loss":
        assert saved["error"]["type"] == "NonFiniteLossError" and "loss became" in p.stderr


def test_a_sweep_whose_jobs_fail_before_they_start_exits_non_zero(tmp_path):
    p = run_cli("-m", *tiny("bert"), "train.warmup=1.5,2.0", f"hydra.sweep.dir={tmp_path / 's'}", timeout=300)
    assert p.returncode == 6, p.stderr[-2000:]
    results = [json.loads(f.read_text()) for f in sorted((tmp_path / "s").glob("*/result.json"))]
    assert [r["status"] for r in results] == ["failed", "failed"]
    assert all("train.warmup" in r["error"]["message"] for r in results)
    # named as a run that started would be: a random-weights model's failure sits under weights: random
    assert all(r["model"]["weights"] == "random" and r["model"]["source"] == "random" for r in results)
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


def test_the_cluster_launcher_without_slurm_is_one_clear_error(tmp_path):
    """hydra/launcher=cluster on a machine without SLURM was a traceback from inside submitit."""
    import shutil

    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "sbatch").exists())
    assert shutil.which("sbatch", path=path) is None
    p = run_cli(
        "-m", *tiny("bert"), *LATENCY, "hydra/launcher=cluster", f"hydra.sweep.dir={tmp_path / 's'}",
        env_extra={"PATH": path}, timeout=300,
    )  # fmt: skip
    assert p.returncode == 2, (p.stdout[-1500:], p.stderr[-1500:])
    assert "no `sbatch`" in p.stderr and "hydra/launcher=local_parallel" in p.stderr
    assert "Traceback" not in p.stderr
    assert not list((tmp_path / "s").glob("*/result.json"))  # nothing was submitted
