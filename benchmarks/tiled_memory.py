"""Peak memory of untiled vs tiled inference on the CPU: it should follow the tile size, not the image size.

Each configuration runs in a fresh subprocess, because a process's peak resident set size (``ru_maxrss``)
only ever grows and torch's allocations are invisible to ``tracemalloc``. The worker records its RSS peak
after building the model and the input image (``base``) and after one enhancement (``peak``); ``growth`` is
the difference. Growth still includes the full-size output buffer (``H x W x 3`` float32), which every
configuration needs; ``working`` subtracts it, leaving what the model's activations cost.

Model: SRCNN-shaped (9-5-5 kernels, 64/32 filters, random weights), receptive-field radius 4 + 2 + 2 = 8,
so ``tile_overlap=16`` keeps tiled outputs equal to untiled ones.

Usage: ``PYTHONPATH=src python benchmarks/tiled_memory.py [--repeats N]``; writes
``benchmarks/results/tiled_memory.json``. About 3 minutes on 2 CPU cores with the default runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "tiled_memory.json"
OVERLAP = 16
# (name, height, width, tile, default runs): a 6000x3000 pass takes 30-100 s here, so those run once by
# default to stay near 3 minutes in all. With --repeats 2, tile=512 peaks repeated within 0.1 MiB and
# tile=256 peaks within 40 MiB (allocator timing), far below the differences this benchmark is about.
CONFIGS = [
    ("6000x3000 untiled", 3000, 6000, None, 1),
    ("6000x3000 tile=512", 3000, 6000, 512, 1),
    ("6000x3000 tile=256", 3000, 6000, 256, 1),
    ("3000x1500 tile=512", 1500, 3000, 512, 3),
]


def max_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(height: int, width: int, tile: int | None) -> dict[str, float]:
    """One measurement, meant to run alone in its process."""
    import numpy as np
    import torch
    from torch import nn

    from enhancekit.inference import Enhancer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 9, padding=4),
        nn.ReLU(),
        nn.Conv2d(64, 32, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(32, 3, 5, padding=2),
    )
    enhancer = Enhancer(model, device="cpu", tile=tile, tile_overlap=OVERLAP)
    enhancer(np.zeros((32, 32, 3), np.float32))  # loads oneDNN kernels before the baseline is taken
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    base = max_rss_mib()
    start = time.perf_counter()
    out = enhancer(image)
    seconds = time.perf_counter() - start
    peak = max_rss_mib()
    return {
        "base_mib": base,
        "peak_mib": peak,
        "growth_mib": peak - base,
        "seconds": seconds,
        "out_mib": out.nbytes / 2**20,
    }


def measure_in_subprocess(script: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``script --worker JSON(kwargs)`` in a fresh interpreter and parse the JSON it prints.

    A fresh process per measurement keeps ``ru_maxrss`` from carrying over the peaks of earlier runs.
    """
    done = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(kwargs)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="runs of every tiled configuration (default: 1 or 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the saved JSON")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return
    if args.plot_only:
        plot(json.loads(RESULTS.read_text())["rows"])
        return

    from rich.console import Console
    from rich.table import Table

    rows: list[dict[str, Any]] = []
    for name, height, width, tile, default_runs in CONFIGS:
        count = default_runs if tile is None or args.repeats is None else args.repeats
        runs = [measure_in_subprocess(__file__, height=height, width=width, tile=tile) for _ in range(count)]
        row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        row["working_mib"] = row["growth_mib"] - row["out_mib"]
        row["growth_runs_mib"] = [run["growth_mib"] for run in runs]
        rows.append({"name": name, "height": height, "width": width, "tile": tile, "runs": count, **row})

    untiled = rows[0]["growth_mib"]
    table = Table(title=f"Peak RSS, SRCNN 9-5-5 64/32, CPU, overlap {OVERLAP} (medians)")
    for column in (
        "config",
        "runs",
        "base MiB",
        "peak MiB",
        "growth MiB",
        "output MiB",
        "working MiB",
        "growth / untiled",
        "seconds",
    ):
        table.add_column(column, justify="left" if column == "config" else "right")
    for row in rows:
        row["growth_vs_untiled"] = row["growth_mib"] / untiled
        table.add_row(
            row["name"],
            str(row["runs"]),
            f"{row['base_mib']:.0f}",
            f"{row['peak_mib']:.0f}",
            f"{row['growth_mib']:.0f}",
            f"{row['out_mib']:.0f}",
            f"{row['working_mib']:.0f}",
            f"{row['growth_vs_untiled']:.3f}",
            f"{row['seconds']:.1f}",
        )
    Console(width=150).print(table)  # wide enough to never wrap, also when piped

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "torch": version("torch"), "threads": 2, "overlap": OVERLAP}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    plot(rows)


def plot(rows: list[dict[str, Any]]) -> None:
    """Bar chart of the working memory of each configuration, next to the JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    names = [row["name"] for row in rows]
    working = [row["working_mib"] for row in rows]
    bars = ax.barh(names, working, color=["#c0504d" if row["tile"] is None else "#4f81bd" for row in rows])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("peak working memory beyond image buffers (MiB, log scale)")
    ax.set_title("Tiled inference: memory follows the tile, not the image")
    ax.bar_label(bars, labels=[f"{w:,.0f} MiB" for w in working], padding=3)
    ax.set_xlim(right=max(working) * 6)
    fig.tight_layout()
    fig.savefig(RESULTS.with_suffix(".png"))
    print(f"wrote {RESULTS.with_suffix('.png')}")


if __name__ == "__main__":
    main()
