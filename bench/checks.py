"""Value checks shared by the config schemas (bench/config.py, bench/distill_config.py).

A module of its own so that a sub-package's schema can use them without importing bench.config, which
imports that schema (the import would be circular).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional

from .errors import ConfigError


def choice(what: str, value: Any, choices: List[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{what}={value!r} is not one of {choices}")


def positive(what: str, value: Optional[float]) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):  # nan passed `<= 0` and reached torch
        raise ConfigError(f"{what} must be a positive number, got {value!r}")
