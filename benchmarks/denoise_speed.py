"""CPU speed of the denoisers on a real 512 x 512 gray image (Set12): seconds per megapixel.

Each method runs through ``Enhancer`` (2 threads, channels-last) after one warm-up call; the figure is the
median of ``--runs`` timed calls. Learned models run with their shipped weights where they have them, random
weights otherwise (speed does not depend on the values). BM3D and NLM get the true sigma (25), as in the
README's table. Other processes on a shared machine slow every row: compare rows of one run (the ``ratio``
column is relative to BM3D), not across runs.

Usage: ``PYTHONPATH=src python benchmarks/denoise_speed.py [--runs 3]``; writes
``benchmarks/results/denoise_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from enhancekit import create_model
from enhancekit.data.degradations import add_gaussian_noise
from enhancekit.data.io import read_image
from enhancekit.inference import Enhancer

RESULTS = Path(__file__).parent / "results" / "denoise_speed.json"
SET12 = Path(__file__).parents[1] / ".." / "shared" / "data" / "set12"
METHODS = [
    ("wavelet", {"sigma": 25.0}),
    ("nlm", {"sigma": 25.0}),
    ("bm3d", {"sigma": 25.0}),
    ("dncnn", {"in_channels": 1}),
    ("adl", {}),
    ("adl-microscopy", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", type=Path, default=SET12 / "08.png", help="a 512 x 512 gray image")
    args = parser.parse_args()
    torch.set_num_threads(2)
    source = args.image
    noisy = add_gaussian_noise(read_image(source).pixels[..., 0], 25.0)
    megapixels = noisy.size / 1e6
    rows = {}
    for name, kwargs in METHODS:
        torch.manual_seed(0)
        enhancer = Enhancer(create_model(name, **kwargs), device="cpu")
        enhancer(noisy)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            enhancer(noisy)
            times.append(time.perf_counter() - start)
        rows[name] = {"seconds_per_mp": statistics.median(times) / megapixels}
        print(f"{name:>15}: {rows[name]['seconds_per_mp']:.2f} s/MP", flush=True)
    for row in rows.values():
        row["ratio_to_bm3d"] = row["seconds_per_mp"] / rows["bm3d"]["seconds_per_mp"]
    RESULTS.write_text(
        json.dumps(
            {"image": source.name, "shape": list(noisy.shape), "runs": args.runs, "methods": rows}, indent=2
        )
    )


if __name__ == "__main__":
    main()
