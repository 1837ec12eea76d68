#!/usr/bin/env bash
# The multiple-choice measurement of docs/multiple_choice.md, in resumable pieces. Each piece holds the shared
# CPU lock once for all its runs (small about 14 minutes and seeds 27 on the Intel AMX class; piqa took 32 under
# other load); each run is one CLI call in its own folder below $OUT, and a run whose folder already holds an ok
# result.json is skipped.
# Usage: benchmarks/multiple_choice.sh PIECE [OUT]
#   piqa:    MiniLM-L6 on PIQA, whole training set, 1 epoch, seed 1
#   small:   MiniLM-L6, seed 1, whole training sets: COPA (10 epochs, checkpoint kept for `bench score`), ARC-Easy (3 epochs), OpenBookQA (2 epochs)
#   seeds:   the same for COPA, ARC-Easy and OpenBookQA, seeds 2 and 3
#   piqa-seeds: PIQA as in piqa, seeds 2 and 3
#   latency: MobileBERT, TinyBERT-4L, BERT-base with a multiple-choice head (random weights), batch 1,
#            choices 2 and 4, seq 128, the backends native here (auto)
set -u
piece=${1:?piqa, small, seeds, piqa-seeds or latency}
OUT=${2:-results/mc}
DATA=${DATA:-../shared/data/multiple_choice}
PY=${PY:-python}
LOCK=${LOCK:-/tmp/cpu-heavy.lock}
if [ -z "${MC_LOCK_HELD:-}" ]; then  # take the lock once for the whole piece
  MC_LOCK_HELD=1 exec flock "$LOCK" "$0" "$@"
fi

one() {  # one(name, overrides...): run unless $OUT/name already holds an ok result
  local name=$1; shift
  local dir="$OUT/$name"
  if [ -f "$dir/result.json" ] && grep -q '"status": "ok"' "$dir/result.json"; then echo "skip $name (done)"; return; fi
  [ -e "$dir" ] && mv "$dir" "$dir.failed-$(date +%s)"
  echo "run $name: $* ($(date -u +%T))"
  "$PY" -m bench "$@" "hydra.run.dir=$dir" 2>&1 | tail -2
}

case $piece in
piqa)
  one piqa_s1 model=minilm_l6 task=piqa data.dir=$DATA train.epochs=1 train.seed=1 ;;
small)
  one copa_s1 model=minilm_l6 task=copa data.dir=$DATA train.epochs=10 train.seed=1 train.save_checkpoint=true
  one arc_easy_s1 model=minilm_l6 task=arc_easy data.dir=$DATA train.epochs=3 train.seed=1
  one obqa_s1 model=minilm_l6 task=openbookqa data.dir=$DATA train.epochs=2 train.seed=1 ;;
seeds)
  for seed in 2 3; do
    one "copa_s$seed" model=minilm_l6 task=copa data.dir=$DATA train.epochs=10 train.seed=$seed train.save_checkpoint=true
    one "arc_easy_s$seed" model=minilm_l6 task=arc_easy data.dir=$DATA train.epochs=3 train.seed=$seed
    one "obqa_s$seed" model=minilm_l6 task=openbookqa data.dir=$DATA train.epochs=2 train.seed=$seed
  done ;;
piqa-seeds)
  for seed in 2 3; do
    one "piqa_s$seed" model=minilm_l6 task=piqa data.dir=$DATA train.epochs=1 train.seed=$seed
  done ;;
latency)
  for m in tinybert_4l mobilebert bert_base; do
    one "latency_$m" model=$m model.pretrained=false task=piqa mode=latency timing.batch_sizes=[1] \
      timing.seq_lens=[128] timing.choices=[2,4] timing.min_seconds=3 timing.warmup_runs=5
  done ;;
esac
echo "piece $piece done ($(date -u +%T))"
