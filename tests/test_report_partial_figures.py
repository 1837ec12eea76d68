"""A report figure taken over less than it seems says so: a trivial baseline from a capped smoke run, a spread
over one seed, a significance verdict without an interval."""

import pandas as pd

from bench.report import choice
from bench.schema import parse


def _choice_run(rows, acc, cap=None, name="arc_easy", train=1119):
    """A multiple-choice fine-tune as the harness records it: every split's rows after the caps."""
    return parse(
        {
            "schema_version": 1,
            "mode": "finetune",
            "status": "ok",
            "config": {"data": {"max_eval_samples": cap}},
            "model": {"name": "m"},
            "task": {"name": name, "eval_splits": ["validation"], "splits": {"train": train, "validation": rows}},
            "trivial": {
                "predictors": {
                    "chance": {"metrics": {"acc": 0.25}},
                    "most frequent gold position": {"metrics": {"acc": acc}},
                }
            },
            "started_at": "2026-01-01T00:00:00+00:00",
        }
    )


def test_the_trivial_baseline_comes_from_the_whole_split_not_the_first_capped_run():
    """The auditor's case: a 20-row smoke run found first gave the table its trivial accuracy."""
    frame = choice.trivial_frame([_choice_run(20, 0.45, cap=20), _choice_run(570, 0.27)])
    pos = frame[frame.predictor == "most frequent gold position"].iloc[0]
    assert (pos.acc, pos.examples, pos.capped) == (0.27, 570, False)  # the split's rows, not train + dev
    # a cap above the split's size cut nothing: that run scored the whole split and is preferred to a capped one
    frame = choice.trivial_frame([_choice_run(300, 0.45, cap=300), _choice_run(570, 0.30, cap=1000)])
    assert set(frame.acc) == {0.25, 0.30} and not frame.capped.any()


def test_a_trivial_figure_from_capped_runs_only_says_how_many_rows():
    runs = [_choice_run(20, 0.45, cap=20), _choice_run(40, 0.40, cap=40)]
    frame = choice.trivial_frame(runs)
    assert set(frame.examples) == {40} and frame.capped.all()  # the most rows there are
    seeds = pd.DataFrame(
        [{"model": "m", "model_name": "m", "task": "arc_easy", "metric": "acc", "mean": 0.5, "std": 0.0, "n": 1}]
    ).assign(flags="")
    table = choice.choice_table(seeds, frame, with_published=False)
    rows = table.text.set_index("model")
    assert rows.loc["trivial: most frequent gold position", "ARC-Easy"] == "40.0 (first 40 rows only)"
    assert "first N rows only" in table.caption
    whole = choice.choice_table(seeds, choice.trivial_frame([_choice_run(570, 0.27)]), with_published=False)
    assert whole.text.set_index("model").loc["trivial: chance", "ARC-Easy"] == "25.0"


def test_one_seeds_robustness_figure_has_no_spread():
    from bench.report.robustness import _spread

    assert _spread([0.5, None, None]) == "50.0 (1 of 3 seeds)"  # was '50.0±0.0': as if three seeds agreed
    assert _spread([0.5, 0.6, None]) == "55.0±7.1 (2 of 3 seeds)" and _spread([None, None]) == "unchanged"


def test_a_difference_without_an_interval_has_no_within_noise_verdict_anywhere():
    import io

    import numpy as np

    from bench.report import stats
    from bench.report.__main__ import significance_text

    y = np.arange(6.0)
    # Pearson of constant predictions: undefined on the dev rows and on every resample of them
    res = stats.seed_example_bootstrap(lambda p, y: float("nan"), y, [y * 0], [y * 0 + 1], n_boot=20)
    assert res["draws"] == 0 and res["within_noise"] is None
    pairs = pd.DataFrame([{"task": "stsb", "model_a": "a", "model_b": "b", "pairing": "1 seed paired", **res}])
    csv = pd.read_csv(io.StringIO(pairs.to_csv(index=False)))  # significance.csv as bench report writes it
    assert csv.within_noise.isna().all()  # empty, not False ('a difference beyond the noise')
    shown = significance_text(pairs).iloc[0]
    assert (shown["95% CI"], shown.verdict) == ("-", "no interval")  # was '[+nan, +nan]' beside 'no interval'
    same = stats.paired_bootstrap(lambda p, y: float(np.mean(p == y)), y, y, y)  # an interval: a verdict
    assert same["within_noise"] is True
