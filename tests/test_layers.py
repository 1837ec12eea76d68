"""The package's layers point one way (../shared/DESIGN.md "Layout"), checked on the source, not by convention.

Every import of a `bench` module is read from the code (also those inside functions, which hide a cycle at run
time; those under `if TYPE_CHECKING:` are for type checkers only and do not count), and:
- the bottom layer (config, schema, kinds, errors, ...) imports nothing of ours above it;
- the middle layer (engine, models, tasks, timing, distill, the mode modules) never imports the top (runner, the
  CLI, callbacks, resume) nor the readers of results (report, compare);
- report/ and compare read results: they import the bottom layer and each other only (and the metric
  definitions in bench.tasks.metrics, the one place a metric is defined);
- there is no import cycle, at any depth.
"""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "bench"
BOTTOM = {
    "bench",
    "bench.errors",
    "bench.checks",
    "bench.status",
    "bench.schema",
    "bench.kinds",
    "bench.config",
    "bench.distill_config",
    "bench.robustness_config",
    "bench.timing_config",
    "bench.recipe_config",
    "bench.compare_config",  # a result's settings as they decide its figures: schema and config only, no torch
    "bench.env",
    "bench.gpu",  # the run's CUDA device, for env's record and setup: config and errors only
    "bench.results",
    "bench.baselines",
    "bench.signals",
    "bench.selection",
    "bench.memory",
    "bench.tempdirs",
}
TOP = {"bench.runner", "bench.__main__", "bench.callbacks", "bench.resume", "bench.jobs"}
READERS = ("bench.report", "bench.compare")  # prefixes: report/* and compare, compare_speed
METRIC_DEFINITIONS = {"bench.tasks", "bench.tasks.metrics", "bench.tasks.squad_metrics"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set:
    hidden = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return hidden


def import_graph(package: Path = PACKAGE) -> dict:
    modules = {_module(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        hidden = _type_checking_nodes(tree)
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("bench"):
                    continue
                # `from . import x` may name a module: take it when it is one
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                deps.update(subs or [target])
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("bench"))
        graph[name] = {d for d in deps if d != name and d in modules}
    return graph


def _layer(module: str) -> str:
    if module in BOTTOM:
        return "bottom"
    if module in TOP:
        return "top"
    if module.startswith(READERS):
        return "readers"
    return "middle"


def violations(graph: dict) -> list:
    out = []
    for module, deps in sorted(graph.items()):
        layer = _layer(module)
        for dep in sorted(deps):
            dl = _layer(dep)
            bad = (
                layer == "bottom"
                and dl != "bottom"
                or layer == "middle"
                and dl in ("top", "readers")
                or layer == "readers"
                and dl not in ("bottom", "readers")
                and dep not in METRIC_DEFINITIONS
            )
            if bad:
                out.append(f"{module} ({layer}) imports {dep} ({dl})")
    return out


def cycles(graph: dict) -> list:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                found.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_layers_point_one_way():
    assert violations(import_graph()) == []


def test_no_import_cycles_even_inside_functions():
    assert cycles(import_graph()) == []


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A cycle hidden inside a function and an upward import are both found (the checks can fail)."""
    pkg = tmp_path / "bench"
    (pkg / "report").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "report" / "__init__.py").write_text("")
    (pkg / "config.py").write_text("from .report import gather\n")
    (pkg / "report" / "gather.py").write_text("def f():\n    from . import stats\n")
    (pkg / "report" / "stats.py").write_text(
        "from .gather import f\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..runner import x\n"
    )
    (pkg / "runner.py").write_text("")
    import conftest

    old = conftest.ROOT
    try:
        globals()["ROOT"] = tmp_path
        graph = import_graph(pkg)
    finally:
        globals()["ROOT"] = old
    assert "bench.report.gather -> bench.report.stats -> bench.report.gather" in cycles(graph)
    assert violations(graph) == ["bench.config (bottom) imports bench.report.gather (readers)"]
    assert "bench.runner" not in graph["bench.report.stats"]  # TYPE_CHECKING imports do not count


@pytest.mark.parametrize("module", ["bench.report.gather", "bench.report.distillation", "bench.report.plots"])
def test_report_modules_import_no_private_names_of_other_packages(module):
    path = ROOT / (module.replace(".", "/") + ".py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert not [a.name for a in node.names if a.name.startswith("_")], (module, node.module)
