"""Workspace commands: ``info``, ``validate`` and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from fraudscan.cli._common import console, err_console, user_errors

WS_ARG = typer.Argument(..., help="Workspace directory.", show_default=False)


def register(app: typer.Typer) -> None:
    """Add ``info``, ``validate`` and ``schema`` to ``app``."""

    @app.command()
    @user_errors
    def info(
        workspace: Path = WS_ARG,
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Row counts, date range and the fraud-label summary by scenario."""
        from fraudscan.summary import workspace_summary

        s = workspace_summary(workspace)
        if as_json:
            console.print_json(json.dumps(s, ensure_ascii=False, default=str))
            return
        print_summary(s)

    @app.command()
    @user_errors
    def validate(
        workspace: Path = WS_ARG,
        max_errors: int = typer.Option(20, help="How many problems to print."),
    ) -> None:
        """Re-check every table of a workspace against the data model; exit 1 on problems."""
        from fraudscan.validation import validate_workspace

        report = validate_workspace(workspace)
        if report.ok:
            console.print(f"[green]ok[/]: {workspace} is valid "
                          f"({sum(report.row_counts.values()):,} rows checked)")
            return
        err_console.print(f"[red]{len(report.problems):,} problem(s)[/] in {workspace}:")
        for p in report.problems[:max_errors]:
            err_console.print(f"  {p}", highlight=False, markup=False)
        raise typer.Exit(1)

    @app.command()
    def schema(
        markdown: bool = typer.Option(False, "--markdown", help="Print docs/data-model.md."),
    ) -> None:
        """Show the canonical data model (tables, columns, NHSA field names)."""
        from fraudscan import schema as sc

        if markdown:
            typer.echo(sc.to_markdown())
            return
        for t in sc.TABLES.values():
            tab = Table(title=f"{t.name}{' (optional)' if t.optional else ''}",
                        title_justify="left")
            for h in ("column", "type", "NHSA field", "meaning"):
                tab.add_column(h)
            for c in t.columns:
                tab.add_row(c.name, c.dtype, c.nhsa or "-", c.description)
            console.print(tab)


def print_summary(s: dict) -> None:
    """Render :func:`fraudscan.summary.workspace_summary` as terminal tables."""
    console.print(f"[bold]{s['path']}[/]  source: {s.get('source', '?')}")
    if s.get("date_range"):
        lo, hi = s["date_range"]
        console.print(f"settlements from {lo} to {hi}")
    counts = Table(title="tables", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, n in s["row_counts"].items():
        counts.add_row(name, f"{n:,}")
    console.print(counts)
    if s.get("districts"):
        d = Table(title="facilities and settlements by district 片区", title_justify="left")
        for h in ("district", "facilities", "settlements", "fund paid (CNY)"):
            d.add_column(h, justify="right" if h != "district" else "left")
        for row in s["districts"]:
            d.add_row(str(row["district"]), f"{row['facilities']:,}",
                      f"{row['settlements']:,}", f"{row['fund_paid']:,.0f}")
        console.print(d)
    labels = s.get("labels") or []
    if labels:
        lt = Table(title="fraud labels by scenario", title_justify="left")
        for h in ("scenario", "entity", "fraud", "clean", "at risk (CNY)"):
            lt.add_column(h, justify="left" if h in ("scenario", "entity") else "right",
                          no_wrap=True)
        for row in labels:
            lt.add_row(row["scenario"], row["entity_type"], f"{row['fraud']:,}",
                       f"{row['clean']:,}", f"{row['amount_at_risk']:,.0f}")
        console.print(lt)
    else:
        console.print("no labels")
