"""The gate fails closed: every way a current run can be unusable is a regression (1) or an error (2), never 0."""

import copy
import json

import pytest
from conftest import tiny
from test_compare import LATENCY, _accuracy_result

from bench import compare
from bench.config import compose
from bench.runner import run


def _write(folder, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def pair(tmp_path):
    base = _write(tmp_path / "base", _accuracy_result())
    return base, tmp_path / "cur"


def _gate(base, cur, *extra):
    return compare.main([str(base), str(cur), *extra])


def test_same_figures_pass(pair):
    base, cur = pair
    assert _gate(base, _write(cur, _accuracy_result())) == 0


def test_a_failed_current_run_is_a_regression(pair, capsys):
    base, cur = pair
    failed = _accuracy_result(status="failed", metrics={}, error={"type": "DataError", "message": "no MRPC"})
    assert _gate(base, _write(cur, failed)) == 1
    out = capsys.readouterr().out
    assert "failed: no MRPC" in out and "REGRESSION" in out


def test_a_missing_run_is_a_regression(pair, tmp_path, capsys):
    base, cur = pair
    _write(base.parent / "base" / "other", _accuracy_result(task={"name": "rte"}, metrics={"acc": 0.6}))
    assert _gate(base, _write(cur, _accuracy_result())) == 1
    assert "not in the current results" in capsys.readouterr().out


def test_a_nan_metric_is_a_regression(pair, capsys):
    base, cur = pair
    # the harness writes NaN as null; such a run is `failed`, but even one mislabelled `ok` must not pass
    nan = _accuracy_result(metrics={"f1": None, "acc": 0.76, "primary": None})
    assert _gate(base, _write(cur, nan)) == 1
    assert "not finite" in capsys.readouterr().out


@pytest.mark.parametrize(
    "data, field",
    [
        ({"model": {}}, "model.name"),
        ({"metrics": {"f1": "high"}}, "metrics"),
        ({"status": "great"}, "status"),
    ],
)
def test_a_malformed_current_run_exits_2_naming_the_field(pair, capsys, data, field):
    base, cur = pair
    assert _gate(base, _write(cur, _accuracy_result(**data))) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def test_top_level_not_an_object_exits_2(pair, capsys):
    base, cur = pair
    cur.mkdir()
    (cur / "result.json").write_text("[1, 2]")
    assert _gate(base, cur) == 2
    assert "not an object" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--tolerance", "f1x=0.01"], "no metric 'f1x'"),
        (["--tolerance", "f1=-0.1"], ">= 0"),
        (["--tolerance", "f1=nan"], "finite"),
        (["--tolerance", "f1=lots"], "expected METRIC=VALUE"),
        (["--default-tolerance", "inf"], "finite"),
        (["--min-factor", "0.5"], "--min-factor"),
        (["--alpha", "2"], "--alpha"),
        (["--cross-precision"], "needs --accuracy-only"),
    ],
)
def test_tolerances_and_options_are_validated(pair, capsys, option, message):
    base, cur = pair
    assert _gate(base, _write(cur, _accuracy_result()), *option) == 2
    assert message in capsys.readouterr().err


def test_task_scoped_tolerance_must_name_a_task_of_the_baseline(pair, capsys):
    base, cur = pair
    assert _gate(base, _write(cur, _accuracy_result()), "--tolerance", "rte:f1=0.01") == 2
    assert _gate(base, _write(cur, _accuracy_result()), "--tolerance", "mrpc:f1=0.01") == 0


def test_another_precision_is_not_comparable_unless_asked(pair, capsys):
    base, cur = pair
    fp32 = _write(
        cur, _accuracy_result(train={"precision": "fp32"}, metrics={"f1": 0.83, "acc": 0.75, "primary": 0.79})
    )
    assert _gate(base, fp32) == 2
    assert "not comparable" in capsys.readouterr().out
    assert _gate(base, fp32, "--accuracy-only", "--cross-precision", "--default-tolerance", "0.02") == 0
    assert _gate(base, fp32, "--accuracy-only", "--cross-precision") == 1  # the default tolerance still applies


@pytest.fixture(scope="module")
def latency_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lat") / "run"
    run(compose([*tiny("bert"), *LATENCY, "timing.min_seconds=0.2", "timing.min_iterations=10"], out_dir=str(out)))
    return json.loads((out / "result.json").read_text())


def test_a_failed_latency_cell_or_partial_run_is_a_regression(latency_run, tmp_path, capsys):
    base = _write(tmp_path / "base", latency_run)
    broken = copy.deepcopy(latency_run)
    broken["latency"][0] = {
        "backend": "eager",
        "device": "cpu",
        "batch_size": 1,
        "seq_len": 32,
        "status": "failed",
        "error": "RuntimeError: out of memory",
    }
    broken["status"] = "failed"
    assert _gate(base, _write(tmp_path / "cur", broken)) == 1
    out = capsys.readouterr().out
    assert "out of memory" in out and "REGRESSION" in out
    partial = copy.deepcopy(latency_run)
    partial["status"], partial["failures"] = "partial", ["int8 batch 1 seq 32: failed"]
    assert _gate(base, _write(tmp_path / "partial", partial)) == 1


def test_machine_class_decides_same_machine_and_accuracy_only_lists_latency(latency_run, tmp_path, capsys):
    a, b = copy.deepcopy(latency_run), copy.deepcopy(latency_run)
    a["env"]["machine_class"] = "cpu-x86_64-avx512-2c-torch2.13"
    b["env"]["machine_class"] = "cpu-x86_64-avx2-2c-torch2.13"  # same "AMD EPYC" string, another class
    base, cur = _write(tmp_path / "a", a), _write(tmp_path / "b", b)
    assert _gate(base, cur) == 2  # other class, no calibration: refused rather than compared
    assert "refused" in capsys.readouterr().out
    fine = _write(tmp_path / "b2", copy.deepcopy(b) | {"latency": b["latency"]})
    _write(tmp_path / "a" / "acc", _accuracy_result())
    _write(tmp_path / "b2" / "acc", _accuracy_result())
    assert _gate(base, fine, "--accuracy-only") == 0
    out = capsys.readouterr().out
    assert "not compared: --accuracy-only" in out and "refused" not in out
    b["env"]["machine_class"] = a["env"]["machine_class"]
    b["env"]["cpu"]["model"] = "Another CPU"  # the model string differs but the class is the same: compared
    # identical samples (the same run under another CPU model string): compared, and nothing regressed
    same = _write(tmp_path / "same", b)
    _write(same / "acc", _accuracy_result())  # the baseline's accuracy run too: every run present
    assert _gate(base, same) == 0
    assert "machines differ" not in capsys.readouterr().out


def _committed_latency(tmp_path, *names):
    """Copies of the committed baselines' TinyBERT-4L latency runs (real result files), one folder per class."""
    from conftest import ROOT

    classes = sorted(p for p in (ROOT / "results" / "baselines").iterdir() if (p / "latency_tinybert_4l").is_dir())
    out = []
    for name, c in zip(names, classes):
        data = json.loads((c / "latency_tinybert_4l" / "result.json").read_text())
        out.append((_write(tmp_path / name, data), data))
    return out


def test_nan_latency_samples_never_pass(tmp_path, capsys):
    ((base, data),) = _committed_latency(tmp_path, "base")
    assert _gate(base, _write(tmp_path / "same", data)) == 0
    nan = copy.deepcopy(data)
    nan["latency"][0]["latency_s"]["samples"][3] = float("nan")  # a hand-edited or foreign file: json writes NaN
    assert _gate(base, _write(tmp_path / "cur", nan)) == 1
    assert "NaN or infinite latency samples in the current run" in capsys.readouterr().out
    assert _gate(_write(tmp_path / "nanbase", nan), _write(tmp_path / "cur2", data)) == 2
    assert "in the baseline run" in capsys.readouterr().out


def test_one_sides_runs_from_two_machine_classes_are_not_pooled(tmp_path, capsys):
    (a, data_a), (b, data_b) = _committed_latency(tmp_path / "both", "a", "b")
    assert data_a["env"]["machine_class"] != data_b["env"]["machine_class"]
    assert _gate(tmp_path / "both", _write(tmp_path / "cur", data_a)) == 2
    out = capsys.readouterr().out
    assert "the baseline runs come from 2 machines" in out and data_b["env"]["machine_class"] in out


def test_a_regression_beside_a_figure_not_judged_exits_2_and_is_still_named(tmp_path, capsys):
    ((_, data),) = _committed_latency(tmp_path / "base", "lat")
    nanbase = copy.deepcopy(data)
    nanbase["latency"][0]["latency_s"]["samples"][0] = float("nan")
    _write(tmp_path / "base" / "lat", nanbase)  # a refused cell: exit 2 on its own
    _write(tmp_path / "base" / "acc", _accuracy_result())
    _write(tmp_path / "cur" / "lat", data)
    _write(tmp_path / "cur" / "acc", _accuracy_result(metrics={"f1": 0.5, "acc": 0.5, "primary": 0.5}))
    assert _gate(tmp_path / "base", tmp_path / "cur") == 2
    captured = capsys.readouterr()
    assert "refused" in captured.out and "REGRESSION" in captured.out
    assert "exit 2 (and some regressed: see REGRESSION)" in captured.err
