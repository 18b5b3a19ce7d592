#!/usr/bin/env bash
# EmoDB, leave-one-speaker-out: frozen GE2E under every downstream, and the classical feature sets.
# Usage (from the repository root, venv active):  bash experiments/pretrained/run.sh
# EmoDB from $SER_EMODB (default ../shared/data/emodb); runs go to runs/pretrained/<name>.
# The first run computes GE2E once per utterance into .cache/ser/features (about a minute);
# every later run, fold and epoch reads the cache.
set -euo pipefail
ROOT=${SER_EMODB:-../shared/data/emodb}
OUT=${OUT:-runs/pretrained}
run() {
  local name=$1; shift
  [ -f "$OUT/$name/cv_summary.json" ] && { echo "skip $name (done)"; return; }
  local start=$SECONDS
  python train.py experiment=emodb_loso_pretrained "data.root=$ROOT" "$@" "hydra.run.dir=$OUT/$name"
  echo "$((SECONDS - start))" > "$OUT/$name/wall_s.txt"
}
baseline() {
  local name=$1; shift
  [ -f "$OUT/baselines_$name/logreg/cv_summary.json" ] && { echo "skip baselines_$name (done)"; return; }
  local start=$SECONDS
  python -m ser.baselines data=emodb "data.root=$ROOT" split=loso "$@" "out=$OUT/baselines_$name"
  echo "$((SECONDS - start))" > "$OUT/baselines_$name/wall_s.txt"
}
run pool                                   # the preset: pooled statistics + MLP
run cnn       model=cnn                    # the other downstreams over the same cached rows
run lstm      model=lstm
run cnn_lstm  model=cnn_lstm
baseline logmel   features=logmel
baseline egemaps  features=egemaps
baseline compare  features=compare
baseline ge2e     features=ge2e
baseline compare_ge2e 'features=[compare,ge2e]'
