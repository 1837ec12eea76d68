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
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "FULL_DISK": full_disk}
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
