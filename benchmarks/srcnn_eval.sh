#!/usr/bin/env bash
# The SRCNN evaluation table: `enhancekit eval` (Y-PSNR/SSIM, crop = scale) of bicubic, the specification's
# recipe and the shipped SRCNN on Set5, Set14 and the Urban100 subset at x2/x3/x4; JSON per run under
# benchmarks/results/srcnn_eval/, then the Markdown table (benchmarks/srcnn_table.py).
#   bash benchmarks/srcnn_eval.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
out=benchmarks/results/srcnn_eval
mkdir -p "$out"
declare -A sets=([set5]="$data/set5/hr" [set14]="$data/set14" [urban100]="$data/urban100_subset")
for set in set5 set14 urban100; do
  for scale in 2 3 4; do
    common=(--target "${sets[$set]}" --degrade "bicubic:$scale" --metrics psnr,ssim)
    enhancekit eval --model bicubic "${common[@]}" --json "$out/${set}_x${scale}_bicubic.json" > /dev/null
    enhancekit eval --model "srcnn-x$scale" "${common[@]}" --json "$out/${set}_x${scale}_srcnn.json" > /dev/null
  done
  enhancekit eval --model srcnn --weights training_logs/srcnn_x3_spec_novgg/model.safetensors \
    --target "${sets[$set]}" --degrade bicubic:3 --metrics psnr,ssim --json "$out/${set}_x3_spec.json" > /dev/null
done
python benchmarks/srcnn_table.py
