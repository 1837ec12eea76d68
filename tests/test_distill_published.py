"""The published distillation table is what the report prints from the committed runs behind it.

docs/distill/runs/ holds, per machine class, the result files of the runs a published distillation table comes from
(result.json, predictions.jsonl, selection.json; no checkpoints or teacher caches). Rebuilding the table from them
must give docs/distill/table.md exactly: a figure in the docs that the runs do not give, or a report change that
would print other figures from the same runs, fails here (regenerate with the command in docs/distill/runs/README.md).
"""

from pathlib import Path

from bench.report import distillation

DOCS = Path(__file__).resolve().parents[1] / "docs" / "distill"
RUNS = DOCS / "runs"


def test_the_committed_runs_print_the_published_table():
    folders = [p for p in RUNS.iterdir() if p.is_dir()] if RUNS.is_dir() else []
    assert folders, f"no committed runs below {RUNS}"
    df = distillation.frame(RUNS, n_boot=2000)
    assert not df.empty and not df.failed.any()
    assert distillation.markdown(df) + "\n" == (DOCS / "table.md").read_text()


def test_no_checkpoint_or_cache_is_committed_beside_them():
    kept = {"result.json", "predictions.jsonl", "selection.json", "README.md", "MACHINE.json"}
    extra = [p for p in RUNS.rglob("*") if p.is_file() and p.name not in kept]
    assert not extra, f"only result files belong in {RUNS}: {extra[:5]}"
    big = [p for p in RUNS.rglob("*") if p.is_file() and p.stat().st_size > 400_000]
    assert not big, big
