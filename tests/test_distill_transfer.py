"""mode=distill's transfer set and its on-disk teacher cache: the cache is memory-mapped, ragged and equal to the
teacher's own outputs; a damaged entry is rebuilt; transfer rows come from the sources asked, their labels are
never read, and the hard term sees labelled rows only; the augmenters are seeded and do what they name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GLUE_DIR, QUICK, tiny

from bench import tasks
from bench.config import compose
from bench.distill import cache, losses, teacher, transfer
from bench.distill.internals import attention_scores
from bench.distill.trainer import LossPlan, RowCollator, compute_terms
from bench.errors import ConfigError
from bench.runner import run


def _teacher_and_rows(teachers, n=24):
    ckpt, tokenizer, model = teacher.load(str(teachers["sst2"]), compose(["task=sst2"]).task)
    cfg = compose(["task=sst2", f"data.dir={GLUE_DIR}", f"data.max_train_samples={n}"])
    train = tasks.encode(tasks.load(cfg.task, cfg.data), tokenizer, 128, False)["train"]
    return ckpt, tokenizer, model, train


def test_cache_is_memory_mapped_ragged_and_equals_the_teachers_outputs(teachers, tmp_path):
    ckpt, tokenizer, model, train = _teacher_and_rows(teachers)
    pad = RowCollator(tokenizer, regression=False).pad
    outputs, info = teacher.load_or_compute(str(tmp_path), ckpt, model, train, pad, 5, [0, 2, 4], [2, 4])
    folder = tmp_path / info["key"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "attention.npy",
        "hidden.npy",
        "lengths.npy",
        "logits.npy",
        "meta.json",
    ]
    # read from disk: every per-token array is a memory map of a file in the entry, nothing loaded into memory
    for arr, name in (
        (outputs.hidden, "hidden.npy"),
        (outputs.attention, "attention.npy"),
        (outputs.logits, "logits.npy"),
    ):
        assert isinstance(arr, np.memmap) and Path(arr.filename) == folder / name
    assert outputs.hidden.dtype == outputs.attention.dtype == np.float16
    # ragged: each row holds its own length only (padding to the longest would hold N x max)
    n = np.array([sum(m) for m in train["attention_mask"]])
    assert outputs.hidden.shape == (n.sum(), 3, 32) and n.sum() < len(n) * n.max()
    assert outputs.attention.shape == ((2 * 2 * n * n).sum(),)
    per_row = sum(cache.bytes_per_row(int(k), 3, 32, 2, 2, 2) for k in n)
    assert info["bytes"] == cache.folder_bytes(folder) and 0 < info["bytes"] - per_row < 2000  # .npy headers, meta
    # equal, within fp16 rounding, to the teacher run again on each row alone (no padding at all)
    for r in (0, 7, 23):
        ids = {k: torch.tensor([train[r][k]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            live = model(**ids, output_hidden_states=True)
            scores = attention_scores(model, live.hidden_states, [2, 4])
        got = outputs.batch(torch.tensor([r]), int(n[r]) + 3)  # padded 3 past the row's end
        torch.testing.assert_close(got["logits"][0], live.logits[0], atol=1e-5, rtol=1e-5)
        for k, h in enumerate([0, 2, 4]):
            torch.testing.assert_close(got["hidden"][k][0, : n[r]], live.hidden_states[h][0], atol=2e-3, rtol=2e-3)
            assert not got["hidden"][k][0, n[r] :].any()
        for a in range(2):
            torch.testing.assert_close(got["attention"][a][0, :, : n[r], : n[r]], scores[a][0], atol=2e-3, rtol=2e-3)
            assert not got["attention"][a][0, :, n[r] :].any()


def test_a_damaged_or_half_written_cache_is_never_read(teachers, tmp_path, monkeypatch, caplog):
    ckpt, tokenizer, model, train = _teacher_and_rows(teachers)
    pad = RowCollator(tokenizer, regression=False).pad
    args = (str(tmp_path), ckpt, model, train, pad, 8, [0, 4], [4])
    good, info = teacher.load_or_compute(*args)
    want = np.array(good.attention)
    folder = tmp_path / info["key"]
    del good
    with open(folder / "attention.npy", "r+b") as f:  # a truncated file (a full disk, a copy cut short)
        f.truncate(folder.joinpath("attention.npy").stat().st_size - 64)
    again, info2 = teacher.load_or_compute(*args)
    assert not info2["reused"] and "cannot be used" in caplog.text and np.array_equal(np.array(again.attention), want)
    (folder / "meta.json").write_text(json.dumps({**json.loads((folder / "meta.json").read_text()), "rows": 3}))
    assert not teacher.load_or_compute(*args)[1]["reused"]
    # any damage is a rebuild, never a traceback (each was an EOFError, AttributeError, KeyError or TypeError)
    meta = json.loads((folder / "meta.json").read_text())
    damages = {
        "an empty lengths.npy": lambda: (folder / "lengths.npy").write_bytes(b""),
        "an empty logits.npy": lambda: (folder / "logits.npy").write_bytes(b""),
        "a meta that is a list": lambda: (folder / "meta.json").write_text("[]"),
        "a meta without rows": lambda: (folder / "meta.json").write_text(json.dumps({**meta, "rows": None} | {})),
        "a meta without its row count": lambda: (folder / "meta.json").write_text(
            json.dumps({k: v for k, v in meta.items() if k != "rows"})
        ),
        "heads: null": lambda: (folder / "meta.json").write_text(json.dumps({**meta, "heads": None})),
        "other attention layers": lambda: (folder / "meta.json").write_text(
            json.dumps({**meta, "attention_layers": []})
        ),
    }
    for what, damage in damages.items():
        damage()
        caplog.clear()
        out, info3 = teacher.load_or_compute(*args)
        assert not info3["reused"] and "cannot be used" in caplog.text, what
        assert np.array_equal(np.array(out.attention), want), what
        assert teacher.load_or_compute(*args)[1]["reused"], what  # rebuilt, and good again
    import shutil

    shutil.rmtree(folder)
    folder.write_text("not a folder")  # a file where the entry belongs
    assert not teacher.load_or_compute(*args)[1]["reused"] and folder.is_dir()
    # a run killed during the pass leaves neither an entry nor its temporary folder
    real = cache.Writer.put
    calls = []

    def dying(self, row, *a):
        calls.append(row)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(self, row, *a)

    monkeypatch.setattr(cache.Writer, "put", dying)
    other = (str(tmp_path / "other"), *args[1:])
    with pytest.raises(KeyboardInterrupt):
        teacher.load_or_compute(*other)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


def test_transfer_rows_labels_are_never_read_and_the_hard_term_skips_them(teachers, tmp_path):
    ckpt, tokenizer, model, train = _teacher_and_rows(teachers, n=12)
    rows = transfer.combine(train.select(range(8)), train.select(range(8, 12)).map(lambda r: {"labels": 1}))
    collate = RowCollator(tokenizer, regression=False)
    outputs, _ = teacher.load_or_compute(str(tmp_path), ckpt, model, rows, collate.pad, 4, [], [])
    plan = LossPlan(weights={"soft": 1.0, "hard": 1.0}, temperature=1.0, regression=False, layer_map=[])

    def terms(batch_rows, transfer_label):
        feats = [
            {**rows[i], "labels": transfer_label if not rows[i]["labelled"] else rows[i]["labels"]} for i in batch_rows
        ]
        b = collate(feats)
        r, labels, labelled = b.pop("row"), b.pop("labels"), b.pop("labelled")
        with torch.no_grad():
            return compute_terms(plan, model, b, r, labels, outputs, labelled), model(**b).logits, labels, labelled

    mixed = [0, 9, 3, 11, 10]
    a, logits, labels, labelled = terms(mixed, 0)
    b, *_ = terms(mixed, 1)
    c, *_ = terms(mixed, -1)  # the filler a transfer row carries
    assert labelled.tolist() == [True, False, True, False, False]
    assert a["hard"] == b["hard"] == c["hard"]  # changing a transfer row's label changes nothing
    assert a["hard"].item() == pytest.approx(
        losses.hard_loss(logits[labelled], labels[labelled], False).item(), abs=1e-6
    )
    assert a["soft"].item() == pytest.approx(
        losses.soft_cross_entropy(logits, torch.from_numpy(outputs.logits[[0, 9, 3, 11, 10]]), 1.0).item(), abs=1e-5
    )  # the teacher's term covers every row
    alone, *_ = terms([9, 10], 0)
    assert "hard" not in alone and "soft" in alone
    # and the rows themselves: a transfer file's labels, garbage or right, give the same encoded rows
    src = GLUE_DIR / "SST-2" / "train.tsv"
    lines = src.read_text().splitlines()[:30]
    clean, garbage = tmp_path / "clean.tsv", tmp_path / "garbage.tsv"
    clean.write_text("\n".join(lines) + "\n")
    garbage.write_text("\n".join([lines[0]] + [line.split("\t")[0] + "\tbanana" for line in lines[1:]]) + "\n")
    got = []
    for path in (clean, garbage):
        cfg = compose(
            [
                "task=sst2",
                "mode=distill",
                "distill.teacher=x",
                "distill.transfer.sources=[file]",
                f"distill.transfer.file={path}",
            ]
        )
        ds, info = transfer.build(cfg, train, tokenizer, 128)
        got.append(ds)
        assert info["rows"] == {"file": 29} and set(ds["labels"]) == {-1}
    assert got[0]["input_ids"] == got[1]["input_ids"]


def test_rest_rows_are_the_files_unused_rows_seeded_by_the_sample_seed(glue_dir):
    from transformers import AutoTokenizer

    from bench.models import VOCAB_PACKAGE, package_dir

    tokenizer = AutoTokenizer.from_pretrained(str(package_dir(VOCAB_PACKAGE)))
    base = ["task=sst2", "mode=distill", "distill.teacher=x", f"data.dir={glue_dir}", "data.max_train_samples=40"]
    base += ["data.sample_seed=3", "data.holdout=5", "distill.transfer.sources=[rest]", "distill.transfer.max_rows=50"]
    got = {}
    for seed in (1, 2):
        cfg = compose([*base, f"train.seed={seed}"])
        raw = tasks.load(cfg.task, cfg.data, seed=seed)
        ds, info = transfer.build(cfg, raw["train"], tokenizer, 64)
        assert info["rows_given"] == {"rest": 67349 - 40} and info["rows"] == {"rest": 50} and info["total"] == 50
        assert info["seed"] == 3
        used = tokenizer([*raw["train"]["sentence1"], *raw["holdout"]["sentence1"]], truncation=True, max_length=64)
        assert len(ds) == 50 and not {tuple(x) for x in ds["input_ids"]} & {tuple(x) for x in used["input_ids"]}
        got[seed] = ds["input_ids"]
    assert got[1] == got[2]  # train.seed moves initialisation and order, not the transfer rows
    with pytest.raises(ConfigError, match="no row is left"):
        cfg = compose([*base[:4], "distill.transfer.sources=[rest]"])  # every row trained on
        transfer.build(cfg, tasks.load(cfg.task, cfg.data)["train"], tokenizer, 64)


def test_transfer_rows_with_the_words_of_a_scored_row_are_dropped_and_a_source_left_empty_is_refused(
    glue_dir, tmp_path
):
    """A transfer file that is the dev file (or holds some of its sentences) taught the student the teacher's
    answer on the very rows it is scored on; a source that gives nothing ran plain distillation under its name."""
    from transformers import AutoTokenizer

    from bench.models import VOCAB_PACKAGE, package_dir

    tokenizer = AutoTokenizer.from_pretrained(str(package_dir(VOCAB_PACKAGE)))
    train_lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()
    dev_lines = (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()
    mixed = tmp_path / "mixed.tsv"
    # 10 training sentences, 5 dev ones (one re-spaced and in capitals: the same words)
    shouted = dev_lines[5].split("\t")[0].upper().replace(" ", "  ") + "\t1"
    mixed.write_text("\n".join([train_lines[0], *train_lines[1:11], *dev_lines[1:5], shouted]) + "\n")
    base = ["task=sst2", "mode=distill", "distill.teacher=x", f"data.dir={glue_dir}", "data.max_train_samples=40"]
    cfg = compose([*base, "distill.transfer.sources=[file]", f"distill.transfer.file={mixed}"])
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed)
    ds, info = transfer.build(cfg, raw["train"], tokenizer, 64, [raw["validation"]])
    assert info["rows"] == {"file": 10} and info["dropped_as_scored"] == {"file": 5}
    dev_ids = {
        tuple(x) for x in tokenizer(list(raw["validation"]["sentence1"]), truncation=True, max_length=64)["input_ids"]
    }
    assert not {tuple(x) for x in ds["input_ids"]} & dev_ids
    assert transfer.build(cfg, raw["train"], tokenizer, 64)[1]["rows"] == {"file": 15}  # nothing held out: kept
    dev = compose([*base, "distill.transfer.sources=[file]", f"distill.transfer.file={glue_dir / 'SST-2' / 'dev.tsv'}"])
    with pytest.raises(ConfigError, match=r"`file`, but it gives no transfer rows \(872 were rows of the scored"):
        transfer.build(dev, raw["train"], tokenizer, 64, [raw["validation"]])
    pytest.importorskip("nlpaug")
    from datasets import Dataset

    words = Dataset.from_dict({"sentence1": ["ok", "fine", "good"], "label": [1, 1, 1]})
    swap = compose([*base, "distill.transfer.sources=[augment]", "distill.transfer.augment.ops=[word_swap]"])
    with pytest.raises(ConfigError, match=r"`augment`, but it gives no transfer rows$"):
        transfer.build(swap, words, tokenizer, 64)  # one word cannot be swapped: every copy is the row itself


def test_multiple_choice_distillation_refuses_a_transfer_set(tmp_path):
    cfg = compose(
        [
            "task=copa",
            "mode=distill",
            "+distill=prediction",
            f"distill.teacher={tmp_path}",
            "distill.transfer.sources=[augment]",
        ],
        out_dir=str(tmp_path / "run"),
    )
    from bench.distill import choice

    with pytest.raises(ConfigError, match="multiple choice: its distillation learns from the labelled rows only"):
        choice.run(cfg)


@pytest.mark.slow
def test_distillation_with_the_rest_of_sst2_records_its_rows_cache_and_memory(teachers, tmp_path):
    """A tiny two-stage run on real SST-2 rows with 60 rows of the rest of the training file: the intermediate
    stage trains on labelled and transfer rows, the gold-label prediction stage on the labelled rows only."""
    cfg = compose(
        [
            *tiny("bert"),
            "task=sst2",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            f"distill.teacher={teachers['sst2']}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "distill.intermediate.epochs=1",
            "distill.prediction.epochs=1",
            "distill.weights.soft=0",
            "distill.weights.hard=1",
            "distill.measure_latency=false",
            "distill.transfer.sources=[rest]",
            "distill.transfer.max_rows=60",
        ],
        out_dir=str(tmp_path / "run"),
    )
    result = run(cfg)
    d = result.train["distill"]
    t = d["transfer"]
    assert t["sources"] == ["rest"] and t["max_rows"] == 60 and t["rows_given"] == {"rest": 67349 - 48}
    assert t["rows"] == {"rest": 60} and t["total"] == 60 and "augment" not in t
    first, second = result.train["stages"]
    assert first["examples"] == 48 + 60 and second["examples"] == 48 and result.train["examples"] == 48
    c = d["teacher_cache"]
    assert c["rows"] == 108 and c["bytes"] > 108 * cache.bytes_per_row(3, 3, 32, 2, 2, 2) and not c["reused"]
    assert 100 < d["peak_memory_mb"] < 24 * 1024 and d["peak_memory_scope"] == "run"
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["train"]["distill"]["transfer"]["rows"] == {"rest": 60}


def test_prediction_distillation_with_augmented_pairs_records_each_sources_rows(teachers, tmp_path):
    """RTE pairs with 2 augmented copies per row (the offline augmenter): the soft stage trains on both kinds of row
    and the result says how many rows each source gave."""
    pytest.importorskip("nlpaug")
    cfg = compose(
        [
            *tiny("bert"),
            "task=rte",
            "mode=distill",
            f"data.dir={GLUE_DIR}",
            *QUICK,
            f"distill.teacher={teachers['rte']}",
            f"distill.cache_dir={tmp_path / 'cache'}",
            f"bench.resume_dir={tmp_path}",
            "+distill=prediction",
            "distill.prediction.epochs=1",
            "distill.measure_latency=false",
            "distill.transfer.sources=[augment]",
            "distill.transfer.augment.per_row=2",
        ],
        out_dir=str(tmp_path / "run"),
    )
    result = run(cfg)
    t = result.train["distill"]["transfer"]
    assert 80 <= t["rows"]["augment"] == t["rows_given"]["augment"] == t["total"] <= 96
    assert t["augment"]["per_row"] == 2 and t["augment"]["augmenter"].startswith("nlpaug 1.")
    (stage,) = result.train["stages"]
    assert stage["examples"] == 48 + t["total"] == result.train["distill"]["teacher_cache"]["rows"]
    assert result.train["examples"] == 48 and result.status == "ok"
