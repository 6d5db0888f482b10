#!/usr/bin/env bash
# The unpaired-enhancement table on FiveK (../shared/data/fivek_dpe_expertc, 9 input/Expert-C pairs, never
# trained on): the unprocessed input, CycleGAN, UEGAN without LFE and `uegan-fivek`, all trained with the
# same data and budget; PSNR/SSIM against Expert C (RGB) and NIQE (NIMA too when $ENHANCEKIT_NIMA_WEIGHTS is
# set). JSON per run under benchmarks/results/unpaired_eval/, and the compare picture.
#   bash benchmarks/unpaired_eval.sh [DATA_DIR]     (DATA_DIR defaults to ../shared/data)
set -euo pipefail
data=${1:-../shared/data}
set_dir="$data/fivek_dpe_expertc"
out=benchmarks/results/unpaired_eval
mkdir -p "$out"
metrics=psnr,ssim,niqe
if [[ -n "${ENHANCEKIT_NIMA_WEIGHTS:-}" ]]; then metrics=$metrics,nima; fi
common=(--input "$set_dir/input" --target "$set_dir/expert_c" --metrics "$metrics")
enhancekit eval --model identity "${common[@]}" --json "$out/input.json" > /dev/null
enhancekit eval --model cyclegan --weights training_logs/cyclegan_fivek/model.safetensors "${common[@]}" \
  --json "$out/cyclegan.json" > /dev/null
enhancekit eval --model uegan-no-lfe --weights training_logs/uegan_fivek_no_lfe/model.safetensors \
  "${common[@]}" --json "$out/uegan_no_lfe.json" > /dev/null
enhancekit eval --model uegan-fivek "${common[@]}" --json "$out/uegan_fivek.json" > /dev/null
enhancekit compare --input "$set_dir/input" --target "$set_dir/expert_c" -m cyclegan -m uegan-fivek \
  --weights training_logs/cyclegan_fivek/model.safetensors --weights - --images 3 \
  -o docs/images/fivek_compare.png > /dev/null
python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("input", "cyclegan", "uegan_no_lfe", "uegan_fivek"):
    m = json.load(open(f"{out}/{name}.json"))["metrics"]
    print(name, "  ".join(f"{k} {v['mean']:.3f}" for k, v in m.items()))
PY
