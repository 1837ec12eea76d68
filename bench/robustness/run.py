"""mode=robustness: what a checkpoint (on each backend) gives up beyond accuracy, on a classification task.

For each backend of timing.backends (built by bench/timing/backends.py, the same builders latency uses):
clean dev accuracy; loyalty to a reference (robustness.reference=CHECKPOINT, else this checkpoint on fp32
eager); invariance under the named perturbation set; AdvGLUE accuracy beside the trivial predictor. Every
prediction the figures come from is written to robustness_predictions.jsonl beside result.json.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import env, models, tasks
from ..config import Config
from ..errors import BenchError
from ..results import write_jsonl
from ..tasks import trivial
from ..timing import backends as B
from . import advglue, figures, perturb

log = logging.getLogger("bench")
PREDICTIONS = "robustness_predictions.jsonl"
Example = Tuple[str, ...]


class NonFiniteOutput(RuntimeError):
    """A backend produced NaN or infinite logits: its figures would be wrong (argmax of NaN is 0), so it failed."""


def probabilities(
    prepared: B.Prepared, tokenizer, examples: Sequence[Example], max_length: int, batch_size: int, names: set
) -> np.ndarray:
    """Softmax outputs (float64) per example, in order; shortest first in batches, then put back in place."""
    out = np.zeros((len(examples), 0))
    if not examples:
        return out
    lengths = [sum(len(t) for t in ex) for ex in examples]
    order = np.argsort(lengths, kind="stable")
    rows: List[Optional[np.ndarray]] = [None] * len(examples)
    for i in range(0, len(order), batch_size):
        chunk = [examples[j] for j in order[i : i + batch_size]]
        enc = tokenizer(
            *zip(*chunk),
            truncation=True,
            max_length=max_length,
            padding=True,
            pad_to_multiple_of=8,
            return_tensors="pt",
        )
        batch = {k: v for k, v in enc.items() if k in names}
        logits = prepared.forward(prepared.convert(batch))
        logits = torch.as_tensor(
            np.asarray(logits.float().cpu() if torch.is_tensor(logits) else logits), dtype=torch.float64
        )
        if not torch.isfinite(logits).all():
            raise NonFiniteOutput(
                f"{prepared.dtype}: non-finite logits for {int((~torch.isfinite(logits)).sum())} values"
            )
        for j, p in zip(order[i : i + batch_size], torch.softmax(logits, dim=-1).numpy()):
            rows[j] = p
    return np.stack(rows)


def token_ids(tokenizer, examples: Sequence[Example], max_length: int) -> List[List[int]]:
    return [tokenizer(*ex, truncation=True, max_length=max_length)["input_ids"] for ex in examples]


def perturbed_sets(cfg: Config, examples: List[Example], tokenizer, max_length: int) -> Dict[str, Dict[str, Any]]:
    """name -> the perturbed examples, which ones changed in text and in model input (token ids)."""
    rc = cfg.robustness
    clean_ids = token_ids(tokenizer, examples, max_length)
    out = {}
    for p in perturb.get(rc.perturbations, rc.only):
        new = [tuple(perturb.apply(p, ex, rc.perturbations, rc.seed, i)) for i, ex in enumerate(examples)]
        text_changed = np.array([a != b for a, b in zip(new, examples)])
        ids = token_ids(tokenizer, new, max_length)
        changed = np.ones(len(new), bool) if p.control else np.array([a != b for a, b in zip(ids, clean_ids)])
        out[p.name] = {"examples": new, "text_changed": int(text_changed.sum()), "changed": changed}
    return out


def _load_reference(cfg: Config):
    """(tokenizer, model, description) of robustness.reference, refused unless it has this task's head."""
    spec = dataclasses.replace(
        cfg.model,
        name=f"reference:{Path(cfg.robustness.reference).name}",
        path=cfg.robustness.reference,
        allow_random_head=False,
    )
    tok, model, info = models.load(spec, cfg.task, seed=cfg.train.seed, need_head=True)
    return tok, model, {**info, "checkpoint": cfg.robustness.reference, "backend": "eager"}


def _adv_sets(cfg: Config) -> Tuple[Dict[str, Tuple[List[Example], List[int]]], Dict[str, str]]:
    keys = cfg.robustness.advglue_keys.get(cfg.task.name, [])
    if not keys:
        return {}, {"-": f"AdvGLUE has no rows for task {cfg.task.name}"}
    path = cfg.robustness.advglue
    if path is None and cfg.data.dir:
        return {}, {k: "not scored: robustness.advglue=PATH names the local dev.json (data is local)" for k in keys}
    return {k: advglue.rows(cfg.task, k, path) for k in keys}, {}


def _rows(backend: str, kind: str, idx: Sequence[int], labels, probs: np.ndarray, **extra) -> List[dict]:
    return [
        {
            "backend": backend,
            "set": kind,
            "idx": int(i),
            "label": int(y),
            "prediction": int(p.argmax()),
            "probs": [float(x) for x in p],
            **{k: v[n] for k, v in extra.items()},
        }
        for n, (i, y, p) in enumerate(zip(idx, labels, probs))
    ]


def score_backend(name: str, cfg: Config, model, tokenizer, data: Dict[str, Any], device) -> Tuple[dict, List[dict]]:
    """Every figure for one backend, and its per-example rows (failures are the backend's, not the run's): one that
    cannot run here is `unsupported`; one that broke on this model (export failed, NaN outputs) is `failed`."""
    try:
        prepared = B.prepare(name, copy.deepcopy(model), device)
    except B.BackendUnavailable as exc:
        return {"backend": name, "status": "unsupported", "error": str(exc)}, []
    except B.BackendFailed as exc:
        return {"backend": name, "status": "failed", "error": str(exc)}, []
    try:
        return _score(name, prepared, cfg, model, tokenizer, data)
    except NonFiniteOutput as exc:
        return {"backend": name, "status": "failed", "error": str(exc)}, []


def _score(name: str, prepared, cfg: Config, model, tokenizer, data: Dict[str, Any]) -> Tuple[dict, List[dict]]:
    rc, max_len = cfg.robustness, cfg.task.max_seq_length
    names = B.accepted_inputs(model)
    score = lambda ex: probabilities(prepared, tokenizer, ex, max_len, rc.batch_size, names)  # noqa: E731
    labels, examples = data["labels"], data["examples"]
    clean = score(examples)
    pred = clean.argmax(axis=1)
    rows = _rows(name, "clean", range(len(examples)), labels, clean)
    out = {
        "backend": name,
        "status": "ok",
        "dtype": prepared.dtype,
        "note": prepared.note,
        "clean_acc": figures.accuracy(pred, labels, rc.bootstrap),
        "invariance": {},
        "advglue": {},
    }
    if data.get("reference") is not None:
        out["loyalty"] = figures.loyalty(data["reference"], clean, labels, rc.bootstrap)
    for pname, p in data["perturbed"].items():
        idx = np.flatnonzero(p["changed"])
        probs = score([p["examples"][i] for i in idx])
        pp = probs.argmax(axis=1) if len(idx) else np.zeros(0, int)
        out["invariance"][pname] = figures.invariance(pred, pp, labels, p["changed"], p["text_changed"], rc.bootstrap)
        rows += _rows(name, f"inv:{pname}", idx, [labels[i] for i in idx], probs)
    for key, (adv_examples, adv_labels) in data["adv"].items():
        probs = score(adv_examples)
        const = np.full(len(adv_labels), data["majority"])
        out["advglue"][key] = {
            "acc": figures.accuracy(probs.argmax(axis=1), adv_labels, rc.bootstrap),
            "trivial": figures.accuracy(const, adv_labels, rc.bootstrap),
            "trivial_predictor": data["majority_name"],
            "majority": int(data["majority"]),
        }
        rows += _rows(name, f"advglue:{key}", range(len(adv_labels)), adv_labels, probs)
    out["advglue"].update(data["adv_skipped"])
    return out, rows


def metrics_of(figs: List[dict]) -> Dict[str, float]:
    """The figures the gate compares, each higher-is-better: `<backend>.acc`, `.label_loyalty`,
    `.prob_loyalty`, `.advglue_acc.<key>` and `.consistency.<perturbation>` (1 - flip rate). A perturbation that
    changed nothing has no figure, and so no metric."""
    m: Dict[str, float] = {}
    for f in figs:
        if f["status"] != "ok":
            continue
        b = f["backend"]
        m[f"{b}.acc"] = f["clean_acc"]["value"]
        if f.get("loyalty"):
            m[f"{b}.label_loyalty"] = f["loyalty"]["label"]["value"]
            m[f"{b}.prob_loyalty"] = f["loyalty"]["probability"]["value"]
        for key, a in f["advglue"].items():
            if isinstance(a, dict):
                m[f"{b}.advglue_acc.{key}"] = a["acc"]["value"]
        for pname, inv in f["invariance"].items():
            if inv["flip_rate"]["value"] is not None:
                m[f"{b}.consistency.{pname}"] = 1.0 - inv["flip_rate"]["value"]
    return m


def run(cfg: Config) -> Dict[str, Any]:
    device = env.setup_device(cfg.device)
    tokenizer, model, model_info = models.load(cfg.model, cfg.task, seed=cfg.train.seed, need_head=True)
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed, need_train=False)
    split = next(iter(cfg.task.local.eval_files))
    ds = raw[split]
    columns = [c for c in ("sentence1", "sentence2") if c in ds.column_names]
    examples = [tuple(t) for t in zip(*(ds[c] for c in columns))]
    labels = np.asarray(ds["label"], dtype=int)
    notes = [f"robustness on the {split} split ({len(examples)} examples), batch {cfg.robustness.batch_size}"]
    if model_info["head"] == "random":
        notes.append("head: random: these figures describe an untrained head")
    names = B.resolve(cfg.timing.backends, device)
    adv, adv_skipped = _adv_sets(cfg)
    majority = trivial.predictors(cfg.task, None, labels)
    data = {
        "examples": examples,
        "labels": labels,
        "adv": adv,
        "adv_skipped": adv_skipped,
        "perturbed": perturbed_sets(cfg, examples, tokenizer, cfg.task.max_seq_length),
        "majority_name": next(iter(majority)),
        "majority": next(iter(majority.values())),
    }
    ref_rows: List[dict] = []
    if cfg.robustness.reference:
        rtok, rmodel, reference = _load_reference(cfg)
        if rmodel.config.num_labels != model.config.num_labels:
            raise BenchError(
                f"robustness.reference={cfg.robustness.reference} has {rmodel.config.num_labels} labels,"
                f" this task {cfg.task.name} has {model.config.num_labels}: not a checkpoint of this task"
            )
        ref_model, ref_tok = rmodel, rtok
    else:
        reference = {"checkpoint": "this checkpoint", "backend": "eager", "name": cfg.model.name}
        ref_model, ref_tok = model, tokenizer
    ref_prep = B.prepare("eager", copy.deepcopy(ref_model), device)
    data["reference"] = probabilities(
        ref_prep, ref_tok, examples, cfg.task.max_seq_length, cfg.robustness.batch_size, B.accepted_inputs(ref_model)
    )
    ref_rows = _rows("reference", "clean", range(len(examples)), labels, data["reference"])
    reference["clean_acc"] = figures.accuracy(data["reference"].argmax(axis=1), labels, cfg.robustness.bootstrap)
    del ref_prep
    figs, rows, failures = [], list(ref_rows), []
    for name in names:
        log.info("robustness: scoring backend %s", name)
        fig, brows = score_backend(name, cfg, model, tokenizer, data, device)
        if fig["status"] == "unsupported" and name in cfg.timing.backends:
            failures.append(f"{name}: unsupported here ({fig['error']})")
        elif fig["status"] == "failed":  # named or from auto: a backend that broke is a failure of the run
            failures.append(f"{name}: failed ({fig['error']})")
        figs.append(fig)
        rows += brows
    write_jsonl(Path(cfg.out_dir) / PREDICTIONS, rows)
    unchanged = {
        n: f"changed the model input of no example (text changed in {p['text_changed']})"
        for n, p in data["perturbed"].items()
        if not p["changed"].any()
    }
    notes += [f"invariance {n}: {why}: no flip rate" for n, why in unchanged.items()]
    section = {
        "perturbation_set": cfg.robustness.perturbations,
        "predictions": PREDICTIONS,
        "reference": reference,
        "backends": figs,
        "unchanged": unchanged,
        "split": split,
        "seed": cfg.robustness.seed,
        "multiple_choice": None,
    }
    return {
        "model": model_info,
        "task": {
            "name": cfg.task.name,
            "eval_splits": [split],
            "source": "local" if cfg.data.dir else "hub",
            "examples": len(examples),
        },
        "metrics": metrics_of(figs),
        "robustness": section,
        "notes": notes,
        "failures": failures,
    }
