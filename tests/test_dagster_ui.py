"""What a user sees first in the Dagster UI: the runs of `zandbak run` carry the origin of their job in the code
location of workspace.yaml (the Overview timeline, the landing page, draws only such runs), a tag naming the region,
and every asset sits in a named group (the asset graph opens per group, never on one 'default' heap)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.run import LOCATION, RUN_TAG, ui_origin

ROOT = Path(__file__).resolve().parent.parent


def test_the_workspace_location_is_the_one_the_runs_name():
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    [origin] = WorkspaceFileTarget([str(ROOT / "workspace.yaml")]).create_origins()
    assert origin.location_name == LOCATION == ui_origin("reference_job").repository_origin.code_location_origin.location_name


def test_a_run_of_zandbak_run_has_the_job_origin_the_landing_page_needs(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), ZANDBAK_DATA=str(tmp_path / "data"),
               ZANDBAK_REGION="0147", ZANDBAK_SCALE="0.05", ZANDBAK_SEED="3", ZANDBAK_YEARS="2024")
    code = ("from pipelines.run import ensure_dagster_home, execute; ensure_dagster_home(); "
            "print(execute('pipelines.run:reference_job'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "True" in r.stdout, r.stdout + r.stderr
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    origin = run.remote_job_origin
    assert origin is not None and origin.job_name == "reference_job"
    assert origin.repository_origin.code_location_origin.location_name == LOCATION
    assert origin.repository_origin.repository_name == "__repository__"
    assert run.tags[RUN_TAG] == "0147 2024 seed 3"


def test_every_asset_is_in_a_named_group():
    from pipelines.definitions import defs

    groups = {spec.key.to_user_string(): spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups and "default" not in set(groups.values())
    assert {"reference", "people", "lifecycle", "claims", "warehouse", "dirty"} <= set(groups.values())
