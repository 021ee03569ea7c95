#!/usr/bin/env bash
# Rerun the benchmark suite (needs the [build,camera] extras and the dataset in $FLOWERCAM_DATA).
# Trains lite0, lite1 and lite2 under both protocols if the runs are missing, exports them, ships the trainval int8 model,
# then writes every file under bench/results/. Takes about 4 hours on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLOWERCAM_DATA:?set FLOWERCAM_DATA to the Oxford 102 folder}"
mkdir -p runs
train() {  # preset protocol [extra args]
  local run="runs/$1-$2"
  [ -f "$run/metrics.json" ] || /usr/bin/time -v build-models train "$1" --protocol "$2" "${@:3}" --out "$run" \
    > "runs/$1-$2.log" 2>&1
}
train lite0 paper
train lite0 trainval --views 6
train lite1 paper
train lite1 trainval --views 6
train lite2 paper
train lite2 trainval --views 6
train lite0-field paper
train lite0-field trainval
[ -f runs/lite0-paper/export/export_report.json ] || build-models export runs/lite0-paper
# The shipped model: field views, trainval, temperature from the paper run's val, similarity output; the thresholds
# and default crops are the ones bench/field_experiments.py chose on field_dev (bench/results/field_experiments.json).
python bench/field_experiments.py runs/lite0-field-trainval runs/lite0-field-paper --probe runs/pretrained-lite0
read -r below sim_below crops < <(python - <<'PY'
import json
rows = [r for r in json.load(open("bench/results/field_experiments.json"))["rows"] if r.get("shipped")]
print(rows[0]["uncertain_below"], rows[0]["similarity_below"], rows[0]["crops"])
PY
)
[ -f runs/lite0-field-trainval/export/export_report.json ] || \
  build-models export runs/lite0-field-trainval --temperature-from runs/lite0-field-paper --similarity \
    --uncertain-below "$below" --similarity-below "$sim_below" --crops "$crops" \
    --chosen-on "field_dev (bench/field_experiments.py), never the test split"
cp runs/lite0-field-trainval/export/lite0-field_int8.tflite device/models/flowercam.tflite
cp runs/lite0-field-trainval/export/lite0-field_int8.json device/models/flowercam.json
python bench/calibration_size.py runs/lite0-paper
python bench/classify_test_split.py
python bench/latency.py
python bench/shipped_bench.py
python bench/field.py
python bench/daemon_soak.py --minutes 10
python bench/cache_speedup.py
python bench/data_checks.py
python bench/summary.py
python bench/model_card.py
