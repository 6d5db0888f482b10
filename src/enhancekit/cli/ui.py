"""Console output shared by the commands: one Rich console, progress bars, score tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from enhancekit.evaluation import Report

console = Console(stderr=True)
stdout = Console()
T = TypeVar("T")


def progress_bars() -> Progress:
    """Rich progress bars on stderr, removed when done."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def track(items: Iterable[T], total: int, description: str, progress: Progress) -> Iterator[T]:
    """Iterate with a bar of ``progress``."""
    task = progress.add_task(description, total=total)
    for item in items:
        yield item
        progress.advance(task)


def tile_progress(progress: Progress) -> Callable[[int, int], None]:
    """A callback for the inference engine that shows the tiles of the current image as a second bar."""
    task = progress.add_task("  tiles", total=None, visible=False)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total, visible=done < total)

    return update


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def print_report(report: Report, title: str) -> None:
    """A table of per-image scores, then the mean and the min-max range of each metric."""
    table = Table(title=title, title_justify="left")
    table.add_column("image")
    for name in report.metric_names:
        table.add_column(name.upper(), justify="right")
    for row in report.images:
        table.add_row(row["name"], *(_fmt(row[n]) for n in report.metric_names))
    summary = report.summary()
    table.add_section()
    table.add_row("[bold]mean", *(f"[bold]{_fmt(summary[n]['mean'])}" for n in report.metric_names))
    table.add_row(
        "range", *(f"{_fmt(summary[n]['min'])} - {_fmt(summary[n]['max'])}" for n in report.metric_names)
    )
    stdout.print(table)
