#!/usr/bin/env bash
# Training through noisy labels: EmoDB leave-one-speaker-out, pretrained preset, 30 % of the labels replaced
# (inject.label_noise=0.3; test labels never). About 10 min on 2 CPU cores.
#   bash experiments/noisy_labels/run.sh [runs/noisy_labels]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/noisy_labels}
EMODB=${SER_EMODB:-../shared/data/emodb}
PY=${PYTHON:-.venv/bin/python}
export TQDM_DISABLE=1
run() { name=$1; shift; echo "== $name"; "$PY" train.py experiment=emodb_loso_pretrained data.root="$EMODB" \
    hydra.run.dir="$OUT/$name" "$@" > "$OUT/$name.log" 2>&1; grep "test/ua" "$OUT/$name/cv_summary.md"; }
mkdir -p "$OUT"
run clean
run noisy inject.label_noise=0.3
# the diagnosis lists the suspect labels (no retraining needed for the list)
"$PY" -m ser.diagnose run="$OUT/noisy" retrain=false occlude=false snrs=[10] > "$OUT/diagnose.log" 2>&1
run noisy_gce inject.label_noise=0.3 loss=gce
run noisy_exclude inject.label_noise=0.3 fold.exclude="$OUT/noisy/diagnosis/suspect_labels.csv"
run noisy_exclude_gce inject.label_noise=0.3 fold.exclude="$OUT/noisy/diagnosis/suspect_labels.csv" loss=gce
