"""Named, versioned sets of meaning-preserving perturbations (CheckList's INV tests, Ribeiro et al. 2020).

Each perturbation takes all the texts of one example (one sentence, or a pair) and returns them changed, or
unchanged where it finds nothing to act on. Pairs are changed consistently: a word given a typo, a contraction,
a name or a place is changed the same way in both sentences, so an entailment stays an entailment. Randomness
comes from a `random.Random` seeded by (set, perturbation, seed, example index) alone, so a perturbed text never
depends on the other examples, the run order or PYTHONHASHSEED.

A set's texts must never change under its name: change a function or a list, and add a new version (inv-v2).
Library transformations were tried and left (docs/robustness.md): checklist does not build here, textattack
would change installed versions, nlpaug draws from the global random state and cannot change a pair consistently.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

from .word_lists import CITIES, COUNTRIES, DEMONYMS, FEMALE, MALE

Texts = List[str]

# US QWERTY neighbours (same row and the rows above/below), lower case
_KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _adjacent() -> Dict[str, str]:
    out: Dict[str, str] = {}
    for r, row in enumerate(_KEYS):
        for c, ch in enumerate(row):
            near = [row[c - 1] if c else "", row[c + 1] if c + 1 < len(row) else ""]
            for rr in (r - 1, r + 1):
                if 0 <= rr < len(_KEYS):
                    near += [_KEYS[rr][cc] for cc in (c - 1, c, c + 1) if 0 <= cc < len(_KEYS[rr])]
            out[ch] = "".join(n for n in near if n)
    return out


ADJACENT = _adjacent()
_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


def _same_case(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _replace_word(texts: Texts, word: str, new: str) -> Texts:
    """Every whole-word occurrence of `word` (any case) in every text, replaced keeping each one's case."""
    pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
    return [pattern.sub(lambda m: _same_case(new, m.group(0)), t) for t in texts]


def _pick_word(texts: Texts, rng: random.Random) -> str:
    """A word of 4+ letters from the first text that has one ('' when none has)."""
    for t in texts:
        words = sorted({w.lower() for w in _WORD.findall(t)})
        if words:
            return rng.choice(words)
    return ""


def _edit_one_char(texts: Texts, rng: random.Random, edit: Callable[[str, int, random.Random], str]) -> Texts:
    word = _pick_word(texts, rng)
    if not word:
        return list(texts)
    i = rng.randrange(1, len(word) - 1)  # an inner letter: the word stays recognisable
    return _replace_word(texts, word, edit(word, i, rng))


def typo(texts: Texts, rng: random.Random) -> Texts:
    """One inner letter of one word replaced by a neighbouring key (in every occurrence of that word)."""
    return _edit_one_char(texts, rng, lambda w, i, r: w[:i] + r.choice(ADJACENT[w[i]]) + w[i + 1 :])


def char_drop(texts: Texts, rng: random.Random) -> Texts:
    """One inner letter of one word dropped."""
    return _edit_one_char(texts, rng, lambda w, i, r: w[:i] + w[i + 1 :])


def char_double(texts: Texts, rng: random.Random) -> Texts:
    """One inner letter of one word doubled."""
    return _edit_one_char(texts, rng, lambda w, i, r: w[:i] + w[i] + w[i:])


# (expanded, stem, suffix): "does not" <-> "doesn't", written "does n't" in tokenised text (SST-2).
# Only unambiguous ones are expanded ("'s" and "'d" are not: is/has, would/had); some are only made.
_CONTRACTIONS = [
    (f"{w} not", w, "n't")
    for w in ("do", "does", "did", "is", "are", "was", "were", "have", "has", "had", "could", "would", "should")
]
_CONTRACTIONS += [("can not", "ca", "n't"), ("will not", "wo", "n't"), ("i am", "i", "'m")]
_CONTRACTIONS += [(f"{p} are", p, "'re") for p in ("you", "we", "they")]
_CONTRACTIONS += [(f"{p} have", p, "'ve") for p in ("i", "you", "we", "they")]
_CONTRACTIONS += [(f"{p} will", p, "'ll") for p in ("i", "you", "we", "they")]
_MADE_ONLY = [(f"{p} is", p, "'s") for p in ("it", "that", "there", "what")]
_TOKENISED = re.compile(r"\w (n't|'s|'re|'m|'ll|'ve|'d)\b", re.IGNORECASE)


def _sub_all(texts: Texts, pattern: str, make: Callable[[re.Match], str]) -> Texts:
    rx = re.compile(pattern, re.IGNORECASE)
    return [rx.sub(make, t) for t in texts]


def contractions_expand(texts: Texts, rng: random.Random) -> Texts:
    """ "doesn't" / "does n't" -> "does not" (and the other unambiguous contractions), everywhere in the example."""
    for full, stem, suffix in _CONTRACTIONS:
        head, tail = full.split(" ")
        texts = _sub_all(
            texts,
            rf"\b{stem} ?{re.escape(suffix)}(?![\w'])",
            lambda m, h=head, t=tail: f"{_same_case(h, m.group(0))} {t}",
        )
    return texts


def contractions_make(texts: Texts, rng: random.Random) -> Texts:
    """ "does not" -> "doesn't" ("does n't" where the text is tokenised that way), everywhere in the example."""
    spaced = any(_TOKENISED.search(t) for t in texts)
    for full, stem, suffix in _CONTRACTIONS + _MADE_ONLY:
        head, tail = full.split(" ")
        texts = _sub_all(
            texts,
            rf"\b{head} {tail}\b",
            lambda m, s=stem, x=suffix: _same_case(s, m.group(0)) + (" " if spaced else "") + x,
        )
    return texts


# inv-v2: how a dataset writes contractions, decided per task (robustness.contraction_style), not per row: v1
# wrote "doesn't" into SST-2 rows that had no contraction yet, a form that never occurs in SST-2, so its flip rate
# mixed the contraction with a tokenisation the model never saw; MRPC splits at the apostrophe ("doesn 't").
CONTRACTION_STYLES = {
    "attached": lambda stem, suffix: stem + suffix,  # doesn't, it's (RTE, CoLA, STS-B, MNLI, ...)
    "ptb": lambda stem, suffix: f"{stem} {suffix}",  # does n't, it 's (Penn Treebank tokens: SST-2)
    "split_apostrophe": lambda stem, suffix: (stem + suffix).replace("'", " '"),  # doesn 't, it 's (MRPC)
}


def _contracted(stem: str, suffix: str) -> str:
    """A regex for a contraction in any of the styles."""
    forms = sorted({write(stem, suffix) for write in CONTRACTION_STYLES.values()}, key=len, reverse=True)
    return r"\b(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w'])"


def contractions_expand_v2(texts: Texts, rng: random.Random, style: str = "attached") -> Texts:
    """ "doesn't" / "does n't" / "doesn 't" -> "does not" (the unambiguous ones), whatever the dataset's style."""
    for full, stem, suffix in _CONTRACTIONS:
        head, tail = full.split(" ")
        texts = _sub_all(texts, _contracted(stem, suffix), lambda m, h=head, t=tail: f"{_same_case(h, m.group(0))} {t}")
    return texts


def contractions_make_v2(texts: Texts, rng: random.Random, style: str = "attached") -> Texts:
    """ "does not" -> the contraction written as the dataset writes its own (`style`: CONTRACTION_STYLES)."""
    write = CONTRACTION_STYLES[style]
    for full, stem, suffix in _CONTRACTIONS + _MADE_ONLY:
        head, tail = full.split(" ")
        texts = _sub_all(texts, rf"\b{head} {tail}\b", lambda m, s=stem, x=suffix: write(_same_case(s, m.group(0)), x))
    return texts


def _swap_from(lists: Sequence[List[str]], texts: Texts, rng: random.Random) -> Texts:
    """Each listed name found in the example replaced by another of its own list, the same one everywhere."""
    joined = " ".join(texts)
    for names in lists:
        found = [n for n in names if re.search(rf"\b{n}\b", joined, re.IGNORECASE)]
        spare = [n for n in names if n not in found]
        for name in found:
            new = spare.pop(rng.randrange(len(spare)))
            # a name found lower case (SST-2 is lower-cased) is written lower case
            texts = [
                re.sub(
                    rf"\b{name}\b",
                    lambda m, nw=new: nw if m.group(0)[:1].isupper() else nw.lower(),
                    t,
                    flags=re.IGNORECASE,
                )
                for t in texts
            ]
    return texts


def person_names(texts: Texts, rng: random.Random) -> Texts:
    """First names from fixed lists swapped for others of the same list (pronouns stay right)."""
    return _swap_from([MALE, FEMALE], texts, rng)


def place_names(texts: Texts, rng: random.Random) -> Texts:
    """Cities and countries from fixed lists swapped for others of the same list."""
    return _swap_from([CITIES, COUNTRIES], texts, rng)


_DEMONYM = re.compile(r"\b(?:" + "|".join(DEMONYMS.values()) + r")\b", re.IGNORECASE)


def place_names_v2(texts: Texts, rng: random.Random) -> Texts:
    """One city or country from the fixed lists swapped for another of its list, only where the example names
    exactly one listed place and no listed country's adjective: v1 swapped "India" in "south India" beside
    "the southern Indian city of Madras", and a city apart from the country it is in, which can change an
    entailment (RTE)."""
    joined = " ".join(texts)
    places = [n for n in CITIES + COUNTRIES if re.search(rf"\b{n}\b", joined, re.IGNORECASE)]
    if len(places) != 1 or _DEMONYM.search(joined):
        return list(texts)
    return _swap_from([CITIES, COUNTRIES], texts, rng)


def final_period(texts: Texts, rng: random.Random) -> Texts:
    """The full stop that ends a text dropped."""
    return [re.sub(r"\s*\.\s*$", "", t) if re.search(r"[^.]\s*\.\s*$", t) else t for t in texts]


def punct_spacing(texts: Texts, rng: random.Random) -> Texts:
    """The space before , . ; : ! ? removed where the text has one ("a , b" -> "a, b"), else added."""
    if any(re.search(r"\w \s*[,.;:!?]", t) for t in texts):
        return [re.sub(r"(\w) +([,.;:!?])", r"\1\2", t) for t in texts]
    return [re.sub(r"(\w)([,.;:!?])", r"\1 \2", t) for t in texts]


def identity(texts: Texts, rng: random.Random) -> Texts:
    """The control: the texts as they are, scored a second time (any flip is the scoring's, not the text's)."""
    return list(texts)


@dataclass(frozen=True)
class Perturbation:
    name: str
    fn: Callable[[Texts, random.Random], Texts]
    control: bool = False  # applies to every example by definition: its flip rate is over all of them
    styled: bool = False  # takes the dataset's contraction style (apply's `style`)


SETS: Dict[str, List[Perturbation]] = {
    "none": [],  # no text perturbation (a multiple-choice run of the choice orders only)
    "inv-v1": [
        Perturbation("identity", identity, control=True),
        Perturbation("typo", typo),
        Perturbation("char_drop", char_drop),
        Perturbation("char_double", char_double),
        Perturbation("contractions_expand", contractions_expand),
        Perturbation("contractions_make", contractions_make),
        Perturbation("person_names", person_names),
        Perturbation("place_names", place_names),
        Perturbation("final_period", final_period),
        Perturbation("punct_spacing", punct_spacing),
    ],
    # v1 with its two known faults fixed (docs/robustness.md): contractions in the dataset's own style, and
    # places swapped only where no other listed place or adjective ties the text to the one swapped
    "inv-v2": [
        Perturbation("identity", identity, control=True),
        Perturbation("typo", typo),
        Perturbation("char_drop", char_drop),
        Perturbation("char_double", char_double),
        Perturbation("contractions_expand", contractions_expand_v2, styled=True),
        Perturbation("contractions_make", contractions_make_v2, styled=True),
        Perturbation("person_names", person_names),
        Perturbation("place_names", place_names_v2),
        Perturbation("final_period", final_period),
        Perturbation("punct_spacing", punct_spacing),
    ],
}


def get(set_name: str, only: Sequence[str] = ()) -> List[Perturbation]:
    if set_name not in SETS:
        from ..errors import ConfigError

        raise ConfigError(f"robustness.perturbations={set_name!r} is not one of {sorted(SETS)}")
    chosen = [p for p in SETS[set_name] if not only or p.name in only]
    unknown = sorted(set(only) - {p.name for p in SETS[set_name]})
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(
            f"robustness.only: {unknown} not in set {set_name} (it has {[p.name for p in SETS[set_name]]})"
        )
    return chosen


def apply(p: Perturbation, texts: Sequence[str], set_name: str, seed: int, idx: int, style: str = "attached") -> Texts:
    """One example's texts under `p`, deterministic in (set, perturbation, seed, example index) and, for a styled
    perturbation, the dataset's contraction style."""
    rng = random.Random(f"{set_name}:{p.name}:{seed}:{idx}")
    return p.fn(list(texts), rng, style) if p.styled else p.fn(list(texts), rng)
