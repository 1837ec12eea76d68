"""The small real benchmark the regression gate compares: a real fine-tune and the small models' latency.

    python benchmarks/gate_suite.py OUT_DIR [--data ../shared/data/glue]

1. all-MiniLM-L6-v2 (packaged, pretrained) fine-tuned on 1000 real MRPC training rows for one epoch, scored on
   the full dev set (fixed seed: deterministic on CPU, so any metric change is a real change);
2. latency of TinyBERT-4L and MobileBERT (exact architectures, random weights), eager and int8, batch 1,
   sequence 128, with the machine's GEMM calibration.
Takes about three minutes on 2 cores. `make baseline` writes it to results/baselines/cpu, `make gate` compares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.config import compose
from bench.runner import run

SUITE = {
    "finetune_minilm_mrpc": ["model=minilm_l6", "task=mrpc", "data.max_train_samples=1000", "train.epochs=1"],
    "latency_tinybert_4l": ["model=tinybert_4l", "model.pretrained=false", "mode=latency"],
    "latency_mobilebert": ["model=mobilebert", "model.pretrained=false", "mode=latency"],
}
LATENCY = ["timing.backends=[eager,int8]", "timing.batch_sizes=[1]", "timing.seq_lens=[128]", "timing.min_seconds=5"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", default="../shared/data/glue")
    args = ap.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        print(f"gate_suite: {args.out} is not empty; results are never overwritten", file=sys.stderr)
        return 2
    for name, overrides in SUITE.items():
        extra = LATENCY if "mode=latency" in overrides else [f"data.dir={args.data}"]
        result = run(compose([*overrides, *extra], out_dir=str(args.out / name)))
        print(f"gate_suite: {name}: {result.status} {result.metrics or ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
