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
        ("train.learning_rate=nan", "train.learning_rate must be a positive number, got nan"),
        ("train.learning_rate=inf", "train.learning_rate must be a positive number"),
        ("train.weight_decay=-1", "train.weight_decay must be 0 or more"),
        ("train.weight_decay=nan", "train.weight_decay must be 0 or more"),
        ("train.max_steps=0", "train.max_steps=0: give a step count"),
        ("train.max_steps=-5", "train.max_steps=-5"),
        ("model.pretrained=true", "no public checkpoint"),
        ("timing.min_iterations=1", "a spread needs two"),
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


def test_a_task_entry_in_the_model_recipe_applies_to_that_task_only_and_train_overrides_win():
    from bench.engine import resolve_hyper

    entry = "+model.recipe.tasks={rte:{learning_rate:1e-4,epochs:2,source:'held-out rows'}}"
    rte = resolve_hyper(compose(["model=tinybert_4l", "task=rte", entry]))
    model = compose(["model=tinybert_4l"]).model.recipe
    assert (rte.learning_rate, rte.epochs) == (1e-4, 2)
    assert (rte.batch_size, rte.warmup, rte.weight_decay) == (model.batch_size, model.warmup, model.weight_decay)
    assert rte.source.startswith("rte (learning_rate, epochs): held-out rows")
    other = resolve_hyper(compose(["model=tinybert_4l", "task=cola", entry]))
    assert (other.learning_rate, other.epochs) == (model.learning_rate, model.epochs)
    assert "held-out" not in other.source
    pinned = resolve_hyper(compose(["model=tinybert_4l", "task=rte", entry, "train.learning_rate=3e-5"]))
    assert (pinned.learning_rate, pinned.epochs) == (3e-5, 2) and pinned.source.startswith("overrides on rte (epochs):")
    fully = resolve_hyper(
        compose(["model=tinybert_4l", "task=rte", entry, "train.learning_rate=3e-5", "train.epochs=3"])
    )
    assert "held-out" not in fully.source  # nothing of the task's entry was used
    tasks = "+model.recipe.tasks={%s}"
    bad = {
        "mrcp:{learning_rate:1e-4,source:x}": r"'tinybert_4l': recipe.tasks.mrcp: 'mrcp' is not a task; the.*mrpc",
        "mrpc:{learning_rate:1e-4}": "recipe.tasks.mrpc needs a source",
        "mrpc:{epochs:0,source:x}": "recipe.tasks.mrpc.epochs must be a positive number",
        "mrpc:{warmup:1.5,source:x}": r"recipe.tasks.mrpc.warmup must be a fraction of the steps in \[0, 1\)",
        "mrpc:{weight_decay:-0.1,source:x}": "recipe.tasks.mrpc.weight_decay must be >= 0",
    }
    for entry, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            compose(["model=tinybert_4l", tasks % entry])
    # every layer can be the one a value comes from, and the source names exactly the layers used
    full = "+model.recipe.tasks={rte:{learning_rate:1e-4,batch_size:8,epochs:2,warmup:0.2,weight_decay:0.1,source:s}}"
    cfg = compose(["model=tinybert_4l", "task=rte", full, "train.epochs=4"])
    h = resolve_hyper(cfg, above={"learning_rate": 7e-5}, above_name="distill.prediction")
    assert (h.learning_rate, h.batch_size, h.epochs, h.warmup, h.weight_decay) == (7e-5, 8, 4, 0.2, 0.1)
    assert (
        h.source
        == "distill.prediction (learning_rate) on overrides on rte (batch_size, warmup, weight_decay): s; "
        + ("otherwise " + model.source)
    )


def test_minilm_mrpc_runs_its_own_held_out_rate_and_its_other_tasks_the_model_recipe():
    """The model file's MRPC entry is what `bench model=minilm_l6 task=mrpc` and the fine-tuning benchmark's
    harness rung run; its source says it was chosen on held-out rows."""
    from bench.engine import resolve_hyper

    mrpc = resolve_hyper(compose(["model=minilm_l6", "task=mrpc"]))
    sst2 = resolve_hyper(compose(["model=minilm_l6", "task=sst2"]))
    entry = compose(["model=minilm_l6"]).model.recipe.tasks["mrpc"]
    assert mrpc.learning_rate == entry.learning_rate != sst2.learning_rate
    assert (mrpc.epochs, mrpc.batch_size, mrpc.warmup) == (sst2.epochs, sst2.batch_size, sst2.warmup)
    assert (
        "held out" in entry.source and "dev not read" in entry.source and mrpc.source.startswith("mrpc (learning_rate)")
    )


def test_split_by_article_is_refused_where_nothing_would_read_it():
    """It splits a local SQuAD file; elsewhere it was silently ignored while the result said it had split."""
    for overrides in (["task=sst2", "data.dir=/data/glue"], ["task=squad_v1"]):
        with pytest.raises(ConfigError, match="data.split_by_article splits a local SQuAD evaluation file"):
            compose([*overrides, "data.split_by_article=3"])
    assert compose(["task=squad_v1", "data.dir=/data/squad", "data.split_by_article=3"]).data.split_by_article == 3


def test_architecture_values_that_build_no_model_are_a_config_error():
    """hidden_size 33 with 2 heads failed inside from_config: a traceback, exit 1, recorded as a bug."""
    from bench import models
    from bench.errors import ConfigError

    cfg = compose(["model=bert_base", "model.pretrained=false", "model.arch.hidden_size=33", "task=sst2"])
    with pytest.raises(ConfigError, match=r"model 'bert_base': the architecture values do not build a model: .*33"):
        models.build_random(cfg.model, cfg.task)
