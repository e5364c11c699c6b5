"""CLI: ``fraudscan leads`` and ``fraudscan graph`` on a tiny world (registered on a test app)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from _leads_world import SCENARIOS, World, ring_world
from fraudscan.cli import graph_cmd, leads_cmd


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich tables fold to the terminal width; make it wide so assertions see whole cells."""
    from fraudscan.cli import _common

    monkeypatch.setattr(_common.console, "width", 250)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def _root() -> None:
        """Test root."""

    leads_cmd.register(a)
    graph_cmd.register(a)
    return a


@pytest.fixture
def ws(tmp_path):
    w = World()
    SCENARIOS["split_admission"](w, True)
    w.label("settlement", w.settlements[-1]["settlement_id"], "split_admission")
    ring_world(w)
    return w.write(tmp_path / "w")


def test_leads_cli(app, ws, tmp_path) -> None:
    r = CliRunner().invoke(app, ["leads", str(ws.path), "-d", "split_admission", "--top", "3",
                                 "--evaluate", "--out", str(tmp_path / "l.json")])
    assert r.exit_code == 0, r.output
    assert "split_admission" in r.output and "100%" in r.output
    rows = json.loads((tmp_path / "l.json").read_text())
    assert rows and rows[0]["detector"] == "split_admission"


def test_leads_cli_config_and_errors(app, ws, tmp_path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("split_admission:\n  max_gap_days: 1\n")
    r = CliRunner().invoke(app, ["leads", str(ws.path), "-d", "split_admission", "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "│ 0" in r.output or " 0 " in r.output
    cfg.write_text("split_admission:\n  max_gap_dayz: 1\n")
    r = CliRunner().invoke(app, ["leads", str(ws.path), "-c", str(cfg)])
    assert r.exit_code == 2 and "unknown setting" in r.output
    r = CliRunner().invoke(app, ["leads", str(ws.path), "-d", "nope"])
    assert r.exit_code == 2 and "unknown detectors" in r.output
    r = CliRunner().invoke(app, ["leads", str(ws.path), "--list"])
    assert r.exit_code == 0 and "phantom_bed" in r.output


def test_graph_cli(app, ws) -> None:
    r = CliRunner().invoke(app, ["graph", "ring", str(ws.path), "R00001"])
    assert r.exit_code == 2 and "graph build" in r.output
    r = CliRunner().invoke(app, ["graph", "build", str(ws.path), "--evaluate"])
    assert r.exit_code == 0, r.output
    assert "1 rings" in r.output and "mean purity 1.00" in r.output
    r = CliRunner().invoke(app, ["graph", "ring", str(ws.path), "R00001"])
    assert r.exit_code == 0, r.output
    assert "organiser" in r.output
    r = CliRunner().invoke(app, ["graph", "rings", str(ws.path)])
    assert r.exit_code == 0 and "R00001" in r.output
