"""Helpers shared by the CLI command modules: error reporting and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn fraudscan's own errors into a one-line message and exit code 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from fraudscan.errors import FraudscanError

        try:
            return fn(*args, **kwargs)
        except FraudscanError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (hidden when not a terminal); yields ``advance(n=1, desc=None)``."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}" if total else ""),
        TimeElapsedColumn(),
        console=err_console,
        transient=not sys.stderr.isatty(),
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1, desc: str | None = None) -> None:
            if desc:
                bar.update(task, description=desc)
            bar.advance(task, n)

        yield advance
