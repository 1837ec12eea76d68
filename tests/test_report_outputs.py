"""What `bench report` leaves in its output folder: earlier reports' files removed when stale, a bad --out refused,
Parquet written whole (or refused before anything is written, without pyarrow)."""

import pandas as pd
import pytest
from test_report_grouping import _write

from bench.report.__main__ import main


def test_a_report_written_again_removes_only_what_it_wrote_before_and_a_bad_out_is_exit_2(tmp_path, capfd):
    runs, out = tmp_path / "runs", tmp_path / "out"
    _write(runs, "s1", 1, 0.60)
    _write(runs, "d1", 1, None, status="failed", failures=["boom"], mode="latency")
    assert main([str(runs), "--out", str(out), "--format", "md", "--bootstrap", "20"]) == 0
    assert (out / "efficiency.md").is_file()  # the failed latency run's row
    (out / "notes.txt").write_text("mine")
    import shutil

    shutil.rmtree(runs / "d1")
    assert main([str(runs), "--out", str(out), "--format", "md", "--bootstrap", "20"]) == 0
    assert not (out / "efficiency.md").exists() and (out / "glue.md").is_file()
    assert (out / "notes.txt").read_text() == "mine"  # never written by a report: left alone
    assert "removed: " in capfd.readouterr().err
    # no usable result at all now: the earlier report's tables go too (they sat there, looking current)
    shutil.rmtree(runs / "s1")
    (runs / "empty").mkdir()
    with pytest.raises(SystemExit, match="no usable result.json"):
        main([str(runs), "--out", str(out), "--format", "md", "--bootstrap", "20"])
    assert not (out / "glue.md").exists() and (out / "notes.txt").read_text() == "mine"
    (tmp_path / "a_file").write_text("x")
    for bad in (tmp_path / "a_file", tmp_path / "a_file" / "sub"):
        with pytest.raises(SystemExit) as exc:
            main([str(runs), "--out", str(bad), "--format", "md"])
        assert exc.value.code == 2
        assert f"--out {bad}: cannot be used as the output folder" in capfd.readouterr().err


def test_parquet_round_trips_and_without_pyarrow_is_a_bad_argument(tmp_path, capfd, monkeypatch):
    """--format parquet had no test; without pyarrow it exited 1 after the other files were written."""
    from bench.report import __main__ as report_main

    runs, out = tmp_path / "runs", tmp_path / "out"
    _write(runs, "s1", 1, 0.60)
    _write(runs, "d1", 1, None, status="failed", failures=["boom"], mode="latency")
    if report_main._has_pyarrow():
        assert main([str(runs), "--out", str(out), "--format", "csv,parquet", "--bootstrap", "20"]) == 0
        back = pd.read_parquet(out / "results.parquet")
        csv = pd.read_csv(out / "results.csv")
        assert len(back) == len(csv) and set(back.kind) == {"metric", "failed"}
        assert not (back.astype(str) == "None").any().any()  # a missing value stays missing
        assert not list(out.glob(".results.parquet.*"))  # the temporary file went
    monkeypatch.setattr(report_main, "_has_pyarrow", lambda: False)
    fresh = tmp_path / "fresh"
    with pytest.raises(SystemExit) as exc:
        main([str(runs), "--out", str(fresh), "--format", "md,parquet"])
    assert exc.value.code == 2 and "needs pyarrow" in capfd.readouterr().err
    assert not fresh.exists() or not any(fresh.iterdir())  # nothing written before the refusal
