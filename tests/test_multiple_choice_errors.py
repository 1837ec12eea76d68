"""Multiple-choice files that are not what their layout says: each a one-line error naming the file, the line
and the layout."""

from __future__ import annotations

import json

import pytest
from conftest import arc_row
from conftest import load_task as load
from conftest import write_lines as write

from bench.errors import DataError


@pytest.mark.parametrize(
    "line, match",
    [
        (
            '{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, '
            '"answerKey": "C"}',
            r"answerKey 'C' is not one of the choice labels \['A', 'B'\]",
        ),
        (
            '{"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}]}, "answerKey": "A"}',
            "expected at least 2 text choices",
        ),
        ('{"question": {"stem": "q"}, "answerKey": "A"}', r"missing question\.choices;"),
        ('{"question": {"choices": []}}', r"missing question\.stem, answerKey;"),
        ('{"question": "q", "answerKey": "A"}', r"missing question\.stem, question\.choices;"),
        (
            '{"question": {"stem": "q", "choices": "AB"}, "answerKey": "A"}',
            r"question\.choices is a JSON str \('AB'\), not a list of \{\"label\", \"text\"\} objects",
        ),
        (
            '{"question": {"stem": "q", "choices": [{"text": "a"}, {"text": "b"}]}, "answerKey": "A"}',
            "every choice needs a label and a text",
        ),
        ("not json", "not a JSON object"),
    ],
)
def test_malformed_arc_rows_name_file_line_and_layout(tmp_path, line, match):
    good = json.dumps(arc_row("q", ["a", "b"], ["A", "B"], "A"))
    write(tmp_path / "arc_easy", "ARC-Easy-Train.jsonl", [good])
    write(tmp_path / "arc_easy", "ARC-Easy-Dev.jsonl", [good, "", line])
    with pytest.raises(DataError, match=match) as exc:
        load("arc_easy", tmp_path)
    msg = str(exc.value)
    assert "ARC-Easy-Dev.jsonl, line 3:" in msg and "ARC / OpenBookQA / CommonsenseQA release layout" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "row, match",
    [
        (
            {"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0},
            "neither 'cause' nor 'effect'",
        ),
        (
            {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2},
            "gold answer 2 is not an index",
        ),
        ({"premise": "p", "choice1": "a", "question": "cause", "label": 0}, "missing choice2"),
    ],
)
def test_malformed_copa_rows(tmp_path, row, match):
    write(tmp_path / "copa", "train.jsonl", [row])
    write(tmp_path / "copa", "val.jsonl", [row])
    with pytest.raises(DataError, match=match) as exc:
        load("copa", tmp_path)
    assert "train.jsonl, line 1:" in str(exc.value) and "SuperGLUE COPA layout" in str(exc.value)


def test_piqa_label_file_errors(tmp_path):
    q = {"goal": "g", "sol1": "a", "sol2": "b"}
    write(tmp_path / "piqa", "train.jsonl", [q, q])
    write(tmp_path / "piqa", "valid.jsonl", [q])
    with pytest.raises(DataError, match=r"train-labels.lst: file not found .*PIQA release layout"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1"])
    with pytest.raises(DataError, match=r"train.jsonl: 2 questions but .*labels.lst holds 1 labels.*line 2 has no"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1", "0", "1"])
    with pytest.raises(DataError, match=r"holds 3 labels .*train-labels.lst, line 3 labels no question"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1", "2"])
    with pytest.raises(DataError, match=r"train-labels.lst, line 2: label '2' is not 0 or 1"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["1", "0"])
    write(tmp_path / "piqa", "valid-labels.lst", ["1"])
    assert load("piqa", tmp_path)["train"]["label"] == [1, 0]


@pytest.mark.parametrize(
    "task, name, other",
    [
        ("piqa", "train-labels.lst", {"train.jsonl": [{"goal": "g", "sol1": "a", "sol2": "b"}]}),
        ("piqa", "train.jsonl", {"train-labels.lst": ["1"]}),
        ("copa", "train.jsonl", {}),
        ("arc_easy", "ARC-Easy-Train.jsonl", {}),
    ],
)
def test_a_file_that_is_not_utf8_is_a_one_line_error_naming_it(tmp_path, task, name, other):
    folder = tmp_path / task
    for other_name, lines in other.items():
        write(folder, other_name, lines)
    write(folder, name, [])
    (folder / name).write_bytes("caf\xe9 1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 1: not UTF-8 \(byte 0xe9 at column 4\)") as exc:
        load(task, tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{folder / name}, line 1: ") and "layout" in msg and "\n" not in msg


def test_hub_only_tasks_refuse_a_data_dir(tmp_path):
    for task in ("swag", "hellaswag", "commonsense_qa"):
        with pytest.raises(DataError, match=f"task {task} has no local reader here"):
            load(task, tmp_path)


def test_a_blank_piqa_line_is_refused_not_paired_with_the_next_label(tmp_path):
    """PIQA pairs line N of the questions with line N of the labels: a blank line inside either file would give
    every later question its neighbour's label (it was skipped, and [0, 1, 1] read for '0, blank, 1, 1')."""
    q = {"goal": "g", "sol1": "a", "sol2": "b"}
    write(tmp_path / "piqa", "train.jsonl", [q, q, q])
    write(tmp_path / "piqa", "valid.jsonl", [q])
    write(tmp_path / "piqa", "valid-labels.lst", ["1"])
    write(tmp_path / "piqa", "train-labels.lst", ["0", "", "1", "1"])
    with pytest.raises(DataError, match=r"train-labels.lst, line 2: label '' is not 0 or 1"):
        load("piqa", tmp_path)
    write(tmp_path / "piqa", "train-labels.lst", ["0", "1", "1", "", ""])  # blank lines at the end: fine
    assert load("piqa", tmp_path)["train"]["label"] == [0, 1, 1]
    write(tmp_path / "piqa", "train.jsonl", [q, "", q, q])
    write(tmp_path / "piqa", "train-labels.lst", ["0", "1", "1"])
    with pytest.raises(DataError, match=r"train.jsonl, line 2: blank, but rows follow it"):
        load("piqa", tmp_path)


@pytest.mark.parametrize(
    "context, choices, match",
    [
        ("", ["a", "b"], "the context is blank"),
        ("  ", ["a", "b"], "the context is blank"),
        ("q", ["a", " "], "choice 1 of 2 is blank"),
        ("q", ["", "b", "c"], "choice 0 of 3 is blank"),
    ],
)
def test_blank_context_or_choice_is_refused(tmp_path, context, choices, match):
    row = {
        "question": {
            "stem": context,
            "choices": [{"label": "AB"[i % 2] + str(i), "text": t} for i, t in enumerate(choices)],
        },
        "answerKey": "A0",
    }
    write(tmp_path / "arc_easy", "ARC-Easy-Train.jsonl", [row])
    write(tmp_path / "arc_easy", "ARC-Easy-Dev.jsonl", [row])
    with pytest.raises(DataError, match=match) as exc:
        load("arc_easy", tmp_path)
    assert "ARC-Easy-Train.jsonl, line 1:" in str(exc.value)


def test_a_byte_order_mark_is_read_past_and_a_bad_byte_names_its_line(tmp_path):
    row = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 1}
    folder = write(tmp_path / "copa", "val.jsonl", [row]).parent
    (folder / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + (json.dumps(row) + "\n").encode() * 2)
    assert load("copa", tmp_path)["train"]["label"] == [1, 1]
    (folder / "train.jsonl").write_bytes(
        (json.dumps(row) + "\n").encode() + '{"premise": "caf\xe9"}\n'.encode("latin-1")
    )
    with pytest.raises(DataError, match=r"train.jsonl, line 2: not UTF-8 \(byte 0xe9 at column 17\)"):
        load("copa", tmp_path)
