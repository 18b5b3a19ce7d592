#!/usr/bin/env bash
# Every run of experiments/cross_corpus/README.md, one after the other (about 20 min on 2 CPU cores).
# Usage: bash experiments/cross_corpus/run.sh [extra overrides]; $SER_EMODB / $SER_SAVEE point at the corpora.
set -euo pipefail
cd "$(dirname "$0")/../.."
EMODB=${SER_EMODB:-../shared/data/emodb}
SAVEE=${SER_SAVEE:-../shared/data/savee}
PY=${PY:-.venv/bin/python}
CORPORA="data.corpora={emodb: $EMODB, savee: $SAVEE}"
FOUR="data.labels=[anger,happiness,neutral,sadness]"
OUT=runs/cross_corpus

run() {  # name, overrides...
  local name=$1; shift
  local start=$SECONDS
  $PY train.py data=multi "$CORPORA" "$@" "hydra.run.dir=$OUT/$name"
  echo "$name: $((SECONDS - start)) s" >> "$OUT/wall_times.txt"
}

mkdir -p "$OUT"
for test in savee emodb; do
  for norm in global corpus; do
    run "scratch_${test}_${norm}" split=corpus split.test=$test "$FOUR" features.normalize=$norm "$@"
    run "pretrained_${test}_${norm}" experiment=pretrained split=corpus split.test=$test "$FOUR" features.normalize=$norm "$@"
  done
done
run loco_scratch split=corpus "$@"          # leave one corpus out, the 6 shared classes
run loco_pretrained experiment=pretrained split=corpus "$@"
$PY -m ser.diagnose run=$OUT/scratch_savee_global
$PY -m ser.diagnose run=$OUT/pretrained_savee_global
