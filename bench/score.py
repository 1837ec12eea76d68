"""`bench score`: score a few examples of your own with a fine-tuned checkpoint, for every task kind.

    python -m bench score --task copa --model results/runs/.../checkpoint examples.jsonl
    echo '{"context": "...", "choices": ["...", "..."]}' | python -m bench score --task piqa --model CKPT -

Input: JSON lines in the task's own fields. Classification and regression: the task's text columns as the Hub
names them (`sentence1`, `sentence2`; SST-2's `sentence`, QQP's `question1`/`question2`) or as its local file
does. Multiple choice: the task's release layout (ARC's {"question": {"stem", "choices"}}, COPA's premise/
choice1/choice2/question, PIQA's goal/sol1/sol2) or, for any of them, {"context": TEXT, "choices": [TEXT, ...]}.
SQuAD: {"question", "context"}, and optionally "answers" (a list of texts: the output adds its exact_match and
f1). The gold answer is optional. Inputs are truncated where the checkpoint's run trained (--max-seq-length).
Output: one JSON line per example with each label's or choice's probability (softmax of the head's scores), the
prediction, when given, the gold, and `truncated` (the length) when the input was cut.
A checkpoint without a trained task head is refused, as mode=evaluate refuses it (--allow-random-head).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from . import kinds, models
from .config import compose
from .errors import BenchError, ConfigError, DataError, check_finite


def _rows(source: str) -> List[Tuple[str, Dict[str, Any]]]:
    name = "<stdin>" if source == "-" else source
    text = _decode(sys.stdin.buffer.read() if source == "-" else _read(Path(source)), name)
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{name}, line {number}: not a JSON object ({exc.msg}); expected one example per line "
                "in the task's own fields"
            ) from None
        if not isinstance(row, dict):
            raise DataError(f"{name}, line {number}: a JSON {type(row).__name__}, not an object")
        out.append((f"{name}, line {number}", row))
    if not out:
        raise DataError(f"{name}: no examples (one JSON object per line expected)")
    return out


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path.read_bytes()


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text, or a one-line error naming the line and the byte that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{name}, line {line}: not UTF-8 (byte {data[exc.start]:#04x}); save the examples as UTF-8"
        ) from None


def _gold(task, where: str, gold: Any) -> Any:
    """The gold label as the task names it (a label, or its index), checked: never echoed unread."""
    if gold is None:
        return None
    if kinds.of(task).regression:
        if isinstance(gold, (int, float)) and not isinstance(gold, bool) and np.isfinite(gold):
            return float(gold)
        raise DataError(f"{where}: gold score {gold!r} is not a finite number (task {task.name} is a regression)")
    if isinstance(gold, str) and gold in task.labels:
        return gold
    if isinstance(gold, int) and not isinstance(gold, bool):
        if str(gold) in task.labels:  # MRPC's labels are "0" and "1"
            return str(gold)
        if 0 <= gold < len(task.labels):
            return task.labels[gold]
    raise DataError(f"{where}: gold label {gold!r} is not one of {task.labels} (or an index into them)")


def _texts(task, where: str, row: Dict[str, Any]) -> Tuple[List[str], Any]:
    """Classification/regression: the text columns (Hub or local names) and the gold label, if any."""
    for columns in (task.hub.text_columns, task.local.text_columns):
        if columns and all(c in row for c in columns):
            bad = [c for c in columns if not isinstance(row[c], str) or not row[c].strip()]
            if bad:  # a number, null or a list was scored as its printed form
                raise DataError(f"{where}: {bad} must be non-empty text; got {[row[c] for c in bad]!r}")
            gold = row.get(task.hub.label_column, row.get(task.local.label_column))
            return [row[c] for c in columns], _gold(task, where, gold)
    raise DataError(
        f"{where}: expected the fields {task.hub.text_columns} (or {task.local.text_columns}) of task "
        f"{task.name}; got {sorted(row)}"
    )


def _choice_example(task, where: str, row: Dict[str, Any]) -> Tuple[str, List[str], Any]:
    """Multiple choice: {"context", "choices"} or the task's release layout; the gold answer is optional."""
    from .tasks.multiple_choice import example, layout_module

    if "context" in row and "choices" in row:
        gold = row.get("label")
        example(
            where,
            'expected {"context": TEXT, "choices": [TEXT, ...]}',
            row["context"],
            row["choices"],
            gold if gold is not None else 0,
        )
        return row["context"], row["choices"], gold
    layout = task.local.layout or task.hub.layout
    reader = layout_module(layout, task)
    fill = {
        "arc": ("answerKey", lambda r: r.get("question", {}).get("choices", [{}])[0].get("label", "A")),
        "copa": ("label", lambda r: 0),
    }.get(layout)
    gold_key = fill[0] if fill else "label"
    has_gold = gold_key in row
    desc = reader.describe(Path("."), []) if hasattr(reader, "describe") else layout
    try:  # a row of another shape (a string where an object belongs, no choices, a label that is not a number)
        if fill and not has_gold:
            row = {**row, fill[0]: fill[1](row)}
        if layout == "piqa":
            context, choices, label = reader.convert_with_label(where, row, int(row.get("label", 0)), desc)
        else:
            context, choices, label = reader.convert(where, row, desc)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{where}: not a row of task {task.name}'s {layout} layout ({type(exc).__name__}: {exc}); "
            f'expected {desc}, or {{"context": TEXT, "choices": [TEXT, ...]}}'
        ) from None
    return context, choices, label if has_gold else None


def _probabilities(logits: torch.Tensor) -> List[float]:
    return [round(float(p), 6) for p in torch.softmax(logits.float(), dim=-1)]


def trained_length(model_path: Path) -> Optional[int]:
    """The max_seq_length the run that saved this checkpoint trained with (its result.json beside it), if known:
    scoring truncates where training did."""
    for result in (model_path.parent / "result.json", model_path / "result.json"):
        try:
            config = json.loads(result.read_text())["config"]
            length = (config.get("train") or {}).get("max_seq_length") or config["task"]["max_seq_length"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            return length
    return None


def score(
    task_name: str,
    model_path: str,
    source: str,
    allow_random_head: bool = False,
    max_length: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """One output row per input example (see the module docstring); `max_length`: where inputs are truncated
    (None: the length the checkpoint's run trained with, else the task's)."""
    from . import task_names

    known = task_names()
    if task_name not in known:
        raise ConfigError(f"--task {task_name!r} is not a task; choices: {known}")
    cfg = compose(
        [
            f"task={task_name}",
            "model=bert_base",
            f"model.path={model_path}",
            "mode=evaluate",
            f"model.allow_random_head={str(allow_random_head).lower()}",
        ]
    )
    task, kind = cfg.task, kinds.of(cfg.task)
    length = max_length or trained_length(Path(model_path)) or task.max_seq_length
    if kind.table == "squad" and task.doc_stride >= length - 64:  # as training refuses it (bench/qa.py)
        raise ConfigError(
            f"max_seq_length {length} leaves no room for task.doc_stride={task.doc_stride} (the question and "
            f"special tokens share each window): give a length above {task.doc_stride + 64}"
        )
    rows = _rows(source)
    tokenizer, model, info = models.load(cfg.model, task, need_head=True)
    most = getattr(model.config, "max_position_embeddings", None)
    if most is not None and length > most:
        raise ConfigError(f"max_seq_length {length} is longer than this model's {most} positions")
    model.eval()
    out = []
    marks = {part: "random" for part in ("weights", "head") if info.get(part) == "random"}  # on every item
    if kind.table == "squad":
        return [{**item, **marks} for item in _squad(cfg, tokenizer, model, rows, length)]
    for where, row in rows:
        if kind.choices:
            context, choices, gold = _choice_example(task, where, row)
            enc = tokenizer(
                [context] * len(choices),
                choices,
                truncation=True,
                max_length=length,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits[0]
            check_finite(logits.float().numpy(), where, "fp32")
            probs = _probabilities(logits)
            item = {
                "context": context,
                "choices": [{"text": c, "probability": p} for c, p in zip(choices, probs)],
                "prediction": int(np.argmax(probs)),
            }
            if any(len(ids) > length for ids in tokenizer([context] * len(choices), choices)["input_ids"]):
                item["truncated"] = length  # the model saw the first `length` tokens of some pair
        else:
            texts, gold = _texts(task, where, row)
            enc = tokenizer(*texts, truncation=True, max_length=length, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**enc).logits[0]
            check_finite(logits.float().numpy(), where, "fp32")
            if kind.regression:
                item = {"input": texts, "score": float(logits.reshape(-1)[0])}
            else:
                probs = _probabilities(logits)
                item = {
                    "input": texts,
                    "probabilities": dict(zip(task.labels, probs)),
                    "prediction": task.labels[int(np.argmax(probs))],
                }
            if len(tokenizer(*texts)["input_ids"]) > length:
                item["truncated"] = length  # the model saw the first `length` tokens
        if gold is not None:
            item["gold"] = gold
        out.append({**item, **marks})
    return out


def _squad_gold(where: str, row: Dict[str, Any], version_2: bool) -> Optional[List[str]]:
    """The optional gold answers: a list of texts, or SQuAD's {"text": [...]} / [{"text": ...}, ...]."""
    gold = row.get("answers")
    if gold is None:
        return None
    if isinstance(gold, dict):
        gold = gold.get("text")
    if isinstance(gold, list) and all(isinstance(g, dict) for g in gold):
        gold = [g.get("text") for g in gold]
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise DataError(f'{where}: "answers" must be a list of texts (or SQuAD\'s {{"text": [...]}}); got {gold!r:.80}')
    if not gold and not version_2:
        raise DataError(f'{where}: "answers" is empty, and SQuAD v1.1 has no unanswerable questions (use squad_v2)')
    return gold


def _squad(cfg, tokenizer, model, rows, length: int) -> List[Dict[str, Any]]:
    from datasets import Dataset

    from .engine import eval_collator, predict_in_order
    from .tasks import squad
    from .tasks import squad_metrics as sm

    golds = []
    for where, row in rows:
        if not isinstance(row.get("question"), str) or not isinstance(row.get("context"), str):
            raise DataError(f'{where}: expected {{"question": TEXT, "context": TEXT}}; got {sorted(row)}')
        golds.append(_squad_gold(where, row, cfg.task.version_2))
    examples = Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(rows))],
            "question": [r["question"] for _, r in rows],
            "context": [r["context"] for _, r in rows],
        }
    )
    # named by line here: the windows below know each question by its position only
    squad.check_question_lengths(list(examples["question"]), [w for w, _ in rows], tokenizer, cfg.task, length)
    kwargs = {"tokenizer": tokenizer, "task": cfg.task, "max_length": length, "pad": False}
    feats = examples.map(squad.eval_features, batched=True, fn_kwargs=kwargs, remove_columns=examples.column_names)
    start, end = predict_in_order(
        model, feats, eval_collator(tokenizer), 16, torch.device("cpu"), "fp32", per_token=True
    )
    answers, margin = squad.postprocess(examples, feats, start, end, cfg.task)
    out = []
    for i, ((_, r), gold) in enumerate(zip(rows, golds)):
        item = {"question": r["question"], "answer": answers[str(i)], "null_margin": margin[str(i)]}
        if gold is not None:  # scored as the official script scores one question (EM/F1, best over the golds)
            one = sm.evaluate({"q": item["answer"]}, {"q": gold}, version_2=cfg.task.version_2)
            item.update(gold=gold, exact_match=one.get("exact_match", one.get("exact")), f1=one["f1"])
        out.append(item)
    return out


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench score", description=__doc__.splitlines()[0])
    ap.add_argument("input", help="a JSON-lines file of examples, or - for stdin")
    ap.add_argument("--task", required=True, help="the task the checkpoint was fine-tuned on (copa, mrpc, ...)")
    ap.add_argument("--model", required=True, help="a checkpoint folder (train.save_checkpoint=true writes one)")
    ap.add_argument("--allow-random-head", action="store_true", help="score a checkpoint without a trained head")
    ap.add_argument(
        "--max-seq-length",
        type=int,
        default=None,
        help="truncate inputs here (default: the length the checkpoint's run trained with, else the task's)",
    )
    args = ap.parse_args(argv)
    if args.max_seq_length is not None and args.max_seq_length < 8:
        ap.error(f"--max-seq-length {args.max_seq_length}: give a length of 8 tokens or more")
    model = Path(args.model)
    if (model / "checkpoint" / "config.json").is_file():  # a run folder: its saved checkpoint
        model = model / "checkpoint"
    try:
        for item in score(args.task, str(model), args.input, args.allow_random_head, args.max_seq_length):
            print(json.dumps(item, ensure_ascii=False))
    except BenchError as exc:
        print(f"bench score: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
