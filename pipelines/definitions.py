"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.

Settings come from the environment (ZANDBAK_REGION, _YEARS, _SEED, _SCALE, _DATA; see settings.py); the partitions
are the gemeenten of the configured region.
"""
from __future__ import annotations

import json
import os

import dagster as dg

from .assets import ADMIN_TABLES, GeneratorResource, build_assets
from .experiment_assets import build_experiment_assets
from .ijw_assets import build_ijw_assets
from .settings import Settings
from .storage import ParquetIOManager
from .team_checks import build_team_check_assets

SETTINGS = Settings.from_env()
GEMEENTEN = dg.StaticPartitionsDefinition(SETTINGS.config().gemeenten)
ASSETS = build_assets(GEMEENTEN) + build_experiment_assets(root=os.environ.get("ZANDBAK_TEAMS"))
ASSETS += build_team_check_assets(GEMEENTEN)   # checks/teams/<team>/<suite> or ZANDBAK_CHECKS: asset checks + scorecards
ASSETS += build_ijw_assets(GEMEENTEN)          # the partition's iJw XML messages, validated (issue 13)

DIRTY_PARTITIONED = dg.AssetSelection.groups("dirty") - dg.AssetSelection.assets("check_scorecard")
reference_job = dg.define_asset_job("reference_job", selection=dg.AssetSelection.groups("reference"))
gemeente_job = dg.define_asset_job(
    "gemeente_job", selection=dg.AssetSelection.assets(*ADMIN_TABLES) | DIRTY_PARTITIONED,
)
warehouse_job = dg.define_asset_job(
    "warehouse_job", selection=dg.AssetSelection.groups("warehouse") | dg.AssetSelection.assets("check_scorecard"))

experiments_job = dg.define_asset_job("experiments_job", selection=dg.AssetSelection.groups("experiments"))
# not in `zandbak run`: writing and validating every message takes about as long as generating the partition
ijw_job = dg.define_asset_job("ijw_job", selection=dg.AssetSelection.groups("ijw"))

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[reference_job, gemeente_job, warehouse_job, experiments_job, ijw_job],
    resources={
        "generator": GeneratorResource(region=SETTINGS.region, years=SETTINGS.years, seed=SETTINGS.seed,
                                       scale=SETTINGS.scale, data_dir=SETTINGS.data_dir,
                                       fault_profile=SETTINGS.fault_profile, fault_seed=SETTINGS.fault_seed),
        "parquet": ParquetIOManager(lake=str(SETTINGS.lake), config_json=json.dumps(SETTINGS.config().as_dict())),
    },
)
