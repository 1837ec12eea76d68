"""How distillation variants are named from the loss terms they switch on, and the benchmark script behind the
README's distillation table failing loudly (exit 1, the failed runs named) when a run fails (the table itself, on
real tiny runs: test_distill_table.py)."""

from __future__ import annotations

import json

import pytest


def test_variant_names_say_which_terms_are_on():
    from bench.report.naming import is_direct, variant_of

    def cfg(stages, **w):
        weights = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "soft": 1.0, "hard": 0.0, **w}
        return {"distill": {"stages": stages, "weights": weights}}

    assert variant_of(cfg(["intermediate", "prediction"])) == "two-stage"
    assert variant_of(cfg(["intermediate", "prediction"], embedding=0.0)) == "two-stage (-embedding)"
    assert (
        variant_of(cfg(["intermediate"], embedding=0.0, attention=0.0)) == "intermediate only (-attention, -embedding)"
    )
    assert variant_of(cfg(["prediction"], soft=1.0, hard=0.5)) == "prediction layer (+hard) [hard=0.5]"
    # intermediate weights left on but their stage not run: the direct fine-tune all the same
    assert variant_of(cfg(["prediction"], soft=0.0, hard=1.0)) == "fine-tuned directly"
    assert is_direct(cfg(["prediction"], soft=0.0, hard=1.0)) and not is_direct(cfg(["prediction"]))


def test_benchmark_script_exits_1_and_names_the_runs_that_failed(tmp_path):
    """benchmarks/distill.py: a run that fails (here: the given teacher folder does not exist, so every selection
    run fails) is recorded, the others still run, a variant whose arm chose nothing is named, and the script
    exits 1."""
    import os
    import subprocess
    import sys

    from conftest import GLUE_DIR, ROOT

    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/distill.py",
            "--data",
            str(GLUE_DIR),
            "--tasks",
            "sst2",
            "--teacher",
            f"sst2={tmp_path / 'no-teacher'}",
            "--variants",
            "direct",
            "prediction",
            "--seeds",
            "42",
            "7",
            "--grid-lr",
            "3e-5",
            "--grid-epochs",
            "3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "sst2_select_direct_lr3e-05_ep3",
        "sst2_select_prediction_lr3e-05_ep3",
    ]
    for arm in ("direct", "prediction"):
        r = json.loads((out / f"sst2_select_{arm}_lr3e-05_ep3" / "result.json").read_text())
        assert r["status"] == "failed" and "no such folder" in r["error"]["message"]
        assert r["config"]["data"]["score"] == "holdout" and r["config"]["data"]["holdout"] == 800
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 6 and proc.stderr.count("FAILED sst2_") == 6
    assert sum("chose no setting" in f for f in failures) == 4  # 2 variants x 2 seeds never ran, each named
    assert "no distill results" in (out / "table.md").read_text()  # selection runs are not dev figures
