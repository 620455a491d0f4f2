"""Synthetic jeugdzorg administration: iJw 3.2 message tables derived from simulated care trajectories.

The front door for notebooks and the other rooms:

    from synthetic_data import GeneratorConfig, generate, write_dataset
    tables = generate(GeneratorConfig(region="twente", years="2024", seed=42))
"""
from .config import GeneratorConfig
from .errors import ConfigError, DataError, ZandbakError
from .generate import generate
from .version import __version__

__all__ = ["GeneratorConfig", "generate", "write_dataset", "read_dataset", "ConfigError", "DataError", "ZandbakError",
           "__version__"]


def __getattr__(name):  # the writer pulls in pyarrow: load it only when asked for
    if name in ("write_dataset", "read_dataset"):
        from . import dataset
        return getattr(dataset, name)
    raise AttributeError(name)
