from pathlib import Path

import pytest

from bench import tasks
from bench.config import DataConfig, compose
from bench.errors import DataError
from bench.tasks import glue

# rows per split, from ../shared/data/README.md
ROWS = {"cola": (8551, 1043), "sst2": (67349, 872), "mrpc": (3668, 408), "stsb": (5749, 1500), "rte": (2490, 277)}


@pytest.mark.parametrize("task", sorted(ROWS))
def test_real_glue_files_load_with_official_row_counts(task, glue_dir):
    cfg = compose([f"task={task}", f"data.dir={glue_dir}"])
    dd = tasks.load(cfg.task, cfg.data)
    assert (len(dd["train"]), len(dd["validation"])) == ROWS[task]
    cols = set(dd["train"].column_names)
    assert {"sentence1", "label", "idx"} <= cols
    assert ("sentence2" in cols) == (task not in {"cola", "sst2"})
    labels = set(dd["validation"]["label"])
    if task == "stsb":
        assert min(labels) >= 0 and max(labels) <= 5 and len(labels) > 10
    else:
        assert labels == {0, 1}


def test_labels_and_text_are_read_as_written(glue_dir):
    rte = tasks.load(compose(["task=rte"]).task, DataConfig(dir=str(glue_dir)))
    first = rte["train"][0]  # 0\tNo Weapons of Mass Destruction Found in Iraq Yet.\t...\tnot_entailment
    assert first["sentence1"] == "No Weapons of Mass Destruction Found in Iraq Yet."
    assert first["label"] == 1  # not_entailment, Hub order [entailment, not_entailment]
    mrpc = tasks.load(compose(["task=mrpc"]).task, DataConfig(dir=str(glue_dir)))
    assert mrpc["train"][0]["label"] == 1 and mrpc["train"][0]["sentence1"].startswith("Amrozi accused")
    cola = tasks.load(compose(["task=cola"]).task, DataConfig(dir=str(glue_dir)))
    assert cola["validation"][0]["sentence1"] == "The sailors rode the breeze clear of the rocks."


def test_caps_take_a_seeded_train_subset_and_the_first_eval_rows(glue_dir):
    cfg = compose(["task=rte", f"data.dir={glue_dir}", "data.max_train_samples=50", "data.max_eval_samples=7"])
    a, b = tasks.load(cfg.task, cfg.data, seed=1), tasks.load(cfg.task, cfg.data, seed=1)
    assert len(a["train"]) == 50 and a["train"]["idx"] == b["train"]["idx"]
    assert a["validation"]["idx"] == list(range(7))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_folder_names_path_and_layout(tmp_path):
    cfg = compose(["task=rte", f"data.dir={tmp_path}"])
    with pytest.raises(DataError) as err:
        tasks.load(cfg.task, cfg.data)
    assert str(tmp_path / "RTE") in str(err.value) and "standard GLUE download layout" in str(err.value)


def test_missing_file_names_it(tmp_path):
    _write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    cfg = compose(["task=rte", f"data.dir={tmp_path}"])
    with pytest.raises(DataError, match=r"RTE/dev.tsv: file not found"):
        tasks.load(cfg.task, cfg.data)


def test_malformed_row_names_file_and_line(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    _write(tmp_path / "RTE" / "train.tsv", header + "0\ta\tb\tentailment\n1\tonly one sentence\n")
    _write(tmp_path / "RTE" / "dev.tsv", header + "0\ta\tb\tentailment\n")
    cfg = compose(["task=rte", f"data.dir={tmp_path}"])
    with pytest.raises(DataError, match=r"train.tsv, line 3: 2 tab-separated fields, at least 4 expected"):
        tasks.load(cfg.task, cfg.data)


def test_a_row_with_more_fields_than_its_header_or_an_unreadable_one_names_the_line(tmp_path):
    """A stray tab inside a text once cut the text there and was read as ok; a non-finite STS-B score and a field
    over the csv module's size limit were a NaN loss and a traceback."""
    header = "index\tsentence1\tsentence2\tlabel\n"
    _write(tmp_path / "RTE" / "train.tsv", header + "0\ta\tb\tentailment\n1\tMagnarelli\tsaid\tb\tentailment\n")
    _write(tmp_path / "RTE" / "dev.tsv", header + "0\ta\tb\tentailment\n")
    cfg = compose(["task=rte", f"data.dir={tmp_path}"])
    with pytest.raises(DataError, match=r"train.tsv, line 3: 5 tab-separated fields where the header has 4 \(a tab"):
        tasks.load(cfg.task, cfg.data)
    _write(tmp_path / "RTE" / "train.tsv", header + "0\t" + "x" * 200_000 + "\tb\tentailment\n")
    with pytest.raises(DataError, match=r"train.tsv, line 2: not readable as a tab-separated row \(field larger"):
        tasks.load(cfg.task, cfg.data)
    # no header (CoLA): the first row sets the width
    _write(tmp_path / "CoLA" / "train.tsv", "src\t1\t\tA sentence.\nsrc\t0\t\tAnother\tone.\n")
    _write(tmp_path / "CoLA" / "dev.tsv", "src\t1\t\tA sentence.\n")
    cola = compose(["task=cola", f"data.dir={tmp_path}"])
    with pytest.raises(DataError, match=r"train.tsv, line 2: 5 tab-separated fields where the first row has 4"):
        tasks.load(cola.task, cola.data)
    # fewer fields than the header, every column read there: a transfer set's rows may leave out its label
    _write(tmp_path / "t.tsv", header + "0\tan unlabelled\tpair\n")
    assert glue.read_texts(tmp_path / "t.tsv", cfg.task)["sentence2"] == ["pair"]
    stsb = compose(["task=stsb", f"data.dir={tmp_path}"])
    sts_header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    for bad in ("nan", "inf"):
        _write(tmp_path / "STS-B" / "train.tsv", sts_header + f"0\tg\tf\t2012\t0\ts\ts\ta\tb\t{bad}\n")
        _write(tmp_path / "STS-B" / "dev.tsv", sts_header + "0\tg\tf\t2012\t0\ts\ts\ta\tb\t3.2\n")
        with pytest.raises(DataError, match=rf"train.tsv, line 2: label '{bad}' is not a finite number"):
            tasks.load(stsb.task, stsb.data)


def test_unknown_label_and_missing_header_column(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    _write(tmp_path / "RTE" / "train.tsv", header + "0\ta\tb\tmaybe\n")
    _write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tlabel\n0\ta\tentailment\n")
    cfg = compose(["task=rte", f"data.dir={tmp_path}"])
    with pytest.raises(DataError, match=r"line 2: label 'maybe' is not one of .*expected the standard GLUE download"):
        tasks.load(cfg.task, cfg.data)
    _write(tmp_path / "RTE" / "train.tsv", header + "0\ta\tb\tentailment\n")
    with pytest.raises(DataError, match=r"dev.tsv, line 1: the header has no column 'sentence2'"):
        tasks.load(cfg.task, cfg.data)


def test_unbalanced_quotes_are_kept_verbatim(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    _write(tmp_path / "RTE" / "train.tsv", header + '0\the said "yes\tno\tentailment\n1\tc\td\tnot_entailment\n')
    _write(tmp_path / "RTE" / "dev.tsv", header + "0\ta\tb\tentailment\n")
    dd = tasks.load(compose(["task=rte"]).task, DataConfig(dir=str(tmp_path)))
    assert dd["train"]["sentence1"] == ['he said "yes', "c"]


def test_mnli_layout_gives_matched_and_mismatched_splits(tmp_path):
    header = (
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
        "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    )
    row = "0\t1\t1n\tfiction\t-\t-\t-\t-\tA man sleeps.\tA person rests.\tentailment\tentailment\n"
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _write(tmp_path / "MNLI" / name, header + row + row.replace("entailment", "contradiction"))
    dd = tasks.load(compose(["task=mnli"]).task, DataConfig(dir=str(tmp_path)))
    assert set(dd) == {"train", "validation_matched", "validation_mismatched"}
    assert dd["validation_mismatched"]["label"] == [0, 2]


def test_rows_cut_at_max_seq_length_are_counted_exactly_and_a_run_notes_them(glue_dir, tmp_path):
    """How many rows the encoding cut: counted against a whole tokenisation of every row (RTE's premises are
    long), and recorded in a run's task section with a note."""
    from conftest import tiny

    from bench import models
    from bench.engine import truncated_rows
    from bench.runner import run

    cfg = compose(["task=rte", "model=minilm_l6", f"data.dir={glue_dir}"])
    tok = models.load_tokenizer(cfg.model)
    raw = tasks.load(cfg.task, cfg.data)
    for length, pad in ((64, False), (128, True)):
        enc = tasks.encode(raw, tok, length, pad)
        for split in raw:
            whole = tok(list(raw[split]["sentence1"]), list(raw[split]["sentence2"]))["input_ids"]
            want = sum(len(ids) > length for ids in whole)
            assert truncated_rows(raw[split], enc[split], tok, length) == want, (length, split)
    assert want > 0  # RTE dev at 128 tokens: some premises are longer
    # padding to the length makes every row that long: only rows whose real tokens reach it are tokenised again
    seen = []

    class Counting:
        def __call__(self, *texts, **kw):
            seen.append(len(texts[0]))
            return tok(*texts, **kw)

    enc = tasks.encode(raw, tok, 128, True)
    at_limit = sum(sum(m) >= 128 for m in enc["validation"]["attention_mask"])
    assert truncated_rows(raw["validation"], enc["validation"], Counting(), 128) == want
    assert sum(seen) == at_limit < len(raw["validation"]) / 4
    quick = ["train.max_steps=2", "data.max_train_samples=16", "data.max_eval_samples=16", "train.max_seq_length=32"]
    r = run(compose([*tiny("bert"), "task=rte", f"data.dir={glue_dir}", *quick], out_dir=str(tmp_path / "run")))
    cut = r.task["truncated"]
    assert cut["validation"] > 0 and any(f"{cut['validation']} of 16 validation rows were cut at" in n for n in r.notes)


def test_multiple_choice_rows_cut_in_any_pair_are_counted(mc_dir):
    """PIQA at 128 tokens: the questions whose goal and one solution do not fit (counted pair by pair)."""
    from bench import models
    from bench.engine import truncated_rows
    from bench.tasks.multiple_choice import encode

    cfg = compose(["task=piqa", "model=minilm_l6", f"data.dir={mc_dir}"])
    tok = models.load_tokenizer(cfg.model)
    raw = tasks.load(cfg.task, cfg.data, need_train=False)
    enc = encode(raw, tok, 128, False)
    split = next(iter(raw))
    pairs = [tok([g] * len(ch), list(ch))["input_ids"] for g, ch in zip(raw[split]["context"], raw[split]["choices"])]
    want = sum(any(len(p) > 128 for p in ps) for ps in pairs)
    assert want > 0 and truncated_rows(raw[split], enc[split], tok, 128) == want
