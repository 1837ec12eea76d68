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
from typing import Any, Dict, Iterable, List, Optional

from omegaconf import OmegaConf

from . import SCHEMA_VERSION
from .errors import BenchError

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.jsonl"


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


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see the old file, the new or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows: Iterable[Dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(_clean(r)) + "\n" for r in rows))


@dataclass
class Result:
    """What one run produced; `config` is the resolved config, `env` the machine and software."""

    mode: str
    config: Dict[str, Any]
    env: Dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    status: str = "running"  # ok | failed | interrupted | skipped
    config_hash: Optional[str] = None
    error: Optional[Dict[str, Any]] = None
    model: Dict[str, Any] = field(default_factory=dict)
    task: Dict[str, Any] = field(default_factory=dict)
    metrics: Dict[str, Any] = field(default_factory=dict)
    train: Optional[Dict[str, Any]] = None
    eval: Optional[Dict[str, Any]] = None
    latency: Optional[List[Dict[str, Any]]] = None  # mode=latency: one row per backend and shape
    timing: Optional[Dict[str, Any]] = None  # mode=latency: calibration, per-backend facts and accuracy
    notes: List[str] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    duration_s: Optional[float] = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @classmethod
    def start(cls, cfg: Any, env: Dict[str, Any]) -> "Result":
        return cls(mode=cfg.mode.name, config=OmegaConf.to_container(OmegaConf.structured(cfg)), env=env)

    def fail(self, exc: BaseException, status: str = "failed") -> None:
        self.status = status
        self.error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        if not isinstance(exc, BenchError):  # a bug, not bad input: keep the trace for the report
            self.error["traceback"] = "".join(traceback.format_exception(exc))[-4000:]

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        return _clean(d)

    def save(self, out_dir: Path) -> Path:
        """Write result.json atomically; refuses to replace a result of another run."""
        self.duration_s = round(time.perf_counter() - self._t0, 3)
        path = Path(out_dir) / RESULT_FILE
        if path.exists():
            previous = json.loads(path.read_text()).get("started_at")
            if previous != self.started_at:
                raise BenchError(f"{path} already holds the result of another run; refusing to overwrite it")
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def load(path: Path) -> Dict[str, Any]:
    """Read a result file and check it is one this version understands; BenchError names the file and why."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no such result file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a readable result file ({exc})") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: not a result file (top level is not an object)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(
            f"{path}: schema_version {data.get('schema_version')!r}, this version reads {SCHEMA_VERSION}"
        )
    return data
