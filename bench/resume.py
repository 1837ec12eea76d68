"""What makes two runs the same run: the resume key, and finding a completed result that has it.

The key covers everything that changes a result beyond the config: the code version (git commit and a digest
of the uncommitted state, tracked changes and untracked files; or the installed package version), the machine
class, the training precision as resolved on this machine (`auto` -> bf16/fp32), the library versions (the
timing backends' runtimes only where a mode builds backends), the
version of the package a model (or, for random weights, its vocabulary) is loaded from, the data files'
checksums and, for `model.path`, the checkpoint's own files. A config hash alone would skip a rerun after any
of those moved (issue #16: a run after a second edit of the code was skipped on the first edit's result).
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from omegaconf import OmegaConf

from . import env as env_mod
from . import schema
from .config import Config
from .models import VOCAB_PACKAGE

log = logging.getLogger("bench")

# checkpoint files that decide its outputs (weights, config, vocabulary); optimizer states etc. do not
CHECKPOINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")


def config_hash(cfg: Config) -> str:
    """A fingerprint of the resolved config (not where it is written, not resume flags)."""
    d = OmegaConf.to_container(OmegaConf.structured(cfg))
    d.pop("out_dir", None)
    d.pop("bench", None)
    if d["mode"]["name"] != "distill":
        d.pop("distill", None)  # other modes ignore it, and their hashes stay those of earlier results
    if d["mode"]["name"] != "robustness":
        d.pop("robustness", None)  # likewise
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 (size/mtime key the cache)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_digest(paths: Iterable[Path]) -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {}
    for p in sorted(set(paths)):
        st = p.stat() if p.is_file() else None
        out[p.name] = _file_digest(str(p), st.st_size, st.st_mtime_ns) if st else None
    return out


def data_files(cfg: Config) -> List[Path]:
    """Every local file the task's reader reads: its named files and, where a layout keeps labels beside them
    (PIQA's NAME-labels.lst), those too: relabelled dev rows are another experiment."""
    if not cfg.data.dir:
        return []  # Hub data is identified by its id and config, which are in the config hash
    folder = Path(cfg.data.dir).expanduser() / cfg.task.local.dir_name
    named = [folder / name for name in [cfg.task.local.train_file, *cfg.task.local.eval_files.values()]]
    beside = [p.with_name(f"{p.stem}-labels.lst") for p in named] if cfg.task.local.layout == "piqa" else []
    return named + beside


def checkpoint_files(cfg: Config) -> List[Path]:
    if not cfg.model.path:
        return []
    folder = Path(cfg.model.path).expanduser()
    return [p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES] if folder.is_dir() else []


def _checkpoint_folder_files(path: Optional[str]) -> List[Path]:
    """A checkpoint folder's weight, config and vocabulary files, or its checkpoint/'s (a run folder)."""
    if not path:
        return []
    p = Path(path).expanduser()
    for folder in (p, p / "checkpoint"):
        if (folder / "config.json").is_file():
            return [f for f in folder.iterdir() if f.suffix in CHECKPOINT_SUFFIXES]
    return []


def mode_inputs(cfg: Config) -> Dict[str, Dict[str, Optional[str]]]:
    """The files a mode reads besides the task's data and model.path, by role: a teacher retrained in the same
    folder, an edited transfer file or another AdvGLUE file is another experiment under the same config."""
    out: Dict[str, Dict[str, Optional[str]]] = {}
    if cfg.mode.name == "distill":
        d, t = cfg.distill, cfg.distill.transfer
        out["distill.teacher"] = files_digest(_checkpoint_folder_files(d.teacher))
        if "file" in t.sources and t.file:
            out["distill.transfer.file"] = files_digest([Path(t.file).expanduser()])
        if "augment" in t.sources and t.augment.model:
            out["distill.transfer.augment.model"] = files_digest(_checkpoint_folder_files(t.augment.model))
    elif cfg.mode.name == "robustness":
        r = cfg.robustness
        out["robustness.reference"] = files_digest(_checkpoint_folder_files(r.reference))
        if r.advglue:
            f = Path(r.advglue).expanduser()
            out["robustness.advglue"] = files_digest([f / "dev.json" if f.is_dir() else f])
    return {k: v for k, v in out.items() if v}


def code_version(env: Dict[str, Any]) -> Dict[str, Any]:
    """The commit and the uncommitted state's digest (or the package version without a checkout)."""
    return env_mod.code_identity(env.get("git") or {})


def model_package(cfg: Config) -> Any:
    """The version of the installed package the model (or, for random weights, its vocabulary) is loaded from."""
    if cfg.model.source == "package":
        return env_mod.distribution_version(cfg.model.package)
    if cfg.model.source == "random":
        return {"vocabulary": env_mod.distribution_version(VOCAB_PACKAGE)}
    return None  # a Hub id or a checkpoint folder: identified by the config and the checkpoint's files


# Packages only the timing backends load (bench/timing/backends.py builds them for the latency and robustness modes):
# any other mode's result is the same with or without them, so they stay out of its key. CI installs the
# [openvino] extra after the gate, whose MRPC fine-tune the slow MRPC test reuses by key: with openvino in every
# key it never matched, and that test trained the same run again (457 s of CI).
BACKEND_PACKAGES = ("onnxruntime", "onnx", "openvino")
BACKEND_MODES = ("latency", "robustness")


def key_packages(cfg: Config, packages: Dict[str, Any]) -> Dict[str, Any]:
    """The recorded library versions that can change this run's result."""
    if cfg.mode.name in BACKEND_MODES:
        return dict(packages)
    return {name: v for name, v in packages.items() if name not in BACKEND_PACKAGES}


def key_parts(cfg: Config, env: Dict[str, Any], digest: str) -> Dict[str, Any]:
    """What the resume key hashes, by name."""
    return {
        "config": digest,
        "code": code_version(env),
        "machine_class": env.get("machine_class"),
        "precision": env_mod.key_precision(cfg.train.precision, cfg.device.name),
        "packages": key_packages(cfg, env.get("packages") or {}),
        "model_package": model_package(cfg),
        "data": files_digest(data_files(cfg)),
        "checkpoint": files_digest(checkpoint_files(cfg)),
        # only where a mode reads such files: the keys of every other run are what they were
        **({"inputs": inputs} if (inputs := mode_inputs(cfg)) else {}),
        # a latency figure is the thread count's: a 1-thread result (OMP_NUM_THREADS=1) is not the 2-thread one
        **({"threads": cfg.device.threads or env_mod.STARTUP_THREADS} if cfg.mode.name == "latency" else {}),
    }


def resume_key(cfg: Config, env: Dict[str, Any], digest: str) -> str:
    parts = key_parts(cfg, env, digest)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _roots(roots: Iterable[Path]) -> List[Path]:
    """The given folders, without one that lies inside another (it would be searched twice)."""
    resolved = sorted({Path(r).resolve() for r in roots if Path(r).is_dir()}, key=lambda p: len(p.parts))
    kept: List[Path] = []
    for r in resolved:
        if not any(r == k or k in r.parents for k in kept):
            kept.append(r)
    return kept


def find_completed(roots: Iterable[Path], key: str, exclude: Optional[Path] = None) -> Optional[Path]:
    """A complete, successful earlier result with the same resume key (baselines and gate output excluded).

    Files that are not valid results (a stray JSON, another program's file, a corrupt one) are passed over:
    they can never match, and they must not stop a sweep.
    """
    for root in _roots(roots):
        for path, result in schema.walk(root, exclude=("baselines", "gate")):
            if isinstance(result, str) or (exclude and path.resolve() == exclude.resolve()):
                continue
            if result.status == "ok" and result.resume_key == key:
                return path
    return None
