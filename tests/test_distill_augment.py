"""The transfer set's augmenters (offline word operations, a masked LM): seeded, one column changed, proposals kept."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from bench.distill import augment
from bench.distill_config import AugmentConfig
from bench.errors import ConfigError


def test_offline_augmenter_is_seeded_keeps_global_state_and_changes_one_column():
    pytest.importorskip("nlpaug")
    rows = [["the movie was a charming and often affecting journey"], ["a dull , witless and overlong mess"]]
    cfg = AugmentConfig(per_row=6)
    random.seed(5)
    np.random.seed(5)
    state = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    first = augment.augment(rows, cfg, 42)
    assert (random.random(), np.random.random()) == state  # nlpaug's global draws are put back
    assert first == augment.augment(rows, cfg, 42) != augment.augment(rows, cfg, 43)
    assert all(len(copies) >= 4 and all(c != row for c in copies) for row, copies in zip(rows, first))
    swap = augment.augment(rows[:1], AugmentConfig(per_row=1, ops=["word_swap"]), 0)[0][0][0]
    assert sorted(swap.lower().split()) == sorted(rows[0][0].split()) and swap.lower() != rows[0][0]
    delete = augment.augment(rows[:1], AugmentConfig(per_row=1, ops=["word_delete"]), 0)[0][0][0]
    assert set(delete.lower().split()) < set(rows[0][0].split())
    typo = augment.augment(rows[:1], AugmentConfig(per_row=1, ops=["keyboard"]), 0)[0][0][0]
    assert len(typo.split()) == len(rows[0][0].split()) and typo != rows[0][0]
    pair = [["the cat sat on the mat today", "a cat was sitting on the mat"]]
    copies = augment.augment(pair, AugmentConfig(per_row=4), 1)[0]
    assert [c[1] == pair[0][1] for c in copies] == [True, False, True, False]  # columns take turns
    assert [c[0] == pair[0][0] for c in copies] == [False, True, False, True]


def test_masked_lm_augmenter_replaces_content_words_by_the_models_proposals(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from bench.models import VOCAB_PACKAGE, package_dir

    tokenizer = AutoTokenizer.from_pretrained(str(package_dir(VOCAB_PACKAGE)))
    torch.manual_seed(0)
    mlm = BertForMaskedLM(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        )
    )
    favourites = ["river", "apple", "##ing", "[SEP]", "orange"]  # what this model proposes at every mask
    with torch.no_grad():
        mlm.cls.predictions.bias[tokenizer.convert_tokens_to_ids(favourites)] = 1000.0
    mlm.save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    text = "the charming movie is an unbelievably delightful trip"
    cfg = AugmentConfig(model=str(tmp_path / "mlm"), per_row=8, top_k=5, probability=0.5)
    lm = augment.MaskedLM(cfg)
    found = lm.candidates(text)
    words = text.split()
    # content words of one piece only: stop words ("the", "is", "an") and multi-piece words are left alone
    single = {i for i, w in enumerate(words) if len(tokenizer.tokenize(w)) == 1 and w not in ("the", "is", "an")}
    assert set(found) == single and "unbelievably" not in [words[i] for i in found]
    assert all(sorted(c) == ["apple", "orange", "river"] for c in found.values())  # no pieces, no special tokens
    copies = augment.augment([[text]], cfg, 7)[0]
    assert copies == augment.augment([[text]], cfg, 7)[0] and len(copies) >= 4
    for (copy,) in copies:
        new = copy.split()
        assert len(new) == len(words)
        for i, (a, b) in enumerate(zip(words, new)):
            assert a == b or (i in found and b in {"river", "apple", "orange"})
    with pytest.raises(ConfigError, match="cannot load a masked LM"):
        augment.MaskedLM(AugmentConfig(model=str(tmp_path / "nothing")))


def test_a_masked_lm_the_hub_cannot_give_says_how_to_do_without_it(monkeypatch):
    """The augmenter's model loaded outside the Hub wrapper: no Hub ended in 'cannot load a masked LM' with no
    way forward. The network failure (as transformers words it) now names the local and model-free options."""
    import transformers

    from bench.errors import HubUnreachableError

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(HubUnreachableError, match=r"augment.model=DIR .*model-free augmenter"):
        augment.MaskedLM(AugmentConfig(model="bert-base-uncased"))
