"""Typed config schemas, registered with Hydra's ConfigStore.

Hydra composes YAML into these dataclasses (so a wrongly typed override fails at composition), and
``to_config`` converts the DictConfig to plain dataclasses once; ``__post_init__`` checks values only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .checks import choice, positive
from .distill_config import DistillConfig
from .errors import ConfigError
from .kinds import KINDS
from .recipe_config import RecipeConfig, TaskRecipe, check_task_recipes  # noqa: F401 (re-exported)
from .robustness_config import RobustnessConfig
from .timing_config import BACKEND_CHOICES, BACKENDS, TimingConfig  # noqa: F401 (re-exported)


@dataclass
class ModelConfig:
    name: str = MISSING
    hub_id: Optional[str] = None
    package: Optional[str] = None  # an installed Python package that ships the weights (offline)
    path: Optional[str] = None  # a local checkpoint folder; wins over every other source
    pretrained: bool = True  # false: the exact architecture with random weights
    allow_random_head: bool = False  # mode=evaluate: score a checkpoint without a trained task head anyway
    arch: Dict[str, Any] = field(default_factory=dict)  # model_type + the config class's values
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    notes: str = ""

    def __post_init__(self) -> None:
        check_task_recipes(self.name, self.recipe)
        if "model_type" not in self.arch:
            raise ConfigError(f"model {self.name!r}: arch.model_type is required (bert, mobilebert, distilbert, ...)")
        if self.pretrained and not (self.path or self.hub_id or self.package):
            raise ConfigError(
                f"model {self.name!r} has no public checkpoint: give model.path=DIR, "
                "or model.pretrained=false for the architecture with random weights"
            )

    @property
    def source(self) -> str:
        """Where the weights come from: path, random, package or hub (in that order of precedence)."""
        if self.path:
            return "path"
        if not self.pretrained:
            return "random"
        return "package" if self.package else "hub"


@dataclass
class LocalFormat:
    """How a task's files look in the standard GLUE download layout (read with quoting disabled)."""

    dir_name: str = MISSING
    train_file: str = "train.tsv"
    # eval split -> file; no default, since Hydra would merge a task's splits into it rather than replace it
    eval_files: Dict[str, str] = field(default_factory=dict)
    header: bool = True
    # column names from the header, or 0-based positions as strings when there is no header; "-1" is the last
    text_columns: List[str] = field(default_factory=list)
    label_column: str = "label"
    layout: str = ""  # multiple-choice tasks: the release layout's reader (bench/tasks/multiple_choice.LAYOUTS)


@dataclass
class HubFormat:
    id: str = "nyu-mll/glue"
    config: Optional[str] = None
    text_columns: List[str] = field(default_factory=list)
    label_column: str = "label"
    train_split: str = "train"
    layout: str = ""  # multiple-choice tasks: the Hub dataset's layout, when it differs from the local one


@dataclass
class ReportFormat:
    """How report tables show a task: its column title, the metrics its cell shows, its column order."""

    title: str = ""  # empty: the task's name
    cell: List[str] = field(default_factory=list)  # empty: the primary metrics
    order: int = 100


@dataclass
class TaskConfig:
    name: str = MISSING
    kind: str = "classification"  # a kind of bench/kinds.py: classification | regression | squad | multiple_choice
    labels: List[str] = field(default_factory=list)  # label values as written in the local files, in Hub order
    metrics: List[str] = field(default_factory=list)
    primary: List[str] = field(default_factory=list)  # the mean of these is the task's primary figure
    split_suffix: Dict[str, str] = field(default_factory=dict)  # eval split -> metric name suffix (MNLI m/mm)
    max_seq_length: int = 128
    local: LocalFormat = field(default_factory=LocalFormat)
    hub: HubFormat = field(default_factory=HubFormat)
    report: ReportFormat = field(default_factory=ReportFormat)
    # SQuAD-style tasks only
    doc_stride: int = 128
    n_best: int = 20
    max_answer_length: int = 30
    version_2: bool = False
    null_threshold: float = 0.0

    def __post_init__(self) -> None:
        choice("task.kind", self.kind, list(KINDS))
        if len(self.labels) < KINDS[self.kind].min_labels:
            raise ConfigError(
                f"task {self.name!r}: a {self.kind} task needs at least {KINDS[self.kind].min_labels} labels"
            )
        if not self.local.eval_files:
            raise ConfigError(f"task {self.name!r}: local.eval_files names no evaluation split")
        unknown = [m for m in self.primary if m not in self.metrics]
        if unknown:
            raise ConfigError(f"task {self.name!r}: primary metrics {unknown} are not among metrics {self.metrics}")

    @property
    def num_labels(self) -> int:
        return KINDS[self.kind].num_labels(self)


HOLDOUT = "holdout"  # the split data.holdout takes out of the training rows (bench.tasks.cap makes it)
SCORES = ["dev", HOLDOUT]
HOLDOUT_MODES = ["finetune", "distill"]  # the modes that train, so that a holdout exists to be scored


@dataclass
class DataConfig:
    dir: Optional[str] = None  # local data folder; None reads the Hub
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    sample_seed: Optional[int] = None  # seed of the max_train_samples subset and the holdout; None: train.seed
    holdout: Optional[int] = None  # training rows held out as split `holdout` (hyper-parameter selection)
    # what the run scores: dev (the task's eval splits) or holdout (only the split data.holdout keeps back; the
    # eval files are then not even read, so that a run choosing hyper-parameters never sees the test)
    score: str = "dev"
    split_by_article: Optional[int] = None  # SQuAD offline: train on the first N articles of the eval file

    def __post_init__(self) -> None:
        positive("data.max_train_samples", self.max_train_samples)
        positive("data.max_eval_samples", self.max_eval_samples)
        positive("data.holdout", self.holdout)
        positive("data.split_by_article", self.split_by_article)
        choice("data.score", self.score, SCORES)
        if self.score == HOLDOUT and not self.holdout:
            raise ConfigError("data.score=holdout scores the rows data.holdout keeps back: set data.holdout=N too")


@dataclass
class TrainConfig:
    """Fine-tuning settings; a None hyper-parameter takes the model's recommended recipe."""

    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    epochs: Optional[float] = None
    warmup: Optional[float] = None
    weight_decay: Optional[float] = None
    max_steps: int = -1
    seed: int = 42
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (CUDA only)
    padding: str = "dynamic"  # dynamic (pad each batch to its longest) | max_length (pad all to max_seq_length)
    group_by_length: bool = True
    compile: bool = False  # torch.compile the model for training (TrainingArguments.torch_compile; docs/finetune.md)
    max_seq_length: Optional[int] = None  # None: the task's value
    eval_batch_size: int = 64
    save_checkpoint: bool = False
    save_predictions: bool = True
    logging_steps: int = 50

    def __post_init__(self) -> None:
        choice("train.precision", self.precision, ["auto", "fp32", "bf16", "fp16"])
        choice("train.padding", self.padding, ["dynamic", "max_length"])
        for name in ("learning_rate", "batch_size", "epochs", "max_seq_length", "eval_batch_size", "logging_steps"):
            positive(f"train.{name}", getattr(self, name))
        if self.warmup is not None and not 0 <= self.warmup < 1:
            raise ConfigError(f"train.warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.weight_decay is not None and not 0 <= self.weight_decay < float("inf"):  # as a recipe's is checked
            raise ConfigError(f"train.weight_decay must be 0 or more, got {self.weight_decay}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"train.max_steps={self.max_steps}: give a step count (1 or more), or -1 for the epochs")


@dataclass
class ModeConfig:
    name: str = "finetune"  # finetune | evaluate | latency | distill | robustness

    def __post_init__(self) -> None:
        choice("mode.name", self.name, ["finetune", "evaluate", "latency", "distill", "robustness"])


@dataclass
class DeviceConfig:
    name: str = "cpu"  # cpu | cuda
    index: int = 0
    threads: Optional[int] = None  # CPU threads for torch; None keeps torch's default

    def __post_init__(self) -> None:
        choice("device.name", self.name, ["cpu", "cuda"])
        positive("device.threads", self.threads)
        if self.index < 0:
            raise ConfigError(f"device.index={self.index}: give a CUDA device number, 0 or more")


@dataclass
class BenchControl:
    """How runs relate to earlier ones."""

    force: bool = False  # re-run even when an identical config already has a complete result
    resume: str = "auto"  # auto: skip completed runs in sweeps only; always; never
    resume_dir: str = "results"  # where completed runs are looked for (results/baselines/ is never matched)

    def __post_init__(self) -> None:
        choice("bench.resume", self.resume, ["auto", "always", "never"])


@dataclass
class Config:
    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    mode: ModeConfig = field(default_factory=ModeConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    bench: BenchControl = field(default_factory=BenchControl)
    distill: DistillConfig = field(default_factory=DistillConfig)  # read by mode=distill only
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)  # read by mode=robustness only
    out_dir: Optional[str] = None  # set from Hydra's run folder; tests pass their own

    def __post_init__(self) -> None:
        if self.mode.name == "distill":
            if not self.distill.teacher:
                raise ConfigError("mode=distill needs a fine-tuned teacher: distill.teacher=RUN_OR_CHECKPOINT_FOLDER")
            if not KINDS[self.task.kind].distillable:
                can = sorted(k for k, kind in KINDS.items() if kind.distillable)
                raise ConfigError(
                    f"mode=distill covers task kinds {can}; task {self.task.name} is of kind "
                    f"{self.task.kind!r}, which it cannot distil yet"
                )
        if self.data.score == HOLDOUT and (self.mode.name not in HOLDOUT_MODES or not KINDS[self.task.kind].holdout):
            raise ConfigError(
                f"data.score=holdout covers modes {HOLDOUT_MODES} on task kinds "
                f"{sorted(k for k, kind in KINDS.items() if kind.holdout)}; "
                f"this run is mode={self.mode.name} on a {self.task.kind} task"
            )
        if self.data.split_by_article and (self.task.kind != "squad" or not self.data.dir):
            raise ConfigError(  # read nowhere else: silently ignored, while the result said it had split
                "data.split_by_article splits a local SQuAD evaluation file by article (data.dir=...); this run "
                f"reads task {self.task.name} ({self.task.kind}) from {'files' if self.data.dir else 'the Hub'}"
            )
        if self.mode.name == "robustness":
            if self.task.kind not in ("classification", "multiple_choice"):
                # loyalty and flips are defined on labels; for a regression (STS-B) they would be a correlation or
                # a tolerance band, another measurement; squad's answers are spans
                raise ConfigError(
                    f"mode=robustness covers classification and multiple-choice tasks; task {self.task.name} is of "
                    f"kind {self.task.kind!r} (regression and span answers are out of its scope)"
                )
            if self.robustness.choice_orders is not None and self.task.kind != "multiple_choice":
                raise ConfigError(
                    f"robustness.choice_orders={self.robustness.choice_orders}: task {self.task.name} is of kind "
                    f"{self.task.kind!r}, whose inputs have no candidates to reorder (the choice-order test is for "
                    "multiple-choice tasks: copa, piqa, arc_easy, ...); leave it unset"
                )

    @property
    def scored_splits(self) -> List[str]:
        """The splits this run predicts and scores: the task's eval splits, or only `holdout` (data.score)."""
        return [HOLDOUT] if self.data.score == HOLDOUT else list(self.task.local.eval_files)


def register() -> None:
    """Register the schemas so the YAML tree is validated against them during composition."""
    # one schema for the whole tree: each group's YAML merges into its typed node, so nothing else is needed
    ConfigStore.instance().store(name="base_config", node=Config)


def to_config(cfg: DictConfig) -> Config:
    """Convert a composed DictConfig into dataclasses, once; value errors surface as ConfigError."""
    try:
        obj = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # omegaconf wraps errors raised in __post_init__
        cause = exc.__cause__ or exc
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(f"invalid config: {exc}") from None
    if not isinstance(obj, Config):
        raise ConfigError("the composed config is not a bench Config (was base_config left out of the defaults?)")
    return obj


def compose(overrides: Optional[List[str]] = None, out_dir: Optional[str] = None) -> Config:
    """Compose the config tree as the CLI would (same defaults, same validation), for tests and benchmarks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from . import CONF_DIR

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_config(hydra_compose(config_name="config", overrides=list(overrides or [])))
    cfg.out_dir = out_dir
    return cfg
