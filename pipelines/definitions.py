"""Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here."""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from synthetic_data import GeneratorConfig, generate
from synthetic_data.dataset import write_dataset

PROJECT = Path(__file__).resolve().parent.parent


class GeneratorResource(dg.ConfigurableResource):
    """Region, years, seed and scale of the synthetic dataset (environment variables ZANDBAK_* override)."""

    region: str = os.environ.get("ZANDBAK_REGION", "twente")
    years: str = os.environ.get("ZANDBAK_YEARS", "2024")
    seed: int = int(os.environ.get("ZANDBAK_SEED", "42"))
    scale: float = float(os.environ.get("ZANDBAK_SCALE", "1.0"))
    out: str = os.environ.get("ZANDBAK_DATA", str(PROJECT / "data" / "dataset"))

    def config(self) -> GeneratorConfig:
        return GeneratorConfig(region=self.region, years=self.years, seed=self.seed, scale=self.scale)


@dg.asset(description="The whole synthetic jeugdzorg dataset (every table as watermarked Parquet + manifest.json).")
def synthetic_dataset(generator: GeneratorResource) -> dg.MaterializeResult:
    config = generator.config()
    manifest = write_dataset(generate(config), generator.out, config.as_dict())
    return dg.MaterializeResult(metadata={
        "folder": dg.MetadataValue.path(generator.out),
        **{f"rows_{name}": t["rows"] for name, t in manifest["tables"].items()},
    })


defs = dg.Definitions(assets=[synthetic_dataset], resources={"generator": GeneratorResource()})
