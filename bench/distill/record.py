"""What a distill run records about itself: the key that makes two runs the same student, the newest direct
fine-tune of that student (its partner in the table), the teacher's own training time and the run's settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..config import Config


def student_key(cfg: Config, teacher_id: str, copied: Optional[List[int]]) -> str:
    """What makes two runs 'the same student': model, init, copied layers (and teacher), task, data, schedule."""
    d = cfg.distill
    what = {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "arch": cfg.model.arch,
        "path": cfg.model.path,
        "init": d.init,
        "layers": copied,
        "teacher": teacher_id if d.init == "teacher_layers" else None,
        "max_train_samples": cfg.data.max_train_samples,
        "max_seq_length": cfg.train.max_seq_length,
        "seed": cfg.train.seed,
    }
    # the row selection and what is scored, where they differ from the defaults (so keys made before these
    # settings existed stay the same): a selection run scored on the holdout is never a dev run's partner
    what.update({k: v for k, v in (("sample_seed", cfg.data.sample_seed), ("holdout", cfg.data.holdout)) if v})
    if cfg.data.score != "dev":
        what["score"] = cfg.data.score
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _draw_seed(data: Dict[str, Any], train: Dict[str, Any]) -> Any:
    return data.get("sample_seed") if data.get("sample_seed") is not None else train.get("seed")


def find_direct(cfg: Config, key: str) -> Optional[Dict[str, Any]]:
    """The newest direct fine-tune of the same student below bench.resume_dir: a distill run with only the
    hard-label term, or (for init=pretrained|random) a finetune run of the same model, task and data."""
    found = []
    for path in Path(cfg.bench.resume_dir).glob("**/result.json"):
        if "baselines" in path.parts or Path(cfg.out_dir or "") in path.parents:
            continue
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if r.get("status") != "ok":
            continue
        dist = (r.get("train") or {}).get("distill") or {}
        c = r.get("config") or {}
        same_distill = r.get("mode") == "distill" and dist.get("direct") and dist.get("student_key") == key
        same_finetune = (
            r.get("mode") == "finetune"
            and cfg.distill.init != "teacher_layers"
            and (c.get("model") or {}).get("arch") == cfg.model.arch
            and (c.get("model") or {}).get("pretrained") == (cfg.distill.init == "pretrained")
            and (c.get("task") or {}).get("name") == cfg.task.name
            and (c.get("data") or {}).get("max_train_samples") == cfg.data.max_train_samples
            # the same rows, scored on the same split: a holdout-scored fine-tune is no dev run's partner
            and (c.get("data") or {}).get("score", "dev") == cfg.data.score
            and (c.get("data") or {}).get("holdout") == cfg.data.holdout
            # the rows are drawn with data.sample_seed, else train.seed: equal draws match however they were named
            and _draw_seed(c.get("data") or {}, c.get("train") or {})
            == (cfg.data.sample_seed if cfg.data.sample_seed is not None else cfg.train.seed)
            and (c.get("train") or {}).get("seed") == cfg.train.seed
        )
        if same_distill or same_finetune:
            found.append((r.get("started_at", ""), str(path.parent), r))
    if not found:
        return None
    started, where, r = max(found)
    return {
        "run": where,
        "mode": r["mode"],
        "started_at": started,
        "metrics": r["metrics"],
        "train_seconds": (r.get("train") or {}).get("seconds"),
    }


def teacher_seconds(ckpt: Path) -> Optional[float]:
    """The teacher's own fine-tuning time, from the harness run beside its checkpoint (None otherwise)."""
    try:
        return (json.loads((Path(ckpt).parent / "result.json").read_text()).get("train") or {}).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None


def settings(
    cfg: Config, layer_map, copied, key: str, cache: Optional[Dict[str, Any]], map_source: Optional[str] = None
) -> Dict[str, Any]:
    d = cfg.distill
    terms = {stage: d.terms_on(stage) for stage in d.stages}
    return {
        "teacher": d.teacher,
        "init": d.init,
        "copied_layers": copied,  # teacher layers the student was built from (init=teacher_layers), else null
        "layer_map": layer_map,  # teacher layer each student layer learns in the intermediate stage
        "layer_map_source": map_source,
        "stages": list(d.stages),
        "terms_on": terms,
        "weights": dict(d.weights),
        "temperature": d.temperature,
        "mse_over": d.mse_over,
        "schedulers": {stage: getattr(d, stage).scheduler for stage in d.stages},
        "direct": all(t == ["hard"] for t in terms.values()),
        "student_key": key,
        "teacher_cache": cache,
    }
