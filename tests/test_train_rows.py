"""data.sample_seed and data.holdout: which training rows a run uses, the holdout it keeps back, and the rest."""

from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict

from bench import tasks
from bench.config import DataConfig
from bench.errors import ConfigError


def toy(n: int = 50) -> DatasetDict:
    return DatasetDict(
        {
            "train": Dataset.from_dict({"idx": list(range(n)), "label": [i % 2 for i in range(n)]}),
            "validation": Dataset.from_dict({"idx": list(range(7)), "label": [0] * 7}),
        }
    )


def test_the_capped_subset_is_the_one_datasets_shuffle_draws():
    """The rows a seed drew before sample_seed existed are the rows it draws now (old results stay comparable)."""
    dd = toy()
    expected = dd["train"].shuffle(seed=3).select(range(20))["idx"]
    assert tasks.cap(dd, DataConfig(max_train_samples=20), seed=3)["train"]["idx"] == expected


def test_sample_seed_fixes_the_rows_whatever_the_run_seed():
    dd = toy()
    a = tasks.cap(dd, DataConfig(max_train_samples=20, sample_seed=7), seed=1)["train"]["idx"]
    b = tasks.cap(dd, DataConfig(max_train_samples=20, sample_seed=7), seed=2)["train"]["idx"]
    c = tasks.cap(dd, DataConfig(max_train_samples=20), seed=2)["train"]["idx"]
    assert a == b and a != c


def test_holdout_is_taken_out_of_the_labelled_rows_and_disjoint():
    dd = toy()
    data = DataConfig(max_train_samples=20, holdout=5, sample_seed=0)
    out = tasks.cap(dd, data, seed=9)
    train, held = set(out["train"]["idx"]), set(out[tasks.HOLDOUT]["idx"])
    whole = set(tasks.cap(dd, DataConfig(max_train_samples=20, sample_seed=0), seed=9)["train"]["idx"])
    assert len(train) == 15 and len(held) == 5 and not train & held and train | held == whole
    rows = tasks.train_rows(50, data, seed=9)
    assert sorted(rows.labelled + rows.holdout + rows.rest) == list(range(50)) and len(rows.rest) == 30
    assert out["validation"]["idx"] == list(range(7))  # eval splits untouched


def test_holdout_without_a_cap_and_too_large_a_holdout():
    rows = tasks.train_rows(10, DataConfig(holdout=3), seed=0)
    assert len(rows.labelled) == 7 and len(rows.holdout) == 3 and rows.rest == []
    with pytest.raises(ConfigError, match="data.holdout=10 leaves no training rows"):
        tasks.train_rows(10, DataConfig(holdout=10), seed=0)


def test_training_rows_whose_text_is_a_held_out_rows_leave_train():
    """A training file repeats some examples (SST-2: 371 repeated phrases): a twin of a held-out row left in train
    made the holdout score memory, favouring the settings that memorise. Twins differ in case and spacing here
    only: the check folds them itself, not through the code under test."""
    texts = ["a good film", "A  good Film", "dull", "fine", " Dull", "great", "bad", "ok", "meh", "FINE "]
    fold = lambda t: " ".join(t.split()).lower()  # noqa: E731
    dd = DatasetDict({"train": Dataset.from_dict({"sentence1": texts, "label": [1, 1, 0, 1, 0, 1, 0, 1, 0, 1]})})
    dropped = []
    for seed in range(20):
        out = tasks.cap(dd, DataConfig(holdout=3, sample_seed=seed), seed=0)
        held = {fold(t) for t in out[tasks.HOLDOUT]["sentence1"]}
        train = [fold(t) for t in out["train"]["sentence1"]]
        rows = tasks.train_rows(len(texts), DataConfig(holdout=3, sample_seed=seed), seed=0)
        twins = sum(fold(texts[i]) in held for i in rows.labelled)
        assert not held & set(train) and len(out[tasks.HOLDOUT]) == 3
        assert out.holdout_twins_dropped == twins and len(train) == 7 - twins
        dropped.append(twins)
    assert max(dropped) >= 1  # some draws do hold out one of a pair


def test_holdout_twins_on_real_sst2(glue_dir):
    from conftest import load_task

    dd = load_task("sst2", glue_dir)  # no holdout: every row, twins included
    out = tasks.cap(dd, DataConfig(holdout=2000, sample_seed=0), seed=0)
    held, train = set(tasks.text_keys(out[tasks.HOLDOUT])), tasks.text_keys(out["train"])
    assert out.holdout_twins_dropped > 0 and not held & set(train)
    assert len(train) + out.holdout_twins_dropped + 2000 == len(dd["train"])
