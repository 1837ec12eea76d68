"""Sweeps through Hydra's launchers, resume, failure isolation, interrupts and DDP: real processes, tiny models."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, tiny, user_signals

from bench.config import compose
from bench.runner import run

pytestmark = pytest.mark.slow

QUICK = ["train.max_steps=2", "train.batch_size=8", "data.max_train_samples=16", "data.max_eval_samples=16"]


def _results(root: Path):
    return [json.loads(p.read_text()) for p in sorted(root.glob("**/result.json"))]


def _sweep(tmp_path, glue_dir, *extra, name="sweep"):
    return run_cli(
        "-m",
        *tiny("bert"),
        f"data.dir={glue_dir}",
        *QUICK,
        "task=rte,mrpc",
        "train.seed=1,2",
        f"hydra.sweep.dir={tmp_path / name}",
        f"bench.resume_dir={tmp_path}",
        *extra,
        timeout=900,
    )


@pytest.mark.parametrize("launcher", ["local_parallel", "submitit_local"])
def test_two_by_two_sweep_through_a_launcher(launcher, glue_dir, tmp_path):
    p = _sweep(tmp_path, glue_dir, f"hydra/launcher={launcher}")
    assert p.returncode == 0, p.stderr[-3000:]
    results = _results(tmp_path / "sweep")
    assert len(results) == 4 and {r["status"] for r in results} == {"ok"}
    assert {(r["task"]["name"], r["config"]["train"]["seed"]) for r in results} == {
        ("rte", 1),
        ("rte", 2),
        ("mrpc", 1),
        ("mrpc", 2),
    }
    assert "sweep: 4 ok" in p.stdout


def test_resume_skips_completed_runs_and_reruns_the_rest(glue_dir, tmp_path):
    first = _sweep(tmp_path, glue_dir, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    # lose one run, as if the sweep had been cut short
    victim = next((tmp_path / "first").glob("**/result.json"))
    victim.unlink()
    second = _sweep(tmp_path, glue_dir, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    statuses = sorted(r["status"] for r in _results(tmp_path / "second"))
    assert statuses == ["ok", "skipped", "skipped", "skipped"]
    assert "1 ok, 3 skipped" in second.stdout
    _sweep(tmp_path, glue_dir, "bench.force=true", name="third")
    assert sorted(r["status"] for r in _results(tmp_path / "third")) == ["ok"] * 4


def test_one_failing_job_does_not_stop_the_sweep(glue_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(glue_dir / "RTE", data / "RTE")  # MRPC is missing: those jobs fail with a DataError
    p = run_cli(
        "-m",
        *tiny("bert"),
        f"data.dir={data}",
        *QUICK,
        "task=rte,mrpc",
        f"hydra.sweep.dir={tmp_path / 's'}",
        timeout=600,
    )
    assert p.returncode == 6, p.stderr[-3000:]  # the sweep went on, and its exit status says a job failed
    results = _results(tmp_path / "s")
    assert sorted(r["status"] for r in results) == ["failed", "ok"]
    failed = next(r for r in results if r["status"] == "failed")
    assert failed["error"]["type"] == "DataError" and "MRPC" in failed["error"]["message"]
    assert "sweep: 1 failed, 1 ok" in p.stdout


def _start(tmp_path, glue_dir):
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "bench",
        "model=minilm_l6",
        "task=sst2",
        f"data.dir={glue_dir}",
        "data.max_train_samples=20000",
        f"hydra.run.dir={out}",
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=user_signals
    )
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "checkpoint").exists():  # the Trainer has started
        time.sleep(0.5)
    time.sleep(3)
    return proc, out


def test_kill_9_leaves_no_partial_result(glue_dir, tmp_path):
    proc, out = _start(tmp_path, glue_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "result.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".result.json")]


KILLED_WHILE_WRITING = """
import os, sys, time
from pathlib import Path
from bench import results

target, ready, how = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
real = os.link if how == "new" else os.replace

def held(src, dst):  # the temporary file is complete; the kill comes before it takes the result's name
    ready.write_text("writing")
    time.sleep(120)
    return real(src, dst)

setattr(os, "link" if how == "new" else "replace", held)
(results.publish_new if how == "new" else results.write_atomic)(target, '{"status": "ok"}' + " " * 5_000_000)
"""


@pytest.mark.parametrize("how", ["new", "replace"])
def test_kill_9_in_the_middle_of_writing_a_result_leaves_the_old_file_or_none(how, tmp_path):
    """SIGKILL inside the write itself (the test above kills during training, before anything is written)."""
    from bench import schema

    target, ready = tmp_path / "result.json", tmp_path / "ready"
    if how == "replace":
        target.write_text('{"old": true}')
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_WRITING, str(target), str(ready), how], cwd=ROOT, preexec_fn=user_signals
    )
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the writer never reached the write"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if how == "new":
        assert not target.exists()  # no result at all, rather than a partial one
    else:
        assert json.loads(target.read_text()) == {"old": True}  # the earlier result, whole
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".result.json")]
    assert leftovers and all(p.stat().st_size > 5_000_000 for p in leftovers)  # the killed write was under way
    assert [p for p, _ in schema.walk(tmp_path)] == ([target] if how == "replace" else [])  # readers never see it


def test_sigterm_is_recorded_as_interrupted(glue_dir, tmp_path):
    proc, out = _start(tmp_path, glue_dir)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 143  # 128 + SIGTERM
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted" and "signal" in result["error"]["message"]


def test_ddp_two_processes_match_the_single_process_result_shape(glue_dir, tmp_path):
    args = [*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *QUICK]
    single = run(compose(args, out_dir=str(tmp_path / "single")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29531",
            "-m",
            "bench",
            *args,
            f"hydra.run.dir={tmp_path / 'ddp'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert ddp["status"] == "ok" and set(ddp["metrics"]) == set(single.metrics)
    assert ddp["train"]["world_size"] == 2 and single.train["world_size"] == 1
    if ddp["train"]["load"]:  # Linux: the sibling rank reads as other load, so the rank's figure is not judged
        assert ddp["train"]["load"]["disturbed"] is None and "other rank" in ddp["train"]["load"]["not_judged"]
    assert ddp["task"]["splits"] == single.task["splits"]
    rows = (tmp_path / "ddp" / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 16  # written once, by rank 0


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_a_parallel_sweep_is_recorded_by_every_started_job(sig, code, glue_dir, tmp_path):
    """joblib workers never see the sweep's SIGTERM, and joblib SIGKILLs them: the sweep forwards it and waits."""
    import psutil

    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "bench",
        "-m",
        *tiny("bert"),
        f"data.dir={glue_dir}",
        "task=rte",
        "train.seed=1,2,3,4",
        "train.max_steps=100000",
        "train.batch_size=8",
        "data.max_train_samples=64",
        "data.max_eval_samples=16",
        "device.threads=1",
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        f"bench.resume_dir={tmp_path}",
    ]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=user_signals)
        deadline = time.time() + 300
        while time.time() < deadline and len(list(sweep.glob("*/checkpoint"))) < 2:  # both workers are training
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(2)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2 and all(w.is_running() for w in workers)
        proc.send_signal(sig)
        proc.wait(timeout=180)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == code, stderr[-3000:]  # 128 + the signal, as for a single run
    started = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert len(started) == 2, started  # two workers: the other two jobs never started
    for job in started:
        assert not [p for p in job.iterdir() if p.name.startswith(".result.json")]  # nothing half-written
        result = json.loads((job / "result.json").read_text())
        assert result["status"] == "interrupted" and "signal" in result["error"]["message"], result
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, alive  # no worker outlives the sweep


def test_an_earlier_outcome_moved_aside_keeps_its_own_outputs(glue_dir, tmp_path):
    """Resuming in the same folder with another resume key (the same experiment on data that changed since)
    re-runs; the earlier result keeps its predictions and checkpoint beside it instead of having them written over
    by the re-run's. A success of another job there (a sweep re-run with other values) is refused."""
    from bench.config import compose
    from bench.errors import BenchError
    from bench.runner import run

    data = tmp_path / "data"
    shutil.copytree(glue_dir / "RTE", data / "RTE")
    out = tmp_path / "out"
    args = [*tiny("bert"), "task=rte", f"data.dir={data}", *QUICK, "train.max_steps=1", "train.save_checkpoint=true"]
    first = run(compose(args, out_dir=str(out)))
    before = (out / "predictions.jsonl").read_bytes()
    result_before = (out / "result.json").read_bytes()
    # another experiment: refused, and nothing in the folder moves
    with pytest.raises(BenchError, match=r"holds a successful run of another job \(train.seed: 42 vs 2\)"):
        run(compose([*args, "train.seed=2"], out_dir=str(out)), resume_runs=True, overrides=["train.seed=2"])
    assert (out / "result.json").read_bytes() == result_before and not list(out.glob("*previous-*"))
    assert "train.seed: 42 vs 2" in json.loads((out / "refused.json").read_text())["error"]
    # the same job (its command line unchanged) on changed data: another resume key, re-run, the earlier one aside
    dev = data / "RTE" / "dev.tsv"
    dev.write_text("".join(dev.read_text().splitlines(keepends=True)[:-1]))
    second = run(compose(args, out_dir=str(out)), resume_runs=True, overrides=[f"data.dir={data}"])
    assert first.status == second.status == "ok" and first.resume_key != second.resume_key
    aside = list(out.glob("result.json.previous-*"))
    assert len(aside) == 1
    folder = out / aside[0].name[len("result.json.") :]
    assert json.loads(aside[0].read_text())["resume_key"] == first.resume_key
    assert (folder / "predictions.jsonl").read_bytes() == before and (folder / "checkpoint" / "config.json").is_file()
    assert (out / "predictions.jsonl").is_file() and (out / "checkpoint").is_dir()


def test_a_sweep_re_run_with_other_values_into_its_folder_refuses_instead_of_hiding_results(glue_dir, tmp_path):
    """Job numbers name other runs when a sweep is re-run with other values into the same folder: each job whose
    folder holds another job's success refuses it (counted, exit 6), and every earlier result stays readable."""
    args = ["-m", *tiny("bert"), f"data.dir={glue_dir}", *QUICK, "task=rte", f"hydra.sweep.dir={tmp_path / 's'}"]
    first = run_cli(*args, "train.seed=1,2", f"bench.resume_dir={tmp_path}", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p: p.read_bytes() for p in (tmp_path / "s").glob("*/result.json")}
    assert len(before) == 2 and all(json.loads(b)["overrides"] for b in before.values())
    again = run_cli(*args, "train.seed=2,3", f"bench.resume_dir={tmp_path}", timeout=600)
    assert again.returncode == 6, again.stderr[-3000:]
    assert "2 refused" in again.stdout and "train.seed=1 (earlier)" in again.stdout
    assert {p: p.read_bytes() for p in (tmp_path / "s").glob("*/result.json")} == before
    assert not list((tmp_path / "s").glob("*/result.json.previous-*"))


def test_the_readme_main_job_sweeps_the_three_models_and_prints_their_table(tmp_path):
    """`bench +sweep=compact_vs_base`, the README's first command, as a user runs it (only shorter: one tiny shape,
    eager only, no calibration): a multirun over the three exact architectures with random weights, the fused
    graphs left out, ending in the sweep summary and one comparison table naming all three."""
    short = [
        "timing.backends=[eager]",
        "timing.batch_sizes=[1]",
        "timing.seq_lens=[16]",
        "timing.min_seconds=0",
        "timing.min_iterations=2",
        "timing.warmup_runs=1",
        "timing.calibrate=false",
        "timing.isolate=false",
    ]
    proc = run_cli("+sweep=compact_vs_base", *short, f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _results(tmp_path)
    assert sorted(r["model"]["name"] for r in results) == ["bert_base", "mobilebert", "tinybert_4l"]
    for r in results:
        assert r["status"] == "ok" and r["mode"] == "latency" and r["model"]["weights"] == "random"
        assert r["timing"]["backends_excluded"] == ["onnxruntime_fused", "onnxruntime_int8"]
    out = proc.stdout + proc.stderr
    assert "sweep: 3 ok" in out
    table = out[out.index("sweep: 3 ok") :]
    assert all(name in table for name in ("bert_base", "mobilebert", "tinybert_4l")), table[:2000]


def test_a_run_without_a_folder_given_writes_a_fresh_one_below_results_runs(tmp_path):
    """README: each run writes a fresh folder below results/runs/ (relative to where it is started)."""
    args = [*tiny("bert"), "mode=latency", "timing.backends=[eager]", "timing.batch_sizes=[1]", "timing.seq_lens=[8]"]
    args += ["timing.min_seconds=0", "timing.min_iterations=2", "timing.warmup_runs=1", "timing.calibrate=false"]
    for _ in range(2):
        proc = run_cli(*args, "timing.isolate=false", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    written = sorted(tmp_path.glob("results/runs/*/*_bert_base_mrpc_latency/result.json"))
    assert len(written) == 2 and written[0].parent != written[1].parent
    assert [json.loads(p.read_text())["status"] for p in written] == ["ok", "ok"]  # the first one left as it was
