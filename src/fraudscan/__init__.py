"""fraudscan: anti-fraud toolkit and scoring service for the basic medical-insurance fund.

The names below are the public API; everything in modules whose name starts with ``_`` and any
name not listed here may change without notice. Attributes load lazily so that ``import
fraudscan`` (and the CLI) stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # data
    "Workspace": "fraudscan.workspace",
    "WorkspaceError": "fraudscan.workspace",
    "FraudscanError": "fraudscan.errors",
    "DataError": "fraudscan.errors",
    "workspace_summary": "fraudscan.summary",
    "validate_tables": "fraudscan.validation",
    "validate_workspace": "fraudscan.validation",
    "import_canonical": "fraudscan.importers",
    "import_nhsa": "fraudscan.importers",
    "import_medicare": "fraudscan.importers",
    "generate": "fraudscan.synth",
    "SynthConfig": "fraudscan.synth",
    # the whole job
    "run_demo": "fraudscan.pipeline",
}

_SUBMODULES = ("schema", "rules", "features", "leads", "graph", "synth", "importers",
               "validation", "models", "grading", "suspects", "outcomes", "summary")

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"fraudscan.{name}")
    raise AttributeError(f"module 'fraudscan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
