"""Feature pipeline: SQL definitions (``features/``) run by pluggable engines, month by month.

``build(workspace, backend="duckdb")`` computes claim, facility, staff and person features and
stores them per month in the workspace; ``load(workspace, subject)`` reads them back as pandas.
"""

from __future__ import annotations

from fraudscan.features.build import BuildResult, build, built_months, load
from fraudscan.features.engine import (
    Backend,
    BuildInputs,
    FeatureError,
    Model,
    backend_names,
    get_backend,
    load_models,
    register_backend,
)

__all__ = [
    "Backend",
    "BuildInputs",
    "BuildResult",
    "FeatureError",
    "Model",
    "backend_names",
    "build",
    "built_months",
    "get_backend",
    "load",
    "load_models",
    "register_backend",
]
