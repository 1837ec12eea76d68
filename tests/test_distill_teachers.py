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


def test_two_teachers_in_one_folder_name_make_two_groups_each_paired_within_itself(tmp_path):
    for name in ("mrpc_direct", "mrpc_prediction"):
        _copy(name, tmp_path / "amd")
    # the same runs as if made by a teacher retrained on another class: their prediction run is paired with their
    # own direct run only, and a failed run that recorded no teacher id joins the one teacher of its class
    other = tmp_path / "intel"
    _copy("mrpc_direct", other, env__machine_class=INTEL, train__distill__teacher_id="0" * 64)
    _copy("mrpc_prediction", other, env__machine_class=INTEL, train__distill__teacher_id="0" * 64, metrics__primary=0.5)
    _copy("mrpc_prediction_seed43", other, env__machine_class=INTEL, train__distill__teacher_id=None, status="failed")
    df = distillation.frame(tmp_path, n_boot=50)
    folder = "/work/bench_distill/mrpc_teacher"
    amd, intel = (
        f"{folder} (teacher 95d7ea8d, amd-epyc-f25m17-...-fdeae0)",
        f"{folder} (teacher 00000000, {short_class(INTEL)})",
    )
    assert (
        sorted(set(df.teacher)) == sorted([amd, intel])
        and short_class(INTEL) == "intel-r-xeon-r-processor-f6m167-...-62f615"
    )
    for teacher, dev in ((amd, None), (intel, 0.5)):
        rows = df[df.teacher == teacher].set_index("variant")
        pred = rows.loc[next(v for v in rows.index if v.startswith("prediction layer"))]
        assert pred.pairs == 1 and (dev is None or pred.dev == pytest.approx(dev))
    assert "failed" in df[df.teacher == intel].iloc[-1].status
    # one teacher per folder: the folder alone, as before
    shutil.rmtree(other)
    assert set(distillation.frame(tmp_path, n_boot=50).teacher) == {folder}
