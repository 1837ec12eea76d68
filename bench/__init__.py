"""compact-bert-bench: accuracy and efficiency of compact BERT models, measured in one run."""

from pathlib import Path

__version__ = "0.1.0"

#: The Hydra config tree lives beside the package (repository layout; installs are editable).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SCHEMA_VERSION = 1
