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
[ -f runs/lite0-paper/export/export_report.json ] || build-models export runs/lite0-paper
[ -f runs/lite0-trainval/export/export_report.json ] || \
  build-models export runs/lite0-trainval --temperature-from runs/lite0-paper/export/lite0_int8.json
cp runs/lite0-trainval/export/lite0_int8.tflite device/models/flowercam.tflite
cp runs/lite0-trainval/export/lite0_int8.json device/models/flowercam.json
python bench/calibration_size.py runs/lite0-paper
python bench/classify_test_split.py
python bench/latency.py
python bench/shipped_bench.py
python bench/daemon_soak.py --minutes 10
python bench/cache_speedup.py
python bench/summary.py
