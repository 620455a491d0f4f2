"""Shared fixtures: small generated datasets, built once per test session.

The testing toolkit's fixtures (`ijw_tables`, `ijw_config`, `break_rule`, `inject_fault`) come from the pytest plugin
synthetic_data.testing, registered as an entry point of the installed package; a checkout without that install gets
it through `pytest_plugins`.
"""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from synthetic_data import GeneratorConfig, generate
from synthetic_data.testing import small_tables

if not any(ep.value == "synthetic_data.testing" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["synthetic_data.testing"]

# The dataset of the rule, registry and fault tests: big enough for the realistic fault profile (~20,700 records).
BORNE_2Y = GeneratorConfig(region="0147", years="2023-2024", seed=7, scale=1.0)


@pytest.fixture(scope="session")
def twente_2024():
    """The default region at full scale for one year (~4 s): calibration and privacy tests use it."""
    config = GeneratorConfig(region="twente", years="2024", seed=42, scale=1.0)
    return config, generate(config)


@pytest.fixture(scope="session")
def borne_2y():
    """Gemeente 0147 (Borne), 2023-2024, full scale (under a second), cached by the toolkit."""
    return small_tables(BORNE_2Y)


# --- shared task data (ci-fast) ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def task_data():
    """`experiments.prepare(task, seed=42, **params)`, prepared once per session for every module that asks for the
    same task and parameters (the default verzoek_triage data alone is a Twente build of three years)."""
    import experiments as ex

    cache = {}

    def get(task: str, **params):
        key = (task, tuple(sorted({**ex.TASKS[task].defaults, **params}.items())))   # scale=0.3 is the default
        if key not in cache:
            cache[key] = ex.prepare(task, seed=42, **params)
        return cache[key]
    return get
