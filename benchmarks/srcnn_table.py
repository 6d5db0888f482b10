"""Markdown table of the SRCNN evaluation JSON files written by benchmarks/srcnn_eval.sh."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "srcnn_eval"
# SRCNN (Dong et al., TPAMI 2016), 9-5-5 trained on ImageNet, Set5 Y-PSNR in dB (as the issue quotes them).
PAPER = {("set5", 2): 36.66, ("set5", 3): 32.75, ("set5", 4): 30.49}
NAMES = {"set5": "Set5", "set14": "Set14", "urban100": "Urban100 (6-image subset)"}


def _cell(name: str) -> str:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return "-"
    metrics = json.loads(path.read_text())["metrics"]
    return f"{metrics['psnr']['mean']:.2f} / {metrics['ssim']['mean']:.4f}"


def main() -> None:
    spec = "SRCNN, specification's recipe (no VGG term)"
    header = ["set", "scale", "bicubic", spec, "SRCNN shipped", "paper (PSNR)"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|")
    for set_name in NAMES:
        for scale in (2, 3, 4):
            stem = f"{set_name}_x{scale}"
            paper = PAPER.get((set_name, scale))
            print(
                f"| {NAMES[set_name]} | x{scale} | {_cell(stem + '_bicubic')} | {_cell(stem + '_spec')} | "
                f"**{_cell(stem + '_srcnn')}** | {paper if paper else '-'} |"
            )


if __name__ == "__main__":
    main()
