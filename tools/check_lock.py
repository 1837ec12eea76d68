"""Check that this environment holds exactly the versions a lock file pins: `python tools/check_lock.py LOCK`.

`make install` runs it after installing with the lock as constraints, so a pin that pip could not honour (or a
package the lock names that is missing) stops the install with the list, instead of surfacing later as a
"regression" in the gate. A local build tag (torch's +cpu) is the machine's choice and not compared. Packages
installed beyond the lock are listed but allowed (a user's own additions). Exit 0 when every pin holds, else 1.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict:
    out = {}
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        if not m:
            raise SystemExit(f"{lock}:{number}: expected 'name==version', got {line!r}")
        out[canonical(m.group(1))] = m.group(2)
    return out


def installed() -> dict:
    """Each distribution's version as import finds it: the first on sys.path. A later copy (setuptools, once
    imported, appends its _vendor folder, which holds its own packaging-*.dist-info) does not count."""
    out: dict = {}
    for d in metadata.distributions():
        if d.metadata["Name"]:
            out.setdefault(canonical(d.metadata["Name"]), d.version)
    return out


def mismatches(wanted: dict, have: dict) -> list:
    bad = []
    for name, version in sorted(wanted.items()):
        got = have.get(name)
        if got is None:
            bad.append(f"{name}: locked {version}, not installed")
        elif got.split("+")[0] != version.split("+")[0]:
            bad.append(f"{name}: locked {version}, installed {got}")
    return bad


def main(argv: list) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    lock = Path(argv[0])
    if not lock.is_file():
        print(f"check_lock: {lock}: no such lock file", file=sys.stderr)
        return 2
    wanted, have = pins(lock), installed()
    bad = mismatches(wanted, have)
    extra = sorted(set(have) - set(wanted) - {"pip", "compact-bert-bench"})
    if extra:
        print(f"check_lock: installed beyond {lock} (allowed): {', '.join(extra)}")
    if bad:
        print(f"check_lock: this environment does not match {lock}:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    print(f"check_lock: all {len(wanted)} locked versions installed ({lock})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
