"""AdvGLUE's adversarial dev rows: every key of the shared dev.json read with its task's columns and label order,
and a file, key or row of another shape refused by name (mode=robustness scores them: test_robustness.py)."""

import json

import pytest
from test_robustness import ADVGLUE

from bench.config import compose
from bench.errors import DataError
from bench.robustness import advglue


@pytest.mark.skipif(not ADVGLUE.is_file(), reason=f"AdvGLUE not present at {ADVGLUE}")
def test_advglue_every_key_is_read_with_its_task_columns():
    cfg = compose(["model=minilm_l6", "task=sst2", "mode=robustness"])
    task_of = {k: t for t, keys in cfg.robustness.advglue_keys.items() for k in keys}
    data = json.loads(ADVGLUE.read_text())
    assert set(data) == set(task_of)  # every key of the file has a task
    for key, rows in data.items():
        task = compose(["model=minilm_l6", f"task={task_of[key]}"]).task
        texts, labels = advglue.rows(task, key, str(ADVGLUE.parent))
        assert len(texts) == len(labels) == len(rows) > 0
        assert all(len(t) == len(task.hub.text_columns) and all(t) for t in texts)
        assert set(labels) <= set(range(len(task.labels))) and len(set(labels)) > 1
    assert advglue.hub_config("mnli-mm") == "adv_mnli_mismatched" and advglue.hub_config("rte") == "adv_rte"
    # the label order is the task's: RTE's first row (MSF "follows to deal casualties of violence" -> "Doctors
    # Without Borders is an international aid organization.") is an entailment, label 0
    rte = compose(["model=minilm_l6", "task=rte"]).task
    texts, labels = advglue.rows(rte, "rte", str(ADVGLUE.parent))
    assert texts[0][1] == "Doctors Without Borders is an international aid organization ."
    assert rte.labels[labels[0]] == "entailment"


def test_advglue_bad_input_names_file_and_key(tmp_path):
    task = compose(["model=minilm_l6", "task=rte"]).task
    with pytest.raises(DataError, match="no such file"):
        advglue.rows(task, "rte", str(tmp_path / "nope.json"))
    (tmp_path / "dev.json").write_text(json.dumps({"rte": [{"sentence1": "a", "label": 0}]}))
    with pytest.raises(DataError, match=r"row 0: no column\(s\) \['sentence2'\]"):
        advglue.rows(task, "rte", str(tmp_path))
    with pytest.raises(DataError, match="no key 'sst2'"):
        advglue.rows(task, "sst2", str(tmp_path))
    # a row that is not an object, or whose text is null, a list or empty, is refused by row, never scored as "None"
    good = {"sentence1": "a", "sentence2": "b", "label": 0}
    for bad, message in (
        (None, r"row 1: a NoneType, not an object"),
        ({**good, "sentence2": None}, r"row 1: \['sentence2'\] is not \(non-empty\) text"),
        ({**good, "sentence1": ["a", "b"], "sentence2": " "}, r"row 1: \['sentence1', 'sentence2'\] are not"),
    ):
        (tmp_path / "dev.json").write_text(json.dumps({"rte": [good, bad]}))
        with pytest.raises(DataError, match=message):
            advglue.rows(task, "rte", str(tmp_path))
