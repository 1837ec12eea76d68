"""Shared fixtures: the real data beside the project, and tiny random versions of each architecture family."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# BENCH_SHARED_DATA points the tests elsewhere (an empty folder proves that the suite skips without the data)
SHARED_DATA = Path(os.environ.get("BENCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
GLUE_DIR = SHARED_DATA / "glue"
SQUAD_DIR = SHARED_DATA / "squad"
MC_DIR = SHARED_DATA / "multiple_choice"

# Tiny but real: the same config classes and model code as the full models, sized to train in seconds.
TINY = {
    "bert": [
        "model=bert_base",
        "model.arch.hidden_size=32",
        "model.arch.num_hidden_layers=2",
        "model.arch.num_attention_heads=2",
        "model.arch.intermediate_size=64",
    ],
    "mobilebert": [
        "model=mobilebert",
        "model.arch.hidden_size=64",
        "model.arch.num_hidden_layers=2",
        "model.arch.num_attention_heads=2",
        "model.arch.intermediate_size=64",
        "model.arch.embedding_size=32",
        "model.arch.intra_bottleneck_size=32",
        "model.arch.true_hidden_size=32",
        "model.arch.num_feedforward_networks=2",
    ],
    "distilbert": [
        "model=distilbert",
        "model.arch.dim=32",
        "model.arch.n_layers=2",
        "model.arch.n_heads=2",
        "model.arch.hidden_dim=64",
    ],
}


# a latency run of a tiny model in seconds: one backend, one shape, in this process, nothing calibrated
TINY_LATENCY = [
    "mode=latency",
    "timing.backends=[eager]",
    "timing.batch_sizes=[1]",
    "timing.seq_lens=[8]",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.flops=false",
    "timing.min_seconds=0",
    "timing.min_iterations=2",
    "timing.warmup_runs=1",
]


def tiny(family: str) -> list:
    return TINY[family] + ["model.pretrained=false"]


# The two CPU classes this project's machines come in, by the flags that change a decision (never a kernel).
AVX2 = frozenset({"avx2", "fma", "sse4_2"})
GENOA = AVX2 | {"avx512f", "avx512_vnni", "avx512_bf16"}


@pytest.fixture
def cpu_as(monkeypatch):
    """Pretend to be a CPU class by its flags: only the decisions change, never a kernel.

    A test that branches on a CPU feature runs each branch through this on every machine, so that a branch the
    machine it runs on would not take is still proven (issue #16: one class's branch failed only on the other)."""
    from bench import env

    def use(flags):
        monkeypatch.setattr(env, "cpu_flags", lambda: frozenset(flags))

    return use


@pytest.fixture
def glue_dir() -> Path:
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    return GLUE_DIR


@pytest.fixture
def squad_dir() -> Path:
    if not (SQUAD_DIR / "dev-v1.1.json").is_file():
        pytest.skip(f"real SQuAD data not present at {SQUAD_DIR}")
    return SQUAD_DIR


def load_script(name: str):
    """A script of benchmarks/ (not a package) as a module, e.g. load_script("gate_suite")."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(
    *args: str, timeout: int = 600, env_extra: dict | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run `python -m bench ...` as a user would; output captured as text."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def user_signals() -> None:
    """preexec_fn for a child that a test interrupts: SIGINT and SIGTERM as in a user's terminal.

    A shell starts background jobs with SIGINT ignored, and children inherit that; Python then installs no
    KeyboardInterrupt handler, and a test sending SIGINT would measure the launcher, not the harness."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


QUICK = [
    "data.max_train_samples=48",
    "data.max_eval_samples=32",
    "train.batch_size=16",
    "train.logging_steps=1",
    "train.precision=fp32",
    "timing.min_seconds=0.05",
    "timing.warmup_runs=1",
    "timing.min_iterations=3",
]


# mode=distill's tiny fine-tuned teachers (tests/test_distill_runs.py, tests/test_distill_table.py)
TEACHER = [*tiny("bert"), "model.arch.num_hidden_layers=4", "train.max_steps=4", "train.save_checkpoint=true"]


@pytest.fixture(scope="session")
def teachers(tmp_path_factory):
    """Tiny fine-tuned teachers (real rows, a few steps): SST-2 (4 layers), STS-B (regression), RTE (other labels)."""
    from bench.config import compose
    from bench.runner import run

    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for task in ("sst2", "stsb", "rte"):
        run(compose([*TEACHER, f"task={task}", f"data.dir={GLUE_DIR}", *QUICK], out_dir=str(root / task)))
        out[task] = root / task
    return out


@pytest.fixture
def mc_dir() -> Path:
    if not MC_DIR.is_dir():
        pytest.skip(f"real multiple-choice data not present at {MC_DIR}")
    return MC_DIR


def load_task(task: str, data_dir: Path, need_train: bool = True):
    """A task's splits as the harness reads them from `data_dir` (composed with minilm_l6's tokenizer config)."""
    from bench import tasks
    from bench.config import compose

    cfg = compose([f"task={task}", "model=minilm_l6", f"data.dir={data_dir}"])
    return tasks.load(cfg.task, cfg.data, need_train=need_train)


def arc_row(stem, texts, labels, key):
    """One row of ARC's release layout (multiple-choice reader tests)."""
    choices = [{"text": t, "label": la} for t, la in zip(texts, labels)]
    return {"id": "q", "question": {"stem": stem, "choices": choices}, "answerKey": key}


def write_lines(folder: Path, name: str, lines) -> Path:
    """A file of one line per item (a string as it is, anything else as JSON)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def compile_tex(folder: Path, names) -> None:
    """Every named .tex table in `folder` compiles with pdflatex (skips without one): a caption or cell that LaTeX
    cannot take fails here, not in a user's paper."""
    import shutil
    import subprocess

    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("no pdflatex here")
    inputs = "".join(f"\\input{{{n}}}" for n in names)
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage[margin=1cm,landscape]{geometry}"
        f"\\begin{{document}}\\tiny {inputs}\\end{{document}}"
    )
    p = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    errors = [line for line in p.stdout.splitlines() if line.startswith("!")]
    assert p.returncode == 0, f"{names}: {errors} {p.stdout[-1500:]}"


def _data_folders() -> dict:
    """Each name a test reads the real data by, and the folder it needs."""
    return {
        "GLUE_DIR": GLUE_DIR,
        "glue_dir": GLUE_DIR,
        "SQUAD_DIR": SQUAD_DIR,
        "squad_dir": SQUAD_DIR,
        "MC_DIR": MC_DIR,
        "mc_dir": MC_DIR,
        "SHARED_DATA": SHARED_DATA,
    }


def pytest_collection_modifyitems(config, items):
    """Without the real data (../shared/data, or one of its folders), every test that reads it is skipped, with
    the reason, whether it asks through a fixture that skips or names the folder itself (directly, through a
    function of its module, or a fixture)."""
    folders = _data_folders()
    missing = {name: path for name, path in folders.items() if not path.is_dir()}
    if not missing:
        return
    import inspect

    helpers: dict = {}
    for item in items:
        module = item.module
        if module not in helpers:  # the module's own functions that read a missing folder, one call deep
            own = inspect.getmembers(module, lambda f: inspect.isfunction(f) and f.__module__ == module.__name__)
            helpers[module] = {name for name, f in own if any(n in inspect.getsource(f) for n in missing)}
        try:
            source = inspect.getsource(item.obj)
        except (OSError, TypeError):
            continue
        names = [*missing, *helpers[module]]
        if any(n in source for n in names) or set(item.fixturenames) & set(names):
            item.add_marker(pytest.mark.skip(reason=f"real data not present at {SHARED_DATA}"))
