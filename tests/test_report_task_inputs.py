"""A latency run timed on the dev set's own rows (timing.inputs=task) pads each batch to its longest: its `seq`
is a cap, not a length. Such rows are named as what they are wherever they appear, and never stand in for the
paper's single sequence of 128 tokens (the GLUE table's latency and FLOPs, the accuracy-latency plot, the
latency-by-length plot). Two real runs of one tiny model, one on synthetic inputs and one on task inputs."""

import io

import pytest
from conftest import GLUE_DIR, tiny

from bench.config import compose
from bench.report import console, gather, plots, tables
from bench.runner import run

FAST = [
    "mode=latency",
    "timing.min_seconds=0",
    "timing.min_iterations=3",
    "timing.warmup_runs=1",
    "timing.isolate=false",
    "timing.calibrate=false",
    "timing.backends=[eager]",
    "timing.batch_sizes=[1]",
    "timing.seq_lens=[128]",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not present at {GLUE_DIR}")
    glue_dir, root = GLUE_DIR, tmp_path_factory.mktemp("runs")
    for inputs in ("synthetic", "task"):
        cfg = compose(
            [*tiny("bert"), *FAST, "task=mrpc", f"data.dir={glue_dir}", f"timing.inputs={inputs}"],
            out_dir=str(root / inputs),
        )
        assert run(cfg).status == "ok"
    rs, _, eff = gather.load_all(root, io.StringIO())
    return rs, eff


def test_task_input_rows_are_named_and_never_the_single_sequence_figure(two_runs):
    rs, eff = two_runs
    assert sorted(eff["inputs"]) == ["synthetic", "task"]
    synthetic, task = (eff[eff["inputs"] == i].iloc[0] for i in ("synthetic", "task"))
    assert task.GFLOPs < synthetic.GFLOPs  # the dev rows were shorter than 128 tokens: less arithmetic
    # the GLUE table's latency and FLOPs (and the accuracy-latency plot's points) come from the synthetic row only
    single = tables._single_sequence_eager(eff, "cpu")
    assert list(single["inputs"]) == ["synthetic"] and single.GFLOPs.iloc[0] == synthetic.GFLOPs
    # the efficiency table and the console name what a row timed, with the dev rows' mean length
    t = tables.efficiency_table(eff)
    cells = dict(zip(t.text["inputs"], t.text["seq"]))
    assert cells["synthetic"] == "128" and set(cells) == {"synthetic", f"task (mean {task.tokens_per_seq:.0f} tok)"}
    assert 10 < task.tokens_per_seq < 128 and "'task' rows timed the dev set's own rows" in t.caption
    printed = console.latency_table([r.model_dump(mode="json") for r in rs])
    assert f"task (mean {task.tokens_per_seq:.0f} tok)" in printed
    # the plots draw them apart, named, and leave them off the x axis of sequence length
    marked = plots._marked(eff)
    assert sorted(marked.model.str.endswith(" (task inputs)")) == [False, True]


def test_memory_is_labelled_in_the_unit_it_is_computed_in(two_runs):
    _, eff = two_runs
    t = tables.efficiency_table(eff)
    assert "peak_rss_MiB" in t.text and "peak RSS (MiB)" in t.caption
    row = eff[eff["inputs"] == "synthetic"].iloc[0]
    shown = t.text[t.text["inputs"] == "synthetic"]["peak_rss_MiB"].iloc[0]
    assert float(shown) == pytest.approx(row.peak_rss_MiB, rel=0.01)
    assert row.peak_rss_MiB * 2**20 == pytest.approx(rs_bytes(two_runs[0]), rel=1e-9)


def rs_bytes(rs):
    dumped = [r.model_dump(mode="json") for r in rs]
    return next(d for d in dumped if d["task"].get("inputs") == "synthetic")["latency"][0]["memory"]["peak_rss_bytes"]


def test_a_gpu_rows_device_memory_is_shown_beside_its_host_rss(two_runs):
    """A CUDA row's figures as bench.timing.measure.cuda_peak records them (no GPU here: the real CPU result,
    its row moved to cuda:0 with 60 MiB allocated): the report showed the host RSS only."""
    from bench.report.console import latency_frame

    rs, _ = two_runs
    d = next(r.model_dump(mode="json") for r in rs if r.task.model_dump().get("inputs") == "synthetic")
    assert "cuda_alloc_MiB" not in tables.efficiency_table(latency_frame([d])).text  # CPU only: no such column
    row = d["latency"][0]
    row["device"] = "cuda:0"
    row["memory"].update(cuda_max_allocated_bytes=60 * 2**20, cuda_max_reserved_bytes=64 * 2**20)
    t = tables.efficiency_table(latency_frame([d]))
    assert list(t.text["cuda_alloc_MiB"]) == ["60"] and "peak allocation on the GPU" in t.caption
    assert "cuda_alloc_MiB" in console.latency_table([d])
