"""The teacher's outputs on disk: one flat, memory-mapped file per kind of tensor, each row only its own length.

A cache entry is a folder:

    meta.json       what is stored (rows, layers, widths, heads) and the key's inputs; written last
    lengths.npy     int32 [N]: each row's real tokens n (the offsets index: row r starts at the sum of those before)
    logits.npy      float32 [N, C]
    hidden.npy      float16 [sum n, K, H]: per row n x (embedding output and the mapped layers) x width
    attention.npy   float16 [sum A * heads * n * n]: per row the mapped layers' scores before softmax

Rows are ragged: padding every row to the longest would cost (L_max / n)^2 more for attention, tens of GB for
SST-2's 60,000 rows. The writer fills memory maps in place, batch by batch, so no process holds the outputs; the
folder is built under a temporary name and renamed into place, so a killed run leaves no half-written entry, and
an entry that does not match its meta (truncated, another shape) is refused by `open_entry` and rebuilt.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import BenchError

FORMAT = 2  # 1: one safetensors file held whole in memory
META = "meta.json"


class CacheError(BenchError):
    """A cache entry that cannot be trusted (read: it is rebuilt) or cannot be written (full disk, fp16 overflow)."""


def offsets(sizes: np.ndarray) -> np.ndarray:
    """[0, s0, s0+s1, ...] (int64): where each row's block starts in a flat file."""
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes, dtype=np.int64)])


def attention_sizes(lengths: np.ndarray, layers: int, heads: int) -> np.ndarray:
    n = lengths.astype(np.int64)
    return layers * heads * n * n


def bytes_per_row(n: int, hidden_layers: int, width: int, attention_layers: int, heads: int, classes: int) -> int:
    """Disk bytes of one row of n tokens (fp16 hidden states and scores, fp32 logits, int32 length)."""
    return 2 * n * hidden_layers * width + 2 * attention_layers * heads * n * n + 4 * classes + 4


class Writer:
    """Fills one entry's files in place (rows in any order); `finish` flushes and writes meta.json last."""

    def __init__(
        self,
        folder: Path,
        lengths: np.ndarray,
        classes: int,
        hidden_layers: Sequence[int],
        width: int,
        attention_layers: Sequence[int],
        heads: int,
    ):
        from numpy.lib.format import open_memmap

        self.folder, self.lengths = Path(folder), np.asarray(lengths, dtype=np.int32)
        self.folder.mkdir(parents=True)
        self.hidden_layers, self.attention_layers, self.heads = list(hidden_layers), list(attention_layers), heads
        self.tok = offsets(self.lengths)
        self.att = offsets(attention_sizes(self.lengths, len(self.attention_layers), heads))
        np.save(self.folder / "lengths.npy", self.lengths)
        n = len(self.lengths)
        self.logits = open_memmap(self.folder / "logits.npy", "w+", np.float32, (n, classes))
        self.hidden = (
            open_memmap(self.folder / "hidden.npy", "w+", np.float16, (int(self.tok[-1]), len(hidden_layers), width))
            if hidden_layers
            else None
        )
        self.attention = (
            open_memmap(self.folder / "attention.npy", "w+", np.float16, (int(self.att[-1]),))
            if attention_layers
            else None
        )
        for arr in (self.logits, self.hidden, self.attention):
            if arr is not None:
                _reserve(Path(arr.filename))
        self.written = np.zeros(n, dtype=bool)

    def put(self, row: int, logits: np.ndarray, hidden: Optional[np.ndarray], attention: Optional[np.ndarray]) -> None:
        """One row: logits [C], hidden [n, K, H] and scores [A, heads, n, n] (None when not stored)."""
        self.logits[row] = logits
        if self.hidden is not None:
            block = hidden.astype(np.float16)
            _finite(block, row, "hidden states")
            self.hidden[self.tok[row] : self.tok[row + 1]] = block
        if self.attention is not None:
            block = attention.astype(np.float16).reshape(-1)
            _finite(block, row, "attention scores")
            self.attention[self.att[row] : self.att[row + 1]] = block
        self.written[row] = True

    def finish(self, meta: Dict[str, Any]) -> None:
        if not self.written.all():
            raise CacheError(f"rows {np.flatnonzero(~self.written)[:5].tolist()}... were never written")
        for arr in (self.logits, self.hidden, self.attention):
            if arr is not None:
                arr.flush()
        self.logits = self.hidden = self.attention = None  # close the maps before the folder is renamed
        full = {
            **meta,
            "format": FORMAT,
            "rows": len(self.lengths),
            "hidden_layers": self.hidden_layers,
            "attention_layers": self.attention_layers,
            "heads": self.heads,
        }
        (self.folder / META).write_text(json.dumps(full, indent=1, sort_keys=True))


def _reserve(path: Path) -> None:
    """Allocate a memory map's file on disk now: a full disk is then a clear error here, not a SIGBUS mid-pass."""
    size = path.stat().st_size
    try:
        with path.open("r+b") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise CacheError(
                f"teacher cache: no room for {size / 1e9:.2f} GB in {path.parent} "
                "(set distill.cache_dir to a larger disk)"
            ) from None
        # file systems without fallocate: the pages are allocated as they are written


def _finite(block: np.ndarray, row: int, what: str) -> None:
    # fp16 tops out at 65504: a teacher whose outputs overflow it must not be distilled from silently
    if not np.isfinite(block).all():
        raise CacheError(f"row {row}: the teacher's {what} are not finite in fp16 (overflow or NaN)")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def publish(tmp: Path, final: Path, **expected: Any) -> None:
    """Rename a finished entry into place (a damaged one there is replaced; a good one a parallel run wrote wins).
    `expected`: open_entry's checks (rows, lengths, layers) that an entry already there must pass to be kept."""
    if final.exists() or final.is_symlink():
        try:
            open_entry(final, **expected)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        except CacheError:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            else:  # a file (or link) where the entry's folder belongs
                final.unlink()
    try:
        tmp.rename(final)
    except OSError as exc:  # a parallel run renamed its entry into place between the check and here: keep a good one
        try:
            open_entry(final, **expected)
        except CacheError:
            raise CacheError(f"cannot put the entry in place at {final} ({exc.strerror or exc})") from None
        shutil.rmtree(tmp, ignore_errors=True)


class TeacherOutputs:
    """Per-row teacher outputs read from a cache entry's memory maps: nothing is loaded until a batch asks."""

    def __init__(self, folder: Path, meta: Dict[str, Any]):
        self.folder, self.meta = Path(folder), meta
        self.hidden_layers: List[int] = list(meta["hidden_layers"])
        self.attention_layers: List[int] = list(meta["attention_layers"])
        self.heads: int = int(meta["heads"])
        self.lengths = np.load(self.folder / "lengths.npy")
        self.logits = np.load(self.folder / "logits.npy", mmap_mode="r")
        self.hidden = np.load(self.folder / "hidden.npy", mmap_mode="r") if self.hidden_layers else None
        self.attention = np.load(self.folder / "attention.npy", mmap_mode="r") if self.attention_layers else None
        self._tok = offsets(self.lengths)
        self._att = offsets(attention_sizes(self.lengths, len(self.attention_layers), self.heads))

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows: torch.Tensor, length: int) -> Dict[str, Any]:
        """Logits [B, C], hidden states (K x [B, length, H]) and scores (A x [B, heads, length, length]),
        float32, zero-padded to the batch's `length`."""
        rows_np = rows.long().cpu().numpy()
        out: Dict[str, Any] = {"logits": torch.from_numpy(np.asarray(self.logits[rows_np], dtype=np.float32))}
        if self.hidden is not None:
            _, k, width = self.hidden.shape
            hidden = np.zeros((k, len(rows_np), length, width), dtype=np.float32)
            for b, r in enumerate(rows_np):
                a, e = self._tok[r], self._tok[r + 1]
                hidden[:, b, : e - a] = np.swapaxes(self.hidden[a:e], 0, 1)
            out["hidden"] = list(torch.from_numpy(hidden).unbind(0))
        if self.attention is not None:
            n_att = len(self.attention_layers)
            att = np.zeros((n_att, len(rows_np), self.heads, length, length), dtype=np.float32)
            for b, r in enumerate(rows_np):
                n = int(self.lengths[r])
                att[:, b, :, :n, :n] = self.attention[self._att[r] : self._att[r + 1]].reshape(n_att, self.heads, n, n)
            out["attention"] = list(torch.from_numpy(att).unbind(0))
        return out


def open_entry(
    folder: Path,
    rows: Optional[int] = None,
    lengths: Optional[np.ndarray] = None,
    hidden_layers: Optional[Sequence[int]] = None,
    attention_layers: Optional[Sequence[int]] = None,
) -> TeacherOutputs:
    """An entry checked against its meta (and the rows, lengths and layers expected): CacheError when anything is
    off, whatever the damage (an empty file, a meta of another shape), so that it is rebuilt, never a traceback."""
    folder = Path(folder)
    try:
        return _checked(folder, rows, lengths, hidden_layers, attention_layers)
    except CacheError:
        raise
    except Exception as exc:  # noqa: BLE001 (any damage to an entry means: rebuild it)
        raise CacheError(f"unreadable ({type(exc).__name__}: {exc})") from None


def _checked(folder, rows, lengths, hidden_layers, attention_layers) -> TeacherOutputs:
    meta = json.loads((folder / META).read_text())
    if not isinstance(meta, dict):
        raise CacheError(f"{META} holds a {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise CacheError(f"format {meta.get('format')}, expected {FORMAT}")
    out = TeacherOutputs(folder, meta)
    for what, stored, wanted in (
        ("hidden", out.hidden_layers, hidden_layers),
        ("attention", out.attention_layers, attention_layers),
    ):
        if wanted is not None and list(stored) != list(wanted):
            raise CacheError(f"{what} layers {list(stored)} stored, {list(wanted)} wanted")
    n = len(out.lengths)
    if n != meta["rows"] or out.logits.shape[0] != n or (rows is not None and n != rows):
        raise CacheError(f"{n} rows stored, meta says {meta['rows']}, expected {rows}")
    if lengths is not None and not np.array_equal(out.lengths, np.asarray(lengths)):
        raise CacheError("row lengths differ from the data's")
    tokens, k = int(out._tok[-1]), len(out.hidden_layers)
    if out.hidden is not None and out.hidden.shape[:2] != (tokens, k):
        raise CacheError(f"hidden states of shape {out.hidden.shape}, expected {tokens} tokens x {k} layers")
    if out.attention is not None and out.attention.shape[0] != out._att[-1]:
        raise CacheError(f"{out.attention.shape[0]} attention values, expected {int(out._att[-1])}")
    return out
