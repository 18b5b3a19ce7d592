#!/usr/bin/env bash
# EmoDB, leave-one-speaker-out, CNN-LSTM: feature set x class weighting x augmentation.
# Usage (from the repository root, venv active):  bash experiments/emodb_study/run.sh
# EmoDB from $SER_EMODB (default ../shared/data/emodb); runs go to runs/emodb_study/<name>.
set -euo pipefail
ROOT=${SER_EMODB:-../shared/data/emodb}
OUT=${OUT:-runs/emodb_study}
# 10 epochs (the default is 20) keeps the whole study near an hour on two CPU cores.
COMMON=(data=emodb "data.root=$ROOT" split=loso model=cnn_lstm trainer.max_epochs=10)
run() {
  local name=$1; shift
  [ -f "$OUT/$name/cv_summary.json" ] && { echo "skip $name (done)"; return; }
  local start=$SECONDS
  python train.py "${COMMON[@]}" "$@" "hydra.run.dir=$OUT/$name"
  echo "$((SECONDS - start))" > "$OUT/$name/wall_s.txt"
}
run base        features=logmel         loss.class_weighted=false augment=none
run prosody     features=logmel_prosody loss.class_weighted=false augment=none
run weighted    features=logmel         loss.class_weighted=true  augment=none
run noise_aug   features=logmel         loss.class_weighted=false augment=noise
run all_three   features=logmel_prosody loss.class_weighted=true  augment=noise
python experiments/emodb_study/table.py "$OUT" | tee experiments/emodb_study/results.md
