"""``fraudscan import canonical|nhsa|medicare`` and ``fraudscan export canonical``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from fraudscan.cli._common import console, err_console, progress, user_errors

import_app = typer.Typer(
    name="import",
    help="Import data into a workspace (validated; lands whole or not at all).",
    no_args_is_help=True,
)
export_app = typer.Typer(name="export", help="Export a workspace's tables.",
                         no_args_is_help=True)

DIR_ARG = typer.Argument(..., help="Directory with the files to import.", show_default=False,
                         exists=True, file_okay=False, dir_okay=True)
OUT_OPT = typer.Option(..., "--out", "-o", help="Workspace directory to write.",
                       show_default=False)
LENIENT_OPT = typer.Option(
    False, "--lenient",
    help="Drop bad rows (and rows depending on them) into W/rejects/rejects.parquet instead of "
         "failing.")


def _run(description: str, fn: Callable[..., object], *args: object, **kw: object) -> None:
    from fraudscan.validation import ValidationError
    from fraudscan.workspace import Workspace

    try:
        with progress(description) as advance:
            ws = fn(*args, step=lambda d: advance(1, f"{description}: {d}"), **kw)
    except ValidationError as e:
        # One problem per line, never wrapped, so the lines can be grepped and pasted.
        err_console.print("[bold red]error:[/] ", end="")
        err_console.print(str(e), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    assert isinstance(ws, Workspace)
    print_import_summary(ws)


def print_import_summary(ws: object) -> None:
    """Rows per table, rejected rows per table and ignored columns of the last import."""
    meta = ws.metadata()  # type: ignore[attr-defined]
    rep = meta.get("import", {})
    rows, rejected = meta.get("row_counts", {}), rep.get("rejected", {})
    tab = Table(title=f"imported into {ws.path}", title_justify="left")  # type: ignore[attr-defined]
    tab.add_column("table")
    tab.add_column("rows", justify="right")
    tab.add_column("rejected", justify="right")
    for name, n in rows.items():
        tab.add_row(name, f"{n:,}", f"{rejected.get(name, 0):,}")
    console.print(tab)
    total = sum(rejected.values())
    if total:
        console.print(f"[yellow]{total:,} row(s) rejected[/]; reasons in "
                      f"{ws.rejects_dir / 'rejects.parquet'}")  # type: ignore[attr-defined]
    for file, cols in rep.get("ignored_columns", {}).items():
        console.print(f"ignored columns in {file}: {', '.join(cols)}", highlight=False,
                      markup=False, soft_wrap=True)


@import_app.command("canonical")
@user_errors
def canonical_cmd(directory: Path = DIR_ARG, out: Path = OUT_OPT,
                  lenient: bool = LENIENT_OPT) -> None:
    """Import canonical files TABLE.csv / TABLE.parquet (see docs/importing.md)."""
    from fraudscan.importers import import_canonical

    _run("importing canonical files", import_canonical, directory, out, lenient)


@import_app.command("nhsa")
@user_errors
def nhsa_cmd(directory: Path = DIR_ARG, out: Path = OUT_OPT,
             lenient: bool = LENIENT_OPT) -> None:
    """Import national-platform CSV exports with NHSA field names (setlinfo.csv, ...)."""
    from fraudscan.importers import import_nhsa

    _run("importing NHSA exports", import_nhsa, directory, out, lenient)


@import_app.command("medicare")
@user_errors
def medicare_cmd(directory: Path = DIR_ARG, out: Path = OUT_OPT) -> None:
    """Import the Medicare provider-fraud files (Train_Inpatientdata*, Train_Beneficiarydata*,
    labels*.csv, gzipped or not)."""
    from fraudscan.importers import import_medicare

    _run("importing Medicare claims", import_medicare, directory, out)


@export_app.command("canonical")
@user_errors
def export_canonical_cmd(
    workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
    directory: Path = typer.Argument(..., help="Directory to write TABLE.csv/.parquet to.",
                                     show_default=False),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
) -> None:
    """Write a workspace's tables as canonical files (re-importable with `import canonical`)."""
    from fraudscan.importers.canonical import export_canonical

    written = export_canonical(workspace, directory, fmt)
    console.print(f"wrote {len(written)} file(s) to {directory}")


def register(app: typer.Typer) -> None:
    """Add the ``import`` and ``export`` command groups to ``app``."""
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
