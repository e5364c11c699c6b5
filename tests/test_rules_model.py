"""Rule files as data: loading, validation errors with file and line, versions by date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudscan.cli import app
from fraudscan.rules import CHECKS, RuleFileError, load_rules, parse_rules
from fraudscan.rules.batch import SQL

GOOD = """\
pack: local
rules:
  - id: L01
    version: 1
    name: 本地规则
    name_en: Local rule
    rule_class: 药品限医疗机构级别
    national_code: null
    check: item_facility_level
    params: {classes: [western_drug]}
    action: warn
    severity: low
    message: 本地提示
    message_en: local reminder
    effective_from: 2024-01-01
"""


def test_shipped_pack_loads() -> None:
    rs = load_rules()
    assert len(rs) >= 40
    assert {f"R{i:02d}" for i in range(1, 48)} <= set(rs.ids)
    for r in rs:
        assert r.action in ("block", "warn", "post") and r.message and r.message_en
        assert r.check in CHECKS and r.check in SQL
    codes = {r.id: r.national_code for r in rs.latest()}
    assert codes["R01"] == "GZ10000301004000" and codes["R24"] == "GZ10000102012000"


def test_version_valid_on_service_date() -> None:
    rs = load_rules()
    v1, v2 = rs.version_on("R43", date(2024, 3, 1)), rs.version_on("R43", date(2025, 3, 1))
    assert v1 is not None and v2 is not None and (v1.version, v2.version) == (1, 2)
    assert v1.params["days"] == 10 and v2.params["days"] == 15
    assert rs.version_on("R43", date(2019, 1, 1)) is None


def test_local_rule_file_without_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "local.yaml"
    f.write_text(GOOD, encoding="utf-8")
    assert "L01" in load_rules([f]).ids
    monkeypatch.setenv("FRAUDSCAN_RULE_PATH", str(tmp_path))
    rs = load_rules()
    assert "L01" in rs.ids and rs.by_id["L01"][0].source == f"{f}:3"


@pytest.mark.parametrize(("patch", "line", "needle"), [
    (("check: item_facility_level", "check: no_such_check"), 9, "unknown check"),
    (("action: warn", "action: stop"), 11, "action must be one of"),
    (("severity: low", "severity: 7"), 12, "expected str"),
    (("params: {classes: [western_drug]}", "params: {classes: [pills]}"), 10,
     "unknown item classes"),
    (("params: {classes: [western_drug]}", "params: {colour: red}"), 10, "no parameter"),
    (("    version: 1\n", ""), 3, "missing required key 'version'"),
    (("effective_from: 2024-01-01", "effective_from: 2024-01-01\n    effective_to: 2023-01-01"),
     16, "effective_to is before"),
    (("    name: 本地规则\n", "    name: 本地规则\n    name: twice\n"), 6, "duplicate key"),
    (("rules:\n", "rules: [\n"), 3, "not valid YAML"),
])
def test_broken_file_names_file_and_line(tmp_path: Path, patch: tuple[str, str], line: int,
                                         needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(GOOD.replace(*patch), encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules([f])
    assert f"{f}:{line}" in str(e.value) and needle in str(e.value), str(e.value)


def test_overlapping_versions_rejected(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text(GOOD + GOOD.split("rules:\n")[1].replace("version: 1", "version: 2"),
                 encoding="utf-8")
    with pytest.raises(RuleFileError, match="still in force"):
        load_rules([f])


def test_knowledge_items_validated() -> None:
    text = GOOD.replace("check: item_facility_level", "check: pair_duplicate").replace(
        "    params: {classes: [western_drug]}\n", "")
    text += "    knowledge:\n      - {a: '1', c: '2'}\n"
    with pytest.raises(RuleFileError, match=r"x.yaml:16: knowledge\[0\]\.c"):
        parse_rules(text, "x.yaml")


def test_cli_list_and_lint(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["rules", "list", "--json"])
    assert r.exit_code == 0 and '"R01"' in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("action: warn", "action: stop"), encoding="utf-8")
    r = CliRunner().invoke(app, ["rules", "lint", str(bad)])
    assert r.exit_code == 2 and "bad.yaml:11" in r.output


def test_second_line_knowledge_needs_first_line() -> None:
    head = GOOD.replace("check: item_facility_level", "check: second_line").replace(
        "params: {classes: [western_drug]}", "params: {window_days: 90}")
    ok = head + "    knowledge:\n      - {item: X1, first_line_groups: [A10BA]}\n"
    (r,) = parse_rules(ok, "ok.yaml")
    assert r.params["window_days"] == 90 and r.knowledge[0]["first_line_groups"] == ["A10BA"]
    with pytest.raises(RuleFileError, match="first_line"):
        parse_rules(head + "    knowledge:\n      - {item: X1, note: n}\n", "bad.yaml")
    with pytest.raises(RuleFileError, match="window_days"):
        parse_rules(ok.replace("window_days: 90", "window_days: 0"), "bad.yaml")
