"""Shared fixtures: deterministic RNG and the location of the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: ../shared/data beside the repository (CI lays it out the same way).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
