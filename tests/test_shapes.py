"""Sequence lengths are checked against the model's position limit before anything runs (issue #16)."""

import json

import pytest
from conftest import run_cli, tiny

from bench.config import compose
from bench.errors import ConfigError
from bench.models import max_positions
from bench.runner import _check_shapes, run

LATENCY = [
    "mode=latency",
    "timing.backends=[eager]",
    "timing.batch_sizes=[1]",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.min_seconds=0",
    "timing.min_iterations=2",
    "timing.warmup_runs=1",
]


@pytest.mark.parametrize("family", ["bert", "mobilebert", "distilbert"])
def test_each_family_is_refused_beyond_its_own_limit(family, tmp_path):
    short = [*tiny(family), *LATENCY, "model.arch.max_position_embeddings=64"]
    assert max_positions(compose(short).model)[0] == 64
    _check_shapes(compose([*short, "timing.seq_lens=[16,64]"]))  # at the limit: fine
    cfg = compose([*short, "timing.seq_lens=[16,65]"], out_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"timing.seq_lens=\[16, 65\]: 65 is longer .* max_position_embeddings is 64"):
        run(cfg)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and result["error"]["type"] == "ConfigError" and not result.get("latency")
    # training lengths too: task.max_seq_length (MRPC: 128), or train.max_seq_length when given
    with pytest.raises(ConfigError, match=r"task.max_seq_length=\[128\]"):
        _check_shapes(compose([*tiny(family), "model.arch.max_position_embeddings=64"]))
    _check_shapes(compose([*tiny(family), "model.arch.max_position_embeddings=64", "train.max_seq_length=64"]))


def test_a_checkpoint_is_judged_by_its_own_config_file():
    # the packaged MiniLM's config.json says 512, whatever the model file's arch values claim
    limit, origin = max_positions(compose(["model=minilm_l6", "model.arch.max_position_embeddings=64"]).model)
    assert limit == 512 and origin.endswith("config.json")


def test_cli_refuses_4096_on_a_512_position_model_in_one_line(tmp_path):
    p = run_cli("model=minilm_l6", *LATENCY, "timing.seq_lens=[4096]", f"hydra.run.dir={tmp_path}", timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]  # as other bad config values
    errors = [line for line in p.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(errors) == 1 and "4096" in errors[0] and "max_position_embeddings is 512" in errors[0]
    assert "[bench latency" not in p.stderr  # refused before any backend was loaded or measured
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"
