"""benchmarks/robustness.py scores every seed of each student (folders as benchmarks/distill.py names them, the
newest ok re-run of each), and the report's robustness table shows a (model, variant, backend) row as the mean±std
over its seeds, from the runs' own result files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GLUE_DIR, load_script, tiny

from bench import schema
from bench.config import compose


def _source(folder, mode="distill", seed=42, status="ok", started="2026-01-01T00:00:00", checkpoint=None):
    """A run folder as distill.py leaves it: result.json (the fields robustness reads) and, when given, a checkpoint."""
    folder.mkdir(parents=True)
    distill = {"stages": ["prediction"], "weights": {"hard": 1.0, "soft": 0.0}}  # +distill=direct
    result = {
        "schema_version": 1,
        "status": status,
        "mode": mode,
        "model": {"name": "minilm_l6"},
        "task": {"name": "rte"},
        "config": {"train": {"seed": seed}, **({"distill": distill} if mode == "distill" else {})},
        "env": {},
        "started_at": f"{started}.000000+00:00",
    }
    (folder / "result.json").write_text(json.dumps(result))
    if checkpoint is not None:
        model, tok = checkpoint
        model.save_pretrained(folder / "checkpoint")
        tok.save_pretrained(folder / "checkpoint")


def _tiny_rte(seed):
    """A tiny random RTE classifier whose predictions split (its bias moved to the median logit gap)."""
    import torch

    from bench import models, tasks

    cfg = compose([*tiny("bert"), "task=rte", f"data.dir={GLUE_DIR}", "data.max_eval_samples=16"])
    tok, model, _ = models.load(cfg.model, cfg.task, seed=seed)
    ds = tasks.load(cfg.task, cfg.data, need_train=False)["validation"]
    model.eval()
    with torch.no_grad():
        logits = model(**tok(list(ds["sentence1"]), list(ds["sentence2"]), padding=True, return_tensors="pt")).logits
        model.classifier.weight.mul_(50.0)
        model.classifier.bias[1] -= 50.0 * float((logits[:, 1] - logits[:, 0]).median())
    return model, tok


def test_student_folders_every_seed_and_the_newest_ok_rerun(tmp_path):
    bench_script = load_script("robustness")
    runs = tmp_path / "runs"
    fake = (_FakeModel(), _FakeModel())
    _source(runs / "rte_teacher", mode="finetune", checkpoint=fake)
    _source(runs / "rte_teacher.rerun-2", mode="finetune", started="2026-01-02T00:00:00", checkpoint=fake)
    _source(runs / "rte_direct", checkpoint=fake)
    _source(runs / "rte_direct_seed43", seed=43, status="failed", checkpoint=fake)
    _source(runs / "rte_direct_seed43.rerun-2", seed=43, started="2026-01-03T00:00:00", checkpoint=fake)
    _source(runs / "rte_direct_seed44", seed=44)  # ok, but saved no checkpoint
    _source(runs / "rte_directly", checkpoint=fake)  # another job whose name starts the same
    _source(runs / "rte_two_stage_seed7", seed=7, checkpoint=fake)
    found = bench_script.students(runs, "rte", "direct")
    assert set(found) == {"rte_direct", "rte_direct_seed43", "rte_direct_seed44"}
    assert bench_script.newest_ok(found["rte_direct_seed43"]) == runs / "rte_direct_seed43.rerun-2"
    assert bench_script.newest_ok(found["rte_direct_seed44"]) is None
    teacher = bench_script.jobs(runs, "rte_teacher")["rte_teacher"]
    assert bench_script.newest_ok(teacher) == runs / "rte_teacher.rerun-2"
    assert set(bench_script.students(runs, "rte", "two_stage")) == {"rte_two_stage_seed7"}  # any variant name
    assert bench_script.variant_name("two_stage") == "two_stage"
    with pytest.raises(Exception, match="folder-name part"):
        bench_script.variant_name("../x")


class _FakeModel:
    """Stands for a model or tokenizer: writes the config.json a checkpoint folder is recognised by."""

    def save_pretrained(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")


def test_every_seed_is_scored_and_the_table_shows_their_mean_and_spread(tmp_path):
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    from bench.report import robustness as report

    bench_script = load_script("robustness")
    runs, out = tmp_path / "runs", tmp_path / "scores"
    _source(runs / "rte_teacher", mode="finetune", checkpoint=_tiny_rte(1))
    _source(runs / "rte_direct", checkpoint=_tiny_rte(2))
    _source(runs / "rte_direct_seed43", seed=43, status="failed", checkpoint=_tiny_rte(9))
    _source(runs / "rte_direct_seed43.rerun-2", seed=43, started="2026-01-02T00:00:00", checkpoint=_tiny_rte(3))
    args = ["--runs", str(runs), "--tasks", "rte", "--students", "direct", "--data", str(GLUE_DIR), "--out", str(out)]
    quick = ["data.max_eval_samples=16", "robustness.only=[identity,typo]", "robustness.bootstrap=50"]
    quick += ["device.threads=1", "timing.backends=[eager]", "robustness.advglue=null"]
    assert bench_script.main([*args, "--set", *quick]) == 0
    scored = {p.parent.name: r for p, r in schema.walk(out)}
    assert set(scored) == {"rte_teacher", "rte_direct", "rte_direct_seed43"}
    seed43 = scored["rte_direct_seed43"].robustness.source
    assert seed43["seed"] == 43 and seed43["run"].endswith("rte_direct_seed43.rerun-2")  # the newest ok run
    assert scored["rte_direct"].robustness.reference["checkpoint"].endswith("rte_teacher/checkpoint")
    # the table: one row for the direct students, their two seeds' mean and spread
    recs = report.rows(list(scored.values()))
    direct = [g for g in report.groups(recs) if g[0]["variant"] == "fine-tuned directly"]
    assert len(direct) == 1 and sorted(x["seed"] for x in direct[0]) == [42, 43]
    accs = [100 * scored[n].robustness.backends[0].clean_acc.value for n in ("rte_direct", "rte_direct_seed43")]
    md = (out / "report" / "robustness.md").read_text()
    assert f"{np.mean(accs):.1f}±{np.std(accs, ddof=1):.1f} (2 seeds)" in md and "| 42, 43 " in md
    assert "| fine-tuned  " in md and "| rte_teacher " in md  # the teacher's row, the students' reference by name
    # run again: every ok score is kept (same resume key), nothing is scored twice
    assert bench_script.main([*args, "--set", *quick]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name != "report") == [
        "rte_direct",
        "rte_direct_seed43",
        "rte_teacher",
    ]
