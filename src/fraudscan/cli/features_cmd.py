"""``fraudscan features``: build, show and document the feature tables."""

from __future__ import annotations

from pathlib import Path

import typer

from fraudscan.cli._common import console, err_console, progress, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``features`` command group to ``app``."""
    sub = typer.Typer(
        name="features",
        help="Feature tables (claim, facility, staff, person) built from features/*.sql.",
        no_args_is_help=True,
    )

    @sub.command("build")
    @user_errors
    def build_cmd(
        workspace: Path = typer.Argument(..., help="Workspace directory."),
        backend: str = typer.Option("duckdb", "--backend", help="Engine: duckdb or spark."),
        months: str = typer.Option(
            "", "--months", help="Rebuild only these months, comma-separated (2025-01,2025-02)."
        ),
        full: bool = typer.Option(False, "--full", help="Rebuild every month."),
    ) -> None:
        """Build features; only new or changed months are recomputed unless --full or --months."""
        from fraudscan.features import build

        wanted = [m.strip() for m in months.split(",") if m.strip()] or None
        with progress(f"building features ({backend})"):
            result = build(workspace, backend=backend, months=wanted, full=full)
        console.print(result.summary(), highlight=False)
        for w in result.warnings:
            err_console.print(f"[yellow]warning:[/] {w}", highlight=False)

    @sub.command("show")
    @user_errors
    def show_cmd(
        workspace: Path = typer.Argument(..., help="Workspace directory."),
        subject: str = typer.Option(..., "--subject", help="claim, facility, staff or person."),
        entity_id: str = typer.Option("", "--id", help="Only this entity (its key value)."),
        months: str = typer.Option("", "--months", help="Only these months, comma-separated."),
        limit: int = typer.Option(20, "--limit", help="Rows to print (0 = all)."),
        csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    ) -> None:
        """Print built features of one subject."""
        from fraudscan.features import load

        wanted = [m.strip() for m in months.split(",") if m.strip()] or None
        df = load(workspace, subject, months=wanted, ids=[entity_id] if entity_id else None)
        if limit:
            df = df.head(limit)
        if csv:
            typer.echo(df.to_csv(index=False), nl=False)
        elif entity_id and len(df) <= 3:
            # one entity: columns down the page read best
            console.print(df.set_index("period").T.to_string(), highlight=False)
        else:
            console.print(df.to_string(index=False), highlight=False)

    @sub.command("docs")
    @user_errors
    def docs_cmd(
        out: Path = typer.Option(
            None, "--out", help="Write the Markdown here (default: print it)."
        ),
    ) -> None:
        """Render the feature catalogue (docs/features.md) from the SQL files' comments."""
        from fraudscan.features.docs import render

        text = render()
        if out:
            out.write_text(text, encoding="utf-8")
            err_console.print(f"wrote {out}")
        else:
            typer.echo(text, nl=False)

    app.add_typer(sub, name="features")
