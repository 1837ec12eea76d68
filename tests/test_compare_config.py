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
def test_the_gate_suite_pairs_with_every_committed_baseline(path):
    """What CI compares: today's gate fine-tune against each class's committed result (an older config, data in
    another folder, the schedule pinned on the command line where the baseline read it from the model file)."""
    old = json.loads(path.read_text())
    assert differences([Result.model_validate(old)], [Result.model_validate(_today(old))]) == []


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
    # the same figures, the difference accepted by name: judged, and the acceptance shown
    assert compare.main([base, cur, "--ignore-config", key]) == 0
    assert f"ignored: {key}" in capsys.readouterr().out


def test_the_same_settings_are_judged_by_their_figures(baseline, tmp_path, capsys):
    base = _write(tmp_path / "base", baseline)
    worse = _today(baseline)
    worse["metrics"] = {k: v - 0.05 for k, v in baseline["metrics"].items()}
    assert compare.main([base, _write(tmp_path / "same", _today(baseline))]) == 0
    assert compare.main([base, _write(tmp_path / "worse", worse)]) == 1
    assert "settings differ" not in capsys.readouterr().out


def test_seeds_compare_as_sets(baseline, tmp_path):
    def seeded(seed):
        return _today(baseline, [f"train.seed={seed}"])

    base = _write(tmp_path / "base", seeded(42), seeded(43))
    assert compare.main([base, _write(tmp_path / "swapped", seeded(43), seeded(42))]) == 0
    assert compare.main([base, _write(tmp_path / "fewer", seeded(42))]) == 2


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

    assert differences([distilled(1e-4)], [distilled(1e-4)]) == []
    assert differences([distilled(1e-4)], [distilled(3e-5)]) == ["resolved.prediction.learning_rate: 0.0001 vs 3e-05"]
