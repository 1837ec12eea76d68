"""One self-describing result.json per run, written atomically and never over an earlier one."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from omegaconf import OmegaConf

from . import SCHEMA_VERSION, schema
from .errors import BenchError

RESULT_FILE = schema.RESULT_FILE
PREDICTIONS_FILE = "predictions.jsonl"
# the sections a mode returns; everything else in a result is the runner's
SECTIONS = ("model", "task", "metrics", "trivial", "train", "eval", "latency", "timing", "robustness")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


def _temp_beside(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see the old file, the new or none."""
    tmp = _temp_beside(Path(path), text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_new(path: Path, text: str) -> None:
    """Like write_atomic, but never replaces an existing file: the complete file appears under `path` only
    if nothing is there (a hard link fails when the name exists, where a rename would silently clobber)."""
    path = Path(path)
    tmp = _temp_beside(path, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        kept = path.with_name(f"{path.name}.unsaved-{os.getpid()}-{time.time_ns()}")
        os.replace(tmp, kept)  # this run's result is kept beside, never lost
        raise BenchError(f"{path} already exists (another run wrote it); this run's result is kept in {kept}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_jsonl(path: Path, rows: Iterable[Dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(_clean(r)) + "\n" for r in rows))


def now_stamp() -> str:
    # microseconds: two runs started in the same second are told apart (and sorted) by their stamps
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


SKIPPED_FLAG = 0.1  # a share of skipped optimizer steps above which a run is flagged, not just noted


@dataclass
class Result:
    """What one run produced, built up by the runner from the sections the mode returns."""

    mode: str
    config: Dict[str, Any]
    env: Dict[str, Any]
    model: Dict[str, Any]
    task: Dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    status: str = "running"  # see schema.STATUSES
    config_hash: Optional[str] = None
    resume_key: Optional[str] = None
    overrides: Optional[List[str]] = None  # the command line's overrides (a sweep job's own values), when run so
    error: Optional[Dict[str, Any]] = None
    failures: List[str] = field(default_factory=list)
    metrics: Dict[str, Any] = field(default_factory=dict)
    trivial: Optional[Dict[str, Any]] = None
    flags: List[str] = field(default_factory=list)
    train: Optional[Dict[str, Any]] = None
    eval: Optional[Dict[str, Any]] = None
    latency: Optional[List[Dict[str, Any]]] = None  # mode=latency: one row per backend and shape
    timing: Optional[Dict[str, Any]] = None  # mode=latency: calibration, per-backend facts and accuracy
    robustness: Optional[Dict[str, Any]] = None  # mode=robustness: loyalty, invariance, adversarial accuracy
    notes: List[str] = field(default_factory=list)
    started_at: str = field(default_factory=now_stamp)
    duration_s: Optional[float] = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @classmethod
    def start(cls, cfg: Any, env: Dict[str, Any]) -> "Result":
        # model and task are named from the config at once, so a run that fails early is still matchable
        return cls(
            mode=cfg.mode.name,
            config=OmegaConf.to_container(OmegaConf.structured(cfg)),
            env=env,
            model={
                "name": cfg.model.name,
                "source": cfg.model.source,
                "weights": weights_of(cfg.model.source, cfg.model.path),
            },
            task={"name": cfg.task.name},
        )

    def apply(self, sections: Dict[str, Any]) -> None:
        """Take what a mode returned: its sections, notes and flags."""
        unknown = set(sections) - set(SECTIONS) - {"notes", "flags", "failures"}
        if unknown:
            raise ValueError(f"a mode returned unknown result sections {sorted(unknown)}")
        for name in SECTIONS:
            if name in sections:
                setattr(self, name, sections[name])
        self.notes += sections.get("notes", [])
        self.flags += sections.get("flags", [])
        for train in [self.train or {}, *((self.train or {}).get("stages") or [])]:
            self._say_skipped(train)
        self.failures += sections.get("failures", [])

    def _say_skipped(self, train: Dict[str, Any]) -> None:
        """Steps the fp16 loss scaler skipped (gradients overflowed; the weights did not move): a note when any,
        a flag when more than SKIPPED_FLAG of them, for then the run trained on fewer steps than it says."""
        skipped, steps = len(train.get("skipped_steps") or []), train.get("steps") or 0
        if not skipped:
            return
        stage = f"{train['stage']}: " if train.get("stage") else ""
        said = f"{stage}{skipped} of {steps} optimizer steps skipped by the fp16 loss scaler (gradients overflowed)"
        if steps and skipped / steps > SKIPPED_FLAG:
            self.flags.append(said)
        else:
            self.notes.append(f"{said}: the scaler finding its scale (train.skipped_steps)")

    def fail(self, exc: BaseException, status: str = "failed") -> None:
        self.status = status
        self.error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        if not isinstance(exc, BenchError):  # a bug, not bad input: keep the trace for the report
            self.error["traceback"] = "".join(traceback.format_exception(exc))[-4000:]

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        return _clean(d)

    def save(self, out_dir: Path) -> Path:
        """Validate against the schema and publish result.json; never replaces an existing file."""
        self.duration_s = round(time.perf_counter() - self._t0, 3)
        path = Path(out_dir) / RESULT_FILE
        data = self.to_dict()
        schema.parse(data, path)  # a result this program cannot read back is a bug: never write one
        publish_new(path, json.dumps(data, indent=2) + "\n")
        return path


WEIGHTS_KEY = "bench_weights"  # written into a saved checkpoint's config.json: what its training started from


def checkpoint_says(path: Any, in_result: Tuple[str, str], in_config: str) -> Optional[Any]:
    """What a harness-made checkpoint records about its training: `in_result` (section, key) of its run's
    result.json beside it (or inside it), else `in_config` of its config.json (written when the harness saved it,
    so a folder copied out of its run still says). None when neither does (a checkpoint made elsewhere)."""
    folder = Path(path)
    section, key = in_result
    for result in (folder.parent / RESULT_FILE, folder / RESULT_FILE):
        try:
            return json.loads(result.read_text())[section][key]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    try:
        return json.loads((folder / "config.json").read_text()).get(in_config)
    except (OSError, ValueError, AttributeError):
        return None


def checkpoint_weights(path: Any) -> Optional[str]:
    """What a harness-made checkpoint's training started from, 'random' or 'pretrained' (None: not known)."""
    weights = checkpoint_says(path, ("model", "weights"), WEIGHTS_KEY)
    return weights if weights in ("random", "pretrained") else None


def weights_of(source: str, path: Optional[str] = None) -> str:
    """A run's `model.weights`: random weights, or a checkpoint trained from random weights, are 'random' (a
    fine-tune of an unpretrained architecture is no pretrained model); everything else 'pretrained'."""
    if source == "random":
        return "random"
    if source == "path" and path:
        return checkpoint_weights(path) or "pretrained"
    return "pretrained"


def load(path: Path) -> schema.Result:
    """Read and validate a result file; BenchError names the file and the field that is wrong."""
    return schema.read(path)


# What a result's `train` section says about the machine's load while it trained (written by
# bench.timing.load.watch / judged_for); here, in the bottom layer, so that the readers (report/) can ask.
def _load_figures(train: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    train = train or {}
    return [f for f in [train.get("load"), *((s or {}).get("load") for s in train.get("stages") or [])] if f]


def trained_beside_load(train: Optional[Dict[str, Any]]) -> bool:
    """Whether a result's `train` section, or any of its stages (a distillation), was timed beside other load."""
    return any(f.get("disturbed") is True for f in _load_figures(train))


def load_not_judged(train: Optional[Dict[str, Any]]) -> bool:
    """Whether some of that training time could not be judged (a DDP rank: bench.timing.load.judged_for): neither
    quiet nor flagged."""
    return any(f.get("disturbed") is None and f.get("not_judged") for f in _load_figures(train))
