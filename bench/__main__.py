"""`python -m bench model=... task=... mode=...` (also the `bench` console script).

`bench report ...` and `bench compare ...` are the same programs as the `bench-report` and `bench-compare`
console scripts. Exit codes are listed in bench/errors.py and docs/result-file.md.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import CONF_DIR, errors, signals
from .config import register, to_config
from .errors import BenchError
from .signals import Terminated  # noqa: F401  (kept importable from here)

log = logging.getLogger("bench")

# The entry points of the bench-report and bench-compare scripts ([project.scripts]), also reachable as
# `bench report` / `bench compare`, the spelling the README and CI have always used.
SUBCOMMANDS = {
    "report": "bench.report.__main__:main",
    "compare": "bench.compare:main",
    "score": "bench.score:main",
}  # score: a checkpoint on examples of your own
STATUS_EXIT = {
    "ok": errors.EXIT_OK,
    "skipped": errors.EXIT_OK,
    "partial": errors.EXIT_PARTIAL,
    "failed": errors.EXIT_FAILED,
}


# whether a job is running in this process: an omegaconf error raised by a job's own code is a bug, not a command
# line that does not compose (main() tells the two apart by the exception's type, Hydra re-raising it)
_IN_JOB = {"now": False}


def _composition_error(exc: BaseException) -> bool:
    """Hydra could not compose the command line into a config: an unknown model, task, key or group option, a value
    of the wrong type, an override it cannot parse. Bad input (exit 2), where Hydra's own exit is 1, a bug's."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    composing = (ConfigCompositionException, MissingConfigException, OverrideParseException)
    return isinstance(exc, composing) or (isinstance(exc, OmegaConfBaseException) and not _IN_JOB["now"])


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(dcfg: DictConfig) -> None:
    # each job installs its own handlers (joblib and submitit workers run jobs without passing through main())
    # and, in a sweep's worker process, marks itself so the sweep's process can forward a SIGTERM to it
    _IN_JOB["now"] = True
    with signals.job():
        _job(dcfg)
    _IN_JOB["now"] = False


def _job(dcfg: DictConfig) -> None:
    from .runner import run

    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    out_dir = hc.runtime.output_dir
    try:
        try:
            signals.refuse_if_interrupted()  # a worker told to stop between two jobs starts no other
            cfg = to_config(dcfg)
            if cfg.out_dir is not None and Path(cfg.out_dir or ".").resolve() != Path(out_dir).resolve():
                # the run folder is Hydra's (its log and config are already there): an out_dir given on the
                # command line would otherwise be dropped without a word, and the result looked for in vain
                advice = (
                    f"use hydra.sweep.dir={cfg.out_dir} instead (each job writes a folder of its own inside it)"
                    if sweep
                    else f"use hydra.run.dir={cfg.out_dir} instead"
                )
                raise errors.ConfigError(
                    f"out_dir={cfg.out_dir} cannot choose the run's folder (Hydra makes it: {out_dir}); {advice}"
                )
        except KeyboardInterrupt as exc:
            _record_early_failure(dcfg, out_dir, exc, status="interrupted", sweep=sweep, overrides=hc.overrides.task)
            raise
        except BenchError as exc:
            _record_early_failure(dcfg, out_dir, exc, sweep=sweep, overrides=hc.overrides.task)
            raise
        cfg.out_dir = out_dir
        resume = cfg.bench.resume == "always" or (cfg.bench.resume == "auto" and sweep)
        roots = [hc.sweep.dir] if sweep else []  # the sweep's own folder: a sweep run twice into it resumes
        result = run(cfg, resume_runs=resume, resume_roots=roots, overrides=list(hc.overrides.task), in_sweep=sweep)
    except KeyboardInterrupt as exc:
        print("bench: interrupted; the run was recorded as interrupted", file=sys.stderr)
        signals.after_interrupt()  # in a sweep's worker process: waits there to be ended with the sweep
        sys.exit(signals.exit_code(exc))
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
    _report(cfg, result)
    code = STATUS_EXIT.get(result.status, errors.EXIT_FAILED)
    if code and not sweep:  # in a sweep the summary decides the exit status
        sys.exit(code)


def _report(cfg, result) -> None:
    if result.status == "skipped":
        print(f"bench: skipped: {result.notes[-1]}")
        return
    summary = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    if result.latency:
        from .report.console import latency_table

        print(latency_table([result.to_dict()]))
    marks = (["weights: random"] if (result.model or {}).get("weights") == "random" else []) + [
        f for f in result.flags if f != "weights: random"
    ]
    flags = f" [{'; '.join(marks)}]" if marks else ""
    print(f"bench: {cfg.mode.name} {cfg.model.name} on {cfg.task.name}: {result.status}{flags}. {summary}")
    for failure in result.failures:
        print(f"bench:   not ok: {failure}", file=sys.stderr)
    print(f"bench: result written to {cfg.out_dir}/result.json")


def _record_early_failure(
    dcfg: DictConfig, out_dir: str, exc: BaseException, status: str = "failed", sweep: bool = False, overrides=None
) -> None:
    """A job that fails before it starts (a bad value) still leaves a failed result.json with the reason; one
    stopped by a signal before it starts, an interrupted one.

    In a sweep's folder that already holds a result (the sweep run again): a usable one (ok, skipped, partial:
    reports read it, a skip may point at it) stays where it is, and the job's outcome is a marker the sweep's
    summary counts (`runner.mark_outcome`); an unusable one (failed, interrupted, unreadable) is moved aside as a
    re-run's would be, and the failure recorded. Either way the job does not read as 'already complete'."""
    from omegaconf import OmegaConf

    from . import env, results, schema
    from .runner import existing_result, mark_outcome

    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        if sweep and (Path(out_dir) / results.RESULT_FILE).exists():
            try:
                usable = schema.read(Path(out_dir) / results.RESULT_FILE).status in ("ok", "skipped", "partial")
            except BenchError:
                usable = False
            if usable:
                mark_outcome(out_dir, f"{message} (before the job started; the earlier result here is kept)", status)
                return
        try:
            config = OmegaConf.to_container(dcfg, resolve=True)
        except Exception:  # noqa: BLE001 (a value that does not resolve may be the very error): as written
            config = OmegaConf.to_container(dcfg, resolve=False)
        if sweep:  # an unusable earlier result of this folder goes aside (no resume key matches "")
            existing_result(Path(out_dir), "", False, config, list(overrides or []), in_sweep=True)
        spec = dcfg.model  # named as Result.start names it, so the failure sits under its model (weights: random)
        path, pretrained = spec.get("path"), spec.get("pretrained", True)
        source = "path" if path else "random" if not pretrained else "package" if spec.get("package") else "hub"
        result = results.Result(
            mode=str(dcfg.mode.name),
            config=config,
            env=env.capture(),
            model={"name": str(spec.name), "source": source, "weights": results.weights_of(source, path)},
            task={"name": str(dcfg.task.name)},
        )
        result.fail(exc, status=status)
        result.save(Path(out_dir))
    except Exception as why:  # noqa: BLE001 (the config error itself is what the user must see)
        log.warning("bench: the failed job could not be recorded (%s)", why)


def main() -> None:
    signals.install()
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        import importlib

        module, function = SUBCOMMANDS[sys.argv[1]].split(":")
        sys.exit(getattr(importlib.import_module(module), function)(sys.argv[2:]))
    register()
    from . import callbacks

    callbacks.SWEEP_OUTCOME.clear()
    # Hydra re-raises what it caught instead of printing it and exiting 1 (the code of a bug, for bad input too):
    # a config that does not compose is then told apart by its type, and a bug keeps its full traceback
    os.environ["HYDRA_FULL_ERROR"] = "1"  # whatever the caller set: the type decides what is shown
    try:
        _hydra_main()
    except KeyboardInterrupt as exc:  # outside a job (a sweep's launcher): still the signal's exit code
        print("bench: interrupted", file=sys.stderr)
        sys.exit(signals.exit_code(exc))
    except callbacks.StopSweep as stop:  # a sweep that cannot start (hydra/launcher=cluster without SLURM)
        print(f"bench: error: {stop.error}", file=sys.stderr)
        sys.exit(getattr(stop.error, "exit_code", errors.EXIT_BAD_INPUT))
    except Exception as exc:
        if not _composition_error(exc):
            raise
        cause = f"\n{exc.__cause__}" if exc.__cause__ is not None else ""
        print(f"{exc}{cause}", file=sys.stderr)  # Hydra's message: the key, or the choices of a config group
        print(
            "bench: error: the command line does not compose into a valid config (above); no job that cannot be "
            "composed runs. `python -m bench --help` lists the config groups",
            file=sys.stderr,
        )
        sys.exit(errors.EXIT_BAD_INPUT)
    finally:
        signals.end_sweep()
    if callbacks.SWEEP_OUTCOME.get("started") and "not_ok" not in callbacks.SWEEP_OUTCOME:
        # Hydra turns an error in a callback into a warning: a summary that broke must not read as a clean sweep
        print(
            "bench: error: the sweep's summary could not be made (Hydra's warning above says why); its jobs' "
            "results are in the sweep folder, unchecked",
            file=sys.stderr,
        )
        sys.exit(errors.EXIT_SWEEP_NOT_OK)
    if callbacks.SWEEP_OUTCOME.get("not_ok"):
        sys.exit(errors.EXIT_SWEEP_NOT_OK)


if __name__ == "__main__":
    main()
