"""Shared fixtures: a small synthetic city generated once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fraudscan.workspace import Workspace


@pytest.fixture(scope="session", autouse=True)
def _isolated_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep tests off the checkout's default MLflow store (``./mlflow``).

    After ``fraudscan demo`` has registered champions there, a test that expects "no champion"
    would otherwise find the demo's; and tests must not write into the repository either.
    Tests that want a store of their own still set one (their setting wins: it is applied later).
    """
    mp = pytest.MonkeyPatch()
    if "MLFLOW_TRACKING_URI" not in os.environ and "FRAUDSCAN_MLFLOW_DIR" not in os.environ:
        mp.setenv("FRAUDSCAN_MLFLOW_DIR", str(tmp_path_factory.mktemp("mlflow")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A synthetic workspace of 2,000 persons (seed 7) with every fraud scenario injected.

    Generated once per session (a few seconds); treat it as read-only.
    """
    from fraudscan.synth import generate

    return generate(tmp_path_factory.mktemp("small_world") / "ws", persons=2_000, seed=7)
