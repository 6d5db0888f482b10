#!/usr/bin/env bash
# The gray AWGN table: BSD68 at sigma 15/25/50 and Set12 at sigma 25, every method on the same noisy images
# (`--degrade awgn:S`: fixed seed, rounded to 8 bits like a saved image; the classical methods get the true
# sigma). MODELS (space-separated, default below) picks the rows: BM3D costs about 3 minutes per megapixel
# on 2 cores, so its sigma 15/50 rows are left to a patient run: MODELS="bm3d" SIGMAS="15 50" bash ...
# JSON per (set, sigma, model) under benchmarks/results/denoise_eval/, and a summary on stdout.
#   bash benchmarks/gray_denoise_eval.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
models=${MODELS:-identity wavelet nlm dncnn-gray adl-gray}
sigmas=${SIGMAS:-15 25 50}
out=benchmarks/results/denoise_eval
mkdir -p "$out"
run() {  # set folder, sigma, model
  enhancekit eval --model "$3" --target "$data/$1" --degrade "awgn:$2" --metrics psnr,ssim \
    --json "$out/${1}_awgn${2}_$3.json" > /dev/null
}
for model in $models; do
  for sigma in $sigmas; do run bsd68 "$sigma" "$model"; done
  run set12 25 "$model"
done
python - "$out" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*_awgn*.json")):
    if path.stem.startswith(("bsd68", "set12")) and "estimated" not in path.stem:
        m = json.loads(path.read_text())["metrics"]
        print(f"{path.stem:32s} PSNR {m['psnr']['mean']:.2f}  SSIM {m['ssim']['mean']:.4f}")
PY
