"""The ``enhancekit`` command line: Typer commands that wire the library's layers together.

User errors (:class:`EnhanceKitError`) are caught here, once, and printed as one line with exit code 1;
usage errors are Typer's (exit code 2); anything else is a bug, reported in one line (exit code 3) with the
traceback available through ``ENHANCEKIT_DEBUG=1``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

import typer

from enhancekit.cli import commands, compare, stack
from enhancekit.cli.ui import console
from enhancekit.errors import EnhanceKitError

app = typer.Typer(
    name="enhancekit",
    help="Image enhancement: super-resolution, denoising (2D/3D), low-light and unsupervised enhancement.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except EnhanceKitError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("ENHANCEKIT_DEBUG"):
                raise
            console.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                "(set ENHANCEKIT_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(3) from None

    return wrapper


def _help_of(command: Callable[..., Any]) -> str:
    """``command``'s docstring with each paragraph on one line: Typer's rich help keeps a docstring's line
    breaks, which then break lines mid-sentence at any terminal width."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


for _name, _command in {
    "models": commands.models,
    "enhance": commands.enhance,
    "eval": commands.evaluate,
    "score": commands.score,
    "train": commands.train,
    "export": commands.export,
    "compare": compare.compare,
    "stack": stack.stack,
}.items():
    app.command(_name, help=_help_of(_command))(_one_line_errors(_command))


def run() -> None:
    """Console-script entry point."""
    app()
