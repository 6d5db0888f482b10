"""CPU speed and peak memory of the light low-light UNet (``lowlight-unet-spec``, ``base_width=16``).

Random weights (seeded): speed and memory do not depend on the weights' values. Each configuration runs in a
fresh subprocess (the method and helpers of ``tiled_memory.py``: ``ru_maxrss`` only ever grows), with
``Enhancer`` defaults otherwise (channels-last, 2 threads). The worker runs the model once on a small image
so oneDNN is loaded before the baseline RSS is read, then enhances the image ``runs`` times;
``growth`` is peak RSS minus that baseline, and includes the full-size float32 output buffer (``out_mib``).
Megapixels are those of the photo, not of the padding up to ``size_multiple`` (16).

Configurations: a 600 x 400 photo untiled; a 4000 x 3000 photo with ``tile=512, tile_overlap=64`` (the
model's default ``tile_blend``, ``"ramp"``) and untiled. The 4000 x 3000 passes take 30-60 s each here, so
they run once; the small one is the median of 5 runs. On a shared machine, load from other processes can
slow everything several-fold: compare rows of one run, not across runs.

Usage: ``PYTHONPATH=src python benchmarks/lowlight_speed.py``; writes
``benchmarks/results/lowlight_speed.json``. 2-5 minutes on 2 shared CPU cores, depending on load.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tiled_memory import max_rss_mib, measure_in_subprocess

RESULTS = Path(__file__).parent / "results" / "lowlight_speed.json"
BASE_WIDTH = 16
OVERLAP = 64
# (name, height, width, tile, runs)
CONFIGS = [
    ("600x400 untiled", 400, 600, None, 5),
    ("4000x3000 tile=512", 3000, 4000, 512, 1),
    ("4000x3000 untiled", 3000, 4000, None, 1),
]


def worker(height: int, width: int, tile: int | None, runs: int) -> dict[str, Any]:
    """All runs of one configuration, meant to run alone in its process."""
    import numpy as np
    import torch

    from enhancekit import create_model
    from enhancekit.inference import Enhancer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = create_model("lowlight-unet-spec", base_width=BASE_WIDTH)
    enhancer = Enhancer(model, device="cpu", tile=tile, tile_overlap=OVERLAP)
    enhancer(np.zeros((32, 32, 3), np.float32))  # loads oneDNN kernels before the baseline is taken
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    base = max_rss_mib()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        out = enhancer(image)
        seconds.append(time.perf_counter() - start)
    peak = max_rss_mib()
    return {
        "blend": enhancer.tile_blend if tile is not None else None,
        "seconds_runs": seconds,
        "base_mib": base,
        "peak_mib": peak,
        "growth_mib": peak - base,
        "out_mib": out.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return

    from rich.console import Console
    from rich.table import Table

    rows: list[dict[str, Any]] = []
    for name, height, width, tile, runs in CONFIGS:
        result = measure_in_subprocess(__file__, height=height, width=width, tile=tile, runs=runs)
        seconds = statistics.median(result["seconds_runs"])
        megapixels = height * width / 1e6
        rows.append(
            {
                "name": name,
                "height": height,
                "width": width,
                "tile": tile,
                "overlap": OVERLAP if tile is not None else None,
                "runs": runs,
                "seconds": seconds,
                "mp_per_s": megapixels / seconds,
                **result,
            }
        )

    table = Table(title=f"lowlight-unet-spec base_width={BASE_WIDTH}, random weights, CPU, 2 threads")
    for column in ("config", "blend", "runs", "seconds (median)", "MP/s", "RSS growth MiB", "output MiB"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for row in rows:
        table.add_row(
            row["name"],
            row["blend"] or "-",
            str(row["runs"]),
            f"{row['seconds']:.2f}",
            f"{row['mp_per_s']:.3f}",
            f"{row['growth_mib']:.0f}",
            f"{row['out_mib']:.0f}",
        )
    Console(width=150).print(table)  # wide enough to never wrap, also when piped

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "torch": version("torch"),
        "threads": 2,
        "model": "lowlight-unet-spec",
        "base_width": BASE_WIDTH,
        "weights": "random (seed 0)",
    }
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
