#!/usr/bin/env bash
# Rerun the benchmark suite (needs the [build,camera] extras and the dataset in $FLOWERCAM_DATA; root for the last
# page, the Pi userland under emulation). Trains lite0, lite1 and lite2 under both protocols if the runs are missing,
# exports them, ships the trainval int8 model, then writes every page under bench/results/ (and the README's figures)
# on this one machine: each page names it. Takes about 4 hours on a 2-core machine.
# tests/test_bench_render.py fails when a page under bench/results/ is written by no script called here.
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
train lite0-field trainval
train lite0-field2 trainval
[ -f runs/lite0-paper/export/export_report.json ] || build-models export runs/lite0-paper
# The shipped model: lite0-field (trainval), the softmax temperature of the lite0 paper-protocol run (fitted on its
# held-out val; same head and label smoothing), a similarity output, and the thresholds that
# bench/field_experiments.py chose on field_dev at that temperature, per crop set (the shipped row: centre crop).
temperature=$(python -c 'import json; print(json.load(open("runs/lite0-paper/export/lite0_int8.json"))["temperature"])')
python bench/wise_ft.py runs/lite0-field-trainval --alpha 0.5 --alpha 0.75 --alpha 1.25 --alpha 1.5  # WiSE-FT rows
python bench/input_size.py runs/lite0-field-trainval --size 320 --size 352  # FixRes rows
python bench/field_experiments.py runs/lite0-field-trainval runs/lite0-field2-trainval \
  runs/lite0-field-trainval-wise{0.5,0.75,1.25,1.5} runs/lite0-field-trainval-size{320,352} --probe runs/pretrained-lite0 \
  --temperature "$temperature" --ship lite0-field-trainval:center \
  --label "lite0-field-trainval-wise0.5=lite0-field WiSE-FT 0.5 (halfway from the linear probe to the fine-tuned weights)" \
  --label "lite0-field-trainval-wise0.75=lite0-field WiSE-FT 0.75 (three quarters of the way to the fine-tuned weights)" \
  --label "lite0-field-trainval-wise1.25=lite0-field WiSE-FT 1.25 (extrapolated a quarter beyond the fine-tuned weights)" \
  --label "lite0-field-trainval-wise1.5=lite0-field WiSE-FT 1.5 (extrapolated halfway beyond the fine-tuned weights)" \
  --label "lite0-field-trainval-size320=lite0-field weights run at 320 px (trained at 288)" \
  --label "lite0-field-trainval-size352=lite0-field weights run at 352 px (trained at 288)"
read -r below sim_below crops other < <(python - <<'PY'
import json
rows = json.load(open("bench/results/field_experiments.json"))["rows"]
ship = next(r for r in rows if r.get("shipped"))
other = next(r for r in rows if r.get("run") == ship["run"] and r.get("crops") not in (None, ship["crops"])
             and r.get("similarity_below") is not None)
print(ship["uncertain_below"], ship["similarity_below"], ship["crops"],
      f"{other['crops']}={other['uncertain_below']}/{other['similarity_below']}")
PY
)
[ -f runs/lite0-field-trainval/export/export_report.json ] || \
  build-models export runs/lite0-field-trainval --temperature-from runs/lite0-paper/export/lite0_int8.json \
    --similarity --uncertain-below "$below" --similarity-below "$sim_below" --crops "$crops" --other-crops "$other" \
    --chosen-on "field_dev (bench/field_experiments.py), never the test split"
cp runs/lite0-field-trainval/export/lite0-field_int8.tflite device/flowercam/models/flowercam.tflite
cp runs/lite0-field-trainval/export/lite0-field_int8.json device/flowercam/models/flowercam.json
cp runs/lite0-field-trainval/export/labels.txt device/flowercam/models/labels.txt
build-models anchors device/flowercam/models/flowercam.tflite   # its train photos, embedded: what learn fits against
python bench/calibration_size.py runs/lite0-paper
python bench/classify_test_split.py
python bench/latency.py
python bench/shipped_bench.py
python bench/field.py
python bench/clients.py
python bench/own_flowers.py
python bench/learning.py
python bench/faults.py
python bench/mqtt_session.py
python bench/status_page.py
python bench/cache_memory.py
python bench/distributed.py
bash bench/docs_figures.sh
python bench/daemon_soak.py --minutes 10
python bench/cache_speedup.py
python bench/data_checks.py
python bench/fuzz_inputs.py
python bench/sightings.py
python bench/pi_userland.py
python bench/summary.py
python bench/model_card.py
