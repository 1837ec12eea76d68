"""One run, from typed config to result file: the function tests call without the CLI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict

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


MODES: Dict[str, Callable[[Config, Result], None]] = {
    "finetune": _finetune,
    "evaluate": _evaluate,
    "latency": _latency,
}


def run(cfg: Config) -> Result:
    """Run `cfg` and write `<out_dir>/result.json`, complete, whatever happens.

    A failure is recorded (status `failed` with the reason; `interrupted` on Ctrl-C) and then re-raised,
    so the caller decides how to report it. An existing result.json is never overwritten.
    """
    if not cfg.out_dir:
        raise BenchError("no output folder: set out_dir (the CLI uses Hydra's run folder)")
    out_dir = Path(cfg.out_dir)
    if (out_dir / RESULT_FILE).exists():
        raise BenchError(f"{out_dir / RESULT_FILE} already exists: each run writes a fresh folder, never over another")
    result = Result.start(cfg, env.capture())
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
        path = result.save(out_dir)
        log.info("result (%s): %s", result.status, path)
    return result
