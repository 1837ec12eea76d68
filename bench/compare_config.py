"""Whether a baseline's runs and the current runs that `bench compare` pairs ran the same experiment.

Runs are paired by model, weights, head, task and mode; the accuracy tolerance (0.001 by default) assumes that
everything else that decides a figure is equal too, since a fixed seed reproduces every metric exactly. A pair
whose settings differ (another learning rate, fewer training rows, other seeds, another teacher) is a comparison
of two experiments: it is reported as 'not comparable' with the settings that differ (exit 2), not judged.

What is compared is each run's config as it decides figures (`figure_settings`):
- the schedule the run trained with as it resolved it (`train.hyper`, per stage for a distillation), in place of
  the layers it was resolved from (`model.recipe`, `train.learning_rate` and the like), so that a schedule pinned
  on the command line equals the same schedule read from a model file;
- the data as found (`task.source`, the row count of each split) in place of `data.dir`, a location that moves
  from machine to machine;
- the model's source as used (the package or Hub id by name, a checkpoint folder by kind only), and a
  distillation's teacher by its checkpoint's identity (`train.distill.teacher_id`), not by its folder;
- no node that the run's mode does not read, nothing that only says where or how often output is written, no
  other machine-bound path, no report-only task key, and not the training precision (compare's own precision
  check, with --cross-precision, judges that).
Numbers compare by value (3 == 3.0). A key that one side's config lacks (written before the key existed) reads as
the schema's default. `bench compare --ignore-config KEY` accepts a known difference (a dotted key or a prefix of
one, as the 'settings differ' line names it). The module sits at the bottom layer (schema and config only, no
torch): resume (bench/runner.py) and mode=robustness (the settings of the run that trained a checkpoint) read it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Dict, List, Sequence, Set, Tuple

from .schema import Result

# settings that decide no figure of an accuracy run, or are judged elsewhere (prefixes of dotted keys)
NOT_A_FIGURE = (
    "out_dir",
    "bench",
    "data.dir",
    "device.index",
    "device.threads",
    "task.report",
    "task.name",
    "model.name",
    "model.notes",
    "model.hub_id",
    "model.package",
    "model.path",
    "model.pretrained",  # the pairing's `weights` says it
    "model.allow_random_head",  # the pairing's `head` says it
    "train.precision",
    "train.save_checkpoint",
    "train.save_predictions",
    "train.logging_steps",
    "train.eval_batch_size",
    "task.metrics",  # which figures are reported, not what they are
    "task.primary",
    # locations that move from machine to machine; what they point to is compared where the result records it
    # (the teacher and a robustness reference by their checkpoint's identity, `run.teacher`, `run.reference`;
    # AdvGLUE by the rows scored, `run.advglue`)
    "distill.teacher",
    "distill.cache_dir",
    "distill.transfer.file",
    "distill.transfer.augment.model",
    "robustness.reference",
    "robustness.advglue",
    "robustness.contraction_style",  # every task's; the run's own is `run.contraction_style`, where it acts
)
# read by one mode only (an older result may carry them, with values that decided nothing)
MODE_NODES = {"timing": "latency", "distill": "distill", "robustness": "robustness"}
# the layers a run's schedule is resolved from; replaced by the schedule as resolved, where the result has it
SCHEDULE = (
    "model.recipe",
    "train.learning_rate",
    "train.batch_size",
    "train.epochs",
    "train.warmup",
    "train.weight_decay",
    "train.max_seq_length",
)
STAGE_SCHEDULE = ("distill.intermediate.epochs", "distill.intermediate.learning_rate")
STAGE_SCHEDULE += ("distill.prediction.epochs", "distill.prediction.learning_rate")


def _json(v: Any) -> str:
    """A value as JSON, a whole float as an integer (3.0 epochs and 3 epochs are one setting)."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    elif isinstance(v, list):
        return "[" + ", ".join(_json(x) for x in v) + "]"
    return json.dumps(v, sort_keys=True)


def _flat(d: Any, prefix: str = "") -> Dict[str, str]:
    if not isinstance(d, dict) or not d:
        return {prefix[:-1]: _json(d)} if prefix else {}
    out: Dict[str, str] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


@lru_cache(maxsize=1)
def schema_defaults() -> Dict[str, str]:
    """The config schema's default for every dotted key (what an older result that lacks a key ran with),
    nodes without a default (the model, the task) included: their own classes' defaults."""
    return _flat(schema_default_tree())


@lru_cache(maxsize=1)
def schema_default_tree() -> Dict[str, Any]:
    """The config schema's defaults as a nested dict, nodes without a default (the model, the task) included."""
    from .config import Config

    return _defaults(Config)


def _defaults(cls: type) -> Dict[str, Any]:
    import dataclasses
    import typing

    from omegaconf import MISSING, OmegaConf

    hints = typing.get_type_hints(cls)
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints.get(f.name)
        if dataclasses.is_dataclass(kind):
            out[f.name] = _defaults(kind)
        elif f.default is not dataclasses.MISSING and f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = OmegaConf.to_container(OmegaConf.create(f.default_factory()))
    return out


def resolved_schedule(r: Result) -> Dict[str, str]:
    """The schedule as the run resolved it: `train.hyper`, or each distillation stage's; {} when not recorded."""
    if r.train is None:
        return {}
    out: Dict[str, str] = {}
    hyper = (r.train.model_extra or {}).get("hyper")
    if isinstance(hyper, dict):
        out.update({f"resolved.{k}": _json(v) for k, v in hyper.items() if k != "source"})
    for i, stage in enumerate(r.train.stages):
        if isinstance(stage.get("hyper"), dict):
            name = stage.get("stage") or f"stage{i}"
            out.update({f"resolved.{name}.{k}": _json(v) for k, v in stage["hyper"].items() if k != "source"})
    return out


def figure_settings(r: Result, resolved: bool) -> Dict[str, str]:
    """One run's settings that decide its figures, as dotted keys with JSON values (see the module's doc).
    `resolved`: replace the schedule's layers by the schedule as resolved (both sides must have it)."""
    mode = r.mode
    drop = list(NOT_A_FIGURE) + [node for node, m in MODE_NODES.items() if m != mode]
    if resolved:
        drop += SCHEDULE + STAGE_SCHEDULE
    elif mode == "evaluate":  # no training: only the length it truncates to counts
        drop += [k for k in SCHEDULE if k != "train.max_seq_length"]
    task = r.task.model_extra or {}
    source = task.get("source")
    if source == "local":
        drop.append("task.hub")
    elif source == "hub":
        drop.append("task.local")
    out = {
        k: v
        for k, v in _flat(r.config).items()
        if not _under(k, drop) and not (k.startswith("model.recipe.") and k.endswith(".source"))  # prose
    }
    if resolved:
        out.update(resolved_schedule(r))
    out["run.model_source"] = _json(_model_source(r))
    out["run.data"] = _json({"source": source, "rows": task.get("splits")})
    distill = r.train.distill if r.train is not None else None
    if distill is not None and distill.teacher_id:
        out["run.teacher"] = _json(distill.teacher_id)
    if r.robustness is not None:  # loyalty to another reference, AdvGLUE on other rows: other figures
        out.update(_robustness_settings(r))
    return out


def _robustness_settings(r: Result) -> Dict[str, str]:
    """What a robustness run's figures were measured against, as recorded; a result written before they were
    recorded reads as what it can be known to have used (itself as the reference, no AdvGLUE rows scored)."""
    rob = r.robustness
    extra = rob.model_extra or {}
    ref = rob.reference
    identity = ref.get("identity") or ("self" if ref.get("checkpoint") == "this checkpoint" else "(not recorded)")
    if "advglue_rows" in extra:
        rows = extra["advglue_rows"]
    else:
        scored = any(isinstance(a, dict) and "acc" in a for b in rob.backends for a in (b.advglue or {}).values())
        rows = "(not recorded)" if scored else {}
    out = {"run.reference": _json(identity), "run.advglue": _json(rows)}
    if extra.get("contraction_style"):  # only a set whose contractions follow the task's style records it
        out["run.contraction_style"] = _json(extra["contraction_style"])
    return out


def _model_source(r: Result) -> List[Any]:
    """Where the weights came from: the package or Hub id by name; a checkpoint folder by kind only (its path
    moves between machines, and the result does not record its files' digests)."""
    extra = r.model.model_extra or {}
    src = r.model.source
    return [src, {"package": extra.get("package"), "hub": extra.get("hub_id")}.get(src)]


def differences(base: List[Result], cur: List[Result], ignore: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """'key: baseline value(s) vs current value(s)' for each setting that differs between the two sides' runs
    (the seeds as sets: the same seeds on both sides, in any order): those not accepted by `ignore` (prefixes of
    dotted keys), and those accepted. ([], []) when they ran the same experiment."""
    resolved = all(resolved_schedule(r) for r in base + cur)
    defaults = schema_defaults()
    sides = [[figure_settings(r, resolved) for r in runs] for runs in (base, cur)]
    keys = sorted({k for side in sides for f in side for k in f})
    differ: List[str] = []
    accepted: List[str] = []
    for key in keys:
        values: List[Set[str]] = [{f.get(key, defaults.get(key, "(not set)")) for f in side} for side in sides]
        same = values[0] == values[1] if key == "train.seed" else len(values[0] | values[1]) == 1
        if not same:
            b, c = ("/".join(sorted(v)).replace('"', "") for v in values)
            (accepted if _under(key, ignore) else differ).append(f"{key}: {b} vs {c}")
    return differ, accepted


def flat_config(config: Dict[str, Any]) -> Dict[str, str]:
    """A whole config as dotted keys with JSON values, over the schema's defaults (a key it lacks ran at its
    default)."""
    return {**schema_defaults(), **_flat(config)}


def settings_keys(runs: List[Result]) -> Set[str]:
    """Every dotted key these runs' settings have, as compared (both spellings of the schedule), for checking
    that an --ignore-config key names something."""
    return {k for r in runs for resolved in (False, True) for k in figure_settings(r, resolved)}
