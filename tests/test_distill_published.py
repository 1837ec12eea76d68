"""The published distillation figures are what the report prints from the committed runs behind them.

docs/distill/runs/ holds, per machine class, the result files of the runs the published distillation table comes
from (result.json, predictions.jsonl, selection.json; no checkpoints or teacher caches). Rebuilding the table from
them must give docs/distill/table.md exactly (a report change that prints other figures from the same runs fails
here: regenerate with the command in docs/distill/runs/README.md and read the diff), and the hand-written summaries
in README.md and docs/distillation.md must quote the table's figures.
"""

from pathlib import Path

from bench import schema
from bench.report import distillation, stats

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "distill"
RUNS = DOCS / "runs"
REGENERATE = "python -m bench.report.distillation docs/distill/runs --out docs/distill"
SEEDS = ("", "_seed43", "_seed44")  # folder suffixes of seeds 42, 43, 44


def _runs() -> dict:
    """The committed runs by folder name (sst2_prediction_seed43, ...)."""
    return {p.parent.name: r for p, r in schema.walk(RUNS)}


def test_the_committed_runs_print_the_published_table():
    found = list(schema.walk(RUNS))
    assert found, f"no committed runs below {RUNS}"
    # a file the schema no longer reads would silently drop its run from the table
    unread = [str(p) for p, r in found if isinstance(r, str)]
    assert not unread, f"committed result files the schema cannot read: {unread}"
    df = distillation.frame(RUNS, n_boot=2000)
    assert not df.empty and not df.failed.any()
    # MRPC's (a) and (b) sit at the trivial predictor's level: each run's own flag names its seeds, and the variant's
    # verdict over seeds and dev rows is on the row; (c) beats it and carries neither
    flags = {
        v.split(" (")[0]: f if isinstance(f, str) else ""
        for t, v, f in zip(df.task, df.variant, df.flag)
        if t == "mrpc"
    }
    assert "no better than trivial in 3 of 3 runs: seed 42, seed 43, seed 44" in flags["fine-tuned directly"]
    assert "no better than trivial in 2 of 3 runs: seed 42, seed 43;" in flags["prediction layer"]
    assert all("no better than trivial over 3 seeds: " in flags[v] for v in ("fine-tuned directly", "prediction layer"))
    assert "trivial" not in flags["two-stage"] and "trivial" not in " ".join(df[df.task == "sst2"].flag.fillna(""))
    table = (DOCS / "table.md").read_text()
    assert distillation.markdown(df) + "\n" == table, f"docs/distill/table.md is not what the runs print: {REGENERATE}"


def _section(page: str, heading: str) -> str:
    """The text of the page's section whose heading starts with `heading`, up to the next heading: a figure the
    rerun's section misquotes must not pass because an older section quotes it."""
    start = page.index(f"### {heading}")
    end = page.find("\n### ", start + 4)
    return page[start : end if end >= 0 else len(page)]


def test_the_summaries_quote_the_table():
    table = (DOCS / "table.md").read_text()
    readme, page = (ROOT / "README.md").read_text(), (ROOT / "docs" / "distillation.md").read_text()
    # mean±std over seeds, and the change against (a) with its interval, in the rerun's own section
    reruns = {
        "SST-2 rerun": ("83.3±0.7", "84.6±0.5", "86.5±0.6", "[-1.4, +4.0]", "[+1.3, +5.2]", "50.9", "86.1"),
        "MRPC rerun": ("74.5±0.2", "77.0±0.9", "80.1±0.2", "[-1.2, +6.3]", "[+2.2, +8.9]", "74.8", "81.5"),
    }
    for heading, figures in reruns.items():
        section = _section(page, heading)
        for figure in figures:
            assert figure in table, figure
            assert figure in readme, f"{figure}: in the table, not in README.md"
            assert figure in section, f"{figure}: in the table, not in docs/distillation.md's {heading} section"


def test_the_per_seed_figures_are_the_runs():
    """The rerun sections' per-seed columns (seeds 42, 43, 44) are the committed runs' dev figures."""
    rs = _runs()
    page = (ROOT / "docs" / "distillation.md").read_text()
    for heading, task, variants in (
        ("SST-2 rerun", "sst2", ("direct", "prediction", "prediction_transfer")),
        ("MRPC rerun", "mrpc", ("direct", "prediction", "two_stage")),
    ):
        section = _section(page, heading)
        for v in variants:
            per_seed = ", ".join(f"{100 * rs[f'{task}_{v}{s}'].metrics['primary']:.1f}" for s in SEEDS)
            assert f"| {per_seed} |" in section, f"{heading}, {v}: per seed {per_seed} not in its table"


def test_no_checkpoint_or_cache_is_committed_beside_them():
    kept = {"result.json", "predictions.jsonl", "selection.json", "README.md"}
    extra = [p for p in RUNS.rglob("*") if p.is_file() and p.name not in kept]
    assert not extra, f"only result files belong in {RUNS}: {extra[:5]}"
    big = [p for p in RUNS.rglob("*") if p.is_file() and p.stat().st_size > 400_000]
    assert not big, big


def test_the_between_variant_changes_the_docs_quote():
    """(b+T) - (b) on SST-2 and (c) - (b) on MRPC are not table rows: the docs quote them from compare_seeds on
    the same committed runs (the command in docs/distill/runs/README.md)."""
    rs = _runs()
    readme, page = (ROOT / "README.md").read_text(), (ROOT / "docs" / "distillation.md").read_text()
    for task, a, b in (("sst2", "prediction_transfer", "prediction"), ("mrpc", "two_stage", "prediction")):
        got = stats.compare_seeds([(rs[f"{task}_{a}{s}"], rs[f"{task}_{b}{s}"]) for s in SEEDS])
        assert got is not None and got["seeds"] == 3
        text = f"{100 * got['diff']:+.1f} [{100 * got['low']:+.1f}, {100 * got['high']:+.1f}]"
        assert text in readme and text in page, f"{task} {a} - {b}: {text} not quoted in README.md and the page"
