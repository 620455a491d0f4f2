"""Shared fixtures: small generated datasets, built once per test session."""
from __future__ import annotations

import pytest

from synthetic_data import GeneratorConfig, generate


@pytest.fixture(scope="session")
def twente_2024():
    """The default region at full scale for one year (~4 s): calibration and privacy tests use it."""
    config = GeneratorConfig(region="twente", years="2024", seed=42, scale=1.0)
    return config, generate(config)
