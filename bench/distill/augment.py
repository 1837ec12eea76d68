"""Augmented copies of the labelled rows (distill.transfer.augment): the teacher labels them, the student learns.

Two augmenters, both deterministic for a seed, row and copy, whatever the run order or the global random state:

- `masked_lm` (augment.model names a masked LM, Hub id or local folder): TinyBERT's `data_augmentation.py`. Each
  word of one word piece that is not a stop word is masked, and the model, reading the masked sentence followed by
  the original one, proposes its top_k pieces; every copy replaces each such word, with probability p, by one of
  its proposals (drawn uniformly). TinyBERT takes GloVe neighbours for words of several pieces; no word vectors
  are at hand offline, so those words are kept as they are.
- offline (augment.model null): nlpaug's random operations, which need no download (its WordNet and embedding
  augmenters do): `word_swap` (swap adjacent words), `word_delete`, `keyboard` (typos from neighbouring keys,
  letters only) and `char_swap` (swap letters inside words); copy j of a row uses ops[j % len(ops)].

A copy changes one text column, the columns taking turns (TinyBERT augments each column of a pair on its own,
the other kept); copies equal to the original or to an earlier copy are dropped, so a row may give fewer than
per_row.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
from typing import Dict, Iterator, List, Sequence

import numpy as np

from ..distill_config import AugmentConfig
from ..errors import ConfigError

_WORDS = re.compile(r"\w+|[^\w\s]")


def row_seed(*parts) -> int:
    """A 32-bit seed from (seed, row, copy, ...) alone: a copy never depends on the other rows or the run order."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """nlpaug draws from the global `random` and numpy states: seed them for one call, then put them back."""
    py, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def nlpaug_ops(cfg: AugmentConfig) -> Dict[str, object]:
    try:
        import nlpaug.augmenter.char as nac
        import nlpaug.augmenter.word as naw
    except ImportError:
        raise ConfigError(
            "distill.transfer.augment without a model uses nlpaug: pip install -e '.[offline]' "
            "(or give distill.transfer.augment.model=MASKED_LM)"
        ) from None
    p = cfg.resolved_probability
    make = {
        "word_swap": lambda: naw.RandomWordAug(action="swap", aug_p=p),
        "word_delete": lambda: naw.RandomWordAug(action="delete", aug_p=p),
        "keyboard": lambda: nac.KeyboardAug(
            aug_word_p=p, aug_char_max=1, include_special_char=False, include_numeric=False, include_upper_case=False
        ),
        "char_swap": lambda: nac.RandomCharAug(action="swap", aug_word_p=p, aug_char_max=1),
    }
    return {op: make[op]() for op in cfg.ops}


def _key(row: Sequence[str]) -> tuple:
    """A row as its words: copies that differ only in spacing are the same copy."""
    return tuple(" ".join(_WORDS.findall(t.lower())) for t in row)


def _one(out) -> str:
    return out[0] if isinstance(out, list) else out  # nlpaug 1.1.11 returns a list


def offline(texts: Sequence[Sequence[str]], cfg: AugmentConfig, seed: int) -> List[List[str]]:
    """Up to per_row changed copies of each row (a row is its text columns), by nlpaug's operations."""
    ops = nlpaug_ops(cfg)
    names = list(cfg.ops)
    out = []
    for r, row in enumerate(texts):
        copies, seen = [], {_key(row)}
        for j in range(cfg.per_row):
            col, op = j % len(row), names[j % len(names)]
            with seeded(row_seed(seed, r, j)):
                new = _one(ops[op].augment(row[col]))
            changed = [*row[:col], new, *row[col + 1 :]]
            if new and _key(changed) not in seen:
                seen.add(_key(changed))
                copies.append(changed)
        out.append(copies)
    return out


class MaskedLM:
    """TinyBERT's candidate words from a masked LM (see the module's docstring)."""

    def __init__(self, cfg: AugmentConfig):
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        from ..errors import BenchError, HubUnreachableError
        from ..tasks import hub

        hint = (
            "give distill.transfer.augment.model=DIR (a masked LM saved locally), or leave it null for the "
            "model-free augmenter"
        )
        what = f"the masked LM distill.transfer.augment.model={cfg.model}"
        try:
            self.tokenizer = hub.call(what, AutoTokenizer.from_pretrained, cfg.model, _hint=hint)
            self.model = hub.call(what, AutoModelForMaskedLM.from_pretrained, cfg.model, _hint=hint).eval()
        except HubUnreachableError:
            raise
        except BenchError as exc:
            raise ConfigError(f"distill.transfer.augment.model={cfg.model}: cannot load a masked LM ({exc})") from None
        self.cfg, self.stop = cfg, ENGLISH_STOP_WORDS
        self.limit = min(getattr(self.tokenizer, "model_max_length", 512), 512)

    def candidates(self, text: str) -> Dict[int, List[str]]:
        """Word index -> the model's proposals, for each single-piece, non-stop-word alphabetic word."""
        import torch

        tok = self.tokenizer
        words = _WORDS.findall(text)
        pieces = [tok.tokenize(w) for w in words]
        flat = [p for ps in pieces for p in ps]
        starts = np.cumsum([0] + [len(ps) for ps in pieces])
        spots = [i for i, w in enumerate(words) if w.isalpha() and w.lower() not in self.stop and len(pieces[i]) == 1]
        if not spots:
            return {}
        original = tok.convert_tokens_to_ids(flat)
        inputs, positions = [], []
        for i in spots:
            masked = list(original)
            masked[starts[i]] = tok.mask_token_id
            # TinyBERT's input: [CLS] masked sentence [SEP] original sentence [SEP]
            ids = [tok.cls_token_id, *masked, tok.sep_token_id, *original, tok.sep_token_id][: self.limit]
            inputs.append(ids)
            positions.append(1 + int(starts[i]))
        found: Dict[int, List[str]] = {}
        for b in range(0, len(inputs), self.cfg.batch_size):
            chunk, where = inputs[b : b + self.cfg.batch_size], positions[b : b + self.cfg.batch_size]
            width = max(len(x) for x in chunk)
            ids = torch.full((len(chunk), width), tok.pad_token_id)
            types = torch.zeros_like(ids)
            mask = torch.zeros_like(ids)
            for k, x in enumerate(chunk):
                ids[k, : len(x)], mask[k, : len(x)] = torch.tensor(x), 1
                types[k, len(flat) + 2 : len(x)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
            for k, pos in enumerate(where):
                top = logits[k, pos].topk(self.cfg.top_k).indices.tolist()
                words_k = [t for t in tok.convert_ids_to_tokens(top) if t.isalpha() and t not in tok.all_special_tokens]
                found[spots[b + k]] = words_k or [words[spots[b + k]]]
        return found


def masked_lm(texts: Sequence[Sequence[str]], cfg: AugmentConfig, seed: int) -> List[List[str]]:
    """Up to per_row copies of each row, words replaced by a masked LM's proposals (TinyBERT's manner)."""
    lm, p = MaskedLM(cfg), cfg.resolved_probability
    out = []
    for r, row in enumerate(texts):
        proposals = [lm.candidates(t) for t in row]
        copies, seen = [], {_key(row)}
        for j in range(cfg.per_row):
            col, rng = j % len(row), random.Random(row_seed(seed, r, j))
            new = _WORDS.findall(row[col])
            for i, cands in sorted(proposals[col].items()):
                pick = rng.choice(cands)
                if rng.random() < p:  # TinyBERT draws the word first, then whether to use it
                    new[i] = pick
            changed = [*row[:col], " ".join(new), *row[col + 1 :]]
            if _key(changed) not in seen:
                seen.add(_key(changed))
                copies.append(changed)
        out.append(copies)
    return out


def augment(texts: Sequence[Sequence[str]], cfg: AugmentConfig, seed: int) -> List[List[str]]:
    """Each row's augmented copies (lists of its text columns), by the augmenter the config names."""
    return masked_lm(texts, cfg, seed) if cfg.model else offline(texts, cfg, seed)
