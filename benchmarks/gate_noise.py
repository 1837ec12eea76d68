"""How noisy is this machine for the regression gate? False alarms among repeated runs of the same code, and
the smallest injected slowdown the gate reliably detects.

    python benchmarks/gate_noise.py [--repeats 11] [--seconds 3] [--out DIR]

1. The same latency measurement (TinyBERT-4L and MobileBERT, random weights, eager and int8, batch 1, seq 128,
   each backend in its own process) is repeated; consecutive runs are compared pair by pair with the gate at
   several --min-factor values, counting false alarms.
2. A real slowdown (a sleep in the first encoder layer's forward, sized as a fraction of TinyBERT-4L's p50) is
   injected; each slowed run is compared with every clean run, giving a detection rate per size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from bench import compare, models
from bench.config import compose
from bench.report.gather import find
from bench.runner import run

FACTORS = [1.05, 1.10, 1.20, 1.30, 1.50]


def measure(out: Path, model: str, seconds: float, backends: str, isolate: bool = True) -> dict:
    cfg = compose(
        [
            f"model={model}",
            "model.pretrained=false",
            "mode=latency",
            f"timing.backends=[{backends}]",
            "timing.batch_sizes=[1]",
            "timing.seq_lens=[128]",
            f"timing.min_seconds={seconds}",
            f"timing.isolate={str(isolate).lower()}",
        ],
        out_dir=str(out),
    )
    return run(cfg).to_dict()


def gate(a: Path, b: Path, factor: float) -> bool:
    rows = compare.compare(find(a), find(b), compare.Policy(min_factor=factor))
    return any(r.regressed and "latency" in r.figure for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=Path(f"results/bench/gate_noise/{datetime.now():%Y%m%d-%H%M%S}"))
    args = ap.parse_args()
    runs = []
    for i in range(args.repeats):
        for model in ("tinybert_4l", "mobilebert"):
            measure(args.out / f"clean{i}" / model, model, args.seconds, "eager,int8")
        runs.append(args.out / f"clean{i}")
        print(f"clean run {i} done", flush=True)
    pairs = list(zip(runs, runs[1:]))
    alarms = {f: sum(gate(a, b, f) for a, b in pairs) for f in FACTORS}
    [
        [r["latency_s"]["p50"] for r in res["latency"]]
        for res in (json.loads(p.read_text()) for p in sorted(args.out.glob("clean*/*/result.json")))
    ]
    print(f"false alarms over {len(pairs)} consecutive comparisons, by --min-factor: {alarms}")
    # injected slowdowns on TinyBERT-4L eager, relative to its clean median
    clean_tiny = [args.out / f"clean{i}" / "tinybert_4l" for i in range(args.repeats)]
    base_p50 = float(
        np.median([json.loads((p / "result.json").read_text())["latency"][0]["latency_s"]["p50"] for p in clean_tiny])
    )
    detection = {}
    real_load = models.load_model
    for frac in (0.10, 0.20, 0.30, 0.50, 1.00):

        def slowed(*a, _d=frac * base_p50, **k):
            m, missing = real_load(*a, **k)
            m.bert.encoder.layer[0].register_forward_pre_hook(lambda *_: time.sleep(_d))
            return m, missing

        models.load_model = slowed
        slow = args.out / f"slow{int(frac * 100)}"
        measure(slow, "tinybert_4l", args.seconds, "eager", isolate=False)
        models.load_model = real_load
        detection[frac] = {f: float(np.mean([gate(c, slow, f) for c in clean_tiny])) for f in FACTORS}
        print(f"slowdown {frac:.0%}: detection rate by factor {detection[frac]}", flush=True)
    summary = {
        "repeats": args.repeats,
        "false_alarms": alarms,
        "comparisons": len(pairs),
        "detection_rate": detection,
        "tinybert_eager_p50_ms": 1e3 * base_p50,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    # the README's claims for the default factor: no false alarm, and a 2x slowdown always caught
    default = compare.DEFAULT_MIN_FACTOR
    if alarms.get(default, 1) > 0 or detection[1.00].get(default, 0) < 1.0:
        print(f"gate_noise: CLAIM FAILED at --min-factor {default}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
