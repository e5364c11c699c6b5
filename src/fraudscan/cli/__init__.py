"""The ``fraudscan`` command line: one sub-module per command group, assembled here."""

from __future__ import annotations

import typer

from fraudscan.cli import (
    demo_cmd,
    features_cmd,
    graph_cmd,
    import_cmd,
    leads_cmd,
    models_cmd,
    rules_cmd,
    serve_cmd,
    synth_cmd,
    workspace_cmd,
)

app = typer.Typer(
    name="fraudscan",
    help="Anti-fraud toolkit for the basic medical-insurance fund (医保基金监管).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _version(value: bool) -> None:
    if value:
        from fraudscan import __version__

        typer.echo(f"fraudscan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Anti-fraud toolkit for the basic medical-insurance fund (医保基金监管)."""


demo_cmd.register(app)
workspace_cmd.register(app)
synth_cmd.register(app)
import_cmd.register(app)
rules_cmd.register(app)
features_cmd.register(app)
leads_cmd.register(app)
graph_cmd.register(app)
models_cmd.register(app)
serve_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
