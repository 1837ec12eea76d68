"""How runs are named and told apart in reports, from their configs alone: the dotted config (`flat`), what sets
runs of one model apart (`differing`, `settings`), and a distill run's variant, student and teacher.

Read by report/gather.py, report/distillation.py and report/plots.py; it depends on nothing of ours but the
config schema (its constants and defaults), so that those modules import each other one way only.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..compare_config import schema_default_tree
from ..distill_config import DISTILL_LOSSES

# config keys that decide nothing about a figure (where it is written, what is saved) or are the grouping
# itself (the seed, the task: one table row spans a model's tasks)
NOT_A_VARIANT = (
    "out_dir",
    "bench",
    "task",
    "train.seed",
    "train.save_checkpoint",
    "train.save_predictions",
    "train.logging_steps",
    "train.eval_batch_size",
    "robustness",  # read by mode=robustness only; results written before it existed lack the node
    # locations that move from machine to machine (the data's rows as found tell data apart, report/gather.py)
    "data.dir",
    "device.index",
    "distill.cache_dir",
)


def on_holdout(config: Dict[str, Any]) -> bool:
    """The run scored training rows held out for choosing settings (data.score=holdout), not the dev set: its
    figures belong in no dev table."""
    return ((config.get("data") or {}).get("score") or "dev") == "holdout"


def _with_defaults(d: Any, defaults: Any) -> Any:
    """`d` over `defaults`, node by node: what `d` lacks, it ran with at the default."""
    if not isinstance(d, dict) or not isinstance(defaults, dict):
        return d
    return {**defaults, **{k: _with_defaults(v, defaults.get(k)) for k, v in d.items()}}


def flat(d: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    """A config as one level of dotted keys with JSON values, less what decides no figure (NOT_A_VARIANT). A whole
    config (no prefix) is read over the schema's defaults: a key added after a result was written reads, in that
    result, as the default it ran with, so that it is the same variant as a run at the default, not another."""
    out: Dict[str, str] = {}
    if not prefix:
        d = _with_defaults(d, schema_default_tree())
    for k, v in d.items():
        key = f"{prefix}{k}"
        if any(key == n or key.startswith(n + ".") for n in NOT_A_VARIANT):
            continue
        if key.startswith("model.recipe.") and key.endswith(".source"):
            continue  # prose on where a recipe's values come from; the values themselves are compared
        if key.startswith("model.recipe.tasks.") and v is None:
            continue  # a task entry's unset value keeps the model's: the same as no entry
        if isinstance(v, dict):
            out.update(flat(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True)
    return out


def differing(flats: List[Dict[str, str]], only_some: frozenset = frozenset()) -> List[str]:
    """The dotted keys whose values differ between these flat configs. A key missing from a run counts as a
    difference ("-"), except the keys in `only_some` (settings that act in some runs only), which are compared
    among the runs that have them."""
    keys = sorted({k for f in flats for k in f})
    return [
        k
        for k in keys
        if len({f[k] for f in flats if k in f} if k in only_some else {f.get(k, "-") for f in flats}) > 1
    ]


def settings(f: Dict[str, str], keys: List[str], only_some: frozenset = frozenset()) -> str:
    """'key=value, ...' for the differing keys of one run (the text a variant is labelled with)."""
    return ", ".join(f"{k}={f.get(k, '-')}".replace('"', "") for k in keys if k in f or k not in only_some)


# the loss terms each variant's name stands for; terms on beyond them, or off among them, are named after it
STANDARD_TERMS = {
    "fine-tuned directly": {"hard"},
    "prediction layer": {"soft"},
    "intermediate only": {"embedding", "hidden", "attention"},
    "two-stage": {"embedding", "hidden", "attention", "soft"},
}
STAGE_NAMES = {
    ("prediction",): "prediction layer",
    ("intermediate",): "intermediate only",
    ("intermediate", "prediction"): "two-stage",
}
# config keys that decide nothing about the student's figures, or that the variant and student names already say
NOT_A_SETTING = ("mode", "distill", "timing")


def terms(config: Dict[str, Any]) -> Dict[str, float]:
    """The loss terms a run optimises (weight above 0, in one of its stages), with their weights."""
    d = config.get("distill") or {}
    stages = set(d.get("stages") or [])
    return {
        k: float(v)
        for k, v in sorted((d.get("weights") or {}).items())
        if v and float(v) > 0 and DISTILL_LOSSES.get(k) in stages
    }


def is_direct(config: Dict[str, Any]) -> bool:
    return set(terms(config)) == {"hard"}


def params(config: Dict[str, Any]) -> Dict[str, str]:
    """The distill settings that act in this run: the temperature when soft targets are on, each listed stage's
    schedule, the layer map when the intermediate stage is on, the transfer set when it has sources."""
    d = config.get("distill") or {}
    on = terms(config)
    out = {}
    if "soft" in on:
        out["distill.temperature"] = d.get("temperature")
    for stage in d.get("stages") or []:
        for k, v in sorted((d.get(stage) or {}).items()):
            out[f"distill.{stage}.{k}"] = v
    if "intermediate" in (d.get("stages") or []):
        out["distill.layer_map"] = d.get("layer_map")
    transfer = d.get("transfer") or {}
    if set(on) - {"hard"}:
        # rows without labels besides the labelled ones make another variant of the recipe; the sources are named
        # also when there are none, or (b) and (b+T) would share one key and the table keep only the newer of them
        out["distill.transfer.sources"] = transfer.get("sources") or []
    if transfer.get("sources"):
        for k, v in sorted(transfer.items()):
            out[f"distill.transfer.{k}"] = v
    return {k: json.dumps(v, sort_keys=True) for k, v in out.items()}


def variant_of(config: Dict[str, Any]) -> str:
    """The variant's name: its stages, then any term on beyond the variant's usual ones (+) or off among them (-),
    then any weight other than 1."""
    on = terms(config)
    stages = tuple(
        s for s in ((config.get("distill") or {}).get("stages") or []) if any(DISTILL_LOSSES[t] == s for t in on)
    )
    name = "fine-tuned directly" if set(on) == {"hard"} else STAGE_NAMES.get(stages, "+".join(stages) or "?")
    usual = STANDARD_TERMS.get(name, set())
    changes = [f"+{t}" for t in on if t not in usual] + [f"-{t}" for t in sorted(usual) if t not in on]
    scaled = [f"{t}={w:g}" for t, w in on.items() if w != 1.0]
    return name + (f" ({', '.join(changes)})" if changes else "") + (f" [{', '.join(scaled)}]" if scaled else "")


def student_of(config: Dict[str, Any], model_name: str) -> str:
    """The student, from the config alone (a run that failed before building it is named the same way)."""
    d = config.get("distill") or {}
    init = d.get("init", "?")
    layers = d.get("layers")
    depth = len(layers) if layers else ((config.get("model") or {}).get("arch") or {}).get("num_hidden_layers")
    what = f"{init} {list(layers)}" if layers else init
    return f"{model_name} {depth}L ({what})" if depth else f"{model_name} ({what})"


def teacher_of(config: Dict[str, Any]) -> str:
    """The teacher folder as given, normalised: a run folder and its checkpoint/ are one teacher."""
    t = os.path.normpath(str((config.get("distill") or {}).get("teacher") or "?"))
    return t[: -len("/checkpoint")] if t.endswith("/checkpoint") else t


def short_class(machine_class: Optional[str]) -> str:
    """A machine class id cut to its CPU (or GPU) and its digest: 'amd-epyc-f25m17-...-fdeae0'."""
    m = re.match(r"(.*?-f\d+m\d+)-.*-([0-9a-f]{6})$", machine_class or "")
    return f"{m.group(1)}-...-{m.group(2)}" if m else (machine_class or "unknown class")


def teacher_labels(runs: List[Any]) -> Dict[int, str]:
    """id(run) -> the teacher as the distillation table names it: its folder (teacher_of), and, where the runs of
    one folder name more than one teacher (its weights retrained, or trained on another machine class, where the
    training time and the speed-up differ too), each teacher's id and machine class besides: runs of different
    teachers are never paired or averaged. A run that recorded no teacher id (failed before it read the teacher)
    goes with the one teacher of its folder on its class, if there is one."""

    def ident(r) -> Tuple[Optional[str], Optional[str]]:
        d = getattr(r.train, "distill", None) if getattr(r, "train", None) else None
        return (getattr(d, "teacher_id", None), getattr(r, "machine_class", None))

    known: Dict[Tuple[str, Optional[str]], set] = {}
    for r in runs:
        tid, cls = ident(r)
        if tid:
            known.setdefault((teacher_of(r.config), cls), set()).add(tid)
    idents: Dict[int, Tuple[str, Optional[str], Optional[str]]] = {}
    for r in runs:
        tid, cls = ident(r)
        path = teacher_of(r.config)
        if not tid and len(known.get((path, cls), ())) == 1:
            tid = next(iter(known[(path, cls)]))
        idents[id(r)] = (path, tid, cls)
    per_path: Dict[str, set] = {}
    for path, tid, cls in idents.values():
        per_path.setdefault(path, set()).add((tid, cls))
    return {
        k: path if len(per_path[path]) == 1 else f"{path} (teacher {(tid or 'unknown')[:8]}, {short_class(cls)})"
        for k, (path, tid, cls) in idents.items()
    }


def distill_flat(d: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    """`flat`, less what the distillation table names otherwise (the variant, the student) or what decides nothing."""
    return {k: v for k, v in flat(d, prefix).items() if not any(k == n or k.startswith(n + ".") for n in NOT_A_SETTING)}
