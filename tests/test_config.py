import pytest
from conftest import run_cli

from bench.config import compose
from bench.errors import ConfigError

MODELS = ["bert_base", "mobilebert", "mobilebert_tiny", "tinybert_4l", "tinybert_6l", "distilbert", "minilm_l6"]
TASKS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_with_every_task(model):
    for task in TASKS:
        cfg = compose([f"model={model}", f"task={task}"])
        assert cfg.model.name == model and cfg.task.name == task
        assert cfg.model.arch["model_type"] in {"bert", "mobilebert", "distilbert"}
        assert cfg.model.recipe.source, "each model file says where its hyper-parameters come from"
        assert cfg.task.primary and set(cfg.task.primary) <= set(cfg.task.metrics)


def test_defaults_are_mobilebert_mrpc_finetune_cpu():
    cfg = compose()
    assert (cfg.model.name, cfg.task.name, cfg.mode.name, cfg.device.name) == ("mobilebert", "mrpc", "finetune", "cpu")
    assert cfg.model.source == "hub"


def test_model_sources():
    assert compose(["model=minilm_l6"]).model.source == "package"
    assert compose(["model=mobilebert", "model.pretrained=false"]).model.source == "random"
    assert compose(["model=mobilebert", "model.path=/x"]).model.source == "path"
    assert compose(["model=mobilebert_tiny"]).model.source == "random"  # no public checkpoint


def test_mnli_evaluates_matched_and_mismatched():
    cfg = compose(["task=mnli"])
    assert list(cfg.task.local.eval_files) == ["validation_matched", "validation_mismatched"]
    assert cfg.task.split_suffix == {"validation_matched": "m", "validation_mismatched": "mm"}


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.precision=fp8", "train.precision"),
        ("train.padding=sometimes", "train.padding"),
        ("data.max_train_samples=-3", "data.max_train_samples"),
        ("train.warmup=1.5", "train.warmup"),
        ("model.pretrained=true", "no public checkpoint"),
    ],
)
def test_bad_values_raise_config_error(override, words):
    extra = ["model=mobilebert_tiny"] if "pretrained" in override else []
    with pytest.raises(ConfigError, match=words):
        compose(extra + [override])


def test_unknown_model_lists_choices():
    p = run_cli("model=gpt9", "task=mrpc")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    for name in MODELS:
        assert name in p.stderr


def test_unknown_task_lists_choices():
    p = run_cli("task=imdb")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    for name in TASKS:
        assert name in p.stderr


def test_wrongly_typed_override_is_a_clear_error():
    p = run_cli("data.max_train_samples=lots")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "max_train_samples" in p.stderr


def test_value_error_from_cli_is_one_line():
    p = run_cli("train.precision=fp8")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "train.precision='fp8' is not one of" in p.stderr
