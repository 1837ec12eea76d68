"""bench compare judges a pair of accuracy runs only when they ran the same experiment (bench/compare_config.py).

The fixtures are real: the committed baselines' fine-tune results (written by older code, with older configs) and
the config today's code composes for the gate suite's fine-tune, with the schedule it resolves."""

import copy
import json
import sys
from dataclasses import asdict

import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from bench import compare
from bench.compare_config import differences
from bench.config import compose
from bench.engine import resolve_hyper
from bench.schema import Result

sys.path.insert(0, str(ROOT / "benchmarks"))
import gate_suite  # noqa: E402

BASELINES = sorted((ROOT / "results" / "baselines").glob("*/finetune_minilm_mrpc/result.json"))
assert BASELINES, "the committed baselines are this test's fixtures"


def _today(baseline: dict, extra=(), data_dir="/somewhere/else/shared/data/glue") -> dict:
    """The baseline's result with the config and resolved schedule that today's code would record for the gate
    suite's fine-tune (plus `extra` overrides); its figures kept, so that only the settings can differ."""
    cfg = compose([*gate_suite.FINETUNE, f"data.dir={data_dir}", *extra], out_dir="results/gate/now/finetune")
    current = copy.deepcopy(baseline)
    current["config"] = OmegaConf.to_container(OmegaConf.structured(cfg))
    current["train"]["hyper"] = asdict(resolve_hyper(cfg))
    return current


def _write(folder, *results) -> str:
    for i, r in enumerate(results):
        (folder / f"r{i}").mkdir(parents=True)
        (folder / f"r{i}" / "result.json").write_text(json.dumps(r))
    return str(folder)


@pytest.fixture
def baseline():
    return json.loads(BASELINES[-1].read_text())


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.parent.parent.name[:24])
def test_the_gate_suite_pairs_with_every_committed_baseline(path, tmp_path):
    """What CI compares: today's gate fine-tune against each class's committed result (an older config, data in
    another folder, the schedule pinned on the command line where the baseline read it from the model file), on
    this class and, --accuracy-only, from another one."""
    old = json.loads(path.read_text())
    assert differences([Result.model_validate(old)], [Result.model_validate(_today(old))]) == ([], [])
    base, cur = _write(tmp_path / "base", old), _write(tmp_path / "cur", _today(old))
    assert compare.main([base, cur]) == 0
    assert compare.main([base, cur, "--accuracy-only"]) == 0


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.learning_rate=1e-4", "resolved.learning_rate"),
        ("train.epochs=2", "resolved.epochs"),
        ("train.max_seq_length=64", "resolved.max_seq_length"),
        ("data.max_train_samples=1000", "data.max_train_samples"),
        ("data.sample_seed=7", "data.sample_seed"),  # the baseline's config predates the key: its default
        ("train.seed=43", "train.seed"),
        ("train.padding=max_length", "train.padding"),
        ("train.compile=true", "train.compile"),
    ],
)
def test_a_changed_setting_is_not_comparable_unless_accepted(baseline, tmp_path, capsys, override, key):
    base = _write(tmp_path / "base", baseline)
    cur = _write(tmp_path / "cur", _today(baseline, [override]))
    assert compare.main([base, cur]) == 2
    out = capsys.readouterr().out
    assert "not comparable" in out and f"settings differ: {key}:" in out
    # the same figures, the difference accepted by name: judged, and the acceptance shown with both values
    assert compare.main([base, cur, "--ignore-config", key]) == 0
    assert f"accepted (--ignore-config): {key}:" in capsys.readouterr().out


def test_the_same_settings_are_judged_by_their_figures(baseline, tmp_path, capsys):
    base = _write(tmp_path / "base", baseline)
    worse = _today(baseline)
    worse["metrics"] = {k: v - 0.05 for k, v in baseline["metrics"].items()}
    assert compare.main([base, _write(tmp_path / "same", _today(baseline))]) == 0
    assert compare.main([base, _write(tmp_path / "worse", worse)]) == 1
    assert "settings differ" not in capsys.readouterr().out


def test_seeds_compare_as_sets(baseline, tmp_path, capsys):
    def seeded(seed):
        return _today(baseline, [f"train.seed={seed}"])

    base = _write(tmp_path / "base", seeded(42), seeded(43))
    assert compare.main([base, _write(tmp_path / "swapped", seeded(43), seeded(42))]) == 0
    assert compare.main([base, _write(tmp_path / "fewer", seeded(42))]) == 2
    assert "train.seed: 42/43 vs 42" in capsys.readouterr().out


def test_other_rows_or_another_model_source_are_not_comparable(baseline, tmp_path, capsys):
    base = _write(tmp_path / "base", baseline)
    fewer = _today(baseline)
    fewer["task"]["splits"] = {**baseline["task"]["splits"], "train": 1000}  # another copy of the data
    assert compare.main([base, _write(tmp_path / "rows", fewer)]) == 2
    assert "run.data" in capsys.readouterr().out
    local = _today(baseline)
    local["model"].update(source="path", path="/checkpoints/minilm")
    assert compare.main([base, _write(tmp_path / "path", local)]) == 2
    assert "run.model_source" in capsys.readouterr().out
    # two checkpoint folders: compared by kind (a path moves between machines; the figures judge the weights)
    elsewhere = copy.deepcopy(local)
    elsewhere["model"]["path"] = "/other/machine/minilm"
    assert compare.main([_write(tmp_path / "p1", local), _write(tmp_path / "p2", elsewhere)]) == 0


def test_settings_that_decide_no_figure_are_not_compared(baseline, tmp_path):
    """Where and how often a run writes, the nodes its mode does not read, the Hub spelling of a task read from
    local files, report-only task keys and machine-bound paths; the precision is compare's own check."""
    base = _write(tmp_path / "base", baseline)
    moved = [
        "timing.min_seconds=99",  # latency's node, in a fine-tune
        "distill.temperature=4",  # distill's node
        "robustness.seed=3",
        "train.logging_steps=7",
        "train.eval_batch_size=8",
        "task.hub.id=someone/glue",  # read from local files: the Hub spelling is not used
        "+task.report.note=x",
    ]
    assert compare.main([base, _write(tmp_path / "cur", _today(baseline, moved, data_dir="rel/glue"))]) == 0
    bf16 = _today(baseline, ["train.precision=bf16"])
    bf16["train"]["precision"] = "bf16"
    cur = _write(tmp_path / "bf16", bf16)
    assert compare.main([base, cur]) == 2  # the precision check, not the settings check
    assert compare.main([base, cur, "--accuracy-only", "--cross-precision", "--default-tolerance", "0.02"]) == 0


def test_without_a_resolved_schedule_the_layers_are_compared(baseline):
    """Results written before `train.hyper` existed: the model recipe and train.* as configured (prose aside)."""
    old, new = copy.deepcopy(baseline), _today(baseline)
    del old["train"]["hyper"]
    old["config"]["train"]["learning_rate"] = None  # its rate read from the model file's recipe
    pinned = differences([Result.model_validate(old)], [Result.model_validate(new)])[0]
    assert any(d.startswith("train.learning_rate: null vs 5e-05") for d in pinned), pinned
    prose = copy.deepcopy(old)
    prose["config"]["model"]["recipe"]["source"] = "reworded"
    assert differences([Result.model_validate(old)], [Result.model_validate(prose)]) == ([], [])


def test_evaluate_compares_the_length_it_truncates_to_not_a_schedule(baseline):
    def evaluated(**train):
        r = copy.deepcopy(baseline)
        r["mode"] = "evaluate"
        del r["train"]
        r["config"]["train"].update(train)
        return Result.model_validate(r)

    assert differences([evaluated(learning_rate=1e-4)], [evaluated(learning_rate=3e-5)]) == ([], [])
    assert differences([evaluated(max_seq_length=64)], [evaluated(max_seq_length=128)])[0] == [
        "train.max_seq_length: 64 vs 128"
    ]


def test_ignore_config_takes_prefixes_and_refuses_what_names_nothing(baseline, tmp_path, capsys):
    base = _write(tmp_path / "base", baseline)
    cur = _write(tmp_path / "cur", _today(baseline, ["train.learning_rate=1e-4", "train.epochs=2"]))
    assert compare.main([base, cur, "--ignore-config", "resolved.learning_rate"]) == 2  # epochs still differ
    assert compare.main([base, cur, "--ignore-config", "resolved"]) == 0
    capsys.readouterr()
    assert compare.main([base, cur, "--ignore-config", "train.learnin_rate"]) == 2  # a typo
    assert "no such setting" in capsys.readouterr().err


def test_a_nan_metric_fails_closed_even_when_settings_differ(baseline, tmp_path, capsys):
    nan = _today(baseline, ["train.epochs=2"])
    nan["metrics"]["f1"] = None
    assert compare.main([_write(tmp_path / "base", baseline), _write(tmp_path / "cur", nan)]) == 2
    out = capsys.readouterr().out
    assert "settings differ" in out and "not finite in the current run" in out and "REGRESSION" in out


def test_a_distillation_compares_each_stage_as_it_ran():
    def distilled(prediction_lr):
        return Result.model_validate(
            {
                "schema_version": 1,
                "status": "ok",
                "mode": "distill",
                "model": {"name": "s", "source": "package"},
                "task": {"name": "sst2", "source": "local", "splits": {"train": 8000}},
                "config": {"train": {"seed": 42, "learning_rate": None}, "distill": {"temperature": 1.0}},
                "metrics": {"acc": 0.8},
                "started_at": "2026-01-01T00:00:00+00:00",
                "train": {
                    "precision": "bf16",
                    "stages": [
                        {"stage": "intermediate", "hyper": {"learning_rate": 5e-5, "epochs": 10.0, "source": "a"}},
                        {"stage": "prediction", "hyper": {"learning_rate": prediction_lr, "epochs": 3.0}},
                    ],
                },
            }
        )

    assert differences([distilled(1e-4)], [distilled(1e-4)]) == ([], [])
    assert differences([distilled(1e-4)], [distilled(3e-5)])[0] == [
        "resolved.prediction.learning_rate: 0.0001 vs 3e-05"
    ]
