"""Task kinds are defined once (bench/kinds.py): every task file names one, and each kind's pieces resolve."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import ROOT

from bench import kinds, models
from bench.config import compose
from bench.errors import ConfigError

TASK_FILES = sorted(p.stem for p in (ROOT / "bench" / "conf" / "task").glob("*.yaml"))


@pytest.mark.parametrize("name", TASK_FILES)
def test_every_task_file_names_a_kind_whose_pieces_resolve(name):
    task = compose([f"task={name}"]).task
    kind = kinds.of(task)
    assert kind.name == task.kind
    local, hub = kind.load_readers()
    assert callable(local) and callable(hub)
    module, function = kind.pipeline.split(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert models.head_class(task).__name__ == kind.head


def test_heads_and_predictions_per_kind():
    mrpc, stsb, squad = (compose([f"task={t}"]).task for t in ("mrpc", "stsb", "squad_v1"))
    assert models.head_kwargs(mrpc) == {
        "num_labels": 2,
        "id2label": {0: "0", 1: "1"},
        "label2id": {"0": 0, "1": 1},
        "problem_type": "single_label_classification",
    }
    assert models.head_kwargs(stsb) == {"num_labels": 1, "problem_type": "regression"} and stsb.num_labels == 1
    assert models.head_kwargs(squad) == {}
    logits = np.array([[0.1, 0.9], [2.0, -1.0]])
    assert kinds.of(mrpc).predictions(logits).tolist() == [1, 0]
    assert kinds.of(stsb).predictions(np.array([[1.5], [3.0]])).tolist() == [1.5, 3.0]
    assert [k for k, kind in kinds.KINDS.items() if not kind.paired] == ["squad"]


def test_an_unknown_kind_lists_the_known_ones():
    known = r"\['classification', 'regression', 'squad', 'multiple_choice'\]"
    with pytest.raises(ConfigError, match=r"task.kind='ner' is not one of " + known):
        compose(["task=mrpc", "task.kind=ner"])


def test_a_classification_task_needs_two_labels():
    with pytest.raises(ConfigError, match="a classification task needs at least 2 labels"):
        compose(["task=mrpc", "task.labels=[yes]"])


def test_what_a_kind_allows_and_where_its_figures_go_come_from_the_kind(monkeypatch):
    """mode=distill's refusal and the report's GLUE/SQuAD split read the kind's fields, not task names: change the
    regression kind's fields and STS-B follows."""
    import dataclasses

    from bench.report import squad_tables, tables

    assert "stsb" in tables.glue_cells() and squad_tables.squad_tasks() == ["squad_v1", "squad_v2"]
    compose(["mode=distill", "distill.teacher=x", "task=stsb"])  # regression distils
    monkeypatch.setitem(
        kinds.KINDS, "regression", dataclasses.replace(kinds.KINDS["regression"], distillable=False, table="squad")
    )
    distils = r"covers task kinds \['classification', 'multiple_choice'\]"
    with pytest.raises(ConfigError, match=distils + r"; task stsb is of kind 'regression'"):
        compose(["mode=distill", "distill.teacher=x", "task=stsb"])
    assert "stsb" not in tables.glue_cells() and "stsb" in squad_tables.squad_tasks()
