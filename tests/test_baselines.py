"""The committed gate baselines: each class's passes against itself and fails on injected regressions."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from bench import compare
from bench.baselines import classes

BASELINES = ROOT / "results" / "baselines"
CLASSES = classes(BASELINES)


def test_there_is_a_committed_baseline_and_it_learned():
    assert CLASSES, f"no baseline under {BASELINES}: run `make baseline` and commit it"
    for folder in CLASSES:
        machine = json.loads((folder / "MACHINE.json").read_text())
        assert machine["machine_class"] == folder.name and machine["git"]["dirty"] is False
        ft = json.loads((folder / "finetune_minilm_mrpc" / "result.json").read_text())
        assert ft["status"] == "ok" and ft["env"]["machine_class"] == folder.name
        # MRPC dev's all-positive predictor scores acc 0.684 / F1 0.812: a baseline must have learned
        assert ft["metrics"]["acc"] >= 0.75 and ft["metrics"]["f1"] >= 0.83
        assert ft["train"]["precision"] == "fp32"  # the same arithmetic on every class
        preds = [
            json.loads(line)["prediction"] for line in (folder / "finetune_minilm_mrpc" / "predictions.jsonl").open()
        ]
        assert 0.1 < sum(preds) / len(preds) < 0.9  # both classes predicted, not one


def _doctor(src: Path, dst: Path, latency_factor: float = 1.0, metric_drop: float = 0.0) -> Path:
    shutil.copytree(src, dst)
    for path in dst.glob("*/result.json"):
        data = json.loads(path.read_text())
        for row in data.get("latency") or []:
            if row.get("status") == "ok":
                lat = row["latency_s"]
                lat["samples"] = [x * latency_factor for x in lat["samples"]]
                for k in ("mean", "p50", "p90", "p95", "p99", "min", "max", "total", "stdev"):
                    lat[k] = lat[k] * latency_factor
        for k, v in (data.get("metrics") or {}).items():
            if isinstance(v, float):
                data["metrics"][k] = v - metric_drop
        path.write_text(json.dumps(data))
    return dst


@pytest.mark.parametrize("folder", CLASSES, ids=[p.name for p in CLASSES])
def test_each_baseline_passes_unchanged_and_catches_injected_regressions(folder, tmp_path):
    assert compare.main([str(folder), str(folder)]) == 0
    assert compare.main([str(folder), str(_doctor(folder, tmp_path / "slow", latency_factor=2.0))]) == 1
    assert compare.main([str(folder), str(_doctor(folder, tmp_path / "worse", metric_drop=0.02))]) == 1


@pytest.mark.parametrize("folder", CLASSES, ids=[p.name for p in CLASSES])
def test_cross_class_check_compares_accuracy_only(folder, tmp_path, capsys):
    """What a class without a baseline runs: accuracy within the cross-class tolerance, latency not compared."""
    from bench.baselines import CROSS_CLASS_TOLERANCE

    args = ["--accuracy-only", "--default-tolerance", str(CROSS_CLASS_TOLERANCE)]
    slow = _doctor(folder, tmp_path / "slow", latency_factor=3.0)
    assert compare.main([str(folder), str(slow), *args]) == 0  # another class's speed is no regression
    assert "not compared" in capsys.readouterr().out
    worse = _doctor(folder, tmp_path / "worse", metric_drop=2 * CROSS_CLASS_TOLERANCE)
    assert compare.main([str(folder), str(worse), *args]) == 1


def _gate_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gate", ROOT / "benchmarks" / "gate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gate_measures_the_baseline_commits_own_code(tmp_path):
    """Side by side: the baseline's commit (MACHINE.json) is checked out and its `bench` is what the suite imports."""
    import subprocess
    import sys

    gate = _gate_module()
    for folder in CLASSES:
        commit = gate.baseline_commit(folder)
        assert len(commit) == 40, f"{folder}: MACHINE.json records no commit"
        if subprocess.call(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT) != 0:
            pytest.skip(
                f"commit {commit[:12]} is not in this clone (shallow): the gate warns and uses the committed figures"
            )
        with gate.checkout(commit) as tree:
            assert tree is not None and tree != ROOT
            head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True).stdout
            assert head.strip() == commit
            found = subprocess.run(
                [sys.executable, "-c", "import bench; print(bench.__file__)"],
                cwd=tmp_path,
                env=gate.code_env(tree),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert found.strip() == str(tree / "bench" / "__init__.py")
        assert not tree.exists()  # the worktree is removed afterwards
    with gate.checkout("0" * 40) as missing:  # a commit this clone lacks (a shallow clone): the caller falls back
        assert missing is None
    (tmp_path / "MACHINE.json").write_text("{}")
    assert gate.baseline_commit(tmp_path) == ""
