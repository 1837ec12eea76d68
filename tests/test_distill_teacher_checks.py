"""mode=distill's teacher: its folder, its task and its head are checked before any work, each refusal one line."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, tiny

from bench.config import compose
from bench.distill import teacher


def test_teacher_folder_errors_are_one_line(teachers, tmp_path):
    with pytest.raises(teacher.TeacherError, match="no such folder"):
        teacher.checkpoint_dir(str(tmp_path / "missing"))
    with pytest.raises(teacher.TeacherError, match="no checkpoint there"):
        teacher.checkpoint_dir(str(tmp_path))
    assert teacher.checkpoint_dir(str(teachers["sst2"])) == teachers["sst2"] / "checkpoint"  # a run folder works
    cfg = compose(["task=sst2"])
    with pytest.raises(teacher.TeacherError, match="fine-tuned on rte, not on task sst2"):
        teacher.load(str(teachers["rte"]), cfg.task)
    import shutil

    bare = shutil.copytree(teachers["stsb"] / "checkpoint", tmp_path / "bare")  # no run result beside it
    with pytest.raises(teacher.TeacherError, match="fine-tuned on stsb, not on task sst2"):
        teacher.load(str(bare), cfg.task)  # its config.json says its task (finetuning_task, written on saving)
    _forget_task(bare)
    with pytest.raises(teacher.TeacherError, match=r"has 1 output\(s\).*needs 2") as info:
        teacher.load(str(bare), cfg.task)  # then its head is what is checked
    assert "\n" not in str(info.value)


def _forget_task(ckpt):
    """A checkpoint saved by another tool: no finetuning_task in its config."""
    conf = json.loads((ckpt / "config.json").read_text())
    conf.pop("finetuning_task", None)
    (ckpt / "config.json").write_text(json.dumps(conf))


def test_a_teacher_copied_out_of_its_run_or_without_its_head_is_refused(teachers, tmp_path, caplog):
    """GLUE tasks share label counts and names ("0", "1"): a bare MRPC-like checkpoint loaded as an SST-2 teacher
    unchecked, and one whose classifier weights were missing loaded with a random head that taught noise."""
    import shutil

    from safetensors.torch import load_file, save_file

    cfg = compose(["task=sst2"])
    rte = shutil.copytree(teachers["rte"] / "checkpoint", tmp_path / "rte")
    assert json.loads((rte / "config.json").read_text())["finetuning_task"] == "rte"
    with pytest.raises(teacher.TeacherError, match="fine-tuned on rte, not on task sst2"):
        teacher.load(str(rte), cfg.task)
    sst2 = shutil.copytree(teachers["sst2"] / "checkpoint", tmp_path / "sst2")
    _forget_task(sst2)
    caplog.clear()
    teacher.load(str(sst2), cfg.task)  # accepted on its labels, and said so
    assert "no record of the task it was fine-tuned on" in caplog.text
    weights = load_file(str(sst2 / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, str(sst2 / "model.safetensors"))
    with pytest.raises(teacher.TeacherError, match=r"has no trained task head \(classifier\.bias, classifier\.weight"):
        teacher.load(str(sst2), cfg.task)


def test_cli_reports_a_missing_teacher_in_one_line(tmp_path):
    proc = run_cli(
        "mode=distill",
        "model=minilm_l6",
        "task=sst2",
        f"distill.teacher={tmp_path / 'nope'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "data.dir=/nonexistent",
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bench: error")]
    assert len(errors) == 1 and "no such folder" in errors[0] and "Traceback" not in proc.stderr


def test_the_task_a_config_json_names_is_read_as_ours_or_not_at_all(tmp_path):
    from bench.models import run_task

    for named, want in (("SST-2", "sst2"), ("mnli", "mnli"), ("glue", None), (None, None)):
        (tmp_path / "config.json").write_text(json.dumps({"finetuning_task": named}))
        assert run_task(tmp_path) == want, named
    (tmp_path / "config.json").write_text("[]")  # not an object: not known, not a crash
    assert run_task(tmp_path) is None


def test_a_multiple_choice_teacher_with_a_broken_weights_file_is_one_line(tmp_path):
    from transformers import AutoTokenizer

    from bench import models
    from bench.distill.choice import load_teacher

    cfg = compose([*tiny("bert"), "task=copa"])
    model = models.build_random(cfg.model, cfg.task, seed=0)
    model.config.finetuning_task = "copa"
    model.save_pretrained(str(tmp_path))
    AutoTokenizer.from_pretrained(str(models.package_dir(models.VOCAB_PACKAGE))).save_pretrained(str(tmp_path))
    assert load_teacher(str(tmp_path), "copa")[0] == tmp_path
    with pytest.raises(teacher.TeacherError, match="fine-tuned on copa, not on task piqa"):
        load_teacher(str(tmp_path), "piqa")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    with pytest.raises(teacher.TeacherError, match=r"cannot load the checkpoint") as info:
        load_teacher(str(tmp_path), "copa")
    assert "\n" not in str(info.value)
