"""One teacher folder, two teachers: runs whose teacher was retrained, or trained on another machine class, under
the same folder name (every benchmark writes <out>/<task>_teacher) are never paired or averaged together
(bench.report.naming.teacher_labels). Built from copies of committed real runs (docs/distill/runs)."""

import json
import shutil
from pathlib import Path

import pytest

from bench.report import distillation
from bench.report.naming import short_class

RUNS = Path(__file__).resolve().parents[1] / "docs" / "distill" / "runs"
AMD = "amd-epyc-f25m17-avx2-fma-avx512-vnni-bf16-2c-torch2.13.0-fdeae0"
INTEL = "intel-r-xeon-r-processor-f6m167-avx2-fma-avx512-vnni-avxvnni-bf16-amx-amxbf16-amxint8-2c-torch2.13.0-62f615"


def _copy(name: str, dst: Path, **changes) -> None:
    shutil.copytree(RUNS / AMD / name, dst / name)
    path = dst / name / "result.json"
    r = json.loads(path.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = r
        for k in parents:
            node = node[k]
        node[leaf] = value
    path.write_text(json.dumps(r))


TID = "95d7ea8dc34a858719d4f7a33cffa810311c0d8169f38005687edc7ab3e0b166"  # the committed MRPC runs' teacher
FOLDER = "/work/bench_distill/mrpc_teacher"


@pytest.mark.parametrize(
    "cls, tid",
    [(INTEL, TID), (AMD, "0" * 64)],
    ids=["same-teacher-id-another-class", "another-teacher-id-same-class"],
)
def test_two_teachers_in_one_folder_name_make_two_groups_each_paired_within_itself(tmp_path, cls, tid):
    for name in ("mrpc_direct", "mrpc_prediction"):
        _copy(name, tmp_path / "a")
    # the same runs as if made with another teacher or on another class: their prediction run is paired with
    # their own direct run only; a failed run that recorded no teacher id (nor seed) joins its class's one teacher
    other = {"env__machine_class": cls, "train__distill__teacher_id": tid}
    _copy("mrpc_direct", tmp_path / "b", **other)
    _copy("mrpc_prediction", tmp_path / "b", **other, metrics__primary=0.5)
    failed = {**other, "train__distill__teacher_id": None, "config__train__seed": None}
    _copy("mrpc_prediction_seed43", tmp_path / "b", **failed, status="failed")
    df = distillation.frame(tmp_path, n_boot=50)
    a, b = f"{FOLDER} (teacher 95d7ea8d, {short_class(AMD)})", f"{FOLDER} (teacher {tid[:8]}, {short_class(cls)})"
    # on a class with two teachers, a run without a teacher id cannot be placed: a group of its own
    unknown = f"{FOLDER} (teacher unknown, {short_class(cls)})" if cls == AMD else None
    assert sorted(set(df.teacher)) == sorted([a, b, *([unknown] if unknown else [])])
    for teacher, dev in ((a, 0.77), (b, 0.5)):
        rows = df[df.teacher == teacher].set_index("variant")
        pred = rows.loc[next(v for v in rows.index if v.startswith("prediction layer"))]
        assert pred.dev == pytest.approx(dev, abs=0.01) and pred.pairs == 1 and rows.loc["teacher"].runs == FOLDER
    failed_row = df[df.teacher == (unknown or b)].iloc[-1]
    assert "run mrpc_prediction_seed43: failed" in failed_row.status  # named by its folder, not "seed None"
    notes = distillation.markdown(df)
    assert f"- mrpc, teacher {a}, direct" in notes and f"- mrpc, teacher {b}, direct" in notes
    # one teacher per folder: the folder alone, as before
    shutil.rmtree(tmp_path / "b")
    assert set(distillation.frame(tmp_path, n_boot=50).teacher) == {FOLDER}
    assert short_class(AMD) == "amd-epyc-f25m17-...-fdeae0" and short_class(None) == "unknown class"
