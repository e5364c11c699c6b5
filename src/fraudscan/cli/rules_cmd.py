"""``fraudscan rules``: list the rule catalogue, check one claim, screen a workspace."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from fraudscan.cli._common import console, err_console, progress, user_errors

rules_app = typer.Typer(
    name="rules",
    help="Pre-payment and batch rule engine (rules are versioned data: packs/*.yaml).",
    no_args_is_help=True,
)

RULE_FILES = typer.Option(
    None, "--rules", "-r",
    help="Extra rule file or directory (YAML), loaded after the shipped packs; repeatable.",
)


def _load(extra: list[Path] | None):  # type: ignore[no-untyped-def]
    from fraudscan.rules import load_rules

    return load_rules(extra or [])


def register(app: typer.Typer) -> None:
    """Add the ``rules`` sub-app to ``app``."""
    app.add_typer(rules_app)


@rules_app.command("list")
@user_errors
def list_rules(
    rules: list[Path] = RULE_FILES,
    all_versions: bool = typer.Option(False, "--all-versions", help="One row per version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The loaded rules: id, class, national code, check, action, severity, period."""
    rs = _load(rules)
    items = list(rs) if all_versions else rs.latest()
    if as_json:
        typer.echo(json.dumps([{
            "rule_id": r.id, "version": r.version, "name": r.name, "name_en": r.name_en,
            "rule_class": r.rule_class, "national_code": r.national_code, "check": r.check,
            "scope": r.scope, "action": r.action, "severity": r.severity, "params": r.params,
            "knowledge_items": len(r.knowledge), "effective_from": str(r.effective_from),
            "effective_to": str(r.effective_to) if r.effective_to else None,
            "source": r.source} for r in items], ensure_ascii=False, indent=1))
        return
    t = Table(title=f"{len(rs)} rules ({len(rs.rules)} versions)", title_justify="left")
    for h in ("id", "v", "name", "national code", "check", "action", "sev", "from", "to"):
        t.add_column(h)
    for r in items:
        t.add_row(r.id, str(r.version), r.name, r.national_code or "-", r.check, r.action,
                  r.severity, str(r.effective_from), str(r.effective_to or ""))
    console.print(t)


@rules_app.command("lint")
@user_errors
def lint(files: list[Path] = typer.Argument(..., help="Rule files to validate.")) -> None:
    """Validate rule files (with the shipped packs); errors name file, line and field."""
    rs = _load(files)
    console.print(f"[green]ok[/]: {len(rs)} rules, {len(rs.rules)} versions")


@rules_app.command("check")
@user_errors
def check(
    claim: Path = typer.Argument(..., help="3101/3102-shaped request JSON."),
    workspace: Path = typer.Option(..., "--workspace", "-w",
                                   help="Workspace with the catalogue and registries."),
    rules: list[Path] = RULE_FILES,
    settle: bool = typer.Option(False, "--settle",
                                help="Record the claim as settled in the cross-claim state."),
    state: Path | None = typer.Option(None, help="State file (default W/rules_state.sqlite)."),
) -> None:
    """Judge one claim; prints the 3101-shaped response JSON (decision block/warn/pass)."""
    from fraudscan.rules import RuleEngine, load_request

    req = load_request(claim)
    eng = RuleEngine.from_workspace(workspace, rules=_load(rules), state_path=state)
    try:
        resp = eng.check(req, source=str(claim))
        if settle:
            eng.settle(req)
    finally:
        eng.close()
    typer.echo(json.dumps(resp.model_dump(), ensure_ascii=False, indent=1))
    err_console.print(f"decision: [bold]{resp.decision}[/] ({len(resp.result)} hit(s))")


@rules_app.command("screen")
@user_errors
def screen_cmd(
    workspace: Path = typer.Argument(..., help="Workspace directory."),
    rules: list[Path] = RULE_FILES,
    threads: int | None = typer.Option(None, help="DuckDB threads (default: all cores)."),
) -> None:
    """Screen every claim of a workspace set-wise; writes table rule_findings."""
    from fraudscan.rules import screen

    rs = _load(rules)
    with progress("screening") as _:
        res = screen(workspace, rs, threads=threads)
    t = Table(title="rule findings", title_justify="left")
    for h in ("rule", "v", "check", "findings", "amount (CNY)"):
        t.add_column(h, justify="right" if h in ("findings", "amount (CNY)") else "left")
    for r in res.per_rule.itertuples():
        if r.findings:
            t.add_row(r.rule_id, str(r.rule_version), r.check, f"{r.findings:,}",
                      f"{r.amount:,.2f}")
    console.print(t)
    console.print(f"{res.n_findings:,} findings on {res.n_lines:,} fee lines / "
                  f"{res.n_settlements:,} settlements in {res.seconds:.2f} s "
                  f"({res.lines_per_second:,.0f} lines/s) → table rule_findings")
