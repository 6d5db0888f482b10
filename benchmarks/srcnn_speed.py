"""SRCNN x3 speed on the CPU: inference paths and training throughput against the measured conv peak.

Everything is measured in one process, in interleaved rounds: each round times the peak convolutions, every
inference path and the per-layer stages once, rotating the order, so that load from other processes hits
all of them alike. Ratios (speedups, fractions of peak) are taken within a round and then the median over
rounds is reported, which is steadier on a shared machine than a ratio of two medians.

* Conv peak: ``torch.nn.functional.conv2d`` on well-shaped 64 -> 64 convolutions (3x3 and 5x5 on a
  1 x 64 x 512 x 512 input, NCHW and channels-last), FLOPs counted as ``2 * Cin * Cout * k * k * H * W``.
  The peak is the best median of these. oneDNN reaches more on 5x5 than on 3x3 here, and SRCNN's own 5x5
  layer beats the 3x3 figure, so a 3x3-only peak would overstate every fraction.
* Inference: the shipped ``srcnn-x3`` on a 334 x 334 RGB input (1002 x 1002 output, 1 megapixel), as eager
  NCHW, eager channels-last, ONNX Runtime (CPUExecutionProvider) and ``Enhancer`` with its defaults (what
  ``enhancekit enhance`` runs without ``--tile``). Model FLOPs are the three convolutions on the output grid;
  the bicubic step is not counted (its dense matmuls are reported separately: they mostly multiply zeros).
  Each path's output is compared with eager NCHW; "exact" means a max abs difference <= 1e-5.
* Stages: imresize and each convolution alone (torch, channels-last), and ONNX Runtime's per-node times
  from its profiler, to show where the paths differ.
* Training: the shipped recipe's step (batch 128 of 24 x 24 LR patches at x3, MSE, Adam, forward + backward
  + step, no data loading), NCHW as the recipe runs and channels-last for comparison.

Usage: ``PYTHONPATH=src python benchmarks/srcnn_speed.py [--rounds N] [--train-steps N]``; writes
``benchmarks/results/srcnn_speed.json`` and ``.png``. About 2-3 minutes on 2 shared CPU cores.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

RESULTS = Path(__file__).parent / "results" / "srcnn_speed.json"
MODEL = "srcnn-x3"
SCALE = 3
LR_SIDE = 334  # 1002 x 1002 output: one megapixel
EXACT_TOL = 1e-5
PEAK_SIDE = 512
PEAK_CHANNELS = 64
PEAK_KERNELS = (3, 5)
TRAIN_BATCH = 128
TRAIN_PATCH = 24  # LR side, as configs/srcnn_x3.yaml
TRAIN_LR = 5e-4
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass
class InferencePath:
    """One way to run the model: ``run`` is timed; ``to_nchw`` turns its result into ``(1, C, H, W)``."""

    name: str
    run: Callable[[], Any]
    to_nchw: Callable[[Any], Tensor]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    return []


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _conv_gflop(model: nn.Module, height: int, width: int) -> float:
    """FLOPs of the model's stride-1 'same' convolutions on an ``height x width`` grid, in GFLOP."""
    flops = 0
    for conv in model.modules():
        if isinstance(conv, nn.Conv2d):
            kh, kw = conv.kernel_size
            flops += 2 * conv.in_channels * conv.out_channels * kh * kw * height * width // conv.groups
    return flops / 1e9


def _bicubic_dense_gflop(channels: int, side: int, scale: int) -> float:
    """FLOPs of imresize's two dense matmuls (rows first, then columns) for a square upscale, in GFLOP."""
    out = side * scale
    return 2 * channels * (out * side * side + out * out * side) / 1e9


def _rounds(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of every function, one call each per round after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        # Rotating the order keeps a function from always running right after the same neighbour.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_timed(fns[name]))
    return times


def _export_onnx(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    """Export with the project's exporter, or at the example's fixed shape when that fails."""
    from enhancekit.errors import EnhanceKitError
    from enhancekit.inference.export import export_onnx

    info: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        export_onnx(model, path, size=64)
        info["exporter"] = "enhancekit export_onnx (dynamic shapes)"
    except EnhanceKitError as exc:
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        info["export_onnx_error"] = f"{type(root).__name__}: {str(root).strip().splitlines()[0]}"
        # imresize builds its matrices from concrete sizes, so only a fixed-shape graph can be traced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, external_data=False)
        program.save(str(path))
        info["exporter"] = f"torch.onnx.export (dynamo, fixed {tuple(example.shape)})"
    info["export_s"] = time.perf_counter() - start
    return info


def _ort_session(path: Path, profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_node_ms(session: Any) -> dict[str, float]:
    """Median kernel time per graph node (ms) from a profiling session's runs, the warm-up run dropped."""
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = collections.defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = f"{event['name'].removesuffix('_kernel_time')} ({event['args'].get('op_name')})"
            per_node[node].append(event["dur"] / 1e3)
    return {node: statistics.median(ms[1:]) for node, ms in per_node.items()}


def measure_inference(rounds: int, tmp: Path) -> dict[str, Any]:
    """Conv peak, every inference path and the per-layer stages, interleaved in ``rounds`` rounds."""
    import enhancekit
    from enhancekit.data.degradations import imresize
    from enhancekit.inference import Enhancer

    torch.manual_seed(0)
    lr = torch.rand(1, 3, LR_SIDE, LR_SIDE)
    image = np.ascontiguousarray(lr[0].permute(1, 2, 0).numpy())
    nchw_model = enhancekit.create_model(MODEL).eval()
    cl_model = enhancekit.create_model(MODEL).eval().to(memory_format=torch.channels_last)
    lr_cl = lr.contiguous(memory_format=torch.channels_last)
    enhancer = Enhancer(enhancekit.create_model(MODEL), device="cpu")

    onnx_path = tmp / "srcnn.onnx"
    onnx_info = _export_onnx(enhancekit.create_model(MODEL).eval(), lr, onnx_path)
    start = time.perf_counter()
    session = _ort_session(onnx_path)
    onnx_info["session_s"] = time.perf_counter() - start
    feed = {session.get_inputs()[0].name: lr.numpy()}

    paths = [
        InferencePath("eager NCHW", lambda: nchw_model(lr), lambda y: y),
        InferencePath("eager channels_last", lambda: cl_model(lr_cl), lambda y: y),
        InferencePath("onnxruntime", lambda: session.run(None, feed)[0], torch.from_numpy),
        InferencePath(
            "Enhancer default", lambda: enhancer(image), lambda y: torch.from_numpy(y).movedim(-1, 0)[None]
        ),
    ]

    peak_inputs: dict[str, tuple[Tensor, Tensor, int]] = {}
    for kernel in PEAK_KERNELS:
        x = torch.rand(1, PEAK_CHANNELS, PEAK_SIDE, PEAK_SIDE)
        w = torch.randn(PEAK_CHANNELS, PEAK_CHANNELS, kernel, kernel) / kernel / 8
        for layout, fmt in LAYOUTS.items():
            peak_inputs[f"conv {kernel}x{kernel} {layout}"] = (
                x.contiguous(memory_format=fmt),
                w.contiguous(memory_format=fmt),
                kernel,
            )
    peak_fns = {
        name: (lambda x=x, w=w, k=k: F.conv2d(x, w, padding=k // 2))
        for name, (x, w, k) in peak_inputs.items()
    }

    # Per-layer inputs for the stage timings: the channels-last activations the model would see.
    out_side = LR_SIDE * SCALE
    conv1, _, conv2, _, conv3 = cl_model.body
    with torch.inference_mode():
        upscaled = imresize(lr, scale=SCALE).contiguous(memory_format=torch.channels_last)
        act1 = torch.relu(conv1(upscaled))
        act2 = torch.relu(conv2(act1))
    # name: (function, GFLOP or None where FLOPs are not counted)
    stage_fns: dict[str, tuple[Callable[[], Any], float | None]] = {
        "imresize x3, NCHW input": (lambda: imresize(lr, scale=SCALE), None),
        # The Enhancer hands the model a channels-last tensor, which the matmuls must first copy.
        "imresize x3, channels_last input": (lambda: imresize(lr_cl, scale=SCALE), None),
        "conv1 3->64 9x9": (lambda: conv1(upscaled), _conv_gflop(conv1, out_side, out_side)),
        "conv2 64->32 5x5": (lambda: conv2(act1), _conv_gflop(conv2, out_side, out_side)),
        "conv3 32->3 5x5": (lambda: conv3(act2), _conv_gflop(conv3, out_side, out_side)),
    }
    # A second session with the profiler on, run in the rounds too, so its per-node times see the same load.
    profiled = _ort_session(onnx_path, str(tmp / "ort_profile"))

    with torch.inference_mode():
        reference = nchw_model(lr)
        diffs = {p.name: float((p.to_nchw(p.run()) - reference).abs().max()) for p in paths}
        times = _rounds(
            {
                **peak_fns,
                **{p.name: p.run for p in paths},
                **{f"stage {name}": fn for name, (fn, _) in stage_fns.items()},
                "onnxruntime profiled": lambda: profiled.run(None, feed),
            },
            rounds,
        )
    ort_nodes = _ort_node_ms(profiled)

    model_gflop = _conv_gflop(nchw_model, out_side, out_side)
    peak = {}
    for name, (_, w, _) in peak_inputs.items():
        gflop = 2 * w.shape[1] * w.shape[0] * w.shape[2] * w.shape[3] * PEAK_SIDE * PEAK_SIDE / 1e9
        peak[name] = {"gflop": gflop, "median_s": statistics.median(times[name]), "runs_s": times[name]}
        peak[name]["gflops"] = gflop / peak[name]["median_s"]
    peak_name = max(peak, key=lambda name: peak[name]["gflops"])
    peak_gflop = peak[peak_name]["gflop"]
    # The peak of each round, so that a path's fraction compares two timings taken under the same load.
    round_peak_s = times[peak_name]

    rows = []
    nchw_times, enhancer_times = times[paths[0].name], times[paths[-1].name]
    for p in paths:
        runs = times[p.name]
        median_s = statistics.median(runs)
        rows.append(
            {
                "name": p.name,
                "median_s": median_s,
                "runs_s": runs,
                "mpix_per_s": out_side * out_side / 1e6 / median_s,
                "gflops": model_gflop / median_s,
                "fraction_of_peak": statistics.median(
                    (model_gflop / t) / (peak_gflop / tp) for t, tp in zip(runs, round_peak_s, strict=True)
                ),
                "speedup_vs_nchw": statistics.median(tn / t for t, tn in zip(runs, nchw_times, strict=True)),
                "speedup_vs_enhancer": statistics.median(
                    te / t for t, te in zip(runs, enhancer_times, strict=True)
                ),
                "max_abs_diff_vs_nchw": diffs[p.name],
                "exact": diffs[p.name] <= EXACT_TOL,
            }
        )
    stages = {}
    for name, (_, gflop) in stage_fns.items():
        median_s = statistics.median(times[f"stage {name}"])
        stages[name] = {
            "median_ms": median_s * 1e3,
            "gflops": gflop / median_s if gflop is not None else None,
        }
    return {
        "input": [1, 3, LR_SIDE, LR_SIDE],
        "output": [1, 3, out_side, out_side],
        "model_gflop": model_gflop,
        "model_gflop_counts": "the three convolutions on the output grid; bicubic step not counted",
        "bicubic_dense_matmul_gflop": _bicubic_dense_gflop(3, LR_SIDE, SCALE),
        "peak": peak,
        "peak_config": peak_name,
        "peak_gflops": peak[peak_name]["gflops"],
        "paths": rows,
        "stages_torch_channels_last": stages,
        "onnxruntime_nodes_ms": ort_nodes,
        "onnx": onnx_info,
    }


def _train_gflop(model: nn.Module, batch: int, height: int, width: int) -> float:
    """Convolution FLOPs of one training step, in GFLOP.

    Forward, weight gradient and input gradient each cost one forward pass per layer, except that the first
    layer's input (the bicubic image) needs no gradient.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    forward = [batch * _conv_gflop(conv, height, width) for conv in convs]
    return 3 * sum(forward) - forward[0]


def measure_training(steps: int, peak_gflops: float) -> dict[str, Any]:
    """Patches/s of one optimisation step of the shipped recipe, per memory layout, interleaved.

    The fraction of peak divides by the inference rounds' median peak, as the two are not interleaved.
    """
    import enhancekit

    torch.manual_seed(0)
    lr = torch.rand(TRAIN_BATCH, 3, TRAIN_PATCH, TRAIN_PATCH)
    hr = torch.rand(TRAIN_BATCH, 3, TRAIN_PATCH * SCALE, TRAIN_PATCH * SCALE)
    step_fns = {}
    for layout, fmt in LAYOUTS.items():
        model = enhancekit.create_model(MODEL).train().to(memory_format=fmt)
        optimizer = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
        inputs = lr.contiguous(memory_format=fmt)

        def step(
            model: nn.Module = model, optimizer: torch.optim.Optimizer = optimizer, inputs: Tensor = inputs
        ) -> None:
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(model(inputs), hr).backward()
            optimizer.step()

        step_fns[layout] = step
    times = _rounds(step_fns, steps)
    hr_side = TRAIN_PATCH * SCALE
    gflop = _train_gflop(enhancekit.create_model(MODEL), TRAIN_BATCH, hr_side, hr_side)
    layouts = {}
    for layout, runs in times.items():
        median_s = statistics.median(runs)
        layouts[layout] = {
            "median_s": median_s,
            "runs_s": runs,
            "patches_per_s": TRAIN_BATCH / median_s,
            "gflops": gflop / median_s,
            "fraction_of_peak": gflop / median_s / peak_gflops,
        }
    return {
        "batch": TRAIN_BATCH,
        "lr_patch": TRAIN_PATCH,
        "gflop_per_step": gflop,
        "gflop_counts": "convolutions: forward, weight and input gradients (not the first layer's input)",
        "layouts": layouts,
        "channels_last_speedup": statistics.median(
            n / c for n, c in zip(times["nchw"], times["channels_last"], strict=True)
        ),
    }


def report(results: dict[str, Any]) -> None:
    """Rich tables of the medians and ratios."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)  # wide enough to never wrap, also when piped
    inf, meta = results["inference"], results["meta"]
    peak = Table(
        title=f"Conv peak, torch conv2d 64->64 on 1x64x{PEAK_SIDE}x{PEAK_SIDE}, {meta['threads']} threads"
    )
    for column in ("config", "GFLOP", "median s", "GFLOP/s"):
        peak.add_column(column, justify="left" if column == "config" else "right")
    for name, row in inf["peak"].items():
        mark = " (peak)" if name == inf["peak_config"] else ""
        peak.add_row(name + mark, f"{row['gflop']:.1f}", f"{row['median_s']:.3f}", f"{row['gflops']:.1f}")
    console.print(peak)

    paths = Table(
        title=f"{MODEL} on {LR_SIDE}x{LR_SIDE} -> {LR_SIDE * SCALE}x{LR_SIDE * SCALE} RGB, "
        f"{inf['model_gflop']:.1f} GFLOP (convs only), medians of {meta['rounds']} rounds"
    )
    columns = (
        "path",
        "median s",
        "MP/s",
        "GFLOP/s",
        "of peak",
        "vs NCHW",
        "vs Enhancer",
        "max |diff|",
        "exact",
    )
    for column in columns:
        paths.add_column(column, justify="left" if column == "path" else "right")
    for row in inf["paths"]:
        paths.add_row(
            row["name"],
            f"{row['median_s']:.3f}",
            f"{row['mpix_per_s']:.3f}",
            f"{row['gflops']:.1f}",
            f"{row['fraction_of_peak']:.0%}",
            f"{row['speedup_vs_nchw']:.2f}x",
            f"{row['speedup_vs_enhancer']:.2f}x",
            f"{row['max_abs_diff_vs_nchw']:.1e}",
            "yes" if row["exact"] else "NO",
        )
    console.print(paths)

    stages = Table(title="Torch stages, channels-last, run alone (medians)")
    for column in ("stage", "ms", "GFLOP/s"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for name, row in inf["stages_torch_channels_last"].items():
        gflops = "" if row["gflops"] is None else f"{row['gflops']:.1f}"
        stages.add_row(name, f"{row['median_ms']:.1f}", gflops)
    console.print(stages)
    nodes = Table(title="ONNX Runtime nodes, kernel time from its profiler (medians)")
    nodes.add_column("node (op)")
    nodes.add_column("ms", justify="right")
    for name, ms in inf["onnxruntime_nodes_ms"].items():
        nodes.add_row(name, f"{ms:.1f}")
    console.print(nodes)

    train = results["training"]
    table = Table(
        title=f"Training step, batch {train['batch']} of {train['lr_patch']}x{train['lr_patch']} LR at x3"
    )
    for column in ("layout", "median s/step", "patches/s", "GFLOP/s", "of peak"):
        table.add_column(column, justify="left" if column == "layout" else "right")
    for layout, row in train["layouts"].items():
        table.add_row(
            layout,
            f"{row['median_s']:.2f}",
            f"{row['patches_per_s']:.1f}",
            f"{row['gflops']:.1f}",
            f"{row['fraction_of_peak']:.0%}",
        )
    console.print(table)
    console.print(f"channels_last / NCHW training speedup: {train['channels_last_speedup']:.2f}x")
    onnx = inf["onnx"]
    console.print(
        f"ONNX: {onnx['exporter']}, export {onnx['export_s']:.1f} s, session {onnx['session_s']:.2f} s"
        + (f"; export_onnx failed: {onnx['export_onnx_error']}" if "export_onnx_error" in onnx else "")
    )


def plot(results: dict[str, Any]) -> None:
    """Bar chart of megapixels/s per inference path, labelled with the fraction of the conv peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["inference"]["paths"]
    fig, ax = plt.subplots(figsize=(7, 3.0), dpi=110)
    names = [row["name"] for row in rows]
    speeds = [row["mpix_per_s"] for row in rows]
    bars = ax.barh(names, speeds, color=["#4f81bd" if row["exact"] else "#c0504d" for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel("output megapixels / s (higher is better)")
    ax.set_title(f"{MODEL}, 1 MP output, CPU ({results['meta']['threads']} threads)")
    ax.bar_label(bars, labels=[f"{row['fraction_of_peak']:.0%} of conv peak" for row in rows], padding=3)
    ax.set_xlim(right=max(speeds) * 1.5)
    fig.tight_layout()
    fig.savefig(RESULTS.with_suffix(".png"))
    print(f"wrote {RESULTS.with_suffix('.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of the inference paths")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per layout")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the saved JSON")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text()))
        return

    import onnxruntime

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        inference = measure_inference(args.rounds, Path(tmp))
    training = measure_training(args.train_steps, inference["peak_gflops"])
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "enhancekit": version("enhancekit"),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "rounds": args.rounds,
        "train_steps": args.train_steps,
        "exact_tolerance": EXACT_TOL,
        "wall_s": time.perf_counter() - start,
    }
    results = {"meta": meta, "inference": inference, "training": training}
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS} ({meta['wall_s']:.0f} s)")
    plot(results)


if __name__ == "__main__":
    main()
