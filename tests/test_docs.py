"""The README and the docs/ pages stay true to the code (fast: nothing here trains, measures or downloads).

- every relative link (and its #anchor) in README.md and docs/*.md resolves;
- every `bench ...` / `python -m bench ...` command shown in a fenced block or an inline code span composes
  (`bench.config.compose` on its overrides, nothing run); `bench report` / `bench compare` and other
  `python -m bench.<module>` programs answer `--help` in-process and know every `--option` the docs give them.
  A command that cannot compose on purpose carries the marker `# docs-test: hub-only` or `# docs-test: example`;
- docs/configuration.md's group table names exactly the groups of bench/conf/, each with exactly its choices,
  and its keys exist in the typed config (and every key of the sections it documents is named);
- every `make TARGET` the docs show exists in the Makefile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import io
import re
import shlex
import typing
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONF = ROOT / "bench" / "conf"
CONFIGURATION = ROOT / "docs" / "configuration.md"

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MARKER = re.compile(r"#\s*docs-test:\s*(hub-only|example)\b")
SUBPROGRAMS = {
    "report": "bench.report.__main__",
    "compare": "bench.compare",
    "score": "bench.score",
    "bench-report": "bench.report.__main__",
    "bench-compare": "bench.compare",
}
# the config sections whose every key docs/configuration.md must name (model and task are described by file)
DOCUMENTED_SECTIONS = ("device", "data", "train", "timing", "distill", "robustness", "bench")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _blocks(text: str) -> list:
    return FENCE.findall(text)


def _prose(text: str) -> str:
    """The text outside fenced blocks (headings inside a shell block are comments, not headings)."""
    return FENCE.sub("", text)


def _code_lines(text: str) -> list:
    """Every line of code the page shows: fenced-block lines (continuations joined) and inline code spans."""
    out = []
    for block in _blocks(text):
        out += block.replace("\\\n", " ").splitlines()
    out += INLINE.findall(_prose(text))
    return out


def _commands(line: str) -> list:
    """The bench invocations in one shell line, as (program, args, marked) tuples."""
    marked = bool(MARKER.search(line))
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # a prose fragment in backticks, not a command
        return []
    out, parts, cur = [], [], []
    for tok in tokens:  # `make install && .venv/bin/bench ...`: one command per part
        if tok in ("&&", "||", ";", "|"):
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    parts.append(cur)
    for part in parts:
        for i, tok in enumerate(part):
            name = tok.rsplit("/", 1)[-1]
            if name in ("bench", "bench-report", "bench-compare"):
                prog, args = name, part[i + 1 :]
            elif tok == "-m" and i + 1 < len(part) and (part[i + 1] == "bench" or part[i + 1].startswith("bench.")):
                prog, args = part[i + 1], part[i + 2 :]
            else:
                continue
            if prog == "bench" and args and args[0].endswith(":"):
                break  # printed output ("bench score: error: ..."), not a command
            if prog == "bench" and args and args[0] in SUBPROGRAMS:
                prog, args = args[0], args[1:]
            out.append((prog, args, marked))
            break
    return out


def _all_commands() -> list:
    found, seen = [], set()
    for page in PAGES:
        for line in _code_lines(page.read_text()):
            for prog, args, marked in _commands(line):
                if (page, prog, tuple(args), marked) in seen:
                    continue
                seen.add((page, prog, tuple(args), marked))
                found.append(pytest.param(prog, args, marked, id=f"{_rel(page)}: {prog} {' '.join(args)}"[:150]))
    return found


COMMANDS = _all_commands()


def test_the_docs_show_commands_of_every_kind():
    """The collection itself works: compose commands, sub-programs, and the README's main job among them."""
    progs = {c.values[0] for c in COMMANDS}
    assert {"bench", "report", "compare"} <= progs, progs
    assert any(c.values[1] == ["+sweep=compact_vs_base"] for c in COMMANDS)


def test_the_readme_shows_the_two_commands():
    """CI and the issue name these two commands exactly: the main job and the test command."""
    blocks = [b.strip() for b in _blocks((ROOT / "README.md").read_text())]
    assert "make install && .venv/bin/bench +sweep=compact_vs_base" in blocks
    assert "make test-full" in blocks


def _overrides(args: list) -> list:
    """Hydra's command-line overrides, without its own flags (`--cfg job`, `-m`)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp"):
            skip = True
        elif not arg.startswith("-") and arg != "...":  # "...": the docs' placeholder for "your overrides"
            out.append(arg)
    return out


def _help(module: str) -> str:
    """`module --help`, in-process: it must exit 0; returns what it printed."""
    mod = importlib.import_module(module)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as stop:
        mod.main(["--help"])
    assert stop.value.code in (0, None), f"{module} --help exited {stop.value.code}"
    return buf.getvalue()


@pytest.mark.parametrize("prog,args,marked", COMMANDS)
def test_every_command_shown_runs_as_written(prog, args, marked):
    if marked:
        pytest.skip("marked in the docs as Hub-only or an example")
    if prog == "bench":
        from bench.config import compose

        compose(_overrides(args))  # raises on an unknown group, choice, key, type or value
        return
    module = SUBPROGRAMS.get(prog, prog)
    if module in SUBPROGRAMS.values() or prog.startswith("bench."):
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"`python -m {module}`: no such module"
        if "argparse" not in Path(spec.origin).read_text():
            return
        text = _help(module)
        for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", " ".join(args)):
            assert flag in text, f"`{prog}` shows {flag}, which `{module} --help` does not list"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def _anchors(page: Path) -> set:
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text()), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves(page):
    missing = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            missing.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            missing.append(f"{target} (no heading #{anchor})")
    assert not missing, f"{_rel(page)}: broken links: {missing}"


def test_the_readme_links_every_docs_page():
    readme = ROOT / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in LINK.findall(readme.read_text())}
    unlinked = [_rel(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def conf_groups() -> dict:
    """bench/conf/'s groups (folders that hold YAML files) and their choices."""
    return {
        str(d.relative_to(CONF)): {p.stem for p in d.glob("*.yaml")}
        for d in sorted(CONF.rglob("*"))
        if d.is_dir() and any(d.glob("*.yaml"))
    }


def doc_groups(text: str) -> dict:
    """docs/configuration.md's group table: `group` -> the choices its second column names."""
    section = text.split("## Config groups", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`[\w/]+`", cells[0]):
            out[cells[0].strip("`")] = set(INLINE.findall(cells[1]))
    return out


def test_configuration_names_every_config_group_with_its_choices():
    documented, actual = doc_groups(CONFIGURATION.read_text()), conf_groups()
    assert set(documented) == set(actual), (
        f"docs/configuration.md names groups {sorted(set(documented) - set(actual))} that bench/conf/ lacks and "
        f"leaves out {sorted(set(actual) - set(documented))}"
    )
    for group, choices in actual.items():
        assert documented[group] == choices, (
            f"group {group}: docs/configuration.md lists {sorted(documented[group])}, bench/conf/{group}/ holds "
            f"{sorted(choices)}"
        )


def _fields(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _resolves(key: str) -> bool:
    """Whether `section.field[.sub...]` is a key of bench.config.Config (a dict field takes any sub-key)."""
    from bench.config import Config

    node = Config
    for part in key.split("."):
        if part == "*":
            return True
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return typing.get_origin(node) in (dict, typing.Dict) or node is typing.Any
        fields = _fields(node)
        if part not in fields:
            return False
        node = fields[part]
        if typing.get_origin(node) is typing.Union:  # Optional[X]
            node = next(a for a in typing.get_args(node) if a is not type(None))
    return True


FILE_NAME = re.compile(r"\.(tsv|json|jsonl|yaml|py|md|png)$")
KEY = re.compile(r"^((?:model|task|mode|device|data|train|timing|distill|robustness|bench)(?:\.(?:[a-z_][\w]*|\*))+)")


def test_configuration_keys_exist_and_every_key_is_documented():
    from bench.config import Config

    text = CONFIGURATION.read_text()
    spans = [s for s in INLINE.findall(_prose(text)) if not FILE_NAME.search(s)]  # `train.tsv` is a file
    named = {m.group(1) for span in spans for m in [KEY.match(span)] if m}
    unknown = sorted(k for k in named if not _resolves(k))
    assert not unknown, f"docs/configuration.md names keys the config does not have: {unknown}"
    fields = _fields(Config)
    missing = [f"{s}.{f}" for s in DOCUMENTED_SECTIONS for f in _fields(fields[s]) if f"{s}.{f}" not in named]
    assert not missing, f"docs/configuration.md does not document {missing}"


def make_targets() -> set:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_make_target_named_exists(page):
    named = set()
    for line in _code_lines(page.read_text()):
        named |= set(re.findall(r"(?:^|[\s;&|(])make\s+([A-Za-z][\w-]*)(?![\w=-])", line))
    unknown = sorted(named - make_targets())
    assert not unknown, f"{_rel(page)} names make targets the Makefile lacks: {unknown}"
