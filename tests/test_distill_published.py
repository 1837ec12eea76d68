"""The published distillation figures are what the report prints from the committed runs behind them.

docs/distill/runs/ holds, per machine class, the result files of the runs the published distillation table comes
from (result.json, predictions.jsonl, selection.json; no checkpoints or teacher caches). Rebuilding the table from
them must give docs/distill/table.md exactly (a report change that prints other figures from the same runs fails
here: regenerate with the command in docs/distill/runs/README.md and read the diff), and the hand-written summaries
in README.md and docs/distillation.md must quote the table's figures.
"""

from pathlib import Path

from bench import schema
from bench.report import distillation

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "distill"
RUNS = DOCS / "runs"
REGENERATE = "python -m bench.report.distillation docs/distill/runs --out docs/distill"


def test_the_committed_runs_print_the_published_table():
    found = list(schema.walk(RUNS))
    assert found, f"no committed runs below {RUNS}"
    # a file the schema no longer reads would silently drop its run from the table
    unread = [str(p) for p, r in found if isinstance(r, str)]
    assert not unread, f"committed result files the schema cannot read: {unread}"
    df = distillation.frame(RUNS, n_boot=2000)
    assert not df.empty and not df.failed.any()
    table = (DOCS / "table.md").read_text()
    assert distillation.markdown(df) + "\n" == table, f"docs/distill/table.md is not what the runs print: {REGENERATE}"


def test_the_summaries_quote_the_table():
    table = (DOCS / "table.md").read_text()
    readme, page = (ROOT / "README.md").read_text(), (ROOT / "docs" / "distillation.md").read_text()
    # (a), (b), (b+T): mean±std over seeds, and the change against (a) with its interval
    for figure in ("83.3±0.7", "84.6±0.5", "86.5±0.6", "[-1.4, +4.0]", "[+1.3, +5.2]", "50.9", "86.1"):
        assert figure in table, figure
        assert figure in readme and figure in page, f"{figure}: in the table, not in README.md or docs/distillation.md"


def test_no_checkpoint_or_cache_is_committed_beside_them():
    kept = {"result.json", "predictions.jsonl", "selection.json", "README.md"}
    extra = [p for p in RUNS.rglob("*") if p.is_file() and p.name not in kept]
    assert not extra, f"only result files belong in {RUNS}: {extra[:5]}"
    big = [p for p in RUNS.rglob("*") if p.is_file() and p.stat().st_size > 400_000]
    assert not big, big
