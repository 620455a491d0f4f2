"""Synthetic jeugdzorg administration: iJw 3.2 message tables derived from simulated care trajectories.

The front door for notebooks and the other rooms:

    from synthetic_data import GeneratorConfig, generate, write_dataset
    tables = generate(GeneratorConfig(region="twente", years="2024", seed=42))
"""
import os as _os

# polars' jemalloc hands freed pages back to the system at once; the generator allocates and frees the same large
# buffers table after table and then faults them in again (a quarter of its system time). jemalloc's stock decay
# (10 s) keeps them for reuse. Read when polars is first loaded, so it only acts if that happens after this line
# (the CLI, the benchmark, spawned pool workers); a value the user set wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")

from .config import GeneratorConfig  # noqa: E402
from .errors import ConfigError, DataError, ZandbakError  # noqa: E402
from .generate import generate  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ["GeneratorConfig", "generate", "write_dataset", "read_dataset", "ConfigError", "DataError", "ZandbakError",
           "__version__"]


def __getattr__(name):  # the writer pulls in pyarrow: load it only when asked for
    if name in ("write_dataset", "read_dataset"):
        from . import dataset
        return getattr(dataset, name)
    raise AttributeError(name)
