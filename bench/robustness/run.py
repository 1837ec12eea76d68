"""mode=robustness: what a checkpoint (on each backend) gives up beyond accuracy, on a classification task (and,
through `Inputs`, on a multiple-choice one: bench/robustness/choices.py).

For each backend of timing.backends less timing.exclude (built by bench/timing/backends.py, as latency builds them):
clean dev accuracy; loyalty to a reference (robustness.reference=CHECKPOINT, else this checkpoint on fp32
eager); invariance under the named perturbation set; AdvGLUE accuracy beside the trivial predictor. Every
prediction the figures come from is written to robustness_predictions.jsonl beside result.json.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import env, models, tasks
from ..config import Config
from ..errors import ConfigError
from ..results import write_jsonl
from ..tasks import trivial
from ..timing import backends as B
from . import advglue, checkpoints, figures, perturb
from .scoring import Example, NonFiniteOutput, probabilities, token_ids

log = logging.getLogger("bench")
PREDICTIONS = "robustness_predictions.jsonl"


def contraction_style(cfg: Config) -> Optional[str]:
    """How this task's contractions are written (robustness.contraction_style), where a perturbation of the set
    follows it; None where none does (inv-v1)."""
    rc = cfg.robustness
    styled = any(p.styled for p in perturb.get(rc.perturbations, rc.only))
    return rc.contraction_style.get(cfg.task.name, "attached") if styled else None


def perturbed_sets(
    cfg: Config, examples: List[Example], tokenizer, max_length: int, ids: Callable = token_ids
) -> Dict[str, Dict[str, Any]]:
    """name -> the perturbed examples, which ones changed in text and in model input (token ids, by `ids`)."""
    rc = cfg.robustness
    clean_ids = ids(tokenizer, examples, max_length)
    out = {}
    style = contraction_style(cfg) or "attached"
    for p in perturb.get(rc.perturbations, rc.only):
        new = [tuple(perturb.apply(p, ex, rc.perturbations, rc.seed, i, style)) for i, ex in enumerate(examples)]
        text_changed = np.array([a != b for a, b in zip(new, examples)])
        new_ids = ids(tokenizer, new, max_length)
        changed = np.ones(len(new), bool) if p.control else np.array([a != b for a, b in zip(new_ids, clean_ids)])
        out[p.name] = {"examples": new, "text_changed": int(text_changed.sum()), "changed": changed}
    return out


def _adv_sets(cfg: Config) -> Tuple[Dict[str, Tuple[List[Example], List[int]]], Dict[str, str]]:
    keys = cfg.robustness.advglue_keys.get(cfg.task.name, [])
    if not keys:
        return {}, {"-": f"AdvGLUE has no rows for task {cfg.task.name}"}
    path = cfg.robustness.advglue
    if path is None and cfg.data.dir:
        return {}, {k: "not scored: robustness.advglue=PATH names the local dev.json (data is local)" for k in keys}
    return {k: advglue.rows(cfg.task, k, path) for k in keys}, {}


def rows_of(
    backend: str,
    kind: str,
    idx: Sequence[int],
    labels,
    probs: np.ndarray,
    k: Optional[Sequence[int]] = None,
    predictions: Optional[Sequence[int]] = None,
    **extra,
) -> List[dict]:
    """One predictions-file row per scored input; `k`: each example's real width (a multiple-choice row's
    probabilities are padded to the widest example; the file holds the real ones only); `predictions`: where the
    prediction is not the probabilities' argmax (a choice order's tie goes to the candidate shown first)."""
    return [
        {
            "backend": backend,
            "set": kind,
            "idx": int(i),
            "label": int(y),
            "prediction": int(p.argmax() if predictions is None else predictions[n]),
            "probs": [float(x) for x in (p if k is None else p[: k[i]])],
            **{key: v[n] for key, v in extra.items()},
        }
        for n, (i, y, p) in enumerate(zip(idx, labels, probs))
    ]


@dataclass(frozen=True)
class Inputs:
    """What a task kind changes in this mode: how dev rows become examples (tuples of texts), how they are scored
    and tokenised, and any figures of its own (multiple choice: the choice orders, bench/robustness/choices.py)."""

    examples: Callable[[Any], List[Example]]  # the dev split (a datasets.Dataset) -> examples
    probabilities: Callable = probabilities  # (prepared, tokenizer, examples, max_length, batch_size, names)
    token_ids: Callable = token_ids  # (tokenizer, examples, max_length) -> comparable model inputs
    prepare: Optional[Callable] = None  # (cfg, data) -> adds what `extra` needs to data
    extra: Optional[Callable] = None  # (backend, score, cfg, data, clean, out, rows): more figures per backend
    section: Optional[Callable] = None  # (data) -> (the result's robustness.multiple_choice, notes)
    width: Optional[Callable] = None  # (data) -> each example's real number of outputs (None: all the same)


def _sentences(ds) -> List[Example]:
    columns = [c for c in ("sentence1", "sentence2") if c in ds.column_names]
    return [tuple(t) for t in zip(*(ds[c] for c in columns))]


CLASSIFICATION = Inputs(examples=_sentences)


def score_backend(
    name: str, cfg: Config, model, tokenizer, data: Dict[str, Any], device, inputs: Inputs = CLASSIFICATION
) -> Tuple[dict, List[dict]]:
    """Every figure for one backend, and its per-example rows (failures are the backend's, not the run's): one that
    cannot run here is `unsupported`; one that broke on this model (export failed, NaN outputs) is `failed`."""
    try:
        prepared = B.prepare(name, copy.deepcopy(model), device)
    except B.BackendUnavailable as exc:
        return {"backend": name, "status": "unsupported", "error": str(exc)}, []
    except B.BackendFailed as exc:
        return {"backend": name, "status": "failed", "error": str(exc)}, []
    try:
        return _score(name, prepared, cfg, model, tokenizer, data, inputs)
    except NonFiniteOutput as exc:
        return {"backend": name, "status": "failed", "error": str(exc)}, []


def _score(
    name: str, prepared, cfg: Config, model, tokenizer, data: Dict[str, Any], inputs: Inputs
) -> Tuple[dict, List[dict]]:
    rc, max_len = cfg.robustness, cfg.task.max_seq_length
    names = B.accepted_inputs(model)
    score = lambda ex: inputs.probabilities(prepared, tokenizer, ex, max_len, rc.batch_size, names)  # noqa: E731
    labels, examples, k = data["labels"], data["examples"], data.get("k")
    clean = score(examples)
    pred = clean.argmax(axis=1)
    rows = rows_of(name, "clean", range(len(examples)), labels, clean, k)
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
        rows += rows_of(name, f"inv:{pname}", idx, [labels[i] for i in idx], probs, k)
    for key, (adv_examples, adv_labels) in data["adv"].items():
        probs = score(adv_examples)
        const = np.full(len(adv_labels), data["majority"])
        out["advglue"][key] = {
            "acc": figures.accuracy(probs.argmax(axis=1), adv_labels, rc.bootstrap),
            "trivial": figures.accuracy(const, adv_labels, rc.bootstrap),
            "trivial_predictor": data["majority_name"],
            "majority": int(data["majority"]),
        }
        rows += rows_of(name, f"advglue:{key}", range(len(adv_labels)), adv_labels, probs)
    out["advglue"].update(data["adv_skipped"])
    if inputs.extra is not None:
        inputs.extra(name, score, cfg, data, clean, out, rows)
    return out, rows


def metrics_of(figs: List[dict]) -> Dict[str, float]:
    """The figures the gate compares, each higher-is-better: `<backend>.acc`, `.label_loyalty`,
    `.prob_loyalty`, `.advglue_acc.<key>` and `.consistency.<perturbation>` (1 - flip rate; multiple choice: also
    `.consistency.order_<name>` per choice order and `.consistency.order_any`). A perturbation or order that
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
        for pname, inv in {**f["invariance"], **f.get("choice_orders", {})}.items():
            if inv["flip_rate"]["value"] is not None:
                m[f"{b}.consistency.{pname}"] = 1.0 - inv["flip_rate"]["value"]
    return m


def _reference(cfg: Config, model, tokenizer, examples, labels, inputs: Inputs, device, k) -> Tuple[dict, Any, list]:
    """The reference's description, its probabilities on the clean examples and its predictions-file rows."""
    if cfg.robustness.reference:
        ref_tok, ref_model, reference = checkpoints.load_reference(cfg)
    else:
        reference = {"checkpoint": "this checkpoint", "identity": "self", "backend": "eager", "name": cfg.model.name}
        ref_model, ref_tok = model, tokenizer
    prepared = B.prepare("eager", copy.deepcopy(ref_model), device)
    rc = cfg.robustness
    probs = inputs.probabilities(
        prepared, ref_tok, examples, cfg.task.max_seq_length, rc.batch_size, B.accepted_inputs(ref_model)
    )
    reference["clean_acc"] = figures.accuracy(probs.argmax(axis=1), labels, rc.bootstrap)
    return reference, probs, rows_of("reference", "clean", range(len(examples)), labels, probs, k)


def run(cfg: Config, inputs: Inputs = CLASSIFICATION) -> Dict[str, Any]:
    """The robustness run's result sections; `inputs` says how the task kind's examples are read and scored."""
    device = env.setup_device(cfg.device)
    names = B.resolve(cfg.timing.backends, device, cfg.timing.exclude)
    if not names:
        raise ConfigError(f"timing.exclude={cfg.timing.exclude} leaves no backend of {cfg.timing.backends} to score")
    tokenizer, model, model_info = models.load(cfg.model, cfg.task, seed=cfg.train.seed, need_head=True)
    raw = tasks.load(cfg.task, cfg.data, seed=cfg.train.seed, need_train=False)
    split = next(iter(cfg.task.local.eval_files))
    ds = raw[split]
    examples = inputs.examples(ds)
    labels = np.asarray(ds["label"], dtype=int)
    notes = [f"robustness on the {split} split ({len(examples)} examples), batch {cfg.robustness.batch_size}"]
    untrained = model_info["head"] == "random"
    if untrained:
        notes.append("head: random: these figures describe an untrained head")
    adv, adv_skipped = _adv_sets(cfg)
    majority = trivial.predictors(cfg.task, None, labels) if adv else {None: None}
    data = {
        "examples": examples,
        "labels": labels,
        "adv": adv,
        "adv_skipped": adv_skipped,
        "majority_name": next(iter(majority)),
        "majority": next(iter(majority.values())),
    }
    data["k"] = inputs.width(data) if inputs.width else None
    data["perturbed"] = perturbed_sets(cfg, examples, tokenizer, cfg.task.max_seq_length, inputs.token_ids)
    if inputs.prepare is not None:
        inputs.prepare(cfg, data)
    reference, data["reference"], rows = _reference(cfg, model, tokenizer, examples, labels, inputs, device, data["k"])
    figs, failures = [], []
    for name in names:
        log.info("robustness: scoring backend %s", name)
        fig, brows = score_backend(name, cfg, model, tokenizer, data, device, inputs)
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
    flags = ["head: random"] if untrained else []  # shown wherever the figures are, as in every mode
    for fig in figs:  # the controls score the same inputs again: any flip is the scoring's, and taints every figure
        for control, inv in {**fig.get("invariance", {}), **fig.get("choice_orders", {})}.items():
            rate = (inv.get("flip_rate") or {}).get("value") if control in ("identity", "order_identity") else None
            if rate:
                flags.append(
                    f"{fig['backend']}: the {control} control flipped {100 * rate:.1f}%: scoring is not deterministic"
                )
    mc, mc_notes = inputs.section(data) if inputs.section else (None, [])
    section = {
        "perturbation_set": cfg.robustness.perturbations,
        "contraction_style": contraction_style(cfg),
        "predictions": PREDICTIONS,
        "reference": reference,
        "backends": figs,
        "unchanged": unchanged,
        "split": split,
        "seed": cfg.robustness.seed,
        "multiple_choice": mc,
        "source": checkpoints.source_run(cfg.model),
        # what the AdvGLUE figures were scored on, wherever the file was: rows and a hash of their texts and labels
        "advglue_rows": {k: advglue.identity(*rows) for k, rows in adv.items()},
        "backends_requested": list(cfg.timing.backends),
        **({"backends_excluded": list(cfg.timing.exclude)} if cfg.timing.exclude else {}),
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
        "notes": notes + mc_notes,
        "flags": flags,
        "failures": failures,
    }
