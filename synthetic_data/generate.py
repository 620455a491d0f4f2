"""The front door: config -> every table of the synthetic administration."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import polars as pl

from . import messages as msg
from .config import GeneratorConfig
from .dictionary import conform
from .people import person_ids, persons_frame, verwijzers
from .providers import aanbieders, producten
from .reference import gemeenten_all
from .simulate import simulate_gemeente

ProgressFn = Callable[[int, int], None]
# Below this many gemeenten a process pool costs more than it saves.
_PARALLEL_FROM = 24


def _simulate(args) -> pl.DataFrame:
    return simulate_gemeente(*args)


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


def simulate(config: GeneratorConfig, progress: ProgressFn | None = None, workers: int = 1) -> pl.DataFrame:
    """Trajectories of every requested gemeente (internal columns), one partition per gemeente.

    `workers` > 1 simulates partitions in parallel processes (spawned: a script calling this needs the usual
    `if __name__ == "__main__":` guard; the CLI and Dagster have it).
    """
    codes = config.gemeenten
    first, last = config.year_range
    jobs = [(config.seed, float(config.scale), c, first, last) for c in codes]
    frames = []
    if len(jobs) >= _PARALLEL_FROM and workers > 1:
        # spawn, not fork: polars' thread pool does not survive a fork (the child can hang on a held lock)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            for i, df in enumerate(ex.map(_simulate, jobs, chunksize=4)):
                frames.append(df)
                if progress:
                    progress(i + 1, len(jobs))
    else:
        for i, job in enumerate(jobs):
            frames.append(_simulate(job))
            if progress:
                progress(i + 1, len(jobs))
    return pl.concat(frames, how="diagonal_relaxed")


def generate(config: GeneratorConfig | None = None, progress: ProgressFn | None = None,
             workers: int = 1) -> dict[str, pl.DataFrame]:
    """Generate the synthetic dataset: {table name: polars DataFrame}, columns as in the data dictionary."""
    config = config or GeneratorConfig()
    first, last = config.year_range
    seed = config.seed
    gem = gemeenten_all().filter(pl.col("gemeente_code").is_in(config.gemeenten))
    regios = sorted(gem["inkoopregio"].unique().to_list())
    pools = pl.concat([aanbieders(seed, r) for r in regios])
    contracts = pl.concat([producten(seed, r) for r in regios])

    traj = simulate(config, progress, workers)
    traj = pl.concat([traj, person_ids(seed, traj)], how="horizontal")
    df = msg.enrich(traj, contracts, pools, gem.select("gemeente_code", "inkoopregio"), first, last)

    persons = df.filter(
        (~pl.col("rejected") & msg.in_window(df))
        | (pl.col("rejected") & pl.col("_req_date").is_between(pl.col("_ws"), pl.col("_we")))
    ).select("origin_code", "person_index", "gemeente_code").unique()
    jeugdigen = persons_frame(seed, persons)
    lines = msg.prestaties(seed, df)
    decl, decl_answer = msg.declaraties(seed, lines)
    tables = {
        "gemeenten": gem,
        "aanbieders": pools,
        "producten": contracts,
        "jeugdigen": jeugdigen,
        "trajecten": msg.trajecten(df),
        "verzoeken": msg.verzoeken(df, jeugdigen, verwijzers(seed, gem)),
        "antwoorden": msg.antwoorden(df),
        "toewijzingen": msg.toewijzingen(df),
        "zorgstarts": msg.zorgstarts(df),
        "zorgstops": msg.zorgstops(df),
        "declaraties": decl,
        "prestaties": lines,
        "declaratie_antwoorden": decl_answer,
    }
    return {name: conform(name, t) for name, t in tables.items()}
