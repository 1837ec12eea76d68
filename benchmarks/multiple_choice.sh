#!/usr/bin/env bash
# The multiple-choice measurement of docs/multiple_choice.md, in resumable pieces: each run is one CLI call in its
# own folder below $OUT, held under the shared CPU lock, and a run whose folder already holds an ok result.json
# is skipped. Usage: benchmarks/multiple_choice.sh finetune|latency [OUT]
#   finetune: MiniLM-L6 on PIQA (1 epoch, 1 seed), OpenBookQA (2 epochs), ARC-Easy (3 epochs) and COPA (10 epochs),
#             the latter three with seeds 1, 2, 3 where they fit; whole training sets, dev accuracy.
#   latency:  MobileBERT, TinyBERT-4L and BERT-base with a multiple-choice head (random weights), batch 1,
#             choices 2 and 4, seq 128, the backends native here (auto).
set -u
piece=${1:?finetune or latency}
OUT=${2:-results/mc}
DATA=${DATA:-../shared/data/multiple_choice}
PY=${PY:-python}
LOCK=${LOCK:-/tmp/cpu-heavy.lock}

one() {  # one(name, overrides...): run unless $OUT/name already holds an ok result
  local name=$1; shift
  local dir="$OUT/$name"
  if [ -f "$dir/result.json" ] && grep -q '"status": "ok"' "$dir/result.json"; then echo "skip $name (done)"; return; fi
  [ -f "$dir/result.json" ] && mv "$dir" "$dir.failed-$(date +%s)"
  echo "run $name: $*"
  flock "$LOCK" "$PY" -m bench "$@" "hydra.run.dir=$dir" 2>&1 | tail -3
}

case $piece in
finetune)
  # one seed of each task first, so that every task has a figure however far the queue gets; then more seeds
  one copa_s1 model=minilm_l6 task=copa data.dir=$DATA train.epochs=10 train.seed=1
  one arc_easy_s1 model=minilm_l6 task=arc_easy data.dir=$DATA train.epochs=3 train.seed=1
  one obqa_s1 model=minilm_l6 task=openbookqa data.dir=$DATA train.epochs=2 train.seed=1
  one piqa_s1 model=minilm_l6 task=piqa data.dir=$DATA train.epochs=1 train.seed=1
  for seed in 2 3; do
    one "copa_s$seed" model=minilm_l6 task=copa data.dir=$DATA train.epochs=10 train.seed=$seed
    one "arc_easy_s$seed" model=minilm_l6 task=arc_easy data.dir=$DATA train.epochs=3 train.seed=$seed
  done
  for seed in 2 3; do
    one "obqa_s$seed" model=minilm_l6 task=openbookqa data.dir=$DATA train.epochs=2 train.seed=$seed
  done
  ;;
latency)
  for m in tinybert_4l mobilebert bert_base; do
    one "latency_$m" model=$m model.pretrained=false task=piqa mode=latency timing.batch_sizes=[1] \
      timing.seq_lens=[128] timing.choices=[2,4] timing.min_seconds=3 timing.warmup_runs=5
  done
  ;;
esac
