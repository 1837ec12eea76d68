"""A latency run's store of built ONNX graphs (`shared_builds`), so that each graph is exported, fused or quantised
once per run and the run's later backends of the same model reuse it (bench/timing/exported.py builds them).

The store is a temporary folder named in the environment (with its owner's pid, so that a value left in a shell is
not trusted), keyed by a digest of the model's class, config and weights (`model_digest`); a step is made in a
`.part` folder and renamed only once whole (`_step`). It goes when the run ends, whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

from .. import tempdirs

STORE_ENV = "BENCH_ONNX_BUILDS"  # the latency run's store of built graphs; spawned backends inherit it
STATS = "stats.json"


def _store_root() -> Optional[Path]:
    """The run's store, when this process is the run's own or one the run started; the variable holds its
    owner's pid, so a value left in a shell or inherited from elsewhere is not trusted."""
    owner, _, folder = os.environ.get(STORE_ENV, "").partition(":")
    if not folder or owner not in (str(os.getpid()), str(os.getppid())) or not os.path.isdir(folder):
        return None
    return Path(folder)


@contextmanager
def shared_builds() -> Iterator[Path]:
    """A store, for one latency run, in which each graph built for one backend waits for the run's later ones.

    Backends measured in child processes find it through the environment, which a spawned child inherits. The
    folder goes when the run ends, however it ends, and the variable is put back as it was (a run inside a run,
    in the same process, uses the outer store)."""
    outer = _store_root()
    if outer is not None:
        yield outer
        return
    previous = os.environ.get(STORE_ENV)
    folder = tempdirs.make("bench-onnx-builds-")  # locked: a killed run's store is removed by a later run
    os.environ[STORE_ENV] = f"{os.getpid()}:{folder}"
    try:
        yield Path(folder)
    finally:
        if previous is None:
            os.environ.pop(STORE_ENV, None)
        else:
            os.environ[STORE_ENV] = previous
        tempdirs.remove(folder)


def model_digest(model: torch.nn.Module) -> Optional[str]:
    """What a built graph depends on: the model's class, config (with its attention implementation) and every
    weight, byte for byte. None when a weight cannot be read as bytes: such a model builds privately."""
    h = hashlib.blake2b(digest_size=12)
    h.update(type(model).__name__.encode())
    config = getattr(model, "config", None)
    h.update((config.to_json_string() if hasattr(config, "to_json_string") else repr(config)).encode())
    h.update(str(getattr(config, "_attn_implementation", None)).encode())  # not in the JSON; the export reads it
    try:
        for name, tensor in model.state_dict().items():
            h.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    except (AttributeError, RuntimeError, TypeError):  # a quantised or non-tensor entry
        return None
    return h.hexdigest()


def _step(
    where: Path, store: Optional[Path], name: str, make: Callable[[Path], Dict[str, Any]]
) -> Tuple[Path, Dict[str, Any], bool]:
    """The folder holding build step `name`'s graph (`graph.onnx`), its stats, and whether it was reused.

    With a store, a step an earlier backend finished is reused; a step is made in a `.part` folder and renamed
    only once whole, so a step that broke half-way is made again, never reused. Without one, it is made in
    `where`, this backend's own temporary folder."""
    if store is None:
        folder = where / name
        folder.mkdir()
        return folder, make(folder), False
    done = store / name
    if (done / STATS).is_file():
        return done, json.loads((done / STATS).read_text()), True
    store.mkdir(exist_ok=True)  # the model's folder; the run's store itself must exist (no parents=True)
    part = store / f"{name}.part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir()
    stats = make(part)
    (part / STATS).write_text(json.dumps(stats))
    part.rename(done)
    return done, stats, False


def _graph_bytes(folder: Path) -> int:
    """The graph's bytes on disk (its .onnx file and any external data), not the step's stats or a stray
    `*-inferred.onnx` a quantiser left beside its input."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.name != STATS and not p.name.endswith("-inferred.onnx"))
