"""Temporary folders a killed run leaves behind are removed by the next run (bench/tempdirs.py): kill -9 left
every ONNX build folder of an interrupted latency run in /tmp, hundreds of MB each for BERT-base."""

import os
import signal
import subprocess
import sys
import tempfile

from conftest import ROOT

from bench import tempdirs

MAKER = """
import sys, time
from bench import tempdirs
print(tempdirs.make(sys.argv[1]), flush=True)
time.sleep(600)
"""


def _maker(tmp_path, prefix):
    """A process that makes a folder and lives on, and the folder it made."""
    proc = subprocess.Popen(
        [sys.executable, "-c", MAKER, prefix],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def test_a_killed_makers_folder_goes_and_a_living_ones_stays(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed, killed_folder = _maker(tmp_path, "bench-onnx-")
    alive, alive_folder = _maker(tmp_path, "bench-onnx-builds-")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        for folder in (killed_folder, alive_folder):
            assert os.path.isdir(folder) and os.path.isfile(os.path.join(folder, tempdirs.LOCK))
            with open(os.path.join(folder, "graph.onnx"), "wb") as f:
                f.write(b"x" * 1000)
        old = tmp_path / "bench-onnx-from-an-older-version"  # no lock file: not known to be abandoned
        old.mkdir()
        other = tmp_path / "someone-elses-folder"
        other.mkdir()
        mine = tempdirs.make("bench-onnx-")  # the next run: removes what a dead process left
        assert not os.path.exists(killed_folder)
        assert os.path.isdir(alive_folder) and os.path.isfile(os.path.join(alive_folder, "graph.onnx"))
        assert old.is_dir() and other.is_dir() and os.path.isdir(mine)
        assert tempdirs.remove_abandoned("bench-onnx-") == []  # its own and the living one's are both held
        tempdirs.remove(mine)
        assert not os.path.exists(mine)
    finally:
        alive.kill()
        alive.wait(timeout=30)
    assert tempdirs.remove_abandoned("bench-onnx-") == [alive_folder]  # its maker is gone now too


def test_where_flock_fails_the_folder_is_made_unlocked(tmp_path, monkeypatch):
    """A file system without flock (some cluster mounts) still gets its temporary folder, as mkdtemp gave it."""
    import fcntl

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def no_flock(fd, op):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    folder = tempdirs.make("bench-onnx-")
    assert os.path.isdir(folder) and os.listdir(folder) == []  # no lock file: never taken for abandoned
    tempdirs.remove(folder)
    assert not os.path.exists(folder)


def test_the_onnx_folders_are_made_locked(tmp_path, monkeypatch):
    """The run's store of built graphs and each backend's own folder are made through tempdirs (locked)."""
    from conftest import tiny

    from bench import models
    from bench.config import compose
    from bench.timing import exported, onnx_store

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(onnx_store.STORE_ENV, raising=False)
    with onnx_store.shared_builds() as store:
        assert store.name.startswith("bench-onnx-builds-") and (store / tempdirs.LOCK).is_file()
        assert tempdirs.remove_abandoned("bench-onnx-") == []  # held
    assert not store.exists()
    cfg = compose(tiny("bert"))
    with exported._building(models.build_random(cfg.model, cfg.task)) as built:
        assert (built.folder / tempdirs.LOCK).is_file() and built.folder.parent == tmp_path
    assert not built.folder.exists()
