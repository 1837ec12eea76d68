"""The perturbation set inv-v2: v1 with two faults fixed. Contractions are written as the dataset writes its own
(SST-2 "does n't", MRPC "doesn 't", the rest "doesn't"), and a place is swapped only where nothing else in the
example ties it to the one named (another listed place, a listed country's adjective). inv-v1's texts stay as
they were (tests/test_robustness.py pins them)."""

from __future__ import annotations

import re

import pytest
from conftest import GLUE_DIR

from bench.config import compose
from bench.errors import ConfigError
from bench.robustness import perturb


def _p(name, set_name="inv-v2"):
    return next(p for p in perturb.SETS[set_name] if p.name == name)


@pytest.mark.parametrize(
    "style, made",
    [
        ("attached", "it doesn't work , and it's late ."),
        ("ptb", "it does n't work , and it 's late ."),
        ("split_apostrophe", "it doesn 't work , and it 's late ."),
    ],
)
def test_contractions_are_made_in_the_datasets_own_style(style, made):
    text = ["it does not work , and it is late ."]
    assert perturb.apply(_p("contractions_make"), text, "inv-v2", 0, 1, style) == [made]
    # v1 decided per row: a tokenised row without a contraction got the attached form
    assert perturb.apply(_p("contractions_make", "inv-v1"), text, "inv-v1", 0, 1) == [
        "it doesn't work , and it's late ."
    ]


@pytest.mark.parametrize("written", ["doesn't", "does n't", "doesn 't"])
def test_contractions_are_expanded_in_every_style(written):
    expand = _p("contractions_expand")
    assert perturb.apply(expand, [f"He {written} care ."], "inv-v2", 0, 0) == ["He does not care ."]
    assert perturb.apply(expand, ["They wo n't and ca n't ."], "inv-v2", 0, 0) == ["They will not and can not ."]
    assert perturb.apply(expand, ["They won 't ."], "inv-v2", 0, 0) == ["They will not ."]


def test_a_place_is_swapped_only_where_nothing_ties_it_to_another():
    places = _p("place_names")
    tied = [
        ["The southern Indian city of Madras lies in south India.", "Madras is in India."],  # the adjective
        ["Ministers flew to Atlanta for an EU-Chile summit.", "The summit was in Atlanta."],  # two places
    ]
    for texts in tied:
        assert perturb.apply(places, texts, "inv-v2", 0, 3) == texts
        assert perturb.apply(_p("place_names", "inv-v1"), texts, "inv-v1", 0, 3) != texts  # v1 swapped them
    a, b = perturb.apply(places, ["The summit was held in Lisbon.", "Lisbon hosted it."], "inv-v2", 0, 3)
    new = a.split()[-1].rstrip(".")
    assert new in perturb.CITIES and new != "Lisbon" and b == f"{new} hosted it."


def test_each_task_has_its_style_and_a_wrong_one_is_refused():
    rc = compose(["model=minilm_l6", "task=sst2", "mode=robustness"]).robustness
    assert rc.perturbations == "inv-v2" and rc.contraction_style == {"sst2": "ptb", "mrpc": "split_apostrophe"}
    with pytest.raises(ConfigError, match="robustness.contraction_style.rte"):
        compose(["model=minilm_l6", "task=rte", "mode=robustness", "+robustness.contraction_style.rte=spaced"])


@pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"real GLUE data not present at {GLUE_DIR}")
def test_on_the_real_dev_sets_no_form_the_dataset_never_uses_is_written():
    """SST-2 has no attached contraction and MRPC none but its own: inv-v2 writes none either; RTE's place swaps
    leave no listed country's adjective beside a swapped place (v1: 10 of its 46 changed rows)."""
    from conftest import load_task

    attached = re.compile(r"[a-z]n't\b|[a-z]'s\b", re.IGNORECASE)
    for task, style in (("sst2", "ptb"), ("mrpc", "split_apostrophe")):
        ds = load_task(task, GLUE_DIR, need_train=False)["validation"]
        cols = [c for c in ("sentence", "sentence1", "sentence2") if c in ds.column_names]
        rows = list(zip(*(ds[c] for c in cols)))
        made = [perturb.apply(_p("contractions_make"), r, "inv-v2", 0, i, style) for i, r in enumerate(rows)]
        changed = [m for m, r in zip(made, rows) if list(r) != m]
        assert len(changed) > 20 and not any(attached.search(t) for m in changed for t in m), task
    ds = load_task("rte", GLUE_DIR, need_train=False)["validation"]
    rows = list(zip(ds["sentence1"], ds["sentence2"]))
    swapped = [r for i, r in enumerate(rows) if perturb.apply(_p("place_names"), r, "inv-v2", 0, i) != list(r)]
    assert swapped and not any(perturb._DEMONYM.search(" ".join(r)) for r in swapped)
