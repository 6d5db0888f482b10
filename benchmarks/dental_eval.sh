#!/usr/bin/env bash
# The dental use case of the unpaired enhancer, on the 5 real panoramic X-rays it never trained on
# (../shared/data/dental_panoramic): each radiograph degraded by `lowquality:8` (the recipe's definition of
# "low quality": darker gamma, flatter contrast, noise; fixed seed, the same input for every model), then
# restored by the classical contrast baselines and by the UEGAN trained with configs/uegan_dental.yaml.
# PSNR/SSIM against the original radiograph, NIQE of each output; NIQE of the untouched originals and of
# the UEGAN run on them (an enhancer should leave a good radiograph alone). JSON per method under
# benchmarks/results/dental_eval/, and the compare picture docs/images/dental_compare.png.
#   bash benchmarks/dental_eval.sh [DATA_DIR] [WEIGHTS]   (defaults: ../shared/data,
#                                                          runs/uegan_dental/model.safetensors)
set -euo pipefail
data=${1:-../shared/data}
weights=${2:-runs/uegan_dental/model.safetensors}
set_dir="$data/dental_panoramic"
out=benchmarks/results/dental_eval
mkdir -p "$out"
model=(--model uegan --weights "$weights")
degraded=(--target "$set_dir" --degrade lowquality:8 --metrics psnr,ssim,niqe --color y)
for baseline in identity gamma clahe; do
  enhancekit eval --model "$baseline" "${degraded[@]}" --json "$out/degraded_$baseline.json" > /dev/null
done
enhancekit eval "${model[@]}" "${degraded[@]}" --json "$out/degraded_uegan.json" > /dev/null
real=(--input "$set_dir" --target "$set_dir" --metrics psnr,ssim,niqe --color y)
enhancekit eval --model identity "${real[@]}" --json "$out/real_identity.json" > /dev/null
enhancekit eval "${model[@]}" "${real[@]}" --json "$out/real_uegan.json" > /dev/null
enhancekit compare --target "$set_dir" --degrade lowquality:8 -m gamma -m clahe -m uegan \
  --weights - --weights - --weights "$weights" \
  --metrics psnr,ssim,niqe --color y --images 3 -o docs/images/dental_compare.png > /dev/null
python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("degraded_identity", "degraded_gamma", "degraded_clahe", "degraded_uegan", "real_identity", "real_uegan"):
    m = json.load(open(f"{out}/{name}.json"))["metrics"]
    print(f"{name:18s}", "  ".join(f"{k} {v['mean']:.3f}" for k, v in m.items()))
PY
