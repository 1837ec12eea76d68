"""compact-bert-bench: accuracy and efficiency of compact BERT models, measured in one run."""

from pathlib import Path
from typing import List

__version__ = "0.1.0"

#: The Hydra config tree ships inside the package, so a wheel install finds it as an editable one does.
CONF_DIR = Path(__file__).resolve().parent / "conf"
SCHEMA_VERSION = 1


def task_names() -> List[str]:
    """The tasks the config tree defines (bench/conf/task/*.yaml), sorted: what an unknown task name is told."""
    return sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
