"""``fraudscan train``, ``grade``, ``suspects`` and ``outcome``: models, grades, lists, feedback."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from fraudscan.cli._common import console, err_console, user_errors


def register(app: typer.Typer) -> None:
    """Add ``train``, ``grade``, ``suspects`` and the ``outcome`` group to ``app``."""

    @app.command()
    @user_errors
    def train(
        workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
        subject: list[str] = typer.Option(
            None, "--subject", "-s",
            help="claim, facility, person, staff or ring (repeatable); default all."),
        source: list[str] = typer.Option(
            None, "--source", help="Label sources to train on (synthetic, inspection, "
            "external; repeatable); default all."),
        folds: int = typer.Option(5, "--folds", help="Grouped CV folds (by facility)."),
        no_eval: bool = typer.Option(False, "--no-eval", help="Skip grouped evaluation."),
        no_track: bool = typer.Option(False, "--no-track", help="Do not log to MLflow."),
        threads: int = typer.Option(1, "--threads", help="LightGBM threads."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Train the 3+1 models (and staff), log to MLflow and set the champion alias."""
        from fraudscan.models import SUBJECTS, train_all
        from fraudscan.models.data import ALL_SOURCES

        res = train_all(workspace, subject or SUBJECTS, sources=source or ALL_SOURCES,
                        evaluate=not no_eval, n_splits=folds, n_jobs=threads, seed=seed,
                        track=not no_track, log=lambda s: err_console.print(s))
        console.print(res.summary())
        for s, r in res.runs.items():
            console.print(f"{s}: MLflow run {r['run_id']} version {r['version']}")

    @app.command()
    @user_errors
    def grade(
        workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
        period: str = typer.Option(None, "--period", "-p",
                                   help="Period label, e.g. 2025Q4 (default: last quarter)."),
        config: Path = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                    help="Grading YAML merged over the packaged one."),
        out: Path = typer.Option(None, "--out", help="Write the grades (.csv or .xlsx)."),
        top: int = typer.Option(10, "--top", "-n", help="Facilities to print."),
    ) -> None:
        """Grade facilities red/orange/yellow/blue (1,000 points, quotas, hysteresis)."""
        from fraudscan.grading import grade as run_grade
        from fraudscan.suspects import export

        res = run_grade(workspace, period, config=config)
        tab = Table(title=f"tiers per district, {res.period}", title_justify="left")
        tab.add_column("district")
        for t in res.counts.columns:
            tab.add_column(t, justify="right")
        for d, row in res.counts.iterrows():
            tab.add_row(str(d), *[str(int(v)) for v in row])
        console.print(tab)
        for r in res.grades.head(top).itertuples(index=False):
            console.print(f"{r.facility_id}  {r.points:6.1f}  {r.tier:6s}  {r.reason_zh}",
                          highlight=False)
        if out:
            export(res.grades, out)
            console.print(f"wrote {out}")

    @app.command()
    @user_errors
    def suspects(
        workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
        kind: str = typer.Option("facility", "--kind", "-k",
                                 help="facility, staff, person, ring, claim or lead (screening "
                                 "leads within the inspection budget, a quota per model)."),
        top: int = typer.Option(None, "--top", "-n", show_default=False,
                                help="How many to list [default: 50; leads: the budget]."),
        all_: bool = typer.Option(False, "--all", help="List every entity."),
        leads_per_10k: float = typer.Option(
            None, "--leads-per-10k", help="Lead budget per 10,000 insured [default: 100]."),
        allocation: str = typer.Option(
            "quota", "--allocation", help="Leads: quota (a share per screening model) or "
            "priority (one global ranking)."),
        by: str = typer.Option("expected", "--by",
                               help="expected (risk × money at stake) or risk."),
        district: list[str] = typer.Option(None, "--district"),
        scenario: list[str] = typer.Option(None, "--scenario"),
        facility_type: list[str] = typer.Option(None, "--facility-type"),
        grade_: list[str] = typer.Option(None, "--grade", help="red, orange, yellow, blue."),
        no_reasons: bool = typer.Option(False, "--no-reasons", help="Skip SHAP reasons."),
        out: Path = typer.Option(None, "--out", help="Write the list (.csv or .xlsx)."),
    ) -> None:
        """Ranked suspect list with reasons in Chinese and English."""
        from fraudscan.suspects import LEAD_BUDGET, LeadBudget, export, ranked_leads
        from fraudscan.suspects import suspects as run

        if kind == "lead":
            b = LeadBudget(per_10k_insured=leads_per_10k or LEAD_BUDGET.per_10k_insured,
                           minimum=LEAD_BUDGET.minimum, allocation=allocation,
                           weights=LEAD_BUDGET.weights)
            df = ranked_leads(workspace, top=None if all_ else (top or "budget"),
                              reasons=not no_reasons, budget=b)
            if out:
                export(df, out)
                console.print(f"wrote {len(df):,} leads to {out}")
            console.print(f"{len(df):,} leads: " + ", ".join(
                f"{d} {n}" for d, n in df["detector"].value_counts().sort_index().items()),
                highlight=False)
            for r in df.head(20).to_dict("records"):
                console.print(f"{r['rank']:>4}  {r['lead_id']}  {r['detector']}  "
                              f"priority {r['priority']:.3f}  {r.get('reason_en', '')}",
                              highlight=False)
            return
        top = 50 if top is None else top
        df = run(workspace, kind, top=None if all_ else top, by=by,
                 district=district or None, scenario=scenario or None,
                 facility_type=facility_type or None, grade=grade_ or None,
                 reasons=not no_reasons)
        if out:
            export(df, out)
            console.print(f"wrote {len(df):,} rows to {out}")
        shown = df.head(top if not out else min(top, 20))
        for r in shown.to_dict("records"):
            rid = r.get({"facility": "facility_id", "staff": "staff_id", "person": "person_id",
                         "ring": "ring_id", "claim": "settlement_id"}[kind])
            console.print(f"{r['rank']:>4}  {rid}  risk {r['risk_score']:.3f}  "
                          f"expected {r['expected_recoverable']:,.0f}  "
                          f"{r.get('reason_en', '')}", highlight=False)

    outcome = typer.Typer(help="Inspector feedback: record outcomes and sanctions.",
                          no_args_is_help=True)
    app.add_typer(outcome, name="outcome")

    @outcome.command("record")
    @user_errors
    def record(
        workspace: Path = typer.Argument(..., help="Workspace directory.", show_default=False),
        kind: str = typer.Option(..., "--kind", help="facility, staff, person, ring or "
                                 "settlement."),
        entity_id: str = typer.Option(..., "--id", help="Id of the inspected entity."),
        result: str = typer.Option(..., "--result", help="confirmed or cleared."),
        amount: float = typer.Option(0.0, "--amount", help="Amount recovered (CNY)."),
        on: str = typer.Option(None, "--date", help="Date of the outcome (YYYY-MM-DD)."),
        scenario: str = typer.Option(None, "--scenario", help="Fraud scenario found."),
        note: str = typer.Option("", "--note"),
        points: list[str] = typer.Option(
            None, "--points", help="STAFF_ID=N payment-qualification points (repeatable)."),
        suspend_months: int = typer.Option(None, "--suspend-months",
                                           help="Suspension length at 9-11 points (1-6)."),
        restrict: list[str] = typer.Option(
            None, "--restrict-person", help="Suspend this person's networked settlement."),
        restrict_months: int = typer.Option(6, "--restrict-months", help="3-12 months."),
        only_at: list[str] = typer.Option(
            None, "--only-at", help="Restricted persons may settle only at this facility."),
        suspend_agreement: bool = typer.Option(False, "--suspend-agreement"),
        no_apply: bool = typer.Option(False, "--no-apply",
                                      help="Record sanctions without writing statuses."),
    ) -> None:
        """Record a confirmed or cleared case (a label for the next training run)."""
        from fraudscan.outcomes import OutcomeError, record_outcome

        pts: dict[str, int] = {}
        for p in points or []:
            sid, sep, n = p.partition("=")
            if not sep or not n.strip().isdigit():
                raise OutcomeError(f"--points takes STAFF_ID=N, not {p!r}")
            pts[sid.strip()] = int(n)
        res = record_outcome(
            workspace, kind, entity_id, result, amount=amount,
            on=date.fromisoformat(on) if on else None, scenario=scenario, note=note,
            staff_points=pts or None, suspend_months=suspend_months,
            restrict_persons=restrict or (), restrict_months=restrict_months,
            restrict_to_facilities=only_at or (), suspend_agreement=suspend_agreement,
            apply=not no_apply)
        console.print(f"recorded {res.outcome_id}")
        for s in res.sanctions:
            console.print(f"  {s['target_type']} {s['target_id']}: {s['measure']} "
                          f"{s['status']} {s['valid_from']}–{s['valid_to'] or ''}"
                          + (f" (year total {s['year_total']} points)" if s["points"] else ""),
                          highlight=False)
        if res.tables_written:
            err_console.print(f"statuses updated for {', '.join(res.tables_written)} "
                              "(W/status/); rule findings, leads and rings are kept — restart "
                              "a running service to enforce them there")

    @outcome.command("list")
    @user_errors
    def list_(workspace: Path = typer.Argument(..., show_default=False)) -> None:
        """Show recorded outcomes and sanctions."""
        from fraudscan.outcomes import read_outcomes, read_sanctions

        console.print(read_outcomes(workspace).to_string(index=False))
        s = read_sanctions(workspace)
        if len(s):
            console.print(s.to_string(index=False))
