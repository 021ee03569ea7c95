#!/usr/bin/env bash
# Render the explanation figures under docs/ from the shipped model's run (needs the [build] extra, the dataset in
# $FLOWERCAM_DATA and runs/lite0-field-trainval with its export/): the error report with its gallery of the most
# confident test mistakes, and Grad-CAM / LIME / nearest training images for the seed study's example (1315) and
# two of those mistakes. Probabilities are calibrated with the temperature of the run's exported sidecar.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLOWERCAM_DATA:?set FLOWERCAM_DATA to the Oxford 102 folder}"
run=runs/lite0-field-trainval
rm -f docs/report/misclassified_gallery.* docs/explain/*_explained.* docs/explain/*_neighbours.*
build-models report "$run" --out docs/report
build-models explain "$run" 1315 7675 446 --out docs/explain
