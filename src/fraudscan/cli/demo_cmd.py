"""``fraudscan demo``: the main job, end to end on a synthetic city."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from fraudscan.cli._common import console, user_errors


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command()
    @user_errors
    def demo(
        out: Path = typer.Option(Path("workspaces/demo"), "--out", "-o",
                                 help="Workspace directory to create (replaced if present)."),
        persons: int = typer.Option(20_000, help="Insured persons in the synthetic city."),
        seed: int = typer.Option(2026, help="Random seed (same seed, same data)."),
        top: int = typer.Option(10, help="How many suspects to print per list."),
        lang: str = typer.Option("zh", help="Language of the reasons: zh or en."),
    ) -> None:
        """Generate a synthetic city and run the whole pipeline: rules, features, screening
        models, rings, the 3+1 models (MLflow), facility grades and ranked suspects."""
        import logging
        import warnings

        # MLflow and scikit-learn chatter (pickle-format advice, pip resolution) is not for
        # the person running the demo; the runs themselves are logged in full.
        import mlflow  # noqa: F401  (configures its loggers on import; quieten them after)

        from fraudscan.pipeline import run_demo

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=UserWarning)
        res = run_demo(out, persons=persons, seed=seed, top=top,
                       log=lambda s: console.print(s, highlight=False))
        show(res, lang=lang)


def show(res: object, lang: str = "zh") -> None:
    """Print the demo's results: top suspects with reasons, grade counts, where to look next."""
    from fraudscan.pipeline import DemoResult

    assert isinstance(res, DemoResult)
    reason = "reason_zh" if lang == "zh" else "reason_en"
    titles = {"facility": "可疑机构 suspect facilities", "staff": "可疑医务人员 suspect staff",
              "person": "可疑参保人 suspect insured persons", "ring": "可疑团伙 suspect rings"}
    for kind, df in res.outputs["suspects"].items():
        console.print(f"\n[bold]{titles[kind]}[/] (top {len(df)})")
        id_col = next((c for c in df.columns if c.endswith("_id")), df.columns[1])
        for r in df.itertuples(index=False):
            row = r._asdict()
            name = f" {row['name']}" if row.get("name") else ""
            grade = f" [{row['grade']}]" if row.get("grade") else ""
            console.print(
                f"{row['rank']:>3}. {row[id_col]}{name}{grade}  risk {row['risk_score']:.2f}"
                f"  expected recoverable ¥{row.get('expected_recoverable', 0):,.0f}",
                highlight=False, markup=False,
            )
            if row.get(reason):
                console.print(f"     {row[reason]}", highlight=False, markup=False)
    g = res.outputs["grade"]
    counts = g.counts
    t = Table(title=f"facility grades {g.period} by district 片区 (红牌 驻点 / 橙牌 提级 / "
              "黄牌 重点 / 蓝牌 一般)", title_justify="left")
    t.add_column("district")
    for c in counts.columns:
        t.add_column(str(c), justify="right")
    for d, row in counts.iterrows():
        t.add_row(str(d), *[str(int(v)) for v in row])
    console.print(t)
    ws = res.workspace.path
    console.print(
        f"\nfinished in {res.timings['total']:.0f} s; workspace: {ws}\n"
        f"  workbench:  .venv/bin/fraudscan serve {ws} --no-auth   → http://127.0.0.1:3000/wb/\n"
        "  MLflow UI:  .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db"
        "   → http://127.0.0.1:5000\n"
        f"  more:       .venv/bin/fraudscan suspects {ws} --kind facility --top 50 "
        "--out suspects.xlsx",
        highlight=False,
    )


