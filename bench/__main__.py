"""`python -m bench model=... task=... mode=...` (also the `bench` console script).

`bench report ...` and `bench compare ...` dispatch to their own modules.
"""

from __future__ import annotations

import logging
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

    try:
        cfg = to_config(dcfg)
        cfg.out_dir = HydraConfig.get().runtime.output_dir
        result = run(cfg)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return  # recorded as failed in its result.json; the rest of the sweep goes on
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("bench: interrupted; the run was recorded as interrupted", file=sys.stderr)
        sys.exit(130)
    summary = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    if result.latency:
        from .report.console import latency_table

        print(latency_table([result.to_dict()]))
    print(f"bench: {cfg.mode.name} {cfg.model.name} on {cfg.task.name}: {result.status}. {summary}")
    print(f"bench: result written to {cfg.out_dir}/result.json")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[sys.argv[1]])
        sys.exit(module.main(sys.argv[2:]))
    register()
    _hydra_main()


if __name__ == "__main__":
    main()
