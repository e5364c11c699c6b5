"""``fraudscan serve``: the scoring service and workbench; ``serve token``: API tokens."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.table import Table
from typer.core import TyperGroup

from fraudscan.cli._common import console, err_console, user_errors


class _DefaultStart(TyperGroup):
    """``serve W ...`` means ``serve start W ...``; ``serve token ...`` stays a sub-group."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


serve_app = typer.Typer(
    name="serve",
    help="Scoring service and inspector workbench (BentoML): `serve W [--port P]` starts it; "
    "`serve token create W --role inspector --districts D1,D2` makes a token.",
    cls=_DefaultStart,
    no_args_is_help=True,
)
token_app = typer.Typer(name="token", help="API tokens: create, list, revoke.",
                        no_args_is_help=True)
serve_app.add_typer(token_app)


def register(app: typer.Typer) -> None:
    """Add ``serve`` (and ``serve token ...``) to ``app``."""
    app.add_typer(serve_app)


def start(workspace: Path, port: int = 3000, host: str = "127.0.0.1", workers: int = 2,
          poll_seconds: float = 30.0, warn_at: str = "0.9", no_auth: bool = False,
          access_log: bool = False, mlflow_dir: Path | None = None) -> None:
    from fraudscan.workspace import Workspace

    ws = Workspace(workspace).require()
    env = os.environ
    env["FRAUDSCAN_WORKSPACE"] = str(ws.path)
    env["FRAUDSCAN_WORKERS"] = str(workers)
    env["FRAUDSCAN_POLL_SECONDS"] = str(poll_seconds)
    env["FRAUDSCAN_WARN_AT"] = warn_at
    if mlflow_dir is not None:
        env["FRAUDSCAN_MLFLOW_DIR"] = str(mlflow_dir.resolve())
    if no_auth:
        env["FRAUDSCAN_NO_AUTH"] = "1"
    if access_log:
        env["FRAUDSCAN_ACCESS_LOG"] = "1"
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from fraudscan.serving.access import AccessFile

    if not no_auth and not AccessFile(ws.path).records():
        err_console.print("[yellow]warning:[/] no tokens yet; create one with `fraudscan serve "
                          f"token create {workspace} --role admin`")
    err_console.print(f"fraudscan service on http://{host}:{port}  (workbench /wb/, API docs "
                      f"/docs, workers {workers})")
    # exec so signals reach the BentoML arbiter directly
    os.execv(sys.executable, [sys.executable, "-m", "bentoml", "serve",
                              "fraudscan.serving.bento:FraudScan", "--host", host,
                              "--port", str(port)])


@serve_app.command("start")
@user_errors
def start_cmd(
    workspace: Path = typer.Argument(..., help="Workspace directory."),
    port: int = typer.Option(3000, "--port", "-p", help="Port (listens on 127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    workers: int = typer.Option(2, help="Worker processes (cross-claim state is shared)."),
    poll_seconds: float = typer.Option(30.0, help="Seconds between champion-alias polls "
                                       "(0: only POST /v1/admin/reload)."),
    warn_at: str = typer.Option("0.9", help="Score from which a rule 'pass' becomes 'warn' "
                                "('none': never)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="No tokens (local demos only)."),
    access_log: bool = typer.Option(False, help="Log every request."),
    mlflow_dir: Path | None = typer.Option(None, help="MLflow store directory (default: "
                                           "W/mlflow if it has mlflow.db, else ./mlflow)."),
) -> None:
    """Start the service for workspace W (same as `fraudscan serve W`)."""
    start(workspace, port, host, workers, poll_seconds, warn_at, no_auth, access_log,
          mlflow_dir)


@token_app.command("create")
@user_errors
def token_create(
    workspace: Path = typer.Argument(..., help="Workspace directory."),
    role: str = typer.Option(..., "--role", help="admin, supervisor, inspector or settlement."),
    districts: str = typer.Option("", "--districts", help="片区, comma-separated (inspector)."),
    name: str | None = typer.Option(None, "--name", help="Who holds it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a token; it is printed once (only its hash is stored)."""
    from fraudscan.serving.access import AccessFile

    token, rec = AccessFile(workspace).create(role, districts.split(","), name)
    if as_json:
        typer.echo(json.dumps({"token": token, **{k: v for k, v in rec.items()
                                                   if k != "sha256"}}, ensure_ascii=False))
        return
    typer.echo(token)
    err_console.print(f"token {rec['token_id']} ({rec['role']}"
                      + (f", districts {','.join(rec['districts'])}" if rec["districts"] else "")
                      + ") — store it now, it is not shown again")


@token_app.command("list")
@user_errors
def token_list(workspace: Path = typer.Argument(..., help="Workspace directory.")) -> None:
    """The tokens of a workspace (without secrets)."""
    from fraudscan.serving.access import AccessFile

    t = Table(title="tokens", title_justify="left")
    for h in ("id", "name", "role", "districts", "created", "revoked"):
        t.add_column(h)
    for r in AccessFile(workspace).records():
        t.add_row(r["token_id"], r["name"], r["role"], ",".join(r.get("districts") or []),
                  r["created"], "yes" if r.get("revoked") else "")
    console.print(t)


@token_app.command("revoke")
@user_errors
def token_revoke(workspace: Path = typer.Argument(..., help="Workspace directory."),
                 token_id: str = typer.Argument(..., help="Token id (from `token list`).")
                 ) -> None:
    """Revoke a token (the service notices within a second)."""
    from fraudscan.serving.access import AccessFile

    AccessFile(workspace).revoke(token_id)
    console.print(f"revoked {token_id}")


def main() -> None:
    """``python -m fraudscan.cli.serve_cmd serve W`` (works before the command is wired)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)

    @app.callback()
    def _root() -> None:
        """fraudscan serve."""

    app()


if __name__ == "__main__":
    main()
