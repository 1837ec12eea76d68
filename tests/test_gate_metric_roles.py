"""The gate judges scores only: SQuAD v2's chosen no-answer threshold is shown, not gated, and its example counts
decide whether two runs can be compared at all (bench/compare_accuracy.py)."""

import json

from test_compare import _accuracy_result

from bench import compare
from bench.compare_accuracy import role
from bench.tasks import squad_metrics as sm

SQUAD_V2 = {
    "exact": 0.70,
    "f1": 0.73,
    "HasAns_exact": 0.6,
    "HasAns_f1": 0.66,
    "NoAns_exact": 0.8,
    "NoAns_f1": 0.8,
    "HasAns_total": 5928,
    "NoAns_total": 5945,
    "best_exact": 0.71,
    "best_exact_thresh": 1.50,
    "best_f1": 0.74,
    "best_f1_thresh": 1.20,
    "primary": 0.73,
}


def _squad(tmp_path, name, **metrics):
    folder = tmp_path / name
    folder.mkdir()
    data = _accuracy_result(task={"name": "squad_v2"}, metrics={**SQUAD_V2, **metrics})
    (folder / "result.json").write_text(json.dumps(data))
    return str(folder)


def _rows(argv):
    code, rows = compare._main(argv)
    return code, {r.figure: r for r in rows}


def test_a_moved_threshold_is_shown_and_not_gated(tmp_path, capsys):
    """The auditor's case: identical results but for the chosen null threshold went red (exit 1)."""
    base = _squad(tmp_path, "base")
    code, rows = _rows([base, _squad(tmp_path, "cur", best_exact_thresh=-0.8, best_f1_thresh=-0.5)])
    assert code == 0
    for name in ("best_exact_thresh", "best_f1_thresh"):
        assert rows[name].verdict == "not compared" and "not a score" in rows[name].change
    assert (rows["best_f1_thresh"].baseline, rows["best_f1_thresh"].current) == (1.2, -0.5)  # still shown
    # the scores beside it are judged as ever, and a threshold that is not finite still fails closed
    assert _rows([base, _squad(tmp_path, "drop", best_f1=0.70, best_f1_thresh=-0.5)])[0] == 1
    assert _rows([base, _squad(tmp_path, "nan", best_f1_thresh=None)])[0] == 1


def test_other_example_counts_are_not_comparable_and_fail_closed(tmp_path, capsys):
    base = _squad(tmp_path, "base")
    code, rows = _rows([base, _squad(tmp_path, "cur", HasAns_total=5900, f1=0.75)])
    assert code == 2
    assert rows["examples"].verdict == "not comparable" and "HasAns_total: 5928 vs 5900" in rows["examples"].change
    assert "f1" not in rows  # a score over other examples is not judged, not even as an improvement
    # a score that is not finite is still named a regression beside it, as with settings that differ
    code, rows = _rows([base, _squad(tmp_path, "nan", NoAns_total=5000, f1=None)])
    assert code == 2 and rows["f1"].verdict == "REGRESSION" and rows["examples"].verdict == "not comparable"
    # with the same counts each is listed as such, never as an improvement or a regression
    code, rows = _rows([base, _squad(tmp_path, "same")])
    assert code == 0 and rows["HasAns_total"].verdict == "ok" and rows["HasAns_total"].change == "the same examples"


def test_a_tolerance_for_a_figure_that_is_not_a_score_is_refused(tmp_path, capsys):
    base, cur = _squad(tmp_path, "base"), _squad(tmp_path, "cur")
    assert compare.main([base, cur, "--tolerance", "best_f1_thresh=5"]) == 2
    assert "is a threshold, not a score" in capsys.readouterr().err
    assert compare.main([base, cur, "--tolerance", "squad_v2:NoAns_total=5"]) == 2
    assert "is a count, not a score" in capsys.readouterr().err


def test_every_figure_squad_v2_scores_has_the_role_the_gate_reads_from_its_name():
    out = sm.evaluate({"h": "a b", "n": ""}, {"h": ["a b"], "n": []}, version_2=True, na_probs={"h": -1.0, "n": 2.0})
    roles = {k: role(k) for k in out}
    assert {k for k, v in roles.items() if v == "threshold"} == {"best_exact_thresh", "best_f1_thresh"}
    assert {k for k, v in roles.items() if v == "count"} == {"HasAns_total", "NoAns_total"}
    assert all(0 <= out[k] <= 1 for k, v in roles.items() if v == "score")  # fractions: higher is better
