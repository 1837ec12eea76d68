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
