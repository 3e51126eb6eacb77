"""Shared helpers of the Python tests: where the repository's recordings are."""

from pathlib import Path

import pytest

#: The repository root (python/tests/ is two levels below it).
REPO = Path(__file__).resolve().parents[2]
PARITY = REPO / "envs" / "tests" / "parity"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
