"""Where the sandbox keeps its data, and the dataset settings read from the environment (no dagster import)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from synthetic_data import GeneratorConfig

PROJECT = Path(__file__).resolve().parent.parent
ENV = {"region": "ZANDBAK_REGION", "years": "ZANDBAK_YEARS", "seed": "ZANDBAK_SEED", "scale": "ZANDBAK_SCALE",
       "data_dir": "ZANDBAK_DATA", "fault_profile": "ZANDBAK_FAULT_PROFILE", "fault_seed": "ZANDBAK_FAULT_SEED"}


@dataclass(frozen=True)
class Settings:
    region: str = "twente"
    years: str = "2024"
    seed: int = 42
    scale: float = 1.0
    data_dir: str = str(PROJECT / "data")
    fault_profile: str = "realistic"
    fault_seed: int = 7

    @classmethod
    def from_env(cls) -> "Settings":
        """Defaults, overridden by ZANDBAK_REGION / _YEARS / _SEED / _SCALE / _DATA; validated like the CLI."""
        from synthetic_data.errors import ConfigError

        values = {}
        for field, var in ENV.items():
            if var in os.environ:
                values[field] = os.environ[var]
        if "seed" in values:
            try:
                values["seed"] = int(values["seed"])
            except ValueError:
                raise ConfigError(ENV["seed"], f"'{values['seed']}' is not a whole number", "an integer") from None
        if "fault_seed" in values:
            try:
                values["fault_seed"] = int(values["fault_seed"])
            except ValueError:
                raise ConfigError(ENV["fault_seed"], f"'{values['fault_seed']}' is not a whole number", "an integer") from None
        if "scale" in values:
            try:
                values["scale"] = float(values["scale"])
            except ValueError:
                raise ConfigError(ENV["scale"], f"'{values['scale']}' is not a number", "0 < scale <= 1") from None
        s = cls(**values)
        try:
            s.config()
            from synthetic_data.faults import profiles

            if s.fault_profile not in profiles():
                raise ConfigError("--fault_profile", f"unknown fault profile '{s.fault_profile}'", ", ".join(sorted(profiles())))
        except ConfigError as e:   # name the environment variable rather than the CLI option
            raise ConfigError(ENV.get(e.option.lstrip("-"), e.option), e.problem, e.allowed) from None
        return s

    def config(self) -> GeneratorConfig:
        return GeneratorConfig(region=self.region, years=self.years, seed=self.seed, scale=self.scale)

    @property
    def lake(self) -> Path:
        """Parquet files, one folder per dataset variant: a gemeente's rows depend on seed, years and scale only."""
        c = self.config().as_dict()
        return Path(self.data_dir) / "lake" / f"seed={c['seed']}_years={c['years']}_scale={c['scale']}"

    @property
    def sealed(self) -> Path:
        """Secrets and truths of scored challenges and tasks: never handed out, unreadable to experiments."""
        return Path(self.data_dir) / "sealed"

    @property
    def warehouse(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @property
    def data_docs(self) -> Path:
        """Great Expectations Data Docs, one site per partition run."""
        return Path(self.data_dir) / "data_docs"

    @property
    def report(self) -> Path:
        return Path(self.data_dir) / "report.html"
