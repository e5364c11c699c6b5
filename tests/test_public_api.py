"""The curated public API: a change to these names is a deliberate, reviewed change."""

from __future__ import annotations

import subprocess
import sys

import fraudscan

PUBLIC = [
    "DataError",
    "FraudscanError",
    "SynthConfig",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "features",
    "generate",
    "grading",
    "graph",
    "import_canonical",
    "import_medicare",
    "import_nhsa",
    "importers",
    "leads",
    "models",
    "outcomes",
    "rules",
    "run_demo",
    "schema",
    "summary",
    "suspects",
    "synth",
    "validate_tables",
    "validate_workspace",
    "validation",
    "workspace_summary",
]


def test_public_names_are_pinned() -> None:
    assert sorted(fraudscan.__all__) == sorted(PUBLIC)


def test_every_public_name_resolves() -> None:
    for name in fraudscan.__all__:
        assert getattr(fraudscan, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        fraudscan.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_is_lazy() -> None:
    """``import fraudscan`` must not pull in the heavy stack (the CLI starts fast)."""
    code = (
        "import sys, fraudscan; "
        "heavy = [m for m in ('lightgbm', 'mlflow', 'shap', 'bentoml', 'duckdb') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
