#!/usr/bin/env bash
# Real noisy/clean microscopy: the noisy input, the classical baselines (blind sigma estimate) and
# `adl-microscopy` on the two W2S pairs held out of its training (split seed 42: fields 020_1 and 049_0) and
# on FMD's two pairs (never trained on); JSON per run under benchmarks/results/denoise_eval/, and the W2S
# compare picture.
#   bash benchmarks/microscopy_eval.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
out=benchmarks/results/denoise_eval
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/w2s/noisy" "$work/w2s/clean" "$work/fmd/noisy" "$work/fmd/clean"
for field in 020_1 049_0; do
  cp "$data/microscopy_w2s/noisy/input_avg1_$field.tif" "$work/w2s/noisy/$field.tif"
  cp "$data/microscopy_w2s/clean/target_avg400_$field.tif" "$work/w2s/clean/$field.tif"
done
# FMD names its references differently; give each pair one name.
cp "$data/microscopy_fmd/noisy/Confocal_FISH_3.png" "$work/fmd/noisy/confocal_fish.png"
cp "$data/microscopy_fmd/clean/gt_Confocal_FISH_3.png" "$work/fmd/clean/confocal_fish.png"
cp "$data/microscopy_fmd/noisy/WideField_BPAE_raw_rgb_new1.png" "$work/fmd/noisy/widefield_bpae.png"
cp "$data/microscopy_fmd/clean/WideField_BPAE_gt_rgb_new1.png" "$work/fmd/clean/widefield_bpae.png"
for set in w2s fmd; do
  enhancekit score --input "$work/$set/noisy" --target "$work/$set/clean" --metrics psnr,ssim \
    --json "$out/${set}_input.json" > /dev/null
  for model in wavelet nlm bm3d adl-microscopy; do
    enhancekit eval --model "$model" --input "$work/$set/noisy" --target "$work/$set/clean" \
      --metrics psnr,ssim --json "$out/${set}_${model}.json" > /dev/null
  done
done
enhancekit compare --input "$work/w2s/noisy" --target "$work/w2s/clean" -m bm3d -m adl-microscopy \
  --images 2 --crop 128,128,256,256 -o docs/images/w2s_compare.png > /dev/null
python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for dataset in ("w2s", "fmd"):
    base = json.load(open(f"{out}/{dataset}_input.json"))["metrics"]
    print(f"{dataset}: input {base['psnr']['mean']:.2f} dB / {base['ssim']['mean']:.3f}")
    for model in ("wavelet", "nlm", "bm3d", "adl-microscopy"):
        m = json.load(open(f"{out}/{dataset}_{model}.json"))["metrics"]
        gain = m["psnr"]["mean"] - base["psnr"]["mean"]
        print(f"  {model}: {m['psnr']['mean']:.2f} dB ({gain:+.2f}) / {m['ssim']['mean']:.3f}")
PY
