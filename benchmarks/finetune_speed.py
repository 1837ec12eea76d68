"""Fine-tune minilm_l6 on MRPC twice in one run: transformers' run_glue.py recipe versus the harness defaults.

The recipe: every example padded to 128, lr 2e-5, batch 32, 3 epochs, fp32, random batches (run_glue.py's
defaults with --pad_to_max_length). The harness: its own defaults (dynamic padding, length-grouped batches,
bf16 where the CPU has it natively, the model file's recipe). Prints the wall-time ratio and both dev scores.

    python benchmarks/finetune_speed.py [--data ../shared/data/glue] [--out results/bench/finetune_speed]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.config import compose
from bench.runner import run

RECIPE = [
    "train.padding=max_length",
    "train.group_by_length=false",
    "train.precision=fp32",
    "train.learning_rate=2e-5",
    "train.batch_size=32",
    "train.epochs=3",
    "train.warmup=0.0",
    "train.weight_decay=0.0",
]


def one(name: str, extra: list, data: str, out: Path) -> dict:
    cfg = compose(["model=minilm_l6", "task=mrpc", f"data.dir={data}", *extra], out_dir=str(out / name))
    t0 = time.perf_counter()
    result = run(cfg)
    wall = time.perf_counter() - t0
    print(f"[{name}] wall {wall:.1f} s, train {result.train['seconds']:.1f} s, metrics {result.metrics}", flush=True)
    return {
        "wall_s": round(wall, 2),
        "train_s": result.train["seconds"],
        "metrics": result.metrics,
        "precision": result.train["precision"],
        "overrides": extra,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--out", default=f"results/bench/finetune_speed/{datetime.now():%Y%m%d-%H%M%S}")
    args = ap.parse_args()
    out = Path(args.out)
    harness = one("harness", [], args.data, out)
    recipe = one("run_glue_recipe", RECIPE, args.data, out)
    ratio = recipe["wall_s"] / harness["wall_s"]
    summary = {
        "recipe": recipe,
        "harness": harness,
        "speedup_wall": round(ratio, 2),
        "f1_change_points": round(100 * (harness["metrics"]["f1"] - recipe["metrics"]["f1"]), 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\nrun_glue recipe : {recipe['wall_s']:7.1f} s  acc {recipe['metrics']['acc']:.4f}  "
        f"F1 {recipe['metrics']['f1']:.4f}"
    )
    print(
        f"harness defaults: {harness['wall_s']:7.1f} s  acc {harness['metrics']['acc']:.4f}  "
        f"F1 {harness['metrics']['f1']:.4f}"
        f"  ({harness['precision']})"
    )
    print(f"speed-up {ratio:.2f}x, F1 change {summary['f1_change_points']:+.2f} points  -> {out / 'summary.json'}")
    # the claim: the harness defaults are faster and cost no more than one F1 point against run_glue's recipe
    if ratio <= 1 or summary["f1_change_points"] < -1:
        print("finetune_speed: CLAIM FAILED (not faster, or more than 1 F1 point lost)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
