#!/usr/bin/env bash
# The gray AWGN table: BSD68 and Set12 at sigma 15/25/50, every method on the same noisy images
# (`--degrade awgn:S`: fixed seed, unclipped floats as in the published tables; the classical methods get the
# true sigma). MODELS (space-separated) picks the rows: a registered model name, or LABEL=MODEL:WEIGHTS for a
# trained run (e.g. adl_cpu=adl:runs/adl_gray_awgn/model.safetensors); the default is the README table's rows.
# BM3D takes about 10 s per BSD68 image on one core, a quarter of an hour per sigma: MODELS="identity wavelet
# nlm" gives the fast rows.
# NOISE=awgn-saved hands every method the noisy images as a saved 8-bit file holds them (clipped to [0, 1],
# rounded) instead.
# JSON per (set, noise and sigma, label) under benchmarks/results/denoise_eval/, and a summary on stdout.
#   bash benchmarks/gray_denoise_eval.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
models=${MODELS:-identity wavelet nlm bm3d dncnn-gray adl-gray}
sigmas=${SIGMAS:-15 25 50}
noise=${NOISE:-awgn}
out=benchmarks/results/denoise_eval
mkdir -p "$out"
run() {  # set folder, sigma, label, model options
  local set=$1 sigma=$2 label=$3
  shift 3
  enhancekit eval "$@" --target "$data/$set" --degrade "$noise:$sigma" --metrics psnr,ssim \
    --json "$out/${set}_${noise}${sigma}_$label.json" > /dev/null
}
for entry in $models; do
  if [[ $entry == *=* ]]; then
    label=${entry%%=*} spec=${entry#*=}
    options=(--model "${spec%%:*}" --weights "${spec#*:}")
  else
    label=$entry options=(--model "$entry")
  fi
  for set in bsd68 set12; do
    for sigma in $sigmas; do run "$set" "$sigma" "$label" "${options[@]}"; done
  done
done
python - "$out" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*_awgn*.json")):
    if path.stem.startswith(("bsd68", "set12")) and "estimated" not in path.stem:
        m = json.loads(path.read_text())["metrics"]
        print(f"{path.stem:32s} PSNR {m['psnr']['mean']:.2f}  SSIM {m['ssim']['mean']:.4f}")
PY
