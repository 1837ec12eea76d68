"""`python -m bench model=... task=... mode=...` (also the `bench` console script).

`bench report ...` and `bench compare ...` dispatch to their own modules.
"""

from __future__ import annotations

import logging
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import CONF_DIR
from .config import register, to_config
from .errors import BenchError

log = logging.getLogger("bench")

SUBCOMMANDS = {"report": "bench.report.__main__", "compare": "bench.compare"}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(dcfg: DictConfig) -> None:
    from .runner import run

    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        cfg = to_config(dcfg)
        cfg.out_dir = HydraConfig.get().runtime.output_dir
        resume = cfg.bench.resume == "always" or (cfg.bench.resume == "auto" and sweep)
        result = run(cfg, resume=resume)
    except KeyboardInterrupt as exc:
        print("bench: interrupted; the run was recorded as interrupted", file=sys.stderr)
        sys.exit(143 if isinstance(exc, Terminated) else 130)  # the shell's 128 + signal number
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        if sweep:
            return  # recorded as failed in its result.json; the rest of the sweep goes on
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug or an out-of-memory: in a sweep, recorded and isolated to its job
        if not sweep:
            raise
        log.exception("bench: job failed (recorded in its result.json); the sweep goes on")
        print(f"bench: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    if result.status == "skipped":
        print(f"bench: skipped: {result.notes[-1]}")
        return
    summary = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    if result.latency:
        from .report.console import latency_table

        print(latency_table([result.to_dict()]))
    print(f"bench: {cfg.mode.name} {cfg.model.name} on {cfg.task.name}: {result.status}. {summary}")
    print(f"bench: result written to {cfg.out_dir}/result.json")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the run can record that it was interrupted."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated(f"terminated by signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[sys.argv[1]])
        sys.exit(module.main(sys.argv[2:]))
    register()
    _hydra_main()


if __name__ == "__main__":
    main()
