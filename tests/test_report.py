"""Reports built from real result files that the harness made on tiny models."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, compile_tex, tiny

from bench.config import compose
from bench.errors import NonFiniteLossError
from bench.report import gather, plots, stats, tables
from bench.report.__main__ import build, main
from bench.runner import run

QUICK = ["train.max_steps=4", "train.batch_size=8", "data.max_train_samples=32", "data.max_eval_samples=40"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from conftest import GLUE_DIR

    if not GLUE_DIR.is_dir():
        pytest.skip("real GLUE data not present")
    root = tmp_path_factory.mktemp("results")
    for i, (family, task, seed) in enumerate(
        [("bert", "rte", 1), ("bert", "rte", 2), ("distilbert", "rte", 1), ("bert", "mrpc", 1)]
    ):
        run(
            compose(
                [*tiny(family), f"task={task}", f"data.dir={GLUE_DIR}", f"train.seed={seed}", *QUICK],
                out_dir=str(root / f"run{i}"),
            )
        )
    run(
        compose(
            [
                *tiny("bert"),
                "mode=latency",
                "timing.backends=[eager,int8]",
                "timing.batch_sizes=[1]",
                "timing.seq_lens=[32,128]",
                "timing.min_seconds=0",
                "timing.min_iterations=5",
                "timing.warmup_runs=2",
                "timing.isolate=false",
                "timing.calibrate=false",
            ],
            out_dir=str(root / "latency"),
        )
    )
    with pytest.raises(NonFiniteLossError):
        run(
            compose(
                [
                    *tiny("bert"),
                    "task=rte",
                    f"data.dir={GLUE_DIR}",
                    *QUICK,
                    "train.max_steps=20",
                    "train.learning_rate=1e6",
                    "train.precision=fp32",
                ],
                out_dir=str(root / "failed"),
            )
        )
    (root / "corrupt").mkdir()
    (root / "corrupt" / "result.json").write_text('{"schema_version": 1, "status": "ok", "mod')
    return root


def _result(root, name):
    return json.loads((root / name / "result.json").read_text())


def test_unusable_results_are_skipped_with_one_line_each(tree):
    log = io.StringIO()
    found = gather.find(tree, log)
    assert len(found) == 5
    lines = log.getvalue().strip().splitlines()
    assert len(lines) == 2
    assert any("corrupt/result.json" in l and "not a readable result file" in l for l in lines)
    assert any("failed/result.json" in l and "status 'failed'" in l for l in lines)


def test_seed_aggregation_and_glue_cells(tree):
    rs, metrics_df, eff = gather.load_all(tree, io.StringIO())
    seeds = gather.seeds(metrics_df)
    accs = [_result(tree, f"run{i}")["metrics"]["acc"] for i in (0, 1)]
    row = seeds[(seeds.model == "bert_base (weights: random)") & (seeds.task == "rte") & (seeds.metric == "acc")].iloc[
        0
    ]
    assert (
        row.n == 2 and row["mean"] == pytest.approx(np.mean(accs)) and row["std"] == pytest.approx(np.std(accs, ddof=1))
    )
    params = metrics_df.groupby("model")["params"].first().to_dict()
    t = tables.glue_table(seeds, eff, params)
    ours = t.text[t.text.source == "ours (dev)"].set_index("model")
    assert list(ours.index) == ["bert_base (weights: random)", "distilbert (weights: random)"]
    assert (
        ours.loc["bert_base (weights: random)", "RTE"] == f"{100 * np.mean(accs):.1f}±{100 * np.std(accs, ddof=1):.1f}"
    )
    assert ours.loc["bert_base (weights: random)", "seeds"] == "1"  # MRPC has one seed
    assert ours.loc["distilbert (weights: random)", "MRPC"] == "-"  # missing shown as missing, never zero
    assert ours.loc["bert_base (weights: random)", "CPU ms"] != "-"  # from the latency run, batch 1 seq 128
    mrpc = _result(tree, "run3")["metrics"]
    assert ours.loc["bert_base (weights: random)", "MRPC"] == f"{100 * mrpc['f1']:.1f}/{100 * mrpc['acc']:.1f}"
    # GLUE average by hand, over the tasks shown (MRPC, RTE): MobileBERT paper row (88.8 + 66.2) / 2
    pub = t.text.set_index("model")
    assert pub.loc["MobileBERT", "avg"] == "77.5" and pub.loc["MobileBERT", "source"].startswith("published (test)")
    mine = (100 * (mrpc["f1"] + mrpc["acc"]) / 2 + 100 * np.mean(accs)) / 2
    assert ours.loc["bert_base (weights: random)", "avg"] == f"{mine:.1f}"


def test_paired_bootstrap_known_answers():
    acc = lambda p, y: float(np.mean(p == y))  # noqa: E731
    y = np.zeros(200, dtype=int)
    same = stats.paired_bootstrap(acc, y, y, y, n_boot=200)
    assert same["diff"] == 0 and same["low"] == 0 and same["high"] == 0 and same["within_noise"]
    allwrong = stats.paired_bootstrap(acc, y, y, 1 - y, n_boot=200)
    assert allwrong["diff"] == 1 and allwrong["low"] == 1 and not allwrong["within_noise"]
    # a right on 60% of 5000 examples, b on 50%, independently: the interval should match the normal theory
    rng = np.random.default_rng(0)
    y = np.zeros(5000, dtype=int)
    a = (rng.random(5000) > 0.6).astype(int)
    b = (rng.random(5000) > 0.5).astype(int)
    res = stats.paired_bootstrap(acc, y, a, b, n_boot=2000)
    d = (a == y).astype(float) - (b == y).astype(float)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert res["diff"] == pytest.approx(d.mean())
    assert res["low"] == pytest.approx(d.mean() - half, abs=0.006) and res["high"] == pytest.approx(
        d.mean() + half, abs=0.006
    )
    assert not res["within_noise"]


def test_pareto_front():
    pts = pd.DataFrame({"model": list("abcd"), "latency_ms": [10, 20, 30, 40], "score": [70, 65, 80, 79]})
    assert list(plots.pareto(pts, "latency_ms", "score").model) == ["a", "c"]


def test_full_report_files(tree, tmp_path, capsys):
    out = tmp_path / "report"
    # exit 1: the tree holds a corrupt result.json, left out of the tables (test_report_exit_status_...)
    assert main([str(tree), "--out", str(out), "--format", "md,latex,html,csv", "--bootstrap", "200"]) == 1
    for name in (
        "glue.md",
        "glue.tex",
        "efficiency.md",
        "efficiency.tex",
        "report.html",
        "results.csv",
        "significance.csv",
        "speedup_per_backend.png",
        "speedup_per_backend.svg",
        "latency_vs_seq_len.png",
        "accuracy_vs_latency.png",
    ):
        assert (out / name).is_file(), name
    tex = (out / "glue.tex").read_text()
    assert r"\toprule" in tex and r"\bfseries" in tex and r"bert\_base" in tex
    md = (out / "glue.md").read_text()
    assert "weights: random" in md and "**" in md
    sig = pd.read_csv(out / "significance.csv")
    pairs = sig[~sig.model_b.str.startswith("trivial: ")]  # model variants against each other: RTE only
    assert set(pairs.task) == {"rte"} and {"low", "high", "within_noise"} <= set(sig.columns)
    assert set(sig[sig.model_b.str.startswith("trivial: ")].task) == {"rte", "mrpc"}  # each against its trivial
    printed = capsys.readouterr().out
    assert "MobileBERT-TINY" in printed and "wrote" in printed


def test_report_exit_status_says_whether_every_result_file_was_read(tree, tmp_path, capfd):
    clean = tmp_path / "clean"
    shutil.copytree(tree, clean, ignore=shutil.ignore_patterns("corrupt", "report"))
    assert json.loads((clean / "failed" / "result.json").read_text())["status"] == "failed"
    assert main([str(clean), "--format", "md", "--bootstrap", "50"]) == 0  # a failed run is listed, not an error
    capfd.readouterr()
    (clean / "half").mkdir()
    (clean / "half" / "result.json").write_text('{"schema_version": 1, "status": "ok", "mod')
    (clean / "alien").mkdir()
    (clean / "alien" / "result.json").write_text('{"hello": 1}')
    assert main([str(clean), "--format", "md", "--bootstrap", "50"]) == 1
    err = capfd.readouterr().err
    listed = err.split("could not be read and are not in the tables:")[1]
    assert "half/result.json" in listed and "alien/result.json" in listed
    help_text = subprocess.run(
        [sys.executable, "-m", "bench", "report", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    ).stdout
    assert "exit status" in help_text and "1 when a result.json could not be read" in " ".join(help_text.split())


def test_latex_compiles_when_a_tex_engine_is_present(tree, tmp_path):
    written = build(tree, tmp_path, ["latex"], n_boot=50, log=io.StringIO())
    assert {"glue.tex", "efficiency.tex"} <= set(written)
    compile_tex(tmp_path, [n for n in written if n.endswith(".tex")])


def test_html_report_renders_in_a_real_browser(tree, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless chromium here (apt-get install chromium)")
    build(tree, tmp_path, ["html"], n_boot=50, log=io.StringIO())
    page = tmp_path / "report.html"
    n_img = page.read_text().count("<img ")
    p = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    assert n_img >= 3 and f'data-images-ok="{n_img}"' in dom  # every embedded plot decoded
    assert 'data-tables="' in dom and int(dom.split('data-tables="')[1].split('"')[0]) >= 3
    assert "MobileBERT" in dom and "weights: random" in dom


def test_speed_ups_are_over_the_same_runs_eager_when_a_model_was_measured_twice(tmp_path):
    """Two latency runs of one model (a re-run, another machine class): each backend over its own run's eager,
    each row naming its machine class; the report builds (it once divided by both runs' eager rows at once)."""
    classes = sorted(p for p in (ROOT / "results" / "baselines").iterdir() if (p / "latency_tinybert_4l").is_dir())
    assert len(classes) >= 2
    for i, c in enumerate(classes[:2]):
        shutil.copytree(c / "latency_tinybert_4l", tmp_path / "runs" / str(i))
    eff = gather.efficiency_frame(gather.find(tmp_path / "runs", io.StringIO()))
    assert eff.machine.nunique() == 2
    for _, one in eff.groupby("machine"):
        eager = one[one.backend_name == "eager"].set_index(["batch", "seq"]).p50_ms
        for _, row in one.iterrows():
            assert row.speedup_vs_eager == pytest.approx(eager[(row.batch, row.seq)] / row.p50_ms)
    assert build(tmp_path / "runs", tmp_path / "out", ["md"], n_boot=10)
    assert all(c.name in (tmp_path / "out" / "efficiency.md").read_text() for c in classes[:2])
    # the plots draw each class apart, and a disturbed row apart from calm ones, named as such
    noisy = eff.assign(flags=["disturbed: other load 0.6 cores" if i % 2 else "" for i in range(len(eff))])
    names = plots._marked(noisy).model
    assert all(f"[{m}]" in n for n, m in zip(names, eff.machine))
    assert [n.endswith("(disturbed)") for n in names] == [bool(i % 2) for i in range(len(eff))]
    assert plots.speedup_per_backend(noisy, tmp_path)


def test_the_glue_tables_latency_is_the_same_architectures_and_says_when_it_was_disturbed(tmp_path):
    src = next((ROOT / "results" / "baselines").glob("*/latency_tinybert_4l"))
    shutil.copytree(src, tmp_path / "runs" / "a")
    eff = gather.efficiency_frame(gather.find(tmp_path / "runs", io.StringIO()))
    size = float(eff.params_M.iloc[0]) * 1e6
    calm = tables._efficiency_for(eff, "tinybert_4l", size, "cpu")
    assert calm["p50_ms"] > 0 and calm["notes"] == []
    # scored on a task of another head (5 labels more or fewer than the timed run's): the same architecture
    head = 5 * (312 + 1)
    assert tables._efficiency_for(eff, "tinybert_4l", size + head, "cpu") == calm
    assert tables._efficiency_for(eff, "tinybert_4l", size - head, "cpu") == calm
    # a distilled student of fewer layers has the same model name, not the same architecture
    assert tables._efficiency_for(eff, "tinybert_4l", size / 2, "cpu") == {}
    disturbed = eff.assign(flags="disturbed: other load 0.60 cores", p50_ms=eff.p50_ms * 10)
    seen = tables._efficiency_for(disturbed, "tinybert_4l", size, "cpu")
    assert seen["notes"] == ["disturbed"] and seen["p50_ms"] == pytest.approx(10 * calm["p50_ms"])
    # beside a calm row of the same shape, the disturbed one is not what the table shows
    both = pd.concat([eff, disturbed.assign(machine="another-class")], ignore_index=True)
    assert tables._efficiency_for(both, "tinybert_4l", size, "cpu") == calm
    seeds = pd.DataFrame(
        [
            {
                "model": m,
                "model_name": "tinybert_4l",
                "task": "rte",
                "metric": k,
                "mean": 0.6,
                "std": 0.0,
                "n": 3,
                "flags": "",
            }
            for m in ("calm", "noisy")
            for k in ("acc", "primary")
        ]
    )
    glue = tables.glue_table(seeds[seeds.model == "noisy"], disturbed, {"noisy": size}, with_published=False)
    row = glue.text.set_index("model").loc["noisy"]
    assert "CPU ms: disturbed" in row["flags"] and np.isnan(
        glue.score.set_index(glue.text.model).loc["noisy", "CPU ms"]
    )
