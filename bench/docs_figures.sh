#!/usr/bin/env bash
# Render the figures under docs/ (needs the [build] extra and the dataset in $FLOWERCAM_DATA). `bench/run_all.sh`
# runs it after its trainings; `bash bench/docs_figures.sh paper` renders only the first part.
#  - paper: the lite0 paper-protocol run's training curves, test confusion matrix and int8 reliability diagram
#    (runs/lite0-paper: trained and exported here if missing) and the LR range test (build-models lr-find lite0).
#  - explain: from the shipped model's run (runs/lite0-field-trainval with its export/): the error report with its
#    gallery of the most confident test mistakes, and Grad-CAM / LIME / nearest training images for the seed
#    study's example (1315) and two of those mistakes; probabilities calibrated with the run's exported sidecar.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLOWERCAM_DATA:?set FLOWERCAM_DATA to the Oxford 102 folder}"
runs=${RUNS:-runs}
paper=$runs/lite0-paper
[ -f "$paper/metrics.json" ] || build-models train lite0 --out "$paper"
[ -f "$paper/export/lite0_reliability.png" ] || build-models export "$paper"
[ -f "$runs/lr-find/lr_range_test.png" ] || build-models lr-find lite0 --out "$runs/lr-find"
cp "$paper/training_curves.png" docs/training_curves_lite0_paper.png
cp "$paper/confusion_test.png" docs/confusion_test_lite0_paper.png
cp "$paper/export/lite0_reliability.png" docs/reliability_lite0_paper.png
cp "$runs/lr-find/lr_range_test.png" docs/lr_range_test_lite0.png
[ "${1:-all}" = paper ] && exit 0
run=$runs/lite0-field-trainval
rm -f docs/report/misclassified_gallery.* docs/explain/*_explained.* docs/explain/*_neighbours.*
build-models report "$run" --out docs/report
build-models explain "$run" 1315 7675 446 --out docs/explain
