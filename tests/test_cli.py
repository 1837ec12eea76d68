"""The entry point as a user runs it: exit codes, messages, result files."""

import json
import os

import pytest
from conftest import ROOT, TINY_LATENCY, run_cli, tiny

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _result_of(stdout: str) -> dict:
    line = next(l for l in stdout.splitlines() if l.startswith("bench: result written to "))
    return json.loads(open(line.split("written to ", 1)[1]).read())


def test_random_weights_run_offline_and_say_so(glue_dir, tmp_path):
    p = run_cli(
        *tiny("mobilebert"),
        "task=rte",
        f"data.dir={glue_dir}",
        "data.max_train_samples=16",
        "data.max_eval_samples=16",
        "train.max_steps=2",
        f"hydra.run.dir={tmp_path}/run",
        env_extra=OFFLINE,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    result = _result_of(p.stdout)
    assert result["status"] == "ok" and result["model"]["weights"] == "random"
    # the one-line summary says so too (the figures on it are a random model's)
    line = next(x for x in p.stdout.splitlines() if x.startswith("bench: finetune "))
    assert "[weights: random" in line, line


@pytest.mark.parametrize("args", [["model=mobilebert", "task=mrpc"], ["model=minilm_l6", "task=mrpc"]])
def test_unreachable_hub_says_how_to_run_offline(args, tmp_path):
    p = run_cli(*args, f"hydra.run.dir={tmp_path}/run", env_extra=OFFLINE, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "could not reach the Hugging Face Hub" in p.stderr
    for hint in ("model.path", "minilm_l6", "model.pretrained=false", "data.dir"):
        assert hint in p.stderr
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["type"] == "HubUnreachableError"


@pytest.mark.parametrize("task", ["swag", "copa"])
def test_unreachable_hub_for_a_datasets_task_says_what_works_offline_for_it(task, tmp_path):
    """The offline hint named GLUE's data.dir for every dataset: for a Hub-only task (SWAG) that advice ended in
    'no local reader'; it now says the task cannot run offline and which can, or how to read the task's files."""
    p = run_cli("model=minilm_l6", f"task={task}", f"hydra.run.dir={tmp_path}/run", env_extra=OFFLINE, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "could not reach the Hugging Face Hub for the dataset" in p.stderr
    assert "GLUE" not in p.stderr.split("could not reach", 1)[1]
    if task == "swag":
        assert "read from the Hub only here" in p.stderr and "arc_easy, " in p.stderr and "copa" in p.stderr
    else:
        assert "read copa from its release files with data.dir=" in p.stderr


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    p = run_cli("model=minilm_l6", "device=cuda", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "device=cuda was asked for, but torch sees no CUDA GPU" in p.stderr


@pytest.mark.parametrize(
    "args, shown",
    [
        (["model=nosuch"], "Available options in 'model'"),
        (["task=mrcp"], "Available options in 'task'"),
        (["train.max_steps=abc"], "train.max_steps"),
        (["train.nosuch=1"], "nosuch"),
        (["-m", "train.max_steps=2,abc"], "train.max_steps"),
    ],
)
def test_a_command_line_that_does_not_compose_is_bad_input_not_a_bug(args, shown, tmp_path):
    """Hydra's own exit is 1, the code of a bug; a config that cannot be composed is bad input: exit 2, Hydra's
    message (the key, the choices) kept, and one line of ours saying nothing of it ran."""
    p = run_cli(*args, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep", timeout=120)
    assert p.returncode == 2, (p.returncode, p.stderr[-1500:])
    assert shown in p.stderr and "does not compose into a valid config" in p.stderr.splitlines()[-1]
    assert not (tmp_path / "sweep").exists() or not list((tmp_path / "sweep").glob("*/result.json"))


@pytest.mark.parametrize("hydra_full_error", ["0", "1"])
def test_a_bug_in_a_job_is_still_exit_1_with_its_traceback(hydra_full_error, tmp_path):
    """The other side of the exit-2 rule above: an exception that escapes a job (here an omegaconf error, the type
    a composition error also has) is a bug, shown with its traceback, whatever HYDRA_FULL_ERROR says."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import bench.runner, bench.__main__ as m\n"
        "from omegaconf.errors import ConfigKeyError\n"
        "def boom(*a, **k):\n"
        "    raise ConfigKeyError('a bug inside the job')\n"
        "bench.runner.run = boom\n"
        f"sys.argv = ['bench', 'model=minilm_l6', 'hydra.run.dir={tmp_path}/run']\n"
        "m.main()\n"
    )
    env = {**os.environ, "HYDRA_FULL_ERROR": hydra_full_error}
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" in p.stderr and "a bug inside the job" in p.stderr, p.stderr[-1500:]
    assert "does not compose" not in p.stderr


def test_missing_data_dir_is_a_clear_error(tmp_path):
    p = run_cli("model=minilm_l6", f"data.dir={tmp_path}/nothing", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "no such folder" in p.stderr and "standard GLUE download layout" in p.stderr


def test_out_dir_on_the_command_line_names_hydra_run_dir(tmp_path):
    """out_dir is set from Hydra's run folder: given by hand it would be dropped silently and the result written
    elsewhere; it is refused, naming the option that chooses the folder, and the refusal is recorded."""
    p = run_cli(*tiny("bert"), f"out_dir={tmp_path}/mine", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"use hydra.run.dir={tmp_path}/mine instead" in p.stderr
    assert not (tmp_path / "mine").exists()
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "failed"
    empty = run_cli(*tiny("bert"), "out_dir=''", f"hydra.run.dir={tmp_path}/run3")
    assert empty.returncode == 2 and "cannot choose the run's folder" in empty.stderr
    # the same folder as Hydra's is no conflict (tests and scripts pass it that way)
    same = run_cli(
        *tiny("bert"),
        *TINY_LATENCY,
        f"out_dir={tmp_path}/run2",
        f"hydra.run.dir={tmp_path}/run2",
    )
    assert same.returncode == 0, same.stderr[-2000:]


def test_console_script_is_the_same_entry_point():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "bench"  # the environment running the tests, on PATH or not
    exe = str(beside) if beside.is_file() else shutil.which("bench")
    if exe is None:
        pytest.skip("console script not installed (pip install -e .)")
    p = subprocess.run([exe, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "model: bert_base, distilbert" in p.stdout


def test_report_and_compare_are_still_subcommands(tmp_path):
    """`bench report` / `bench compare` (documented, used by CI) reach the bench-report / bench-compare programs."""
    p = run_cli("report", "--help")
    assert p.returncode == 0 and "usage: bench report" in p.stdout
    p = run_cli("compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"))
    assert p.returncode == 2 and "bench compare: error" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_readme_offline_random_command(glue_dir, tmp_path):
    """The issue's command, exactly: full MobileBERT, random weights, 64 RTE rows."""
    p = run_cli(
        "model=mobilebert",
        "task=rte",
        "model.pretrained=false",
        f"data.dir={glue_dir}",
        "data.max_train_samples=64",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    result = _result_of(p.stdout)
    assert result["model"]["weights"] == "random" and 24e6 < result["model"]["parameters"] < 26e6
    assert result["task"]["splits"] == {"train": 64, "validation": 277}


@pytest.mark.slow
def test_no_network_at_all_ends_in_the_offline_message(tmp_path):
    """Without HF_HUB_OFFLINE: the real network failure (retries included) still ends in the clear message."""
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=5).close()
        pytest.skip("the Hub is reachable from here")
    except OSError:
        pass
    p = run_cli(
        "model=mobilebert", "task=mrpc", f"hydra.run.dir={tmp_path}/run", env_extra={"HF_HUB_OFFLINE": "0"}, timeout=600
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "could not reach the Hugging Face Hub" in p.stderr


@pytest.mark.parametrize("broken", ["config", "weights"])
def test_a_checkpoint_folder_with_a_broken_file_is_a_clear_error(broken, glue_dir, tmp_path):
    """config.json that is not JSON, or a weights file that is not one: exit 2 naming the folder, not a
    traceback (the safetensors error was no OSError, and the config was read before any wrapper)."""
    from bench import models
    from bench.config import compose

    cfg = compose([*tiny("bert"), "task=rte"])
    tok, model, _ = models.load(cfg.model, cfg.task, seed=0)
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    if broken == "config":
        (ckpt / "config.json").write_text('{"model_type": "bert", ')
    else:
        (ckpt / "model.safetensors").write_bytes(b"not a safetensors file at all")
    args = ["model=bert_base", f"model.path={ckpt}", "task=rte", "mode=evaluate", f"data.dir={glue_dir}"]
    p = run_cli(*args, "data.max_eval_samples=8", f"hydra.run.dir={tmp_path}/run", timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    want = {"config": f"could not load the config of {ckpt}: OSError", "weights": f"could not load the model {ckpt}: "}
    assert want[broken] in p.stderr, p.stderr[-1500:]
    # the same folder as a distillation teacher: refused naming distill.teacher, not a traceback
    from bench.distill import teacher
    from bench.errors import BenchError

    with pytest.raises(BenchError, match=rf"^distill.teacher={ckpt}: cannot load the checkpoint"):
        teacher.load(str(ckpt), cfg.task)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "failed"
