"""``fraudscan graph``: build the collusion graph, list rings and show one ring's members."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

from fraudscan.cli._common import console, progress, user_errors

WS_ARG = typer.Argument(..., help="Workspace directory.", show_default=False)


def register(app: typer.Typer) -> None:
    """Add the ``graph`` command group (build, rings, ring) to ``app``."""
    graph_app = typer.Typer(help="Collusion graph (团伙): Leiden rings from co-admissions, "
                            "co-visits, shared staff and trace-code resale chains.",
                            no_args_is_help=True)
    app.add_typer(graph_app, name="graph")

    @graph_app.command("build")
    @user_errors
    def build(
        workspace: Path = WS_ARG,
        config: Path = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                    help="Graph settings YAML merged over the defaults."),
        top: int = typer.Option(10, "--top", "-n", help="Rings to print."),
        evaluate: bool = typer.Option(False, "--evaluate",
                                      help="Match rings to labelled collusion rings."),
    ) -> None:
        """Build edges in DuckDB, find Leiden communities, store ``rings``/``ring_members``."""
        import fraudscan.graph as fg

        with progress("collusion graph") as _:
            res = fg.build(workspace, config=config)
        kinds = ", ".join(f"{k} {v:,}" for k, v in res.edge_kinds.items() if v)
        console.print(f"graph: {res.nodes:,} nodes, {res.edges:,} edges ({kinds or 'none'}); "
                      f"{len(res.rings):,} rings; "
                      + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()))
        _print_rings(res.rings.head(top))
        if evaluate:
            _, summary = fg.evaluate_rings(workspace)
            console.print("injected rings: {injected_rings:.0f}, mean recall {mean_recall:.2f}, "
                          "mean purity {mean_purity:.2f}, recovered {rings_recovered:.0%}"
                          .format(**summary))

    @graph_app.command("rings")
    @user_errors
    def rings(workspace: Path = WS_ARG,
              top: int = typer.Option(20, "--top", "-n", help="Rings to print.")) -> None:
        """List the stored rings, best-scored first."""
        import fraudscan.graph as fg

        _print_rings(fg.read_rings(workspace).head(top))

    @graph_app.command("ring")
    @user_errors
    def ring(workspace: Path = WS_ARG,
             ring_id: str = typer.Argument(..., help="Ring id, e.g. R00001.")) -> None:
        """Print one ring's features and members with their roles."""
        import fraudscan.graph as fg

        all_rings = fg.read_rings(workspace)
        members = fg.read_ring_members(workspace, ring_id)
        _print_rings(all_rings[all_rings["ring_id"] == ring_id])
        tab = Table(title=f"members of {ring_id}", title_justify="left")
        for h in ("type", "id", "role", "degree", "strength"):
            tab.add_column(h)
        for r in members.itertuples(index=False):
            tab.add_row(r.node_type, str(r.node_id), r.role, str(r.degree), f"{r.strength:.2f}")
        console.print(tab)


def _print_rings(rings: pd.DataFrame) -> None:
    if rings.empty:
        console.print("no rings")
        return
    tab = Table(title="rings", title_justify="left")
    cols = ("ring_id", "size", "persons", "staff", "facilities", "pharmacies", "density",
            "synchrony", "flagged_share", "amount", "institution_overlap", "top_facility",
            "score")
    for h in cols:
        tab.add_column(h)
    for r in rings.itertuples(index=False):
        tab.add_row(*[f"{getattr(r, c):,.2f}" if isinstance(getattr(r, c), float)
                      else str(getattr(r, c)) for c in cols])
    console.print(tab)
