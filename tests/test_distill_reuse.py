"""A benchmark job (bench/jobs.py: benchmarks/distill.py, robustness.py) reuses an earlier result only when its resume
key is the job's key now (issue #16); the distillation table leaves a superseded result out."""

import importlib.util
import json

from conftest import ROOT, TINY_LATENCY, tiny

from bench import jobs

LATENCY = TINY_LATENCY


def _script():
    spec = importlib.util.spec_from_file_location("distill_benchmark", ROOT / "benchmarks" / "distill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_result_is_reused_only_with_the_same_resume_key(tmp_path, capsys):
    bench_script, out = _script(), tmp_path / "out"
    job = [*tiny("bert"), *LATENCY]  # any job runs through run_job(); a tiny latency run is the quickest
    failures, used = [], {}
    first = jobs.run_job("job", job, out, failures, used)
    assert first.status == "ok" and used["job"] == out / "job" and failures == []
    again = jobs.run_job("job", job, out, failures, used)
    assert again.resume_key == first.resume_key and "kept the ok result" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["job"]  # nothing re-ran
    # the same folder name, made by other code (another resume key): kept untouched, and the job re-runs
    earlier = out / "job" / "result.json"
    data = json.loads(earlier.read_text())
    data["resume_key"] = "made-by-other-code"
    earlier.write_text(json.dumps(data))
    before = earlier.read_bytes()
    rerun = jobs.run_job("job", job, out, failures, used)
    assert rerun.status == "ok" and rerun.resume_key == first.resume_key
    assert used["job"] == out / "job.rerun-2" and (out / "job.rerun-2" / "result.json").is_file()
    assert earlier.read_bytes() == before  # never overwritten
    assert "another resume key" in capsys.readouterr().out
    assert bench_script.superseded(earlier, out, used) == out / "job.rerun-2"  # left out of the table
    assert bench_script.superseded(out / "job.rerun-2" / "result.json", out, used) is None
    # a later invocation finds the matching re-run and reuses it
    used2 = {}
    assert jobs.run_job("job", job, out, failures, used2).resume_key == first.resume_key
    assert used2["job"] == out / "job.rerun-2" and not (out / "job.rerun-3").exists()


def test_sigterm_to_a_benchmark_records_its_job_as_interrupted(tmp_path):
    """A benchmark script is killed by a scheduler or `kill` with SIGTERM: the job that was running records
    `interrupted` (and the benchmark stops), as the CLI does, instead of dying with no result.json."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import user_signals

    out = tmp_path / "out"
    job = [*tiny("bert"), *LATENCY, "timing.min_seconds=120", "timing.max_iterations=100000000"]
    code = f"from bench import jobs; jobs.run_job('job', {job!r}, __import__('pathlib').Path({str(out)!r}), [])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=user_signals
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "job" / ".bench-claim").exists():  # the job has started
        time.sleep(0.2)
    time.sleep(4)  # into the measurement
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err[-2000:]
    result = json.loads((out / "job" / "result.json").read_text())
    assert result["status"] == "interrupted", err[-2000:]
