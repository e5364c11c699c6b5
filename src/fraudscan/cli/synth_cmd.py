"""``fraudscan synth``: generate a synthetic city with labelled fraud into a workspace."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer

from fraudscan.cli._common import console, progress, user_errors
from fraudscan.errors import FraudscanError


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise FraudscanError(f"--start must be a date like 2025-01-01, not {value!r}") from None


@user_errors
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Workspace directory to write."),
    persons: int = typer.Option(10_000, "--persons", "-n", min=100,
                                help="Number of insured persons."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed (same seed, same bytes)."),
    intensity: float = typer.Option(1.0, "--intensity", min=0.0,
                                    help="Scale all fraud scenarios (0 = no fraud)."),
    months: int = typer.Option(12, "--months", min=1, max=36, help="Months of activity."),
    start: str = typer.Option("2025-01-01", "--start", help="First day (YYYY-MM-DD)."),
) -> None:
    """Generate a synthetic city (facilities, staff, persons, catalogue, 12 months of claims)
    with injected, labelled fraud scenarios and honest decoys."""
    from fraudscan.synth import SCENARIOS, STAGES, SynthConfig, generate

    cfg = SynthConfig(months=months, start=_parse_date(start), intensity=intensity)
    try:
        with progress(f"synth {persons:,} persons", total=STAGES + 1) as advance:
            ws = generate(out, persons=persons, seed=seed, config=cfg, progress=advance)
    except ValueError as e:
        raise FraudscanError(str(e)) from None
    counts = ws.row_counts()
    labels = ws.read_table("labels", columns=["scenario", "is_fraud"])
    fraud = labels.loc[labels["is_fraud"], "scenario"]
    n_scen = fraud[fraud.isin(SCENARIOS)].nunique()
    n_rules = fraud[~fraud.isin(SCENARIOS)].nunique()
    console.print(
        f"wrote {ws.path}: {counts.get('persons', 0):,} persons, "
        f"{counts.get('settlements', 0):,} settlements, {counts.get('fee_lines', 0):,} fee "
        f"lines, {int(labels['is_fraud'].sum()):,} fraud labels ({n_scen} scenarios, "
        f"{n_rules} rule violations)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("synth")(synth)
