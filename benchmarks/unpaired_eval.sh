#!/usr/bin/env bash
# The unpaired-enhancement table on FiveK (../shared/data/fivek_dpe_expertc, 9 input/Expert-C pairs, never
# trained on): the unprocessed input, CycleGAN, UEGAN without LFE and the shipped `uegan-fivek`, trained on
# the same data, and DnCNN trained on the same photos as pairs (configs/dncnn_fivek.yaml); PSNR/SSIM
# against Expert C (RGB) and NIQE (NIMA too when $ENHANCEKIT_NIMA_WEIGHTS is set). Each trained baseline is its
# run's exported best epoch (runs/<name>/model.safetensors with its card, from `enhancekit train
# configs/{cyclegan,dncnn}_fivek.yaml` and the no-LFE override in uegan_fivek.yaml); a run stopped
# before its export is read from checkpoints/best.ckpt (recipes' default model arguments only).
# JSON per run under benchmarks/results/unpaired_eval/, and the compare picture.
#   bash benchmarks/unpaired_eval.sh [DATA_DIR] [RUNS_DIR]     (defaults: ../shared/data, runs)
set -euo pipefail
data=${1:-../shared/data}
runs=${2:-runs}
set_dir="$data/fivek_dpe_expertc"
out=benchmarks/results/unpaired_eval
mkdir -p "$out"
metrics=psnr,ssim,niqe
if [[ -n "${ENHANCEKIT_NIMA_WEIGHTS:-}" ]]; then metrics=$metrics,nima; fi
weights_of() {  # run folder -> its exported weights, or the best checkpoint of an unfinished run
  if [[ -f $1/model.safetensors ]]; then echo "$1/model.safetensors"; else echo "$1/checkpoints/best.ckpt"; fi
}
common=(--input "$set_dir/input" --target "$set_dir/expert_c" --metrics "$metrics")
enhancekit eval --model identity "${common[@]}" --json "$out/input.json" > /dev/null
declare -A models=([cyclegan_fivek]=cyclegan [dncnn_fivek]=dncnn [uegan_fivek_no_lfe]=uegan-no-lfe)
runs_in_table=(cyclegan_fivek dncnn_fivek uegan_fivek_no_lfe)
for run in "${runs_in_table[@]}"; do
  enhancekit eval --model "${models[$run]}" --weights "$(weights_of "$runs/$run")" "${common[@]}" \
    --json "$out/$run.json" > /dev/null
done
enhancekit eval --model uegan-fivek "${common[@]}" --json "$out/uegan_fivek.json" > /dev/null
enhancekit compare --input "$set_dir/input" --target "$set_dir/expert_c" -m cyclegan -m uegan-fivek \
  --weights "$(weights_of "$runs/cyclegan_fivek")" --weights - --images 3 -o docs/images/fivek_compare.png > /dev/null
python - "$out" input "${runs_in_table[@]}" uegan_fivek <<'PY'
import json, sys
out = sys.argv[1]
for name in sys.argv[2:]:
    m = json.load(open(f"{out}/{name}.json"))["metrics"]
    print(name, "  ".join(f"{k} {v['mean']:.3f}" for k, v in m.items()))
PY
