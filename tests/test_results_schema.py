"""The typed result file, the one reader, the status rules, resume keys and writes that never clobber."""

import json
import os
import threading

import pytest
from conftest import tiny

from bench import resume, schema, status
from bench.config import compose
from bench.errors import BenchError
from bench.results import Result, publish_new
from bench.runner import CLAIM_FILE, claim

GOOD = {
    "schema_version": 1,
    "status": "ok",
    "mode": "finetune",
    "config": {"train": {"seed": 1}},
    "model": {"name": "m"},
    "task": {"name": "rte"},
    "metrics": {"acc": 0.6, "primary": 0.6},
    "started_at": "2026-01-01T00:00:00.000001+00:00",
}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model": {"weights": "pretrained"}}, "model.name"),
        (
            {
                "latency": [
                    {"backend": "eager", "status": "ok", "batch_size": 1, "seq_len": 8, "memory": {"peak_rss_bytes": 1}}
                ]
            },
            "latency.0",
        ),
        (
            {
                "latency": [
                    {
                        "backend": "eager",
                        "status": "ok",
                        "batch_size": 1,
                        "seq_len": 8,
                        "memory": {"peak_rss_bytes": 1},
                        "latency_s": {"p50": 0.1, "samples": []},
                    }
                ]
            },
            "latency.0.latency_s.samples",
        ),
        ({"metrics": {"acc": [0.5]}}, "metrics"),
        ({"mode": "train"}, "mode"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_validation_errors_name_the_field(change, field):
    with pytest.raises(BenchError) as info:
        schema.parse({**GOOD, **change}, "x/result.json")
    assert str(info.value).startswith("x/result.json: invalid result file: " + field)


def test_an_error_given_as_text_and_a_config_without_train_are_read():
    r = schema.parse({**GOOD, "status": "failed", "error": "it broke", "config": {}})
    assert r.error.message == "it broke" and r.seed is None


def test_latency_rows_and_sections_keep_keys_the_timing_code_adds():
    row = {
        "backend": "eager",
        "status": "ok",
        "batch_size": 1,
        "seq_len": 8,
        "memory": {"peak_rss_bytes": 1},
        "latency_s": {"p50": 0.1, "samples": [0.1]},
        "load": {"steal_pct": 0.0},
        "disturbed": False,
        "emulated": False,
        "peak_note": "x",
    }
    r = schema.parse(
        {
            **GOOD,
            "mode": "latency",
            "latency": [row, {"backend": "fp16", "status": "unsupported"}],
            "env": {"machine_class": "cpu-x86_64-avx2-fma-2c-torch2.13", "machine": {"isa": "avx2"}},
            "timing": {"backends_requested": ["eager"], "backends_resolved": ["eager"]},
        }
    )
    assert r.machine_class == "cpu-x86_64-avx2-fma-2c-torch2.13"
    assert r.model_dump()["latency"][0]["disturbed"] is False and r.timing.backends_requested == ["eager"]


@pytest.mark.parametrize(
    "metrics, latency, expected",
    [
        ({"acc": 0.5}, None, ("ok", 0)),
        ({"acc": float("nan")}, None, ("failed", 1)),
        ({"acc": None}, None, ("failed", 1)),
        ({"pearson": float("inf")}, None, ("failed", 1)),
        ({}, None, ("failed", 1)),
    ],
)
def test_status_rules_for_scores(metrics, latency, expected):
    st, failures = status.decide("finetune", metrics, latency, None, {})
    assert (st, len(failures)) == expected


def test_status_rules_for_latency_grids():
    ok = {"backend": "eager", "status": "ok", "batch_size": 1, "seq_len": 8}
    bad = {"backend": "eager", "status": "failed", "batch_size": 8, "seq_len": 8, "error": "OOM"}
    unsup = {"backend": "fp16", "status": "unsupported", "error": "needs CUDA"}
    cfg = {"timing": {"backends": ["eager", "fp16"]}}
    assert status.decide("latency", {}, [ok], None, cfg) == ("ok", [])
    st, failures = status.decide("latency", {}, [ok, bad], None, cfg)
    assert st == "partial" and "OOM" in failures[0]
    assert status.decide("latency", {}, [ok, unsup], None, cfg)[0] == "partial"  # asked for by name
    # resolved automatically (not requested): unsupported here is information, not a failure
    assert status.decide("latency", {}, [ok, unsup], {"backends_requested": ["eager"]}, cfg) == ("ok", [])
    assert status.decide("latency", {}, [bad, unsup], None, cfg)[0] == "failed"  # no cell succeeded


def test_two_saves_in_the_same_second_never_replace_each_other(tmp_path):
    target = tmp_path / "result.json"
    barrier, errors = threading.Barrier(8), []

    def write(i):
        barrier.wait()
        try:
            publish_new(target, json.dumps({"writer": i}))
        except BenchError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    [t.start() for t in threads], [t.join() for t in threads]
    assert len(errors) == 7 and all("already exists" in e for e in errors)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len([k for k in kept if k.startswith("result.json.unsaved-")]) == 7  # nothing lost
    assert not [k for k in kept if k.endswith(".tmp")]
    a = Result(mode="finetune", config={}, env={}, model={"name": "m"}, task={"name": "t"})
    b = Result(mode="finetune", config={}, env={}, model={"name": "m"}, task={"name": "t"})
    assert a.started_at != b.started_at  # microsecond stamps


def test_a_folder_is_claimed_by_one_live_run(tmp_path):
    with claim(tmp_path):
        (tmp_path / CLAIM_FILE).write_text("1")  # pid 1 is always alive
        with pytest.raises(BenchError, match="in use by another run"):
            with claim(tmp_path):
                pass
    (tmp_path / CLAIM_FILE).write_text(str(2**22 + 7))  # a process that does not exist: a stale claim
    with claim(tmp_path):
        assert (tmp_path / CLAIM_FILE).read_text() == str(os.getpid())


def test_resume_keys_follow_data_checkpoint_and_libraries(tmp_path, glue_dir):
    data = tmp_path / "data" / "RTE"
    data.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_bytes((glue_dir / "RTE" / name).read_bytes())
    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={tmp_path / 'data'}"])
    env = {"packages": {"torch": "2.13"}, "git": {"commit": "abc", "dirty": False}}
    key = resume.resume_key(cfg, env, resume.config_hash(cfg))
    assert key == resume.resume_key(cfg, env, resume.config_hash(cfg))
    assert key != resume.resume_key(cfg, {**env, "packages": {"torch": "2.14"}}, resume.config_hash(cfg))
    assert key != resume.resume_key(cfg, {**env, "git": {"commit": "abd", "dirty": False}}, resume.config_hash(cfg))
    with (data / "dev.tsv").open("a") as f:
        f.write("9999\tA changed row.\tAnother one.\tentailment\n")
    assert key != resume.resume_key(cfg, env, resume.config_hash(cfg))


def test_resume_key_follows_the_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"a" * 100)
    cfg = compose(["model=bert_base", f"model.path={ckpt}", "task=rte"])
    key = resume.resume_key(cfg, {}, "h")
    (ckpt / "model.safetensors").write_bytes(b"b" * 100)  # same size, other weights
    assert resume.resume_key(cfg, {}, "h") != key


def test_a_stray_or_foreign_json_never_breaks_resume(tmp_path):
    for i, text in enumerate(["null", "[1, 2]", '{"status": "ok"}', "{not json", '"text"']):
        (tmp_path / f"stray{i}").mkdir()
        (tmp_path / f"stray{i}" / "result.json").write_text(text)
    good = {**GOOD, "resume_key": "k1"}
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "result.json").write_text(json.dumps(good))
    (tmp_path / "baselines" / "x").mkdir(parents=True)
    (tmp_path / "baselines" / "x" / "result.json").write_text(json.dumps({**good, "resume_key": "k2"}))
    assert resume.find_completed([tmp_path], "k1") == tmp_path / "done" / "result.json"
    assert resume.find_completed([tmp_path], "k2") is None  # baselines are never a completed run
    assert resume.find_completed([tmp_path / "nowhere"], "k1") is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_run_whose_metric_is_not_finite_is_recorded_failed_and_exits_5(value, tmp_path, monkeypatch):
    from bench import __main__ as cli
    from bench import runner

    monkeypatch.setitem(runner.MODES, "evaluate", lambda cfg: {"metrics": {"acc": 0.7, "pearson": value}})
    result = runner.run(compose(["mode=evaluate", "task=stsb"], out_dir=str(tmp_path)))
    assert result.status == "failed" and any("pearson is not finite" in f for f in result.failures)
    saved = schema.read(tmp_path / "result.json")  # written as null, and still readable
    assert saved.status == "failed" and saved.metrics["pearson"] is None
    assert cli.STATUS_EXIT[result.status] == 5


def test_a_crash_leaves_a_complete_failed_result_and_no_temporary_file(tmp_path, monkeypatch):
    from bench import runner

    def crash(cfg):
        raise RuntimeError("the mode broke")

    monkeypatch.setitem(runner.MODES, "evaluate", crash)
    with pytest.raises(RuntimeError, match="the mode broke"):
        runner.run(compose(["mode=evaluate"], out_dir=str(tmp_path)))
    saved = schema.read(tmp_path / "result.json")
    assert saved.status == "failed" and saved.error.type == "RuntimeError" and "the mode broke" in saved.error.message
    assert [p.name for p in tmp_path.iterdir() if p.name != "result.json"] == []  # no temp file, claim released
