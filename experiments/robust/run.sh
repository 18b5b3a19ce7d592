#!/usr/bin/env bash
# Every run of experiments/robust/README.md, one after the other (about 35 min on 2 CPU cores):
# the robust preset on clean EmoDB, then with white, babble and pink noise added to the test audio at 20, 10
# and 0 dB SNR (inject.*: the test side only). Usage: bash experiments/robust/run.sh [extra overrides];
# $SER_EMODB points at the corpus; OUT=<dir> (default runs/robust); EXP=emodb_loso_pretrained for the baseline.
set -euo pipefail
cd "$(dirname "$0")/../.."
EMODB=${SER_EMODB:-../shared/data/emodb}
PY=${PY:-.venv/bin/python}
EXP=${EXP:-emodb_loso_robust}
OUT=${OUT:-runs/robust}
mkdir -p "$OUT"

run() {  # name, overrides...
  local name=$1; shift
  [ -f "$OUT/$name/metrics.json" ] && return  # finished before
  local start=$SECONDS
  TQDM_DISABLE=1 $PY train.py experiment=$EXP data.root=$EMODB "$@" "hydra.run.dir=$OUT/$name" > /dev/null
  echo "$name: $((SECONDS - start)) s" >> "$OUT/wall_times.txt"
}

run clean "$@"
for noise in white babble pink; do
  for snr in 20 10 0; do
    run "${noise}_${snr}" inject.test_snr_db=$snr inject.test_noise=$noise calibrate.inner_folds=0 "$@"  # UA is the same calibrated or not
  done
done
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ua = lambda name: json.loads((out / name / "metrics.json").read_text())["test/ua"]
print(f"clean UA {ua('clean'):.3f}")
print("| noise | 20 dB | 10 dB | 0 dB |\n|---|---|---|---|")
for noise in ("white", "babble", "pink"):
    print(f"| {noise} | " + " | ".join(f"{ua(f'{noise}_{s}'):.3f}" for s in (20, 10, 0)) + " |")
PY
