"""Shared fixtures: deterministic RNG and the location of the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: ../shared/data beside the repository (CI lays it out the same way).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def require_shared(path: Path) -> Path:
    """``path`` under ../shared, or skip the test — except under ``CI=true``, where it fails.

    CI lays out ../shared beside the clone, so a missing file there is a broken setup, not a
    reason to pass quietly.
    """
    if path.exists():
        return path
    message = f"{path} not present (../shared is not laid out beside the repository)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must provide it")
    pytest.skip(message)
