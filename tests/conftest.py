"""Shared fixtures: a small synthetic city generated once per test session."""

from __future__ import annotations

import pytest

from fraudscan.workspace import Workspace


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A synthetic workspace of 2,000 persons (seed 7) with every fraud scenario injected.

    Generated once per session (a few seconds); treat it as read-only.
    """
    from fraudscan.synth import generate

    return generate(tmp_path_factory.mktemp("small_world") / "ws", persons=2_000, seed=7)
