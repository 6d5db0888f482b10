#!/usr/bin/env bash
# The gray denoisers on a real dental panoramic X-ray with synthetic noise, sigma 25: the 768x512 region at
# x 1088, y 460 of ../shared/data/dental_panoramic/1008.png (teeth and jaw, little empty background), once
# with the published tables' unclipped float noise (awgn:25) and once as a noisy 8-bit file holds it
# (awgn-saved:25). The classical methods get the true sigma; the learned ones are blind. JSON per (noise,
# method) under benchmarks/results/denoise_eval/ (dental_region_*), a summary on stdout, and the compare
# picture docs/images/dental_xray_denoise_compare.png (float noise).
#   bash benchmarks/dental_denoise_compare.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
models=${MODELS:-identity nlm bm3d dncnn-gray adl-gray adl-gray-8bit}
out=benchmarks/results/denoise_eval
region_dir=$(mktemp -d)
trap 'rm -rf "$region_dir"' EXIT
python - "$data/dental_panoramic/1008.png" "$region_dir/dental_1008_region.png" <<'PY'
import sys
from PIL import Image
Image.open(sys.argv[1]).crop((1088, 460, 1088 + 768, 460 + 512)).save(sys.argv[2])
PY
for noise in awgn awgn-saved; do
  for model in $models; do
    enhancekit eval --model "$model" --target "$region_dir" --degrade "$noise:25" --metrics psnr,ssim \
      --json "$out/dental_region_${noise}25_$model.json" > /dev/null
  done
done
enhancekit compare --target "$region_dir" --degrade awgn:25 -m nlm -m bm3d -m dncnn-gray -m adl-gray \
  --crop 256,128,256,256 -o docs/images/dental_xray_denoise_compare.png > /dev/null
python - "$out" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("dental_region_*.json")):
    m = json.loads(path.read_text())["metrics"]
    print(f"{path.stem:44s} PSNR {m['psnr']['mean']:.2f}  SSIM {m['ssim']['mean']:.4f}")
PY
