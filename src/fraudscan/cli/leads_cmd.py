"""``fraudscan leads``: run the screening models (BRIEF §2.2) and show the best leads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

from fraudscan.cli._common import console, err_console, progress, user_errors


def register(app: typer.Typer) -> None:
    """Add ``leads`` to ``app``."""

    @app.command()
    @user_errors
    def leads(
        workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
        detector: list[str] = typer.Option(
            None, "--detector", "-d", help="Run only this detector (repeatable); default all."),
        top: int = typer.Option(10, "--top", "-n", help="Leads to print per detector."),
        config: Path = typer.Option(
            None, "--config", "-c", help="Thresholds YAML merged over the packaged defaults.",
            exists=True, dir_okay=False),
        evaluate: bool = typer.Option(
            False, "--evaluate", help="Score the leads against the workspace's labels."),
        out: Path = typer.Option(
            None, "--out", help="Also write all leads to this file (.csv, .parquet or .json)."),
        list_only: bool = typer.Option(False, "--list", help="List the detectors and exit."),
    ) -> None:
        """Run screening models; leads go to the workspace's ``leads`` table."""
        import fraudscan.leads as fl

        if list_only:
            tab = Table(title="screening models", title_justify="left")
            for h in ("detector", "model", "title", "needs", "what it flags"):
                tab.add_column(h)
            for d in fl.all_detectors().values():
                tab.add_row(d.name, d.model, d.title, ", ".join(d.requires) or "-",
                            d.description)
            console.print(tab)
            return
        with progress("screening models") as _:
            df = fl.run(workspace, detectors=detector or None, config=config)
        runs = Table(title="detectors", title_justify="left")
        for h in ("detector", "status", "leads", "seconds", "note"):
            runs.add_column(h)
        for r in df.attrs["runs"]:
            colour = "green" if r["status"] == "ok" else "yellow"
            runs.add_row(r["detector"], f"[{colour}]{r['status']}[/]", f"{r['leads']:,}",
                         f"{r['seconds']:.2f}", r["note"])
        console.print(runs)
        if top > 0 and len(df):
            tab = Table(title=f"top {top} leads per detector", title_justify="left")
            for h in ("detector", "subject", "facility", "period", "score", "amount",
                      "claims", "evidence"):
                tab.add_column(h, overflow="fold")
            for _, g in df.groupby("detector", sort=True):
                for r in g.head(top).itertuples(index=False):
                    tab.add_row(r.detector, f"{r.subject_type} {r.subject_id}",
                                str(r.facility_id or ""), r.period, f"{r.score:.2f}",
                                f"{r.amount:,.2f}", str(len(r.settlement_ids)), r.evidence)
            console.print(tab)
        if out:
            _save(df, out)
            err_console.print(f"wrote {len(df):,} leads to {out}")
        if evaluate:
            ev = fl.evaluate(workspace, df)
            tab = Table(title="against labels", title_justify="left")
            for h in ("detector", "labelled", "found", "recall", "leads", "precision",
                      "decoys hit"):
                tab.add_column(h)
            for r in ev.itertuples(index=False):
                if detector and r.detector not in detector:
                    continue
                tab.add_row(r.detector, str(r.labelled), str(r.found), _pct(r.recall),
                            str(r.leads), _pct(r.precision), str(r.decoys_hit))
            console.print(tab)


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:.0%}"


def _save(df: pd.DataFrame, out: Path) -> None:
    df = df.copy()
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
        return
    df["settlement_ids"] = df["settlement_ids"].map(lambda v: json.dumps(list(v)))
    if out.suffix == ".json":
        df.to_json(out, orient="records", force_ascii=False, indent=1)
    else:
        df.to_csv(out, index=False)
