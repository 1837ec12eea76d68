"""The typed shape of result.json, and the one reader every consumer uses.

Resume, the sweep summary, `bench report` and `bench compare` all read results through `read` / `walk`, so
a malformed file is rejected in one place, with the field that is wrong, instead of crashing each reader
differently. Sections the timing code extends as it grows (`env`, `timing`, latency rows) allow extra keys;
the fields the readers depend on are typed and required.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import SCHEMA_VERSION
from .errors import BenchError

RESULT_FILE = "result.json"
STATUSES = ("running", "ok", "partial", "failed", "interrupted", "skipped")
Status = Literal["running", "ok", "partial", "failed", "interrupted", "skipped"]


class _Open(BaseModel):
    """A section other code keeps adding keys to: typed where read, open elsewhere."""

    model_config = ConfigDict(extra="allow")


class ErrorInfo(_Open):
    type: str = "Error"
    message: str
    traceback: Optional[str] = None


class ModelInfo(_Open):
    name: str
    source: Optional[str] = None
    weights: Literal["pretrained", "random"] = "pretrained"
    head: Literal["trained", "random", "new"] = "trained"  # random: evaluated with model.allow_random_head
    parameters: Optional[int] = None
    num_hidden_layers: Optional[int] = None  # the depth a distilled student is labelled with


class TaskInfo(_Open):
    name: str
    eval_splits: List[str] = Field(default_factory=list)


class LatencyStats(_Open):
    p50: float
    samples: List[float] = Field(min_length=1)


class Memory(_Open):
    peak_rss_bytes: int


class LatencyRow(_Open):
    backend: str
    status: Literal["ok", "failed", "unsupported"]
    device: str = "cpu"
    batch_size: Optional[int] = None
    seq_len: Optional[int] = None
    latency_s: Optional[LatencyStats] = None
    memory: Optional[Memory] = None
    error: Optional[str] = None

    @model_validator(mode="after")
    def _ok_rows_carry_their_figures(self) -> "LatencyRow":
        if self.status == "ok":
            missing = [n for n in ("batch_size", "seq_len", "latency_s", "memory") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a row with status ok has no {', '.join(missing)}")
        return self


class PrecisionInfo(_Open):
    precision: Optional[str] = None


class Figure(_Open):
    """One robustness figure beside the examples it is taken over and its 95% bootstrap interval.

    `value` is null when `n` is 0 (a perturbation that changed no example has no flip rate, not a zero one).
    """

    value: Optional[float] = None
    n: int = Field(ge=0)
    low: Optional[float] = None
    high: Optional[float] = None

    @model_validator(mode="after")
    def _no_value_without_examples(self) -> "Figure":
        if self.n == 0 and self.value is not None:
            raise ValueError("a figure over 0 examples has no value")
        return self


class Perturbed(_Open):
    """One perturbation on one backend: what it changed, and what that did to the predictions."""

    text_changed: int = Field(ge=0)  # examples whose text it changed
    changed: int = Field(ge=0)  # examples whose model input (token ids) it changed: the flip rate's denominator
    flip_rate: Figure
    acc_before: Figure
    acc_after: Figure


class Reordered(_Open):
    """One choice order on one backend (multiple choice): the examples it showed in a new order, how many of their
    chosen answers (mapped back to the original candidates) changed, and the accuracy before and after. `order_any`
    is over the examples any order changed: a flip under at least one order; acc_after right under every one."""

    changed: int = Field(ge=0)
    flip_rate: Figure
    acc_before: Figure
    acc_after: Figure


class BackendRobustness(_Open):
    backend: str
    status: Literal["ok", "failed", "unsupported"]
    error: Optional[str] = None
    clean_acc: Optional[Figure] = None
    loyalty: Optional[Dict[str, Any]] = None  # label, probability (Figures), disagreements, reference
    invariance: Dict[str, Perturbed] = Field(default_factory=dict)
    advglue: Optional[Dict[str, Any]] = None  # per AdvGLUE key: acc and trivial (Figures), or why not scored
    choice_orders: Dict[str, Reordered] = Field(default_factory=dict)  # multiple choice: per order, and order_any


class Robustness(_Open):
    """mode=robustness: loyalty, invariance and adversarial accuracy per backend; `predictions` names the file
    holding every per-example prediction the figures are computed from."""

    perturbation_set: str
    predictions: str
    reference: Dict[str, Any]
    backends: List[BackendRobustness] = Field(min_length=1)
    unchanged: Dict[str, str] = Field(default_factory=dict)  # perturbation -> why it is not in the figures
    multiple_choice: Optional[Dict[str, Any]] = None  # the choice orders: their rule, seed, and changed counts
    source: Optional[Dict[str, Any]] = None  # the run that trained the checkpoint: its folder, mode, seed, distill


class SideLatency(_Open):
    p50_ms: Optional[float] = None


class DistillEfficiency(_Open):
    """mode=distill's side-by-side measurement of student and teacher."""

    teacher: Optional[SideLatency] = None
    student: Optional[SideLatency] = None
    speedup_p50: Optional[float] = None


class Fidelity(_Open):
    agreement: Optional[float] = None  # the share of dev examples on which the student predicts the teacher's label


class DistillFidelity(_Open):
    before: Optional[Fidelity] = None
    after: Optional[Fidelity] = None


class DistillInfo(_Open):
    """`train.distill`: the recipe a student was distilled with and what it kept of its teacher."""

    teacher: Optional[str] = None
    teacher_id: Optional[str] = None
    teacher_train_seconds: Optional[float] = None
    teacher_metrics: Dict[str, Optional[float]] = Field(default_factory=dict)
    stages: List[str] = Field(default_factory=list)
    copied_layers: Optional[List[int]] = None  # teacher layers the student was built from (init=teacher_layers)
    layer_map: Optional[List[int]] = None  # teacher layer each student layer learns
    direct: Optional[bool] = None
    efficiency: Optional[DistillEfficiency] = None
    fidelity: Optional[DistillFidelity] = None


class TrainInfo(PrecisionInfo):
    """`train`: how a model was trained (a fine-tune, or the stages of a distillation)."""

    seconds: Optional[float] = None
    examples: Optional[int] = None
    stages: List[Dict[str, Any]] = Field(default_factory=list)  # mode=distill: one record per stage
    distill: Optional[DistillInfo] = None


class Result(BaseModel):
    """One run. `metrics` values are floats or null (JSON has no NaN; null means it was not finite)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    mode: Literal["finetune", "evaluate", "latency", "distill", "robustness"]
    status: Status
    config: Dict[str, Any]
    env: _Open = Field(default_factory=_Open)
    config_hash: Optional[str] = None
    resume_key: Optional[str] = None
    overrides: Optional[List[str]] = None  # the command line's overrides (a sweep job's own values)
    error: Optional[ErrorInfo] = None
    failures: List[str] = Field(default_factory=list)  # partial/failed: what did not succeed
    model: ModelInfo
    task: TaskInfo
    metrics: Dict[str, Optional[float]] = Field(default_factory=dict)
    trivial: Optional[Dict[str, Any]] = None  # scores of the trivial predictor on the same examples
    flags: List[str] = Field(default_factory=list)  # e.g. "no better than trivial", "head: random"
    train: Optional[TrainInfo] = None
    eval: Optional[PrecisionInfo] = None
    latency: Optional[List[LatencyRow]] = None
    timing: Optional[_Open] = None
    robustness: Optional[Robustness] = None  # mode=robustness
    notes: List[str] = Field(default_factory=list)
    started_at: str
    duration_s: Optional[float] = None
    path: Optional[str] = Field(default=None, exclude=True)  # where it was read from; never written

    @field_validator("error", mode="before")
    @classmethod
    def _error_as_text(cls, v: Any) -> Any:
        return {"type": "Error", "message": v} if isinstance(v, str) else v

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_numbers_only(cls, v: Any) -> Any:
        if isinstance(v, dict):  # a nested or text value is not a metric the gate or the report could use
            bad = [
                k for k, x in v.items() if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)))
            ]
            if bad:
                raise ValueError(f"metric(s) {bad} are not numbers")
        return v

    @property
    def precision(self) -> Optional[str]:
        """The numeric precision the reported figures were produced in (training's, else evaluation's)."""
        return (self.train and self.train.precision) or (self.eval and self.eval.precision)

    @property
    def nonfinite_metrics(self) -> List[str]:
        return [k for k, v in self.metrics.items() if v is None or not math.isfinite(v)]

    @property
    def seed(self) -> Optional[int]:
        return (self.config.get("train") or {}).get("seed")

    @property
    def machine_class(self) -> Optional[str]:
        return getattr(self.env, "machine_class", None)


def _field_path(err: Dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top level)"


def describe_error(exc: ValidationError) -> str:
    """`model.name: Field required; ...`: the fields that are wrong, first three."""
    parts = [f"{_field_path(e)}: {e['msg']}" for e in exc.errors()[:3]]
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


def parse(data: Any, path: Union[str, Path] = "<result>") -> Result:
    """Validate one decoded result; BenchError names the file and the field that is wrong."""
    if not isinstance(data, dict):
        raise BenchError(f"{path}: not a result file (top level is {type(data).__name__}, not an object)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(f"{path}: schema_version {data.get('schema_version')!r}, this version reads {SCHEMA_VERSION}")
    try:
        result = Result.model_validate({k: v for k, v in data.items() if not k.startswith("_")})
    except ValidationError as exc:
        raise BenchError(f"{path}: invalid result file: {describe_error(exc)}") from None
    result.path = str(path)
    return result


def read(path: Union[str, Path]) -> Result:
    """Read and validate one result.json."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no such result file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a readable result file ({exc})") from None
    return parse(data, path)


def walk(root: Union[str, Path], exclude: Tuple[str, ...] = ()) -> Iterator[Tuple[Path, Union[Result, str]]]:
    """Every result.json below `root` (or `root` itself when a file): (path, Result) or (path, why it is skipped).

    `exclude` names folder parts to leave out (for example "baselines", "gate"), unless `root` lies inside one.
    """
    root = Path(root)
    paths = [root] if root.is_file() else sorted(root.glob(f"**/{RESULT_FILE}"))
    for path in paths:
        rel = path.relative_to(root).parts[:-1] if root.is_dir() else ()
        if any(part in exclude for part in rel):
            continue
        try:
            yield path, read(path)
        except BenchError as exc:
            yield path, str(exc)
