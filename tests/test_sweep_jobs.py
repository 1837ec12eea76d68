"""A sweep's summary and exit status count jobs, not result files (issue #16): a job that dies before it can
write result.json is a failed job, never one that silently disappears."""

import errno
import json
import os
import subprocess
import sys
import textwrap

from conftest import ROOT, TINY_LATENCY, tiny

from bench import callbacks

LATENCY = TINY_LATENCY

# The real CLI, with the disk full for the jobs whose folder starts with FULL_DISK (the write of result.json
# fails with ENOSPC, as on a full disk); every other job, and everything else, runs as it always does.
WRAPPER = textwrap.dedent(f"""
    import errno, os, sys
    from pathlib import Path
    from bench import results

    real = results.publish_new

    def publish_new(path, text):
        prefix = os.environ.get("FULL_DISK")
        if prefix and Path(path).parent.name.startswith(prefix):
            raise OSError({errno.ENOSPC}, "No space left on device", str(path))
        return real(path, text)

    results.publish_new = publish_new
    from bench.__main__ import main
    sys.argv = ["bench", *sys.argv[1:]]
    main()
""")


def _sweep(tmp_path, full_disk):
    script = tmp_path / "bench_full_disk.py"
    script.write_text(WRAPPER)
    args = [
        sys.executable,
        str(script),
        "-m",
        *tiny("bert"),
        *LATENCY,
        "train.seed=1,2",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"bench.resume_dir={tmp_path / 'none'}",
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "FULL_DISK": full_disk, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_job_that_dies_before_writing_its_result_fails_the_sweep(tmp_path):
    p = _sweep(tmp_path, full_disk="1_")
    written = sorted((tmp_path / "sweep").glob("*/result.json"))
    assert [w.parent.name[:2] for w in written] == ["0_"]  # job 1 really wrote nothing
    assert json.loads(written[0].read_text())["status"] == "ok"
    assert p.returncode == 6, (p.stdout[-2000:], p.stderr[-2000:])  # was 0: "sweep: 1 ok"
    assert "sweep: 1 no result, 1 ok" in p.stdout
    assert "no result: " in p.stdout and "1_bert_base" in p.stdout.split("no result: ", 1)[1].splitlines()[0]


def test_jobs_are_counted_from_their_folders(tmp_path):
    for name in ("0_a", "1_b", "2_c"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "config.yaml").write_text("{}")
    (tmp_path / "0_a" / "result.json").write_text("{}")
    entries = [(tmp_path / "0_a" / "result.json", "unreadable")]
    missing = callbacks.jobs_without_result(tmp_path, entries)
    assert [m.name for m in missing] == ["1_b", "2_c"]
    assert callbacks.not_ok(entries, None, missing) == 3
    assert callbacks.jobs_without_result(tmp_path, entries, marker=None) == []  # hydra.output_subdir=null


def test_a_job_folder_this_sweep_did_not_start_is_listed_not_counted(tmp_path):
    """A larger earlier sweep's job that died without a result counted toward this sweep's exit 6."""
    import time

    (tmp_path / "multirun.yaml").write_text("{}")  # the sweep's start, as Hydra's sweeper writes it
    for name in ("0_this", "1_earlier"):  # then its jobs start
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "config.yaml").write_text("{}")
    old = time.time() - 3600
    os.utime(tmp_path / "1_earlier" / ".hydra" / "config.yaml", (old, old))
    missing = callbacks.jobs_without_result(tmp_path, [])
    earlier = callbacks.earlier_jobs(tmp_path)
    assert earlier == {(tmp_path / "1_earlier").resolve()}
    assert callbacks.not_ok([], None, missing, [], earlier) == 1
    text = callbacks.summary([], None, missing, [], earlier)
    assert "sweep: 1 earlier no result, 1 no result" in text and "earlier no result: " in text
    (tmp_path / "multirun.yaml").unlink()  # nothing to tell by: every job is counted
    assert callbacks.earlier_jobs(tmp_path) == set() and callbacks.not_ok([], None, missing) == 2


def test_a_sweep_job_forced_to_re_run_moves_its_earlier_result_aside_and_runs(tmp_path):
    """bench.force=true (or bench.resume=never) in a sweep re-run into its folder was refused ('already exists'),
    wrote nothing, and the summary counted the old result as 'already complete' with exit 0. A single run still
    never writes into a folder holding a result."""
    import json

    import pytest
    from conftest import TINY_LATENCY, tiny

    from bench.config import compose
    from bench.errors import BenchError
    from bench.runner import run

    out = tmp_path / "job"
    args = [*tiny("bert"), "task=sst2", *TINY_LATENCY, f"bench.resume_dir={tmp_path}"]
    first = run(compose(args, out_dir=str(out)), resume_runs=True, in_sweep=True, overrides=[])
    old = (out / "result.json").read_bytes()
    again = run(compose([*args, "bench.force=true"], out_dir=str(out)), resume_runs=True, in_sweep=True, overrides=[])
    assert first.status == again.status == "ok" and again.started_at > first.started_at
    aside = list(out.glob("result.json.previous-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == old
    assert json.loads((out / "result.json").read_text())["started_at"] == again.started_at
    with pytest.raises(BenchError, match="already exists"):
        run(compose(args, out_dir=str(out)))  # a single run: never into a folder that holds a result


def test_a_refused_job_is_counted_once_as_refused(tmp_path):
    """A job that refused its folder (another job's success is there) was counted both as 'refused' and, through
    that other job's result.json, as this sweep's 'already complete'."""
    for name in ("0_a", "1_b"):
        (tmp_path / name).mkdir()
    entries = [(tmp_path / "0_a" / "result.json", "unreadable"), (tmp_path / "1_b" / "result.json", "unreadable")]
    refused = [(tmp_path / "1_b", "holds a successful run of another job")]
    kept = callbacks.without_refused(entries, refused)
    assert kept == entries[:1] and callbacks.not_ok(kept, None, [], refused) == 2  # one unreadable, one refused
    assert "sweep: 1 refused, 1 unreadable" in callbacks.summary(kept, None, [], refused)


def test_a_sweep_into_an_earlier_sweeps_folder_counts_its_own_jobs_only(tmp_path):
    """An earlier, larger sweep's failed job that this sweep does not have was counted toward exit 6; a job of this
    sweep that failed before it started, in a folder holding another job's success, was only logged, and the
    summary read that success as this sweep's 'already complete' (exit 0)."""
    from conftest import run_cli

    folder = tmp_path / "sweep"
    common = ["-m", *tiny("bert"), *LATENCY, f"hydra.sweep.dir={folder}", f"bench.resume_dir={tmp_path / 'none'}"]
    first = run_cli(*common, "train.warmup=0.1,1.5", timeout=300)
    assert first.returncode == 6 and "sweep: 1 failed, 1 ok" in first.stdout, first.stderr[-2000:]
    smaller = run_cli(*common, "train.warmup=0.1", timeout=300)  # job 1 is not one of this sweep's
    assert smaller.returncode == 0, (smaller.stdout[-2000:], smaller.stderr[-2000:])
    assert "1 already complete, 1 earlier failed" in smaller.stdout
    assert "earlier failed: " in smaller.stdout and "not a job of this sweep" in smaller.stdout
    job0 = next(folder.glob("0_*"))
    kept = (job0 / "result.json").read_bytes()
    other = run_cli(*common, "train.warmup=1.5", "train.seed=3", timeout=300)  # job 0 fails before it starts
    assert other.returncode == 6, (other.stdout[-2000:], other.stderr[-2000:])
    assert "sweep: 1 earlier failed, 1 failed" in other.stdout and "the earlier result here is kept" in other.stdout
    assert (job0 / "result.json").read_bytes() == kept  # a usable result stays: reports read it
    # interrupted before it started (a parallel sweep's worker told to stop), in a folder holding a success: the
    # success stays, the interrupt is the job's marked outcome
    from omegaconf import OmegaConf

    from bench import __main__ as cli
    from bench import callbacks

    dcfg = OmegaConf.load(job0 / ".hydra" / "config.yaml")
    cli._record_early_failure(dcfg, str(job0), KeyboardInterrupt("stop"), status="interrupted", sweep=True)
    assert (job0 / "result.json").read_bytes() == kept
    [(where, why, status)] = [m for m in callbacks.refused_jobs(folder, None) if m[0] == job0]
    assert status == "interrupted" and "before the job started" in why
    again = run_cli(*common, "train.warmup=0.1,1.5", timeout=300)  # job 1's own earlier failure goes aside
    assert again.returncode == 6 and "1 already complete, 1 failed" in again.stdout, again.stdout[-2000:]
    job1 = next(folder.glob("1_*"))
    assert len(list(job1.glob("result.json.previous-*"))) == 1
    assert (
        json.loads((job1 / "result.json").read_text())["started_at"]
        > json.loads(next(job1.glob("result.json.previous-*")).read_text())["started_at"]
    )


BROKEN_SUMMARY = """
import sys
from bench import callbacks

def summary(*args, **kwargs):
    raise RuntimeError("a bug in the summary")

callbacks.summary = summary
from bench.__main__ import main
sys.argv = ["bench", *sys.argv[1:]]
main()
"""


def test_a_sweep_whose_summary_breaks_does_not_exit_clean(tmp_path):
    """Hydra turns an error raised in a callback into a warning: a summary that broke left no verdict, and the
    sweep exited 0 whatever its jobs did."""
    script = tmp_path / "broken_summary.py"
    script.write_text(BROKEN_SUMMARY)
    args = ["-m", *tiny("bert"), *LATENCY, f"hydra.sweep.dir={tmp_path / 's'}", f"bench.resume_dir={tmp_path / 'n'}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONPATH": str(ROOT)}  # this checkout's bench
    p = subprocess.run(
        [sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 6, (p.stdout[-1500:], p.stderr[-1500:])
    assert "a bug in the summary" in p.stderr and "summary could not be made" in p.stderr
    assert json.loads(next((tmp_path / "s").glob("*/result.json")).read_text())["status"] == "ok"  # the job ran
