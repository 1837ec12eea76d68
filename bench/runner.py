"""One run, from typed config to result file: the function tests call without the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Dict, Optional

from omegaconf import OmegaConf

from . import env
from .config import Config
from .errors import BenchError
from .results import RESULT_FILE, Result

log = logging.getLogger("bench")


def _task_runner(cfg: Config):
    """Extractive QA has its own windows and post-processing; every other task is sequence classification."""
    from . import finetune, qa

    return qa.run if cfg.task.kind == "squad" else finetune.run


def _finetune(cfg: Config, result: Result) -> None:
    _task_runner(cfg)(cfg, result, train=True)


def _evaluate(cfg: Config, result: Result) -> None:
    _task_runner(cfg)(cfg, result, train=False)


def _latency(cfg: Config, result: Result) -> None:
    from .timing import runner as timing_runner

    timing_runner.run(cfg, result)


def _distill(cfg: Config, result: Result) -> None:
    from .distill import run as distill_run

    distill_run.run(cfg, result)


MODES: Dict[str, Callable[[Config, Result], None]] = {
    "finetune": _finetune,
    "evaluate": _evaluate,
    "latency": _latency,
    "distill": _distill,
}


def config_hash(cfg: Config) -> str:
    """A fingerprint of everything that decides a run's outcome (not where it is written, not resume flags)."""
    d = OmegaConf.to_container(OmegaConf.structured(cfg))
    d.pop("out_dir", None)
    d.pop("bench", None)
    if d["mode"]["name"] != "distill":
        d.pop("distill", None)  # other modes ignore it, and their hashes stay those of earlier results
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def find_completed(root: Path, digest: str) -> Optional[Path]:
    """A complete, successful earlier result of the same config below `root` (baselines excluded)."""
    for path in sorted(Path(root).glob("**/result.json")):
        if "baselines" in path.parts:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("status") == "ok" and data.get("config_hash") == digest:
            return path
    return None


def run(cfg: Config, resume: bool = False) -> Result:
    """Run `cfg` and write `<out_dir>/result.json`, complete, whatever happens.

    A failure is recorded (status `failed` with the reason; `interrupted` on Ctrl-C or SIGTERM) and then
    re-raised, so the caller decides how to report it. An existing result.json is never overwritten. With
    `resume` (sweeps), a config that already has a complete result below bench.resume_dir is skipped.
    """
    if not cfg.out_dir:
        raise BenchError("no output folder: set out_dir (the CLI uses Hydra's run folder)")
    out_dir = Path(cfg.out_dir)
    main = env.is_main_process()
    if main and (out_dir / RESULT_FILE).exists():
        raise BenchError(f"{out_dir / RESULT_FILE} already exists: each run writes a fresh folder, never over another")
    result = Result.start(cfg, env.capture())
    result.config_hash = config_hash(cfg)
    if resume and not cfg.bench.force and (done := find_completed(Path(cfg.bench.resume_dir), result.config_hash)):
        result.status = "skipped"
        result.notes.append(f"an identical config already completed: {done} (bench.force=true re-runs it)")
        result.save(out_dir)
        log.info("skipped: identical config already completed in %s", done)
        return result
    try:
        MODES[cfg.mode.name](cfg, result)
        result.status = "ok"
    except KeyboardInterrupt as exc:
        result.fail(exc, status="interrupted")
        raise
    except BaseException as exc:
        result.fail(exc)
        raise
    finally:
        if main:
            path = result.save(out_dir)
            log.info("result (%s): %s", result.status, path)
    return result
